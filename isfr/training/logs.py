"""A run's logs: ``train_log.csv`` (loss means over ``log_every`` steps), ``val_log.csv`` and, when installed,
tensorboard; a resumed run's CSV keeps only the rows up to the step it resumed from.
"""

from __future__ import annotations

import csv
import datetime as _dt
import time
from pathlib import Path
from typing import Any, Mapping

from isfr.core.utils import atomic_open
from isfr.training.run import Run


class CsvLog:
    """Append-only CSV keyed by ``step``; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, keep_upto: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                fields = list(reader.fieldnames or [])
                rows = [r for r in reader if valid_row(r, fields, keep_upto)]
            self.fields = fields or None
            self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        if not self.fields:
            self.path.unlink(missing_ok=True)
            return
        with atomic_open(self.path, "w", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None or not set(row) <= set(self.fields):
            old: list[dict[str, Any]] = []
            if self.fields is not None:
                with open(self.path, newline="", encoding="utf-8") as f:
                    old = list(csv.DictReader(f))
            self.fields = (self.fields or []) + [k for k in row if k not in (self.fields or [])]
            self._rewrite(old + [row])
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.fields, lineterminator="\n").writerow(row)


def valid_row(row: Mapping[str, Any], fields: list[str], keep_upto: int) -> bool:
    if any(row.get(k) is None for k in fields) or None in row:  # truncated / malformed line
        return False
    try:
        return int(row["step"]) <= keep_upto
    except (KeyError, TypeError, ValueError):
        return False


def tensorboard_writer(log_dir: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: optional
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def fmt_loss(v: float) -> str:
    return f"{v:.4g}"


def log_train(run: Run, log: CsvLog | None, tb: Any, t0: float) -> None:
    means = {k: v / max(1, run.window_n) for k, v in run.window.items()}
    row: dict[str, Any] = {"step": run.step}
    if run.sampler is not None:
        row["epoch"] = round(run.sampler.epoch_of(run.step), 4)
    row["time"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    row["elapsed_s"] = round(time.monotonic() - t0, 2)
    row.update({f"lr_{k}": o.param_groups[0]["lr"] for k, o in run.optimizers.items()})
    row.update(means)
    if log is not None:
        log.write(row)
    if tb is not None:
        for k, v in means.items():
            tb.add_scalar(f"train/{k}", v, run.step)


def log_val(run: Run, log: CsvLog | None, tb: Any, metrics: Mapping[str, float], is_best: bool) -> None:
    row: dict[str, Any] = {"step": run.step, "is_best": int(is_best), **metrics}
    if log is not None:
        log.write(row)
    if tb is not None:
        for k, v in metrics.items():
            tb.add_scalar(f"val/{k}", v, run.step)


class RunLogs:
    """The logs of one :func:`~isfr.training.loop.fit` call, open on rank 0 only (elsewhere every writer is
    None): ``train_log.csv`` and ``val_log.csv`` keep their rows up to ``start`` (the step resumed from), and
    tensorboard (``tb/``, when installed and asked for) purges what came after it."""

    def __init__(self, run_dir: Path, start: int, main: bool, tensorboard: bool) -> None:
        self.train_csv = CsvLog(run_dir / "train_log.csv", start) if main else None
        self.val_csv = CsvLog(run_dir / "val_log.csv", start) if main else None
        self.tb = tensorboard_writer(run_dir / "tb", start + 1 if start else None) if (main and tensorboard) else None

    def train(self, run: Run, t0: float) -> None:
        log_train(run, self.train_csv, self.tb, t0)

    def val(self, run: Run, metrics: Mapping[str, float], is_best: bool) -> None:
        log_val(run, self.val_csv, self.tb, metrics, is_best)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
