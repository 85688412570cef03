"""One process per run: an exclusive file lock beside the run folder while a process trains it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from isfr.core.paths import shown_path


class RunBusyError(RuntimeError):
    """Another process holds the run folder's lock (:func:`fit` never trains one run from two processes)."""


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (``.<name>.lock`` beside it) while a process trains it:
    two processes on one run would interleave its log and overwrite each other's checkpoints."""
    import fcntl

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.lock"
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"{shown_path(run_dir)} is being trained by another process (lock {shown_path(path)}): "
                               "wait for it to "
                               "finish or stop it; never train one run from two processes") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
