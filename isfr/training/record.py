"""The record of a preset's training: one row per run folder (steps, best val checkpoint, time, commit).

Read from what :func:`isfr.training.loop.fit` leaves in ``runs/<preset>/<run>/`` (``config.json``,
``done.json``, ``train_log.csv``, ``val_log.csv``), so it can be written after the fact, e.g. by
notebook 05 (the notebook that trains last) (``figures/<preset>/training_record.*``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

RECORD_COLUMNS = ("run", "stage", "steps", "total_steps", "finished", "best_step", "best_val_psnr",
                  "train_hours", "s_per_step", "commit", "hardware", "started", "ended")


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def train_seconds(elapsed: pd.Series) -> float:
    """Wall time of a run from its log's ``elapsed_s`` column, which restarts at 0 on every resume:
    the sum of each segment's last value."""
    e = pd.to_numeric(elapsed, errors="coerce").dropna()
    return float(cumulative_seconds(e).iloc[-1]) if len(e) else float("nan")


def cumulative_seconds(elapsed: pd.Series) -> pd.Series:
    """Training seconds up to each row of a log whose ``elapsed_s`` restarts at 0 on every resume (the last
    value is :func:`train_seconds`)."""
    e = pd.to_numeric(elapsed, errors="coerce").ffill().fillna(0.0)
    restarts = (e.diff() < 0).cumsum()
    offset = e.groupby(restarts).max().cumsum().shift(fill_value=0.0)
    return e + restarts.map(offset)


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """One :data:`RECORD_COLUMNS` row for a run folder (NaN / "" where a file is missing)."""
    d = Path(run_dir)
    cfg, done = _json(d / "config.json"), _json(d / "done.json")
    log = pd.read_csv(d / "train_log.csv") if (d / "train_log.csv").is_file() else pd.DataFrame()
    val = pd.read_csv(d / "val_log.csv") if (d / "val_log.csv").is_file() else pd.DataFrame()
    steps = int(done.get("step") or (log["step"].max() if "step" in log else 0))
    total = done.get("total_steps") or (cfg.get("loop_config") or {}).get("total_steps")
    best = done.get("best") or {}
    if not best and {"val_score", "step"} <= set(val.columns) and len(val):
        row = val.loc[val["val_score"].idxmax()]
        best = {"step": int(row["step"]), "score": float(row["val_score"])}
    seconds = train_seconds(log["elapsed_s"]) if "elapsed_s" in log else float("nan")
    logged = int(log["step"].max()) if "step" in log and len(log) else 0
    return dict(
        run=d.name, stage=cfg.get("stage") or done.get("stage", ""), steps=steps, total_steps=total,
        finished=bool(done), best_step=best.get("step"), best_val_psnr=best.get("score"),
        train_hours=seconds / 3600, s_per_step=seconds / logged if logged else float("nan"),
        commit=done.get("git_commit") or cfg.get("git_commit", ""),
        hardware=done.get("hardware") or cfg.get("hardware") or "not recorded",
        started=cfg.get("started", ""), ended=done.get("finished", ""),
    )


def training_record(run_dirs: list[str | Path]) -> pd.DataFrame:
    """:func:`run_summary` of every existing folder of ``run_dirs``, in that order."""
    rows = [run_summary(d) for d in run_dirs if Path(d).is_dir()]
    df = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    return df.astype({"steps": "Int64", "total_steps": "Int64", "best_step": "Int64"})
