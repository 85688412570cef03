"""Two trainings of the same recipe and seed, step by step: where their ``train_log.csv`` first differ, by how
much, and how far apart they drift; and their val-best scores (``val_log.csv``).

Usage: ``python tools/compare_logs.py NEW OLD [--stages stylegan psp ifr sfr] [--out FILE.md]``, NEW and OLD being
folders with one ``<stage>/train_log.csv`` per stage (a runs folder's data-tag folder, or
``figures/small/training_logs``). Prints a Markdown report; ``--out`` writes it too.

Every logged value is the mean of ``log_every`` steps, so "first differs" names the first logged step whose
window differs; the losses compared are every column but the clock, the epoch and the learning rates.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SKIP = {"step", "epoch", "time", "elapsed_s"}
WINDOW = 500  # steps per drift window


def loss_columns(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    return [c for c in a.columns if c in b.columns and c not in SKIP and not c.startswith("lr")]


def compare_stage(new: Path, old: Path) -> dict:
    """One stage's comparison: the rows both logs have, matched on ``step``."""
    a, b = (pd.read_csv(p / "train_log.csv") for p in (new, old))
    cols = loss_columns(a, b)
    m = a.merge(b, on="step", suffixes=("_new", "_old"))
    lr_cols = [c for c in a.columns if c.startswith("lr") and c in b.columns]
    same_lr = all(np.array_equal(m[f"{c}_new"].to_numpy(), m[f"{c}_old"].to_numpy()) for c in lr_cols)
    rel = pd.DataFrame({c: (m[f"{c}_new"] - m[f"{c}_old"]).abs() / m[f"{c}_old"].abs().clip(lower=1e-12) for c in cols})
    differs = (rel > 0).any(axis=1)
    first = int(m.loc[differs.idxmax(), "step"]) if differs.any() else None
    main = "loss" if "loss" in cols else "g" if "g" in cols else cols[0]  # the total loss (StyleGAN2: G's, "g")
    windows = (m["step"] - 1) // WINDOW
    drift = (m.groupby(windows)[f"{main}_new"].mean() - m.groupby(windows)[f"{main}_old"].mean()).abs()
    out = {"rows": len(m), "steps": int(m["step"].max()) if len(m) else 0, "first_differs": first,
           "first_rel": float(rel.loc[differs.idxmax()].max()) if differs.any() else 0.0,
           "first_cols": ", ".join(c for c in cols if rel.loc[differs.idxmax(), c] > 0) if differs.any() else "",
           "main": main, "max_window_drift": float(drift.max()) if len(drift) else 0.0,
           "final_window": (float(m.groupby(windows)[f"{main}_new"].mean().iloc[-1]),
                            float(m.groupby(windows)[f"{main}_old"].mean().iloc[-1])) if len(m) else (np.nan, np.nan),
           "same_lr": same_lr}
    vals = [p / "val_log.csv" for p in (new, old)]
    if all(v.is_file() for v in vals):
        va, vb = (pd.read_csv(v) for v in vals)
        score = "val_score"  # the composited PSNR on the checkpoint-selection pairs (isfr.training's val log)
        if score in va.columns and score in vb.columns:
            out["val_best"] = (float(va[score].max()), int(va.loc[va[score].idxmax(), "step"]),
                               float(vb[score].max()), int(vb.loc[vb[score].idxmax(), "step"]))
    return out


def report(new: Path, old: Path, stages: list[str]) -> str:
    lines = ["| stage | logged steps compared | first logged step that differs | largest relative difference there "
             f"(columns) | loss compared | largest gap of its {WINDOW}-step means | last window, new vs old | "
             "val-best PSNR (step), new vs old |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in stages:
        if not ((new / s / "train_log.csv").is_file() and (old / s / "train_log.csv").is_file()):
            lines.append(f"| {s} | not in both | | | | | | |")
            continue
        r = compare_stage(new / s, old / s)
        first = "none" if r["first_differs"] is None else str(r["first_differs"])
        vb = r.get("val_best")
        val = f"{vb[0]:.2f} ({vb[1]}) vs {vb[2]:.2f} ({vb[3]})" if vb else ""
        lines.append(f"| {s} | {r['rows']} (to step {r['steps']}) | {first} | {r['first_rel']:.1e} ({r['first_cols']}) "
                     f"| {r['main']} | {r['max_window_drift']:.4f} | {r['final_window'][0]:.4f} vs "
                     f"{r['final_window'][1]:.4f} | {val} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("new", type=Path)
    p.add_argument("old", type=Path)
    p.add_argument("--stages", nargs="*", default=["stylegan", "psp", "ifr", "sfr"])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    text = report(args.new, args.old, args.stages)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
