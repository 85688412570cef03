"""Copy the records of a preset's run folders into the work tree, never a checkpoint (to commit them).

For every run folder below ``RUNS`` (e.g. ``$ISFR_RUNS_DIR/small/celeba-cb8b8849``) that holds a
``train_log.csv``, its ``config.json``, ``done.json``, ``train_log.csv`` and ``val_log.csv`` (those that exist)
go to ``DEST/<run>/``; ``--extra`` files (the training processes' own output, e.g. ``main_chain.log``) go to
``DEST/``. Machine paths in them become the variable they came from (``$ISFR_RUNS_DIR``, ``$ISFR_DATA_ROOT``:
``isfr.core.paths.portable`` for the JSON records, ``portable_text`` for the rest), as the records that code writes
today name them. Each file is written atomically; rerun it to refresh a snapshot of runs still in flight.

Usage: ``python tools/copy_run_logs.py RUNS DEST [--extra FILE ...]``, e.g.
``python tools/copy_run_logs.py "$ISFR_RUNS_DIR/small/celeba-cb8b8849" figures/small/training_logs
--extra "$ISFR_RUNS_DIR/main_chain.log" "$ISFR_RUNS_DIR/unet.log"``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from isfr.core.paths import portable, portable_text
from isfr.core.utils import atomic_write_bytes

RECORDS = ("config.json", "done.json", "train_log.csv", "val_log.csv")


def copy_run_logs(runs: Path, dest: Path, extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """The files written, in order: each run's records (:data:`RECORDS`), then ``extra``."""
    runs, dest, written = Path(runs), Path(dest), []
    if not runs.is_dir():
        raise FileNotFoundError(f"{runs}: no such runs folder (ISFR_RUNS_DIR/<preset>/<data tag>)")
    pairs = [(f, dest / run.name / f.name) for run in sorted(p for p in runs.iterdir() if (p / "train_log.csv").is_file())
             for f in (run / name for name in RECORDS) if f.is_file()]
    pairs += [(Path(f), dest / Path(f).name) for f in extra]
    for src, out in pairs:
        out.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text(encoding="utf-8")
        text = json.dumps(portable(json.loads(text)), indent=2) + "\n" if src.suffix == ".json" else portable_text(text)
        atomic_write_bytes(text.encode("utf-8"), out)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--extra", type=Path, nargs="*", default=[])
    args = ap.parse_args(argv)
    written = copy_run_logs(args.runs, args.dest, args.extra)
    print(f"{len(written)} files written under {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
