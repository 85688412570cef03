"""Where things live: the repository, per-preset figures and run folders.

Outputs are keyed by preset so that a smoke run (CI, tests) never overwrites the
committed figures of a real run: ``figures/smoke/`` and ``runs/`` are git-ignored.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def figures_dir(preset: str, root: Path | None = None) -> Path:
    """``figures/<preset>/`` (created). ``ISFR_FIGURES_DIR`` overrides the base folder."""
    base = Path(os.environ.get("ISFR_FIGURES_DIR", root or REPO_ROOT / "figures"))
    out = base / preset
    out.mkdir(parents=True, exist_ok=True)
    return out


def runs_dir(preset: str, root: Path | None = None) -> Path:
    """``runs/<preset>/`` (created, git-ignored): checkpoints and logs. ``ISFR_RUNS_DIR`` overrides."""
    base = Path(os.environ.get("ISFR_RUNS_DIR", root or REPO_ROOT / "runs"))
    out = base / preset
    out.mkdir(parents=True, exist_ok=True)
    return out
