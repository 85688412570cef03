"""The records of a run folder: ``config.json`` (what the run trains with, and what changed on resume),
``done.json`` (the run finished; its checkpoints named relative to the folder) and starting a run afresh.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from isfr.core.paths import portable, shown_path
from isfr.core.utils import atomic_write_json, git_commit, hardware
from isfr.training.checkpoint import config_diff, to_plain
from isfr.training.context import TrainLoopConfig
from isfr.training.run import Run


def is_finished(run_dir: str | Path, total_steps: int | None = None) -> bool:
    """True if ``run_dir/done.json`` says the run completed (at least ``total_steps`` steps)."""
    done = read_done(Path(run_dir))
    return done is not None and (total_steps is None or int(done.get("total_steps", -1)) >= total_steps)


def read_done(run_dir: Path) -> dict[str, Any] | None:
    return json_or_none(run_dir / "done.json")


def done_checkpoint(run_dir: str | Path, key: str = "best_checkpoint") -> Path | None:
    """The checkpoint ``done.json`` names under ``key`` ("best_checkpoint" | "last_checkpoint"), or None: a
    relative entry (what :func:`fit` writes) is relative to the run folder; an absolute one (written before
    2026-12-06) is taken as it is."""
    entry = (read_done(Path(run_dir)) or {}).get(key)
    if not entry:
        return None
    p = Path(entry)
    return p if p.is_absolute() else Path(run_dir) / p


def json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


RUN_FILES = ("done.json", "config.json", "train_log.csv", "val_log.csv")


RUN_DIRS = ("checkpoints", "tb")


def clear_run(run_dir: Path) -> None:
    """Remove what fit() writes in ``run_dir`` (nothing else)."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def write_config(run_dir: Path, stage: str, preset: str | None, config: Any, cfg: TrainLoopConfig,
                  world_size: int, resumed_at: int | None, precision: str) -> None:
    """``config.json``: what the run trains with. A resumed run whose settings changed (an extended schedule,
    say, or the precision "auto" picks on another machine) gets the new ones, and ``history`` says from which
    step, at which commit, what changed."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    new = {"stage": stage, "preset": preset, "config": portable(to_plain(config)),
           "loop_config": portable(to_plain(asdict(cfg))),
           "precision": {"none": "fp32"}.get(precision, precision), "git_commit": git_commit(),
           "world_size": world_size, "hardware": hardware()}
    path = run_dir / "config.json"
    old = json_or_none(path) if resumed_at is not None else None
    old = portable(old) if old is not None else None  # a record written with absolute paths compares alike
    if old is None:
        atomic_write_json({**new, "started": now}, path)
        return
    changed = [k.split(":")[0] for k in config_diff(old.get("config"), new["config"])]
    changed += ["loop_config." + k.split(":")[0] for k in config_diff(
        {k: v for k, v in (old.get("loop_config") or {}).items() if k not in PER_CALL},
        {k: v for k, v in new["loop_config"].items() if k not in PER_CALL})]
    changed += ["precision"] if old.get("precision", new["precision"]) != new["precision"] else []
    if changed:
        history = old.get("history", []) + [{"from_step": resumed_at, "git_commit": new["git_commit"],
                                             "time": now, "changed": changed}]
        atomic_write_json({**new, "started": old.get("started"), "history": history}, path)


#: loop settings that only steer one call (not what the run is): never recorded as a change
PER_CALL = ("max_steps_this_call", "time_budget_s", "progress", "tensorboard")


def in_run(run: Run, path: Path) -> str:
    """``path`` relative to the run folder (``checkpoints/best.pt``) where it lies inside it (never absolute)."""
    try:
        return Path(path).relative_to(run.run_dir).as_posix()
    except ValueError:
        return shown_path(path)


def write_done(run: Run, step: int, last: Path | None) -> None:
    """``done.json``: the run finished; its checkpoints are named relative to the run folder (read them with
    :func:`done_checkpoint`)."""
    atomic_write_json({
        "stage": run.stage.name, "preset": run.preset, "step": step, "total_steps": run.cfg.total_steps,
        "last_checkpoint": in_run(run, last) if last else None,
        "best_checkpoint": in_run(run, run.mgr.best_path) if run.mgr.best_path.exists() else None,
        "best": run.best, "git_commit": git_commit(), "hardware": hardware(),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }, run.run_dir / "done.json")
