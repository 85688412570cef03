"""Buckets, procedural masks, mask files, the NVIDIA set (cache) and the training sampler."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from isfr.data import BUCKETS, MaskAugment, MaskSampler, NvidiaBank, NvidiaMasks, bucket_of, in_bucket
from isfr.data import load_mask, paper_range_of, procedural_mask
from isfr.data.buckets import bounds, count_range
from isfr.data.procedural import ProceduralMasks, mask_from_name, parse_procedural_name


@pytest.mark.parametrize("ratio, bucket", [
    (0.0, "empty"), (1e-6, "0-10"), (0.0999, "0-10"), (0.1, "10-20"), (0.2, "20-30"), (0.3, "30-40"),
    (0.1 * 3, "30-40"), (0.39999, "30-40"), (0.4, "40-50"), (0.55, "50-60"), (0.6, "50-60"),
    (0.6000001, "60-100"), (1.0, "60-100"), (6553 / 65536, "0-10"), (6554 / 65536, "10-20"),
])
def test_bucket_of(ratio, bucket):
    assert bucket_of(ratio) == bucket


def test_bucket_helpers():
    with pytest.raises(ValueError):
        bucket_of(-0.1)
    with pytest.raises(ValueError):
        bucket_of(1.5)
    assert paper_range_of(0.25) == "20-40" and paper_range_of(0.6) == "40-60" and paper_range_of(0.1) == ""
    assert in_bucket(0.35, "20-40") and not in_bucket(0.4, "20-40") and in_bucket(0.4, "40-60")
    assert bounds("40-60") == (0.4, 0.6) and bounds("0-10") == (0.0, 0.1)
    assert count_range("0-10", 100) == (1, 9) and count_range("50-60", 100) == (50, 60)
    with pytest.raises(ValueError, match="unknown bucket"):
        in_bucket(0.1, "10-30")


@pytest.mark.parametrize("res", [64, 256])
def test_procedural_masks_hit_every_bucket(res):
    for bucket in BUCKETS:
        for seed in range(4):
            m = procedural_mask(bucket, res, seed)
            assert m.shape == (res, res) and m.dtype == bool
            assert bucket_of(m.mean()) == bucket, (bucket, seed, m.mean())
    assert in_bucket(procedural_mask("20-40", res, 1).mean(), "20-40")


def test_procedural_masks_seeded_and_named():
    a, b, c = (procedural_mask("30-40", 64, s) for s in (5, 5, 6))
    assert (a == b).all() and not (a == c).all()
    assert parse_procedural_name("procedural:30-40:5") == ("30-40", 5)
    assert (mask_from_name("procedural:30-40:5", 64) == a).all()
    m, name = ProceduralMasks(64).draw("10-20", np.random.default_rng(0))
    assert bucket_of(m.mean()) == "10-20" and (mask_from_name(name, 64) == m).all()


def test_procedural_mask_tiny_resolution_terminates():
    for bucket in BUCKETS:
        assert bucket_of(procedural_mask(bucket, 8, 0).mean()) == bucket


def test_load_mask_thresholds_non_binary(tmp_path):
    arr = np.array([[0, 127], [128, 255]], np.uint8)
    Image.fromarray(arr, "L").save(tmp_path / "m.png")
    assert (load_mask(tmp_path / "m.png") == np.array([[False, False], [True, True]])).all()
    Image.fromarray(np.array([[0, 200]], np.uint16) * 257).save(tmp_path / "m16.png")  # 16-bit
    assert load_mask(tmp_path / "m16.png").tolist() == [[False, True]]
    big = np.zeros((8, 8), np.uint8)
    big[:, 4:] = 255
    Image.fromarray(big).save(tmp_path / "big.png")
    assert load_mask(tmp_path / "big.png", 4).mean() == 0.5  # NEAREST resize
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="bad.png"):
        load_mask(tmp_path / "bad.png")


def _fake_nvidia(root, ratios, size=32):
    """A tiny NVIDIA-like folder: one mask per ratio (top rows white)."""
    d = root / "nvidia_irregular_masks" / "testing_mask_dataset"
    d.mkdir(parents=True)
    for i, r in enumerate(ratios):
        arr = np.zeros((size, size), np.uint8)
        arr.flat[: int(round(r * size * size))] = 255
        Image.fromarray(arr).save(d / f"{i:05d}.png")
    return root / "nvidia_irregular_masks"


def test_nvidia_masks_cache(tmp_path):
    ratios = [0.0, 0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.6, 0.9, 1.0]
    root = _fake_nvidia(tmp_path, ratios)
    cache = tmp_path / "cache"
    nv = NvidiaMasks(root, 32, cache=cache, workers=1)
    assert list(nv.buckets) == ["empty", "0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "50-60", "60-100",
                                "60-100"]
    assert np.allclose(nv.ratios, [round(r * 1024) / 1024 for r in ratios])
    assert nv.bucket_counts()["50-60"] == 2 and nv.range_counts() == {"20-40": 2, "40-60": 3}
    assert (nv.mask(3) == load_mask(root / "testing_mask_dataset" / "00003.png")).all()
    assert sorted(p.suffix for p in cache.iterdir()) == [".csv", ".npy"]  # no temp files left
    again = NvidiaMasks(root / "testing_mask_dataset", 32, cache=cache)  # folder itself; reuses the cache
    assert again.array_path == nv.array_path and (again.mask(5) == nv.mask(5)).all()
    half = NvidiaMasks(root, 16, cache=cache, workers=2)  # another resolution: ratios measured there
    assert half.mask(4).shape == (16, 16) and half.index_of("00004.png") == 4
    with pytest.raises(FileNotFoundError, match="testing_mask_dataset"):
        NvidiaMasks(tmp_path / "nowhere", 32, cache=cache)


def test_sampler_buckets_augment_and_fallback(tmp_path):
    root = _fake_nvidia(tmp_path, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.58])
    nv = NvidiaMasks(root, 32, cache=tmp_path / "c", workers=1)
    bank = NvidiaBank(nv)
    rng = np.random.default_rng(0)
    seen = {bucket_of(MaskSampler(bank).sample(rng)[1]) for _ in range(200)}
    assert seen == set(BUCKETS)  # uniform over buckets
    s = MaskSampler(bank, "50-60", MaskAugment(max_dilation=3))
    for _ in range(50):  # dilation pushes 0.58 over 0.6: redrawn, else the un-augmented mask
        m, r, name = s.sample(rng)
        assert in_bucket(r, "50-60") and r == m.mean() and name in ("00005.png", "00006.png")
    a = MaskSampler(bank, None, MaskAugment(max_dilation=2)).sample(np.random.default_rng(7))
    b = MaskSampler(bank, None, MaskAugment(max_dilation=2)).sample(np.random.default_rng(7))
    assert (a[0] == b[0]).all() and a[1:] == b[1:]
    with pytest.raises(ValueError, match="no mask"):
        MaskSampler(NvidiaBank(NvidiaMasks(_fake_nvidia(tmp_path / "x", [0.05]), 32, cache=tmp_path / "c")),
                    "20-40")


@pytest.mark.shared_data
def test_real_nvidia_buckets_at_256(nvidia_256):
    counts = nvidia_256.bucket_counts()
    assert len(nvidia_256) == 12000
    for b in BUCKETS:
        assert abs(counts[b] - 2000) <= 50, counts
    nominal = np.repeat(np.arange(6), 2000)
    moved = sum(bucket_of(r) != BUCKETS[k] for r, k in zip(nvidia_256.ratios, nominal))
    assert moved == 50  # data README: 50 masks leave their nominal bucket after a nearest resize to 256
    i = 4321
    direct = load_mask(nvidia_256.folder / nvidia_256.names[i], 256)
    assert (nvidia_256.mask(i) == direct).all() and nvidia_256.ratios[i] == direct.mean()
