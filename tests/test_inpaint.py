"""``isfr inpaint`` / ``isfr evaluate``: files in, files out, known pixels kept, errors name the file."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from isfr.apps import cli
from isfr.experiments.config import get_preset
from isfr.data import draw_face
from isfr.apps.inpaint import evaluate_checkpoint, inpaint_file, inpaint_folder, load_model
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig

RES = 64


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "isfrnet_smoke.pt"
    ISFRNet(ISFRNetConfig.from_preset(get_preset("smoke"))).save(path, preset="smoke", variant="full")
    return path


@pytest.fixture(scope="module")
def model(ckpt):
    return load_model(ckpt, "cpu")


def _photo(tmp_path, name="face.png", index=0, size=RES):
    path = tmp_path / name
    draw_face(0, index, size).save(path)
    return path


def _mask(tmp_path, name="mask.png", size=RES, box=(0.3, 0.35, 0.7, 0.65)):
    m = np.zeros((size, size), np.uint8)
    x0, y0, x1, y1 = (int(v * size) for v in box)
    m[y0:y1, x0:x1] = 255
    path = tmp_path / name
    Image.fromarray(m).save(path)
    return path


def test_no_align_keeps_known_pixels_and_fills_the_hole(tmp_path, model):
    photo, mask = _photo(tmp_path), _mask(tmp_path)
    out = inpaint_file(photo, mask, model, tmp_path / "out.png", align=False)
    res, src = np.asarray(Image.open(out)).astype(int), np.asarray(Image.open(photo)).astype(int)
    hole = np.asarray(Image.open(mask)) >= 128
    assert res.shape == (RES, RES, 3)
    assert np.abs(res - src)[~hole].max() <= 1  # known pixels: uint8 rounding at most
    assert np.abs(res - src)[hole].mean() > 5  # the hole was really filled (random weights, not the photo)
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


def test_output_has_the_models_resolution_for_larger_photos(tmp_path, model):
    out = inpaint_file(_photo(tmp_path, size=96), _mask(tmp_path, size=96), model, tmp_path / "o.jpg", align=False)
    assert Image.open(out).size == (RES, RES) and Image.open(out).format == "JPEG"


def test_no_align_warns_when_the_hole_is_cropped_away(tmp_path, model):
    photo = tmp_path / "tall.png"
    Image.new("RGB", (RES, RES + 32), (90, 60, 50)).save(photo)
    m = np.zeros((RES + 32, RES), np.uint8)
    m[:8] = m[40:50] = 255  # rows 0-7 lie above the central square (rows 16-79)
    Image.fromarray(m).save(tmp_path / "m.png")
    with pytest.warns(UserWarning, match="outside the central square"):
        inpaint_file(photo, tmp_path / "m.png", model, tmp_path / "out.png", align=False)


def test_empty_mask_writes_the_input_unchanged(tmp_path, model):
    photo = _photo(tmp_path)
    empty = tmp_path / "empty.png"
    Image.new("L", (RES, RES), 0).save(empty)
    with pytest.warns(UserWarning, match="no hole pixels"):
        out = inpaint_file(photo, empty, model, tmp_path / "out.png", align=False)
    assert out.read_bytes() == photo.read_bytes()


def test_mask_of_another_size_warns_and_works(tmp_path, model):
    with pytest.warns(UserWarning, match="resizing the mask"):
        out = inpaint_file(_photo(tmp_path), _mask(tmp_path, size=128), model, tmp_path / "out.png", align=False)
    assert Image.open(out).size == (RES, RES)


def test_existing_output_needs_overwrite(tmp_path, model):
    photo, mask, out = _photo(tmp_path), _mask(tmp_path), tmp_path / "out.png"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        inpaint_file(photo, mask, model, out, align=False)
    assert out.read_bytes() == b"keep me"
    inpaint_file(photo, mask, model, out, align=False, overwrite=True)
    assert Image.open(out).size == (RES, RES)


def test_bad_inputs_name_the_file(tmp_path, model):
    photo, mask = _photo(tmp_path), _mask(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for args, name in [((broken, mask), "broken.png"), ((photo, broken), "broken.png"),
                       ((text, mask), "notes.txt"), ((photo, text), "notes.txt")]:
        with pytest.raises(ValueError, match=name):
            inpaint_file(*args, model, tmp_path / "out.png", align=False)
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        inpaint_file(tmp_path / "nowhere.png", mask, model, tmp_path / "out.png", align=False)
    with pytest.raises(FileNotFoundError, match="nomask.png"):
        inpaint_file(photo, tmp_path / "nomask.png", model, tmp_path / "out.png", align=False)
    with pytest.raises(ValueError, match="out.xyz"):
        inpaint_file(photo, mask, model, tmp_path / "out.xyz", align=False)
    assert not (tmp_path / "out.png").exists()


def test_align_without_a_face_says_so_and_how_to_skip(tmp_path, model):
    grey = tmp_path / "grey.png"
    Image.new("RGB", (120, 120), (128, 128, 128)).save(grey)
    with pytest.raises(ValueError, match=r"no face found in .*grey\.png.*--no-align"):
        inpaint_file(grey, _mask(tmp_path, size=120), model, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


def test_align_mode_on_a_real_photo_changes_hole_pixels_only(tmp_path, model, data_root):
    photo = sorted((data_root / "celeba" / "img_align_celeba").glob("*.jpg"))[0]
    w, h = Image.open(photo).size
    m = np.zeros((h, w), np.uint8)
    m[90:130, 60:120] = 255  # over the nose / mouth
    Image.fromarray(m).save(tmp_path / "m.png")
    out = inpaint_file(photo, tmp_path / "m.png", model, tmp_path / "out.png")
    res, src = np.asarray(Image.open(out)), np.asarray(Image.open(photo).convert("RGB"))
    assert res.shape == src.shape
    hole = m >= 128
    assert (res[~hole] == src[~hole]).all()  # bit-identical outside the hole
    assert np.abs(res.astype(int) - src)[hole].mean() > 5


def test_missing_checkpoint_names_the_file_and_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt.*isfr train --preset <preset>.*isfr export --preset"):
        load_model(tmp_path / "nope.pt")


def test_folder_mode_pairs_by_stem(tmp_path, model):
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    photos.mkdir(), masks.mkdir()
    for i, stem in enumerate(["a", "b", "c"]):
        draw_face(0, i, RES).save(photos / f"{stem}.jpg" if stem == "b" else photos / f"{stem}.png")
    box = {"a": (0.1, 0.1, 0.3, 0.3), "b": (0.6, 0.6, 0.9, 0.9)}
    for stem, b in box.items():
        _mask(masks, f"{stem}.png", box=b)
    with pytest.warns(UserWarning, match="without a mask"):
        written = inpaint_folder(photos, masks, model, out, align=False, progress=False)
    assert sorted(p.name for p in written) == ["a.png", "b.png"]
    for stem, b in box.items():  # each photo got its own mask: pixels differ only inside that box
        src = np.asarray(Image.open(next(photos.glob(f"{stem}.*")))).astype(int)
        diff = np.abs(np.asarray(Image.open(out / f"{stem}.png")).astype(int) - src).max(-1)
        hole = np.asarray(Image.open(masks / f"{stem}.png")) >= 128
        assert diff[~hole].max() <= 1 and diff[hole].mean() > 5
    with pytest.raises(FileExistsError, match="--overwrite"), pytest.warns(UserWarning, match="without a mask"):
        inpaint_folder(photos, masks, model, out, align=False, progress=False)


def test_cli_inpaint_file_and_errors(tmp_path, ckpt, capsys):
    photo, mask, out = _photo(tmp_path), _mask(tmp_path), tmp_path / "out.png"
    argv = ["inpaint", str(photo), "--mask", str(mask), "--checkpoint", str(ckpt), "-o", str(out), "--no-align"]
    assert cli.main(argv) == 0 and out.exists()
    assert cli.main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite"]) == 0
    assert cli.main(["inpaint", str(photo), "--mask", str(mask), "--checkpoint", str(tmp_path / "x.pt"),
                     "-o", str(out)]) == 1
    assert "x.pt" in capsys.readouterr().err


def test_cli_evaluate_prints_the_bucket_table(tmp_path, ckpt, capsys):
    csv = tmp_path / "rows.csv"
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        rc = cli.main(["evaluate", "--checkpoint", str(ckpt), "--data-root", "synthetic", "--split", "test",
                       "--limit", "1", "--basic-metrics", "--no-progress", "--csv", str(csv)])
    assert rc == 0
    text = capsys.readouterr().out
    for bucket in ["0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "20-40", "40-60", "all"]:
        assert f"| {bucket} |" in text
    assert "synthetic" in text.lower()
    rows = csv.read_text().splitlines()
    assert len(rows) == 1 + 6 and rows[0].startswith("method,name")


def test_evaluate_checkpoint_scores_composites(ckpt):
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        rows, summary = evaluate_checkpoint(ckpt, "synthetic", "val", limit=1, learned_metrics=False,
                                            progress=False)
    assert len(rows) == 6 and rows["psnr"].notna().all() and rows["lpips"].isna().all()
    assert summary.set_index("bucket").loc["all", "n"] == 6
    assert "isfrnet_smoke.pt" in rows["source"].iloc[0]


def test_evaluate_checkpoint_scores_with_the_data_options_the_export_was_trained_with(tmp_path, monkeypatch):
    """An export trained on FFHQ-aligned faces is scored on FFHQ-aligned pairs, not on the preset's default
    centre crops (found by the paper dry run)."""
    import isfr.data as D

    P = get_preset("smoke", **{"data.preprocess": "ffhq", "data.protocol": "paper"})
    path = tmp_path / "isfrnet_ffhq.pt"
    ISFRNet(ISFRNetConfig.from_preset(P)).save(path, preset="smoke", variant="full", preset_config=P.to_dict())
    seen = []

    def capture(cfg, split="train"):
        seen.append(cfg)
        raise RuntimeError("captured")

    monkeypatch.setattr(D, "build_from_config", capture)
    with pytest.raises(RuntimeError, match="captured"):
        evaluate_checkpoint(path, "synthetic", "val", limit=1, learned_metrics=False, progress=False)
    assert (seen[0].preprocess, seen[0].protocol, seen[0].limit) == ("ffhq", "paper", 1)


@pytest.mark.parametrize("preprocess, used", [("center_crop", "align_face"), ("ffhq", "ffhq_align")])
def test_photo_is_framed_like_the_training_faces(tmp_path, monkeypatch, preprocess, used):
    import isfr.data.align as A

    p = get_preset("smoke", **{"data.preprocess": preprocess})
    path = tmp_path / "m.pt"
    ISFRNet(ISFRNetConfig.from_preset(p)).save(path, preset="smoke", variant="full", preset_config=p.to_dict())
    net = load_model(path, "cpu")
    assert net.preprocess == preprocess
    called = []

    def fake(name):
        def align(photo, r, name=None, hole=None):
            assert hole is not None and hole.shape == photo.size[::-1]  # the face is chosen by the hole
            called.append(name_)
            return photo.convert("RGB").resize((r, r)), A.SimilarityTransform(scale=r / photo.size[0])
        name_ = name
        return align

    monkeypatch.setattr(A, "align_face", fake("align_face"))
    monkeypatch.setattr(A, "ffhq_align", fake("ffhq_align"))
    out = inpaint_file(_photo(tmp_path, size=128), _mask(tmp_path, size=128), net, tmp_path / "out.png")
    assert called == [used] and Image.open(out).size == (128, 128)
