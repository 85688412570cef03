"""Experiments on trained runs: a variant's per-image scores with the provenance of its checkpoints,
the seed spread (whole runs at other seeds, trained here if missing), the record of every run, the
CPU-hours an SFR builds on, and the README's final table."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from isfr.evaluation.baselines import isfrnet_method
from isfr.experiments.config import Preset, get_preset
from isfr.evaluation import evaluate, write_table
from isfr.experiments.runs import (UNET_ROW, VARIANTS, Budget, Variant, ablation_variants, as_variant, best_checkpoint,
                                   data_tag, kept_step, preset_overrides, provenance, record_dir, run_dir, stage1_runs,
                                   stage_runs, steps_text, unet_steps_text, with_data_root)
from isfr.experiments.trained import trained_model
from isfr.experiments.pipeline import train_psp, train_stylegan, train_variant
from isfr.training.record import run_summary
from isfr.training.record import training_record as record


def training_record(preset: Preset, variants: list[str] | None = None) -> pd.DataFrame:
    """:func:`isfr.training.record.training_record` of every run of the preset: stage 1, the main
    model, then the ablation runs of ``variants`` (default :func:`ablation_variants`), each once; a run whose
    folder is gone or unfinished is read from its committed records where those finished (:func:`record_dir`)."""
    names = stage1_runs(preset) + (["unet"] if preset.schedule.unet_steps else [])
    for v, budget in [("full", "main")] + [(v, "ablation") for v in (variants or ablation_variants(preset))]:
        runs = stage_runs(preset, v, budget)
        names += [runs[k][0] for k, use in (("ifr", VARIANTS[v].use_ifr), ("sfr", VARIANTS[v].use_sfr)) if use]
    return record([record_dir(preset, n) for n in dict.fromkeys(names)])


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


# ---------------------------------------------------------------- the README's final table
#: the head-to-head files notebooks 04-06 write (``figures/<preset>/``) that the final table reads, per split
FINAL_SOURCES = {"val": ("val_isfrnet_vs_biharmonic.csv", "val_unet_head_to_head.csv"),
                 "test": ("test_head_to_head.csv",)}
FINAL_CELLS = [(m, r) for m in ("psnr", "ssim") for r in ("20-40", "40-60")]


def unet_scores(preset: Preset, dataset: Any, committed: str | Path, *, root: Any = None,
                metric_models: Any = None) -> pd.DataFrame:
    """The learned U-Net's per-image scores on ``dataset`` (rows named :data:`UNET_ROW`): scored from its run when
    the run's checkpoint is there; where it is gone (run folders do not move between machines), taken from
    ``committed``, the per-image file an earlier scoring wrote, for exactly the same pairs, their ``source``
    saying so. A pair missing there is an error naming the file."""
    from isfr.evaluation.baselines import unet_method
    from isfr.experiments.trained import trained_unet

    try:
        net = trained_unet(preset)
    except FileNotFoundError:
        net = None
    if net is not None:
        return evaluate(unet_method(net), dataset, name=UNET_ROW, metric_models=metric_models, progress=False,
                        source=provenance(preset, root, unet_steps_text(preset)))
    committed = Path(committed)
    old = pd.read_csv(committed) if committed.is_file() else pd.DataFrame(columns=["method"])
    old = old[old["method"] == UNET_ROW]
    pairs = dataset.manifest[["image", "mask"]].rename(columns={"image": "name", "mask": "mask_name"})
    rows = pairs.merge(old, on=["name", "mask_name"], how="left", validate="one_to_one")
    if "psnr" not in rows or rows["psnr"].isna().any():
        raise FileNotFoundError(f"the U-Net's checkpoint is not in {run_dir(preset, 'unet')} and {committed} lacks its "
                                "scores for some of these pairs: train it (`isfr train --preset "
                                f"{preset.name}`, notebook 05) or restore the file")
    rows["source"] = rows["source"].astype(str) + (f"; reused from {committed.name}: the U-Net's checkpoint is not "
                                                    "kept, its per-image scores of that run are")
    return rows[old.columns]


def _duels_rows(path: Path) -> pd.DataFrame:
    """A head-to-head csv in :func:`isfr.evaluation.duels`' columns (``ours``, ``baseline``, ``<m> ours`` ...);
    a single :func:`isfr.evaluation.head_to_head` (``<m> ISFRNet``, ``<m> biharmonic``) is read as ISFRNet against
    biharmonic."""
    df = pd.read_csv(path, dtype={"group": str})
    if "ours" not in df.columns:
        df = df.rename(columns={c: c.replace(" ISFRNet", " ours").replace(" biharmonic", " baseline")
                                for c in df.columns}).assign(ours="ISFRNet", baseline="biharmonic")
    return df


def _kept(preset: Preset, run: str) -> str:
    step = kept_step(preset, run, committed=True)
    return f"{run} step {step:,}" if step is not None else f"{run} (not finished)"


def hardware_text(rec: pd.DataFrame) -> str:
    """The ``hardware`` of a :func:`isfr.training.record.training_record`'s runs: the label alone when they share
    it, else each label after the runs that carry it (``"stylegan, psp: A; ifr, sfr: B"``), so that a label that
    changed between runs (it names the SIMD level from 2026-12-04, commit 53a4799, on) says which runs carry which."""
    groups = rec.groupby("hardware", sort=False)["run"].agg(list)
    if len(groups) <= 1:
        return "".join(groups.index)
    return "; ".join(f"{', '.join(runs)}: {label}" for label, runs in groups.items())


def final_table(preset: Preset, out: str | Path) -> pd.DataFrame:
    """The README's final table: the main model and, where the preset trains it, the learned
    U-Net against ``inpaint_biharmonic``, per split, PSNR and SSIM at 20-40 and 40-60 % (both means, the paired
    difference and its 95 % CI), from the head-to-head files in ``out`` (:data:`FINAL_SOURCES`; a missing file
    leaves its rows out), with preset, data (:func:`isfr.experiments.runs.data_tag`), resolution, the steps and checkpoints
    scored, CPU-hours (``train_hours`` of the runs, summed over stages 1-3 for ISFRNet) and hardware from the run
    folders. ``bar``: every one of the four differences has its CI above zero."""
    out = Path(out)
    found = [_duels_rows(out / f).assign(split=split) for split, files in FINAL_SOURCES.items()
             for f in files if (out / f).is_file()]
    cols = ["model", "split", "preset", "data", "resolution", "steps", "checkpoints", "cpu_hours", "cpu_hours_by_run",
            "hardware", "n"]
    cols += [f"{m} {r} {k}" for m, r in FINAL_CELLS for k in ("ours", "baseline", "diff", "diff_lo", "diff_hi")]
    if not found:
        return pd.DataFrame(columns=cols + ["bar"])
    duels_ = pd.concat(found, ignore_index=True)
    duels_ = duels_[duels_["baseline"] == "biharmonic"].drop_duplicates(["ours", "split", "group"])
    trained = [r for r, _ in stage_runs(preset, "full", "main").values()]
    runs = {"ISFRNet": (stage1_runs(preset) + trained, trained, steps_text(preset)),
            UNET_ROW: (["unet"], ["unet"], unet_steps_text(preset))}
    rows = []
    for (model, split), d in duels_.groupby(["ours", "split"], sort=False):
        names, scored, steps = runs.get(model, ([], [], ""))
        rec = record([record_dir(preset, n) for n in names])
        complete = len(rec) == len(names) > 0
        row = {"model": model, "split": split, "preset": preset.name, "data": data_tag(preset),
               "resolution": preset.data.resolution, "steps": steps, "checkpoints": ", ".join(_kept(preset, n) for n in scored),
               "cpu_hours": float(rec["train_hours"].sum()) if complete else float("nan"),
               "cpu_hours_by_run": " + ".join(f"{r.run} {r.train_hours:.2f}" for r in rec.itertuples()),
               "hardware": hardware_text(rec), "n": None}
        for m, r in FINAL_CELLS:
            g = d[d["group"] == r]
            if g.empty:
                continue
            g = g.iloc[0]
            row["n"] = int(g["n"])
            row.update({f"{m} {r} {k}": float(g[f"{m} {k}"]) for k in ("ours", "baseline", "diff", "diff_lo", "diff_hi")})
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=cols)
    table["bar"] = [all(row[f"{m} {r} diff_lo"] > 0 for m, r in FINAL_CELLS) for _, row in table.iterrows()]
    return table


def final_table_markdown(table: pd.DataFrame) -> str:
    """:func:`final_table` as the README prints it: one row per model and split, each cell
    ``ours vs biharmonic: **diff [lo, hi]**`` (PSNR in dB to 2 decimals, SSIM to 3)."""
    head = ["model", "split", "preset", "data", "resolution", "steps", "checkpoints scored", "CPU-hours", "hardware"]
    head += [f"{m.upper()} {r} vs biharmonic" for m, r in FINAL_CELLS] + ["bar (all four CIs above 0)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in table.iterrows():
        hours = f"{row['cpu_hours']:.2f} ({row['cpu_hours_by_run']})" if pd.notna(row["cpu_hours"]) else "not recorded"
        cells = [row["model"], row["split"], f"`{row['preset']}`", row["data"], f"{row['resolution']} px", row["steps"],
                 row["checkpoints"], hours, row["hardware"]]
        for m, r in FINAL_CELLS:
            p = 2 if m == "psnr" else 3
            v = [row[f"{m} {r} {k}"] for k in ("ours", "baseline", "diff", "diff_lo", "diff_hi")]
            cells.append(f"{v[0]:.{p}f} vs {v[1]:.{p}f}: **{v[2]:+.{p}f} [{v[3]:+.{p}f}, {v[4]:+.{p}f}]**"
                         if pd.notna(v[2]) else "")
        cells.append("met" if row["bar"] else "missed")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def write_final_table(preset: Preset, out: str | Path, table: pd.DataFrame | None = None) -> Path:
    """:func:`final_table` (or ``table``, e.g. one read back with :func:`isfr.evaluation.read_table`) as
    ``final_table.csv`` and ``final_table.md`` in ``out`` (:func:`isfr.evaluation.write_table`); returns the
    ``.md`` path."""
    out = Path(out)
    table = final_table(preset, out) if table is None else table
    sources = ", ".join(f"`{f}`" for files in FINAL_SOURCES.values() for f in files if (out / f).is_file())
    heading = (f"The final table of preset {preset.name!r}: each model against `inpaint_biharmonic`, means and the "
               "paired difference [95 % bootstrap CI], composited, uint8, whole split")
    note = (f"From {sources or 'no head-to-head file yet'}; CPU-hours: `train_hours` of each run folder (one torch "
            "thread per process), summed over the runs named.")
    return write_table(table, out / "final_table", heading=heading, markdown=final_table_markdown(table), notes=[note])
