"""The shipped model's plumbing (isfr.models.shipped): fp16 storage read back as fp32, the sha256 check, the search
for the file; and the committed ``weights/isfrnet_small.pt``: its hash against the code and the model card, its scores."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from isfr.experiments.config import get_preset
from isfr.models.isfrnet import ISFRNet
from isfr.models.shipped import (SHIPPED_NAME, SHIPPED_SHA256, as_stored, check_sha256, sha256_of, shipped_locations,
                                 shipped_model_path)
from isfr.experiments.trained import build_model

from conftest import shipped_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_model() -> ISFRNet:
    model = build_model(get_preset("smoke"))
    with torch.no_grad():  # weights that fp16 cannot hold exactly
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    return model.eval()


def test_a_half_precision_file_loads_as_fp32_with_the_weights_as_stored_gives(tmp_path, smoke_model):
    path = tmp_path / "m.pt"
    smoke_model.save(path, stored_dtype=torch.float16, preset="smoke")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["stored_dtype"] == "float16"
    assert {v.dtype for v in raw["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    full = tmp_path / "full.pt"
    smoke_model.save(full)
    assert path.stat().st_size < 0.6 * full.stat().st_size  # half the bytes, but for the config and the ints

    loaded = ISFRNet.from_checkpoint(path)
    expected = {k: v.clone() for k, v in smoke_model.state_dict().items()}
    rounded = as_stored(build_model(get_preset("smoke")).eval())
    rounded.load_state_dict(expected)
    as_stored(rounded)
    got, want = loaded.state_dict(), rounded.state_dict()
    assert all(got[k].dtype == torch.float32 for k in got if got[k].is_floating_point())
    assert all(torch.equal(got[k], want[k]) for k in want)
    changed = [k for k in want if want[k].is_floating_point() and not torch.equal(want[k], expected[k])]
    assert changed, "as_stored left every weight as it was: the round trip is not exercised"


def test_a_buffer_beyond_fp16_range_is_stored_in_fp32_not_as_inf(tmp_path, smoke_model):
    """A BatchNorm running variance of 4e5 (the shipped SFR has such a channel) would be inf in fp16, zeroing the
    channel's output: the file keeps that tensor in fp32, and the model loads it, and as_stored gives it, unchanged."""
    bn = next(m for m in smoke_model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var[0] = 4.4e5
    path = tmp_path / "m.pt"
    smoke_model.save(path, stored_dtype=torch.float16, preset="smoke")
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    big = [k for k, v in raw.items() if v.is_floating_point() and v.dtype == torch.float32]
    assert len(big) == 1 and big[0].endswith("running_var")
    loaded = dict(ISFRNet.from_checkpoint(path).named_buffers())[big[0]]
    assert torch.isfinite(loaded).all() and loaded[0].item() == 4.4e5
    assert torch.equal(as_stored(smoke_model).state_dict()[big[0]], loaded)


def test_a_file_with_another_hash_gets_one_line_naming_both(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"not the model")
    actual = sha256_of(f)
    assert actual == "9165d8b6a043825d90c9b4f1fbad9a82f757dea5a5b7b32f38e99d7aa2ff2eb9"  # sha256 of those bytes
    check_sha256(f, actual)  # the right hash passes
    with pytest.raises(ValueError) as err:
        check_sha256(f, "0" * 64)
    msg = str(err.value)
    assert "\n" not in msg and "0" * 64 in msg and actual in msg and str(f) in msg


def test_the_search_names_every_place_and_the_fixes(tmp_path, monkeypatch):
    import sys

    import isfr.models.shipped as shipped

    monkeypatch.setattr(shipped, "REPO_ROOT", tmp_path / "clone")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setenv("ISFR_WEIGHTS", str(tmp_path / "missing.pt"))
    places = shipped_locations()
    assert places == [tmp_path / "missing.pt", tmp_path / "clone" / "weights" / SHIPPED_NAME,
                      tmp_path / "venv" / "share" / "isfr" / "weights" / SHIPPED_NAME]
    with pytest.raises(FileNotFoundError) as err:
        shipped_model_path(expected="0" * 64)
    msg = str(err.value)
    assert all(str(p) in msg for p in places) and "--checkpoint" in msg and "ISFR_WEIGHTS" in msg
    f = tmp_path / "clone" / "weights" / SHIPPED_NAME
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    monkeypatch.delenv("ISFR_WEIGHTS")
    assert shipped_model_path(expected=sha256_of(f)) == f
    with pytest.raises(ValueError, match="is not the shipped model"):
        shipped_model_path(expected="0" * 64)


def test_the_shipped_file_matches_the_code_and_the_model_card():
    path = shipped_file()
    assert SHIPPED_SHA256 and sha256_of(path) == SHIPPED_SHA256
    card = (REPO / "weights" / "README.md").read_text()
    assert re.search(rf"\b{SHIPPED_SHA256}\b", card), "weights/README.md must state the file's sha256"


@pytest.mark.shared_data
def test_the_shipped_model_scores_what_the_committed_val_rows_say(data_root):
    """The shipped file on the first val pairs of the manifest gives the ISFRNet rows of
    ``figures/small/val_per_image.csv.gz`` (notebook 04's scores of the same model), pair by pair."""
    import pandas as pd

    from isfr.apps.inpaint import evaluate_checkpoint

    shipped_file()
    rows, _ = evaluate_checkpoint(shipped_model_path(), data_root, "val", limit=4, learned_metrics=False,
                                  progress=False, device="cpu")
    rows = rows.head(20)
    committed = pd.read_csv(REPO / "figures" / "small" / "val_per_image.csv.gz")
    committed = committed[committed["method"] == "ISFRNet"].set_index(["name", "mask_name"])
    assert len(rows) == 20
    for r in rows.itertuples():
        want = committed.loc[(r.name, r.mask_name)]
        assert abs(r.psnr - want["psnr"]) <= 0.02, f"{r.name} {r.mask_name}: {r.psnr:.3f} dB vs {want['psnr']:.3f}"
        assert abs(r.ssim - want["ssim"]) <= 0.001


@pytest.mark.slow
def test_a_wheel_carries_the_shipped_model_where_a_non_editable_install_looks(tmp_path):
    """``pip install .`` installs the file under ``<prefix>/share/isfr/weights/``, the last place
    :func:`shipped_locations` looks (pyproject's ``[tool.setuptools.data-files]``)."""
    import subprocess
    import sys
    import zipfile

    path = shipped_file()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("isfr-*.whl")
    entries = {i.filename: i.file_size for i in zipfile.ZipFile(wheel).infolist()}
    inside = [name for name in entries if name.endswith(f".data/data/share/isfr/weights/{SHIPPED_NAME}")]
    assert len(inside) == 1 and entries[inside[0]] == path.stat().st_size
