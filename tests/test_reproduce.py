"""isfr.experiments.reproduce and the ladder runner: which parameters each notebook and rung gets (papermill and training
replaced by recorders)."""
from __future__ import annotations

import sys
import types

import pytest

from isfr.experiments import reproduce as R


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen: list[tuple[str, dict]] = []
    fake = types.SimpleNamespace(execute_notebook=lambda nb, out, parameters, **kw: seen.append((nb, parameters)))
    monkeypatch.setitem(sys.modules, "papermill", fake)
    monkeypatch.setenv("ISFR_FIGURES_DIR", str(tmp_path))
    return seen


def _train_param(seen, prefix):
    return [p.get("train", "absent") for nb, p in seen if nb.split("/")[-1].startswith(prefix)]


@pytest.mark.parametrize("preset, flag, want", [("smoke", None, True), ("small", None, False), ("small", True, True),
                                                ("smoke", False, False)])
def test_only_the_ladder_notebook_gets_train_and_it_trains_by_default_only_at_smoke(calls, preset, flag, want):
    R.reproduce(preset, only=["05", "08"], train_ladder=flag)
    assert _train_param(calls, "08_") == [want]
    assert _train_param(calls, "05_") == ["absent"]  # notebooks without a train parameter are not given one


def test_cli_flag_reaches_reproduce(monkeypatch):
    from isfr.apps import cli

    got = {}
    monkeypatch.setattr(R, "reproduce", lambda **kw: got.update(kw))
    cli.main(["reproduce", "--preset", "small", "--only", "08", "--train-ladder"])
    assert got["train_ladder"] is True
    cli.main(["reproduce", "--preset", "small", "--only", "08"])
    assert got["train_ladder"] is None


def test_run_ladder_hands_the_loop_options_to_every_rung(monkeypatch):
    """Notebook 08's ``time_budget_min`` reaches each rung's training loop (a stopped rung is not scored)."""
    from isfr.experiments import ladder as LD

    got, scored = [], []
    monkeypatch.setattr(LD, "biharmonic_scores", lambda P: None)
    monkeypatch.setattr(LD, "write_ladder", lambda P, steps=None: "table")
    monkeypatch.setattr(LD, "score_rung", lambda P, r, gen, up: scored.append(r.name))
    stopped = types.SimpleNamespace(finished=False, step=2, stop_reason="time_budget")
    monkeypatch.setattr(LD, "train_rung", lambda P, r, **kw: got.append((r.name, kw)) or (stopped, object(), None))
    assert LD.run_ladder(None, ["unet", "2enc"], 4, progress=False, time_budget_s=60) == "table"
    assert got == [("unet", {"progress": False, "time_budget_s": 60}), ("2enc", {"progress": False, "time_budget_s": 60})]
    assert scored == []


def test_a_rungs_scores_name_the_preset_data_and_the_checkpoint_scored(monkeypatch, tmp_path):
    """``score_rung`` writes a provenance line with no "?" (the committed rungs once read "preset ?, steps ?")."""
    import json

    import torch

    from isfr.experiments import ladder as LD
    from isfr.experiments.config import get_preset
    from isfr.evaluation import read_csv

    P = get_preset("smoke")
    r = LD.rung("unet", 4)
    monkeypatch.setattr(LD, "rung_dir", lambda P_, r_: tmp_path)
    (tmp_path / "done.json").write_text(json.dumps({"step": 4, "best": {"step": 2, "score": 1.0}}))
    net = torch.nn.Conv2d(4, 3, 1)
    gen = lambda masked, mask: net(torch.cat([masked, mask], 1))  # noqa: E731  (a generator of the rung's signature)
    monkeypatch.setattr(LD, "val_dataset", lambda P_, images=None: [
        {"image": torch.zeros(3, 16, 16), "mask": torch.ones(1, 16, 16) * (torch.arange(16) < 6).float(),
         "name": "a.jpg", "mask_name": "m.png", "ratio": 0.375, "bucket": "30-40", "paper_range": "20-40"}])
    df = LD.score_rung(P, r, gen, None)
    source = read_csv(tmp_path / "val_scores.csv.gz")["source"].iloc[0]
    assert df["source"].iloc[0] == source and "?" not in source
    assert source.startswith("measured here (smoke, 64 px, ") and "rung unet, 4 steps (batch 4), val-best checkpoint step 2" in source
