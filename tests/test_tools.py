"""Scripts in tools/ that a session runs on real run folders."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_copy_run_logs_copies_records_never_checkpoints(tmp_path):
    tool = _tool("copy_run_logs")
    runs = tmp_path / "runs"
    (runs / "sfr" / "checkpoints").mkdir(parents=True)
    (runs / "sfr" / "train_log.csv").write_text("step,loss\n25,1.0\n")
    (runs / "sfr" / "config.json").write_text("{}")
    (runs / "sfr" / "checkpoints" / "last.pt").write_bytes(b"weights")
    (runs / "sfr" / ".sfr.lock").write_text("")
    (runs / "ladder").mkdir()  # no train_log.csv: not a run folder
    (runs / "ladder" / "biharmonic_val_scores.csv.gz").write_bytes(b"x")
    log = tmp_path / "main_chain.log"
    log.write_text("warning: resuming\n")
    dest = tmp_path / "out"
    written = tool.copy_run_logs(runs, dest, [log])
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "main_chain.log", "sfr/config.json", "sfr/train_log.csv"]
    assert len(written) == 3 and (dest / "sfr" / "train_log.csv").read_text() == "step,loss\n25,1.0\n"
    (runs / "sfr" / "train_log.csv").write_text("step,loss\n25,1.0\n50,0.9\n")  # a refresh overwrites
    tool.copy_run_logs(runs, dest)
    assert (dest / "sfr" / "train_log.csv").read_text().endswith("50,0.9\n")
    with pytest.raises(FileNotFoundError, match="no such runs folder"):
        tool.copy_run_logs(tmp_path / "nothing", dest)
