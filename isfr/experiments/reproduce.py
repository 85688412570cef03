"""Run the numbered notebooks in order with papermill at one preset.

The executed copies are kept beside that preset's figures
(``figures/<preset>/notebooks/NN_name.ipynb``): they are the readable record of a run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from isfr.experiments.config import PRESETS
from isfr.core.paths import NOTEBOOKS_DIR, figures_dir, portable_text, shown_path


def numbered_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """``NN_*.ipynb`` in ``folder``, in order."""
    nbs = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not nbs:
        raise FileNotFoundError(f"no numbered notebooks (NN_*.ipynb) in {folder}")
    return nbs


def reproduce(
    preset: str = "smoke",
    data_root: str | None = None,
    only: list[str] | None = None,
    seed: int = 0,
    kernel: str = "python3",
    extra_parameters: dict | None = None,
    overrides: dict | None = None,
    train_ladder: bool | None = None,
) -> list[Path]:
    """Execute every numbered notebook (or those whose prefix is in ``only``) at ``preset``;
    ``overrides`` (dotted preset fields) reach every notebook's ``overrides`` parameter.

    ``train_ladder``: whether notebook 08 trains the ladder's rungs not yet run (its ``train`` parameter);
    None = only at the smoke preset (4 steps a rung). At ``small`` the rungs cost about half a CPU-hour each,
    so 08 then tabulates the finished rungs unless ``train_ladder=True`` (``isfr reproduce --train-ladder``)."""
    import papermill as pm

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    out_dir = figures_dir(preset) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"preset": preset, "seed": seed, "data_root": data_root or os.environ.get("ISFR_DATA_ROOT", ""),
              "overrides": dict(overrides or {})}
    params.update(extra_parameters or {})
    train_ladder = preset == "smoke" if train_ladder is None else train_ladder
    done = []
    for nb in numbered_notebooks():
        if only and nb.name[:2] not in only:
            continue
        out = out_dir / nb.name
        t0 = time.time()
        print(f"[isfr reproduce] {nb.name} (preset={preset}) -> {shown_path(out)}", flush=True)
        nb_params = {**params, "train": train_ladder} if nb.name.startswith("08_") else params
        pm.execute_notebook(str(nb), str(out), parameters=nb_params, kernel_name=kernel, cwd=str(nb.parent),
                            progress_bar=False)
        if out.is_file():  # no machine's paths in the executed notebook
            out.write_text(portable_text(out.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"[isfr reproduce] {nb.name} done in {time.time() - t0:.0f} s", flush=True)
        done.append(out)
    if not only:
        from isfr.experiments.config import get_preset
        from isfr.experiments.figures import missing_outputs

        missing = missing_outputs(figures_dir(preset), cpu_stage1=not get_preset(preset, **params["overrides"]).psp.checkpoint)
        print("[isfr reproduce] every file of figures/README.md written" if not missing else
              f"[isfr reproduce] WARNING: figures/README.md lists files this run did not write: {missing}", flush=True)
    return done

