"""Experiments on trained runs: a variant's per-image scores with the provenance of its checkpoints,
the seed spread (whole runs at other seeds, trained here if missing), the record of every run and the
CPU-hours an SFR builds on."""
from __future__ import annotations

from typing import Any

import pandas as pd

from isfr.baselines import isfrnet_method
from isfr.config import Preset, get_preset
from isfr.evaluation import evaluate
from isfr.runs import (VARIANTS, Budget, Variant, ablation_variants, as_variant, best_checkpoint, preset_overrides,
                       provenance, run_dir, stage1_runs, stage_runs, steps_text, with_data_root)
from isfr.trained import trained_model
from isfr.training.pipeline import train_psp, train_stylegan, train_variant
from isfr.training.record import run_summary
from isfr.training.record import training_record as record


def training_record(preset: Preset, variants: list[str] | None = None) -> pd.DataFrame:
    """:func:`isfr.training.record.training_record` of every run of the preset: stage 1, the main
    model, then the ablation runs of ``variants`` (default :func:`ablation_variants`), each once."""
    names = stage1_runs(preset) + (["unet"] if preset.schedule.unet_steps else [])
    for v, budget in [("full", "main")] + [(v, "ablation") for v in (variants or ablation_variants(preset))]:
        runs = stage_runs(preset, v, budget)
        names += [runs[k][0] for k, use in (("ifr", VARIANTS[v].use_ifr), ("sfr", VARIANTS[v].use_sfr)) if use]
    return record([run_dir(preset, n) for n in dict.fromkeys(names)])


def upstream_hours(preset: Preset, variant: Variant | str = "full", budget: Budget = "main") -> float:
    """CPU-hours (``train_hours`` of :func:`isfr.training.record.run_summary`) of the runs an SFR of ``variant``
    builds on: StyleGAN2 and pSp where stage 1 is trained here, and the variant's IFR when it has one. A
    missing run is an error naming its folder."""
    v = as_variant(variant)
    names = stage1_runs(preset) + ([stage_runs(preset, v, budget)["ifr"][0]] if v.use_ifr else [])
    folders = [run_dir(preset, n) for n in names]
    if missing := [str(d) for d in folders if not d.is_dir()]:
        raise FileNotFoundError(f"no run folder {', '.join(missing)}: train the upstream stages first "
                                f"(`isfr train --preset {preset.name}`)")
    return sum(float(run_summary(d)["train_hours"]) for d in folders)


def evaluate_variant(preset: Preset, variant: Variant | str, dataset: Any, *, name: str | None = None,
                     budget: Budget = "main", key: str = "output", composite: bool = True, root: Any = None,
                     metric_models: Any = None, upto: str = "sfr") -> pd.DataFrame:
    """Per-image scores (:func:`isfr.evaluation.evaluate`) of a trained variant's ``key`` output,
    with a provenance line naming its steps and the commit its checkpoints were trained at."""
    v = as_variant(variant)
    model = trained_model(preset, v, upto=upto, budget=budget)
    runs = stage_runs(preset, v, budget)
    commits = sorted({best_checkpoint(preset, r)["git_commit"] for k, (r, _) in runs.items()
                      if (k == "ifr" and v.use_ifr) or (k == "sfr" and v.use_sfr and upto == "sfr")})
    source = provenance(preset, root, steps_text(preset, v, budget)) + f"; checkpoints trained at {', '.join(commits)}"
    return evaluate(isfrnet_method(model, key), dataset, name=name or v.name, composite=composite,
                    metric_models=metric_models, batch_size=max(8, preset.schedule.batch_size), progress=False,
                    source=source)


def seed_replicates(preset: Preset, dataset: Any, seeds: list[int] | tuple[int, ...] | None = None,
                    variant: Variant | str = "full", data_root: str | None = None, budget: Budget = "ablation",
                    root: Any = None, **loop_kw: Any) -> pd.DataFrame:
    """Per-image scores of ``variant`` trained with the preset's seed and each of ``seeds`` (default
    ``schedule.spread_seeds``), every seed a whole training run (stage 1 included where it is trained
    here), all scored on the same ``dataset``; rows carry ``train_seed`` for
    :func:`isfr.evaluation.seed_spread`. Seeds already trained are loaded."""
    v, preset = as_variant(variant), with_data_root(preset, data_root)
    seeds = list(preset.schedule.spread_seeds if seeds is None else seeds)
    rows = []
    for s in [preset.seed] + [s for s in seeds if s != preset.seed]:
        p = get_preset(preset.name, **{**preset_overrides(preset), "seed": s})
        if s != preset.seed:
            results = [train_stylegan(p, data_root, **loop_kw), train_psp(p, data_root, **loop_kw)]
            if all(r is None or r.finished for r in results):
                results += list(train_variant(p, v, data_root, budget=budget, **loop_kw).values())
            if not all(r is None or r.finished for r in results):
                raise RuntimeError(f"seed {s} of {v.name!r} stopped before the end of its schedule (time budget?); "
                                   "call again to resume it")
        rows.append(evaluate_variant(p, v, dataset, budget=budget, root=root).assign(train_seed=s))
    return pd.concat(rows, ignore_index=True)
