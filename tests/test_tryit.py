"""Notebook 07's logic (isfr.apps.tryit): painted strokes -> mask, one model run -> panels + metrics, the figure."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from isfr.apps import tryit, widget
from isfr.experiments.config import get_preset
from isfr.data import draw_face, image_to_tensor
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig

RES = 64  # the smoke preset's resolution


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ISFRNet(ISFRNetConfig.from_preset(get_preset("smoke"))).eval()  # untrained: output != input


@pytest.fixture(scope="module")
def face():
    return image_to_tensor(draw_face(0, 3, RES))


def _rows_cols(mask):
    m = mask[0, 0].numpy() > 0.5
    return np.where(m.any(1))[0].tolist(), np.where(m.any(0))[0].tolist()


# ---------------------------------------------------------------- strokes_to_mask
def test_horizontal_stroke_is_a_band_of_the_right_rows_and_width():
    # 256 px canvas -> 64 px model: 4 canvas px per model px. Stroke y = 130, x 66..190, radius 8:
    # painted canvas rows ~122..138 -> model rows 30..34; columns 58..198 (round caps) -> 14..49.
    m = tryit.strokes_to_mask([[(66, 130), (100, 130), (190, 130)]], 256, 8, RES)
    assert m.shape == (1, 1, RES, RES) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}
    rows, cols = _rows_cols(m)
    assert rows == list(range(30, 35))
    assert cols == list(range(14, 50))
    assert m[0, 0, 30:35, 16:48].eq(1).all()  # a solid band, no gaps between the points


def test_no_strokes_give_an_empty_mask():
    for strokes in ([], [[]], [[], []]):
        m = tryit.strokes_to_mask(strokes, 320, 10, RES)
        assert m.shape == (1, 1, RES, RES) and m.sum() == 0


def test_points_outside_the_canvas_are_clipped_to_its_border():
    m = tryit.strokes_to_mask([[(-50, 300)]], 256, 8, RES)  # clipped to the bottom-left corner (0, 256)
    hole = m[0, 0].numpy() > 0.5
    assert hole[63, 0]
    assert hole.sum() <= 9 and not hole[:60].any() and not hole[:, 4:].any()
    # a stroke leaving the canvas on the right runs along inside up to the border, no further
    m = tryit.strokes_to_mask([[(200, 100), (900, 100)]], 256, 4, RES)
    rows, cols = _rows_cols(m)
    assert cols[-1] == RES - 1 and cols[0] == 49 and rows == [24, 25, 26]


def test_brush_radius_scales_with_the_canvas_to_model_size():
    # the same stroke drawn on a 512 px canvas (8 canvas px per model px) with twice the radius
    big = tryit.strokes_to_mask([[(132, 260), (380, 260)]], 512, 16, RES)
    assert _rows_cols(big) == (list(range(30, 35)), list(range(14, 50)))
    # the same radius in canvas pixels on a larger canvas is a thinner band at the model's resolution
    thin = tryit.strokes_to_mask([[(132, 260), (380, 260)]], 512, 8, RES)
    assert _rows_cols(thin)[0] == [31, 32, 33]
    # a non-square canvas: x and y scale separately (width 128 -> 0.5 model px per canvas px)
    m = tryit.strokes_to_mask([[(64, 128)]], (128, 256), 8, RES)
    rows, cols = _rows_cols(m)
    assert rows == list(range(30, 34)) or rows == list(range(30, 35))
    assert cols == list(range(28, 37))


def test_mask_file_is_read_white_is_hole_and_resized(tmp_path):
    a = np.zeros((128, 128), np.uint8)
    a[32:64, 40:80] = 255
    Image.fromarray(a).save(tmp_path / "m.png")
    m = tryit.file_mask(tmp_path / "m.png", RES)
    assert m.shape == (1, 1, RES, RES)
    rows, cols = _rows_cols(m)
    assert rows[0] <= 16 and rows[-1] >= 31 and cols[0] <= 20 and cols[-1] >= 39  # covers the hole
    assert rows[0] >= 15 and rows[-1] <= 32 and cols[0] >= 19 and cols[-1] <= 40  # and not much more


# ---------------------------------------------------------------- run
def _u8(x):
    return np.clip(np.floor((x.permute(1, 2, 0).numpy() + 1) / 2 * 255 + 0.5), 0, 255).astype(np.uint8)


def test_run_gives_every_panel_and_keeps_the_known_pixels(model, face):
    mask = tryit.strokes_to_mask([[(80, 100), (240, 180)]], 320, 20, RES)
    res = tryit.run(model, face, mask, identity=None)
    assert set(res.panels) == {"input", "stage1", "ifr", "composite", "gt"}
    for k, v in res.panels.items():
        assert v.shape == (3, RES, RES), k
    known = mask[0, 0] < 0.5
    hole = ~known
    assert 0.05 < hole.float().mean() < 0.6
    assert torch.equal(res.panels["composite"][:, known], face[:, known])  # known pixels: exactly the input
    assert torch.equal(res.panels["ifr"][:, known], face[:, known])
    assert torch.equal(res.panels["gt"], face)
    assert res.panels["input"][:, hole].abs().max() == 0  # the masked input has nothing in the hole
    assert (res.panels["composite"][:, hole] - face[:, hole]).abs().mean() > 0.02  # the hole was filled
    assert list(res.metrics.index) == ["stage1", "ifr", "composite"]
    assert math.isclose(res.hole_ratio, hole.float().mean().item())


def test_run_metrics_match_skimage_on_the_composite(model, face):
    mask = tryit.strokes_to_mask([[(100, 150), (220, 150)]], 320, 25, RES)
    res = tryit.run(model, face, mask, identity=None)
    out, gt = _u8(res.panels["composite"]), _u8(face)
    row = res.metrics.loc["composite"]
    assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, out, data_range=255), abs=1e-9)
    assert row["ssim"] == pytest.approx(structural_similarity(gt, out, gaussian_weights=True, sigma=1.5,
                                                              use_sample_covariance=False, channel_axis=-1,
                                                              data_range=255), abs=1e-9)
    # stage 1 is scored composited with the ground truth's known pixels, not raw
    s1 = res.panels["stage1"] * mask[0] + face * (1 - mask[0])
    assert res.metrics.loc["stage1", "psnr"] == pytest.approx(
        peak_signal_noise_ratio(gt, _u8(s1), data_range=255), abs=1e-9)
    assert math.isnan(row["id_dist"]) and any("NaN" in n for n in res.notes)


class _StubIdentity:
    """Stands in for dlib: records what it is given, answers a fixed distance (or NaN)."""

    def __init__(self, value):
        self.value, self.seen = value, []

    def distance(self, pred_u8, gt_u8):
        self.seen.append((pred_u8.copy(), gt_u8.copy()))
        return self.value


def test_identity_distance_comes_from_the_identity_model_and_nan_is_explained(model, face):
    mask = tryit.strokes_to_mask([[(160, 160)]], 320, 60, RES)
    stub = _StubIdentity(0.42)
    res = tryit.run(model, face, mask, identity=stub)
    assert res.metrics["id_dist"].tolist() == [0.42, 0.42, 0.42]
    assert len(stub.seen) == 3 and np.array_equal(stub.seen[-1][1], _u8(face))
    assert np.array_equal(stub.seen[-1][0], _u8(res.panels["composite"]))
    res = tryit.run(model, face, mask, identity=_StubIdentity(float("nan")))
    assert res.metrics["id_dist"].isna().all()
    assert any("dlib could not describe" in n for n in res.notes)


def test_run_rejects_a_mask_of_another_resolution(model, face):
    with pytest.raises(ValueError, match="64x64"):
        tryit.run(model, face, torch.ones(1, 1, 32, 32), identity=None)


def test_a_photo_without_a_detectable_face_is_center_cropped_and_says_so():
    photo = Image.new("RGB", (120, 80), (200, 30, 30))
    photo.paste((10, 200, 10), (20, 0, 100, 80))  # the central 80x80 square is green
    face, note = tryit.photo_face(photo, RES, name="flat.png")
    assert face.image.shape == (3, RES, RES) and "center-cropped" in note and "flat.png" in note
    assert torch.allclose(face.image[:, :, 2:-2], torch.tensor([10, 200, 10]).div(127.5).sub(1)[:, None, None],
                          atol=0.02)  # only the central square (a squashed photo: red in columns 0-10)


# ---------------------------------------------------------------- figure, examples, widget
def test_figure_has_five_panels_metrics_and_the_provenance_footer(model, face):
    mask = tryit.strokes_to_mask([[(100, 150), (220, 150)]], 320, 25, RES)
    res = tryit.run(model, face, mask, identity=_StubIdentity(0.5))
    info = {"preset": "smoke", "variant": "full", "steps": "StyleGAN2 30 + pSp 20 steps",
            "schedule": {"ifr": {"step": 7, "total_steps": 20, "finished": False}}}
    fig = tryit.figure(res, note="NOTE-LINE", checkpoint="runs/x/isfrnet_full.pt", info=info, mask_name="painted")
    assert len(fig.axes) == 5
    texts = " ".join(" ".join(t.get_text() for t in fig.texts).split())  # the footer is wrapped
    assert "NOTE-LINE" in texts and "preset smoke" in texts and "StyleGAN2 30 + pSp 20 steps" in texts
    assert "ifr 7/20 (unfinished)" in texts and "isfrnet_full.pt" in texts
    assert fig.axes[0].get_xlabel() == ""  # the input has no metrics
    assert "PSNR" in fig.axes[3].get_xlabel() and "0.500" in fig.axes[3].get_xlabel()
    assert tryit.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_examples_pick_faces_and_manifest_masks_by_bucket(monkeypatch):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    ex = tryit.Examples(get_preset("smoke"), "synthetic")
    assert len(ex) >= 2
    a, b = ex.face(0), ex.face(1)
    assert a.image.shape == (3, RES, RES) and a.name != b.name
    assert ex.face(len(ex)).name == a.name  # the index wraps around
    for bucket, lo, hi in (("20-40", 0.2, 0.4), ("50-60", 0.5, 0.6), ("0-10", 0.0, 0.1)):
        pm = ex.mask(1, bucket)
        assert pm.mask.shape == (1, 1, RES, RES)
        assert lo < pm.mask.mean().item() <= hi + 1e-9, bucket
    with pytest.raises(ValueError, match="unknown bucket"):
        ex.mask(0, "15-25")


def test_widget_turns_mouse_events_into_a_run(monkeypatch, model):
    pytest.importorskip("ipycanvas")
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    ex = tryit.Examples(get_preset("smoke"), "synthetic")
    box = widget.widget(model, ex, note="N", identity=None, canvas_size=256, brush=8)
    ui = box.tryit
    top = ui["canvas"][1]
    for event, (x, y) in (("mouse_down", (66, 130)), ("mouse_move", (120, 130)), ("mouse_up", (190, 130))):
        top._handle_frontend_event(None, {"event": event, "x": x, "y": y}, [])
    top._handle_frontend_event(None, {"event": "mouse_move", "x": 10, "y": 10}, [])  # not drawing: ignored
    m = ui["current_mask"]()
    assert _rows_cols(m) == (list(range(30, 35)), list(range(14, 50)))
    ui["run"].click()
    assert ui["image"].value[:8] == b"\x89PNG\r\n\x1a\n", ui["status"].value
    assert torch.equal(ui["state"]["result"].mask, m)
    ui["mask"].value = "40-60"  # a manifest mask, painted strokes added on top
    m2 = ui["current_mask"]()
    assert m2.sum() > m.sum() and torch.equal(torch.maximum(m2, m), m2)
    ui["clear"].click()
    ui["mask"].value = "paint"
    assert ui["current_mask"]().sum() == 0


def test_notebook_07_defaults_to_the_shipped_model_at_small(tmp_path, monkeypatch):
    import isfr.models.shipped as shipped
    from isfr.experiments.config import get_preset
    from isfr.experiments.trained import export_path
    from isfr.apps.tryit import default_checkpoint

    f = tmp_path / "isfrnet_small.pt"
    f.write_bytes(b"stand-in bytes")
    monkeypatch.setenv("ISFR_WEIGHTS", str(f))
    monkeypatch.setattr(shipped, "SHIPPED_SHA256", shipped.sha256_of(f))
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    assert default_checkpoint(get_preset("small")) == f
    assert default_checkpoint(get_preset("smoke")) == export_path(get_preset("smoke"))
    custom = get_preset("small", **{"sfr.weighting": "none"})  # another model than the shipped one
    assert default_checkpoint(custom) == export_path(custom)
    monkeypatch.setattr(shipped, "SHIPPED_SHA256", "0" * 64)  # a damaged file is an error, not a silent fallback
    with pytest.raises(ValueError, match="sha256"):
        default_checkpoint(get_preset("small"))
