"""CI runs the notebooks at the smoke preset, whose SFR is the paper's layout; the small preset trains the
two-encoder U-Net (``SFRConfig.layout="unet"``). Notebook 04 (describe, train, export and score the SFR)
must also run with small's SFR choices: it once read ``SFRGenerator.depth``, which the U-Net layout has not,
and failed only at the small preset."""
from __future__ import annotations

import pytest

from isfr.experiments.config import get_preset
from isfr.core.paths import NOTEBOOKS_DIR
from isfr.experiments.pipeline import train_ifr, train_psp, train_stylegan


def small_sfr_overrides() -> dict:
    """The small preset's SFR choices that smoke does not share (widths and size stay smoke's)."""
    small, smoke = get_preset("small"), get_preset("smoke")
    out = {f"sfr.{f}": getattr(small.sfr, f) for f in ("layout", "norm", "weighting")}
    out["schedule.sfr_guess_dropout"] = small.schedule.sfr_guess_dropout
    assert any(getattr(smoke.sfr, k.split(".")[1]) != v for k, v in out.items() if k.startswith("sfr.")), \
        "smoke already trains small's SFR: this test is redundant with nbval"
    return out


@pytest.mark.slow
def test_notebook_04_runs_with_the_small_presets_sfr(tmp_path, monkeypatch):
    pm = pytest.importorskip("papermill")
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ISFR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    overrides = small_sfr_overrides()
    P = get_preset("smoke", **overrides)
    for fn in (train_stylegan, train_psp):
        fn(P, progress=False)
    train_ifr(P, "full", progress=False)
    out = tmp_path / "04.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "04_sfr_training.ipynb"), str(out), cwd=str(NOTEBOOKS_DIR),
                        parameters={"preset": "smoke", "overrides": overrides}, progress_bar=False,
                        kernel_name="python3")
    text = out.read_text()
    assert "UNet (layout 'unet')" in text  # the description cell names the layout it built
