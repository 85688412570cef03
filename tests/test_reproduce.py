"""isfr.reproduce: which parameters each notebook gets (papermill itself is replaced by a recorder)."""
from __future__ import annotations

import sys
import types

import pytest

from isfr import reproduce as R


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
    from isfr import cli

    got = {}
    monkeypatch.setattr(R, "reproduce", lambda **kw: got.update(kw))
    cli.main(["reproduce", "--preset", "small", "--only", "08", "--train-ladder"])
    assert got["train_ladder"] is True
    cli.main(["reproduce", "--preset", "small", "--only", "08"])
    assert got["train_ladder"] is None
