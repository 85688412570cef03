"""The notebooks' shared set-up cell, as one function (notebooks 01-07 call :func:`setup`)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isfr.experiments.config import Preset, get_preset
from isfr.data import DataRoot, resolve_data_root
from isfr.core.paths import figures_dir


@dataclass
class Setup:
    """What every notebook's first code cell defines."""

    P: Preset  # the preset, reading the notebook's data root (so run folders and exports know their data)
    root: DataRoot
    out: Path  # figures/<preset>/
    note: str  # provenance line for figures and tables
    loop_kw: dict[str, Any] = field(default_factory=dict)  # training-loop options (time budget)


def _steps(P: Preset, steps: str) -> str:
    """What the notebook's outputs were trained with (:func:`isfr.experiments.runs.steps_text`)."""
    from isfr.experiments.runs import steps_text

    if steps == "ablation":
        return steps_text(P, budget="ablation") + " (every Table 1 row)"
    if steps in ("stage1", "ifr", "main"):
        return steps_text(P, upto="sfr" if steps == "main" else steps)
    return steps


def setup(preset: str, data_root: str | None = "", seed: int = 0, overrides: dict | None = None,
          time_budget_min: float = 0, steps: str = "main") -> Setup:
    """Preset ``preset`` with ``overrides`` and ``seed``, reading ``data_root`` (empty: ``$ISFR_DATA_ROOT``,
    else synthetic faces); torch seeded; the provenance line names the steps of ``steps``: "stage1",
    "ifr", "main" (the main model's), "ablation" (the Table 1 rows'), or any text."""
    import torch

    from isfr.experiments.runs import provenance, with_data_root
    from isfr.core.utils import one_line_warnings, thread_policy

    one_line_warnings()  # one line each, so that progress bars stay whole
    thread_policy()
    warnings.filterwarnings("ignore", message=".*synthetic.*")  # every output made from them says so
    torch.manual_seed(seed)
    P = with_data_root(get_preset(preset, seed=seed, **(overrides or {})), data_root or None)
    root = resolve_data_root(P.data.root)
    loop_kw = {"time_budget_s": time_budget_min * 60} if time_budget_min else {}
    note = provenance(P, root, _steps(P, steps))
    return Setup(P, root, figures_dir(preset), note, loop_kw)
