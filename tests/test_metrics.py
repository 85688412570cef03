"""Metrics protocol: compositing, quantisation, scikit-image PSNR/SSIM, L1, LPIPS offline, identity."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from isfr.evaluation import metrics as M
from isfr.models.backbones import ALEXNET_FILE
from isfr.data.buckets import bucket_of

from conftest import write_alexnet_file


def _batch(seed: int = 0, b: int = 2, s: int = 32):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(b, 3, s, s, generator=g) * 2 - 1
    pred = torch.rand(b, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(b, 1, s, s)
    mask[..., 8:20, 4:24] = 1
    return pred, gt, mask


# ---------------------------------------------------------------- compositing / quantisation
def test_quantisation_rounds_and_clips():
    vals = torch.tensor([-1.0, 1.0, 127.4 / 127.5 - 1, 127.6 / 127.5 - 1, -3.0, 3.0])
    x = vals.view(1, 1, 1, 6).expand(1, 3, 1, 6)
    u8 = M.to_uint8(x)
    assert u8.dtype == np.uint8 and u8.shape == (1, 1, 6, 3)
    assert u8[0, 0, :, 0].tolist() == [0, 255, 127, 128, 0, 255]


def test_composite_pastes_known_pixels():
    pred, gt, mask = _batch()
    comp = M.to_uint8_composite(pred, gt, mask)
    gt_u8, pred_u8 = M.to_uint8(gt), M.to_uint8(pred)
    hole = mask[:, 0].bool().numpy()
    assert np.array_equal(comp[~hole], gt_u8[~hole])
    assert np.array_equal(comp[hole], pred_u8[hole])


# ---------------------------------------------------------------- PSNR / SSIM / L1
def test_pixel_metrics_equal_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert M.psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    assert M.ssim(b, a) == pytest.approx(structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1,
        data_range=255))
    assert M.l1(b, a) == pytest.approx(np.abs(a / 255.0 - b / 255.0).mean())
    # PSNR by hand: 10 log10(255^2 / MSE)
    mse = ((a.astype(float) - b) ** 2).mean()
    assert M.psnr(b, a) == pytest.approx(10 * math.log10(255**2 / mse))


def test_identical_images():
    a = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.l1(a, a) == 0.0


def test_score_batch_uses_composite_and_quantisation():
    pred, gt, mask = _batch()
    rows = M.score_batch(pred, gt, mask, ids=["a", "b"])
    comp, gt_u8 = M.to_uint8_composite(pred, gt, mask), M.to_uint8(gt)
    assert [r["id"] for r in rows] == ["a", "b"]
    r = rows[0]
    assert r["hole_ratio"] == pytest.approx(12 * 20 / 32**2) and r["bucket"] == "20-30"
    assert r["psnr"] == pytest.approx(peak_signal_noise_ratio(gt_u8[0], comp[0], data_range=255))
    assert r["l1"] == pytest.approx(M.l1(comp[0], gt_u8[0]))
    assert math.isnan(r["lpips"]) and math.isnan(r["id_dist"])
    # an output that differs from gt only at known pixels scores as perfect
    pred2 = gt.clone()
    pred2[mask.expand_as(gt) == 0] = 0.3
    r2 = M.score_batch(pred2, gt, mask)[0]
    assert r2["psnr"] == math.inf and r2["l1"] == 0.0


def test_aggregate_buckets_and_paper_ranges():
    df = pd.DataFrame({"hole_ratio": [0.05, 0.25, 0.35, 0.45, 0.6],
                       "psnr": [40.0, 30.0, 20.0, 10.0, 5.0], "id_dist": [0.1, np.nan, 0.3, 0.4, 0.5]})
    df["bucket"] = df["hole_ratio"].map(bucket_of)
    t = M.aggregate(df)
    assert t.loc["20-40", "psnr"] == 25.0 and t.loc["20-40", "n"] == 2
    assert t.loc["40-60", "psnr"] == 7.5 and t.loc["40-60", "n"] == 2
    assert t.loc["all", "n"] == 5 and t.loc["all", "id_nan"] == 1
    assert t.loc["0-10", "psnr"] == 40.0 and t.loc["50-60", "n"] == 1  # 0.6 -> 50-60


# ---------------------------------------------------------------- LPIPS offline
def test_lpips_without_file_is_nan_with_note(torch_home):
    model, note = M.load_lpips()
    assert model is None and "LPIPS is NaN" in note and ALEXNET_FILE in note
    mm = M.load_metric_models(identity=False)
    pred, gt, mask = _batch()
    assert all(math.isnan(r["lpips"]) for r in M.score_batch(pred, gt, mask, mm))
    assert "LPIPS is NaN" in mm.protocol_text() and mm.protocol_text().startswith(M.PROTOCOL)


def test_lpips_with_file(torch_home):
    sd = write_alexnet_file(torch_home)
    model, note = M.load_lpips()
    assert model is not None
    assert torch.equal(model.net.slice3._modules["6"].weight, sd["features.6.weight"])
    assert torch.equal(model.net.slice5._modules["10"].bias, sd["features.10.bias"])
    pred, gt, mask = _batch(s=64)
    comp, gt_u8 = M.to_uint8_composite(pred, gt, mask), M.to_uint8(gt)
    same = M.lpips_distance(model, gt_u8, gt_u8)
    diff = M.lpips_distance(model, comp, gt_u8)
    assert np.all(np.isfinite(diff)) and np.all(diff > 0)
    assert np.allclose(same, 0.0, atol=1e-6)


# ---------------------------------------------------------------- identity (dlib)
def _synthetic_face(size: int = 256) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (90, 110, 140))
    d = ImageDraw.Draw(im)
    s = size / 256
    d.ellipse([60 * s, 50 * s, 196 * s, 220 * s], fill=(224, 180, 150))
    for x in (100, 156):
        d.ellipse([(x - 12) * s, 108 * s, (x + 12) * s, 124 * s], fill=(255, 255, 255))
        d.ellipse([(x - 5) * s, 111 * s, (x + 5) * s, 121 * s], fill=(40, 30, 20))
    d.polygon([(128 * s, 120 * s), (118 * s, 160 * s), (138 * s, 160 * s)], fill=(200, 150, 125))
    d.arc([104 * s, 165 * s, 152 * s, 195 * s], 20, 160, fill=(150, 50, 50), width=max(1, int(4 * s)))
    return np.asarray(im)


@pytest.fixture(scope="module")
def identity():
    pytest.importorskip("dlib", reason="dlib (dlib-bin) not installed: identity metric is optional")
    idm, note = M.load_identity()
    if idm is None:
        pytest.skip(note)
    return idm


@pytest.mark.parametrize("size", [256, 64])
def test_identity_self_distance_zero(identity, size):
    face = _synthetic_face(size)
    d = identity.descriptor(face)
    if d is None:
        pytest.skip("dlib produced no descriptor for the synthetic face")
    assert d.shape == (128,)
    assert identity.distance(face, face) == 0.0


def test_identity_failure_is_nan_and_counted(identity, monkeypatch):
    def boom(img):
        raise RuntimeError("no face")

    monkeypatch.setattr(identity, "_descriptor", boom)
    before = identity.failures
    gt = _synthetic_face()[:, ::-1].copy()  # not cached by another test
    assert math.isnan(identity.distance(_synthetic_face(), gt))
    assert identity.failures == before + 2
    assert math.isnan(identity.distance(_synthetic_face(), gt))  # the cached failure counts again
    assert identity.failures == before + 4


def test_identity_caches_the_reference_only(identity, monkeypatch):
    seen = []

    def fake(img):
        seen.append(img.copy())
        return np.full(128, float(img.mean()))

    monkeypatch.setattr(identity, "_descriptor", fake)
    face = _synthetic_face(64)
    gt = face[::-1].copy()
    d1, d2 = identity.distance(face, gt), identity.distance(face, gt)
    assert d1 == d2 and len(seen) == 3  # pred twice, gt once
    gt[0, 0] ^= 1  # one pixel changed: a new reference
    identity.distance(face, gt)
    assert len(seen) == 5
    monkeypatch.setattr(identity, "reference_cache", 0)
    identity._cache.clear()
    identity.distance(face, gt), identity.distance(face, gt)
    assert len(seen) == 9


def test_identity_in_score_batch(identity):
    face = torch.from_numpy(_synthetic_face(64).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    rows = M.score_batch(face, face, torch.zeros(1, 1, 64, 64), M.MetricModels(identity=identity))
    assert rows[0]["id_dist"] == 0.0


def test_identity_without_dlib_is_nan_with_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    idm, note = M.load_identity()
    assert idm is None and "Identity distance is NaN" in note


@pytest.mark.parametrize("p, q", [(100, 120), (30, 200), (0, 255)])
def test_ssim_of_two_flat_images_has_its_closed_form(p, q):
    """Flat images have zero variance and covariance everywhere, so SSIM reduces to its luminance
    term (Wang et al. 2004, eq. 13): (2 p q + C1) / (p^2 + q^2 + C1), C1 = (0.01 * 255)^2."""
    a, b = np.full((32, 32, 3), p, np.uint8), np.full((32, 32, 3), q, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert M.ssim(b, a) == pytest.approx((2 * p * q + c1) / (p * p + q * q + c1), rel=1e-6)
