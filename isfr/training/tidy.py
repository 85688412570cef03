"""Tidying a resumed run's checkpoint folder: temporary leftovers removed, step files newer than the one
resumed from (unreadable, hence skipped) set aside as ``.corrupt``.
"""

from __future__ import annotations

import warnings
from typing import Any

from isfr.core.paths import shown_path
from isfr.training.run import Run


def tidy_checkpoint_dir(run: Run, ckpt: dict[str, Any] | None) -> None:
    """Drop temp leftovers; set aside step files newer than the resumed one (they were unreadable)."""
    folder = run.mgr.folder
    if not folder.is_dir():
        return
    run.mgr.remove_temp_files()
    resumed = int(ckpt["step"]) if ckpt else 0
    for p in folder.glob("step_*.pt"):
        try:
            s = int(p.stem.split("_")[1])
        except (IndexError, ValueError):
            continue
        if s > resumed:
            p.replace(p.with_name(p.name + ".corrupt"))
            warnings.warn(f"renamed unreadable checkpoint {shown_path(p)} to {p.name}.corrupt", stacklevel=3)
