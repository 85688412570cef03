"""The notebooks' shared set-up (isfr.experiments.notebook.setup): the preset reads the notebook's data, and every
provenance line it gives names preset, resolution, data and steps (no "?")."""
from __future__ import annotations

import pytest

from isfr.experiments.notebook import setup
from isfr.experiments.runs import data_tag


@pytest.mark.parametrize("steps", ["stage1", "ifr", "main", "ablation"])
def test_setup_notes_name_everything(steps, monkeypatch):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    s = setup("smoke", "synthetic", 0, {}, 0, steps=steps)
    assert "?" not in s.note, s.note
    assert "smoke" in s.note and "64 px" in s.note and data_tag(s.P) in s.note and "steps" in s.note
    assert s.P.data.root == "synthetic" and s.root.kind == "synthetic"
    if steps == "stage1":
        assert "IFR" not in s.note
    if steps == "main":
        assert "SFR 20" in s.note


def test_setup_time_budget_and_overrides():
    s = setup("smoke", "synthetic", 3, {"sfr.weighting": "none"}, 2)
    assert s.loop_kw == {"time_budget_s": 120} and s.P.seed == 3 and s.P.sfr.weighting == "none"


def test_thread_policy(monkeypatch):
    import os

    import torch

    from isfr.core.utils import thread_policy

    n = torch.get_num_threads()
    try:
        assert thread_policy(1) == 1
        monkeypatch.setenv("ISFR_THREADS", "2")
        assert thread_policy() == 2
        monkeypatch.delenv("ISFR_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))  # another job keeps a core busy
        assert thread_policy() == 1
    finally:
        torch.set_num_threads(n)


def test_warnings_are_one_line():
    import warnings

    from isfr.core.utils import one_line_warnings

    old = warnings.formatwarning
    try:
        one_line_warnings()
        text = warnings.formatwarning("first line\nsecond line", UserWarning, "x.py", 3)
    finally:
        warnings.formatwarning = old
    assert text == "warning: first line second line\n"


def test_every_notebook_sets_up_through_setup():
    """The code cell after each notebook's parameters calls isfr.experiments.notebook.setup (no notebook builds its preset,
    data root or provenance line by hand)."""
    from pathlib import Path

    import nbformat

    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 8
    for path in notebooks:
        code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        first = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
        cell = code[first + 1].source
        assert "from isfr.experiments.notebook import setup" in cell and "setup(preset, data_root, seed" in cell, path.name
        assert "get_preset(" not in cell and "resolve_data_root(" not in cell, path.name


def test_setup_at_another_resolution(monkeypatch):
    """Notebook 01's `resolution` parameter: passed as the `resolution` override, every resolution field follows."""
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    s = setup("smoke", "synthetic", 0, {"resolution": 32}, steps="no training")
    assert s.P.data.resolution == s.P.ifr.img_size == s.P.sfr.img_size == 32
    assert "32 px" in s.note and "no training" in s.note
