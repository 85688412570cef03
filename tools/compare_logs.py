"""Two trainings of the same recipe and seed, step by step: where their ``train_log.csv`` first differ, by how
much, and how far apart they drift; and their val-best scores (``val_log.csv``).

Usage: ``python tools/compare_logs.py NEW OLD [--stages stylegan psp ifr sfr] [--out FILE.md] [--plot FILE.png]
[--new-label L] [--old-label L]``, NEW and OLD being folders with one ``<stage>/train_log.csv`` per stage (a runs
folder's data-tag folder, or ``figures/small/training_logs``). Prints a Markdown report; ``--out`` writes it too;
``--plot`` draws each stage's compared loss (``WINDOW``-step means) and val score for both trainings.

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


def plot(new: Path, old: Path, stages: list[str], labels: tuple[str, str], path: Path) -> Path:
    """Per stage (columns): the compared loss in ``WINDOW``-step means (top) and the val score (bottom), both
    trainings on one axis each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from isfr.experiments.figures import save_figure

    stages = [s for s in stages if (new / s / "train_log.csv").is_file() and (old / s / "train_log.csv").is_file()]
    fig, axes = plt.subplots(2, len(stages), figsize=(3.6 * len(stages), 5.6), squeeze=False)
    for j, s in enumerate(stages):
        main = compare_stage(new / s, old / s)["main"]
        for folder, label, style in ((new, labels[0], "-"), (old, labels[1], "--")):
            log = pd.read_csv(folder / s / "train_log.csv")
            means = log.groupby((log["step"] - 1) // WINDOW).agg(step=("step", "max"), value=(main, "mean"))
            axes[0, j].plot(means["step"], means["value"], style, label=label)
            val = folder / s / "val_log.csv"
            if val.is_file() and "val_score" in (v := pd.read_csv(val)).columns:
                axes[1, j].plot(v["step"], v["val_score"], style + "o", markersize=3, label=label)
        axes[0, j].set_title(f"{s}: {main} ({WINDOW}-step means)", fontsize=9)
        if axes[1, j].lines:
            axes[1, j].set_title(f"{s}: val PSNR (selection pairs)", fontsize=9)
            axes[1, j].set_xlabel("step")
        else:
            axes[1, j].axis("off")
            axes[1, j].text(0.5, 0.5, f"{s}: no val score", ha="center", va="center", fontsize=9)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("new", type=Path)
    p.add_argument("old", type=Path)
    p.add_argument("--stages", nargs="*", default=["stylegan", "psp", "ifr", "sfr"])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None, help="a PNG of both trainings' losses and val scores")
    p.add_argument("--new-label", default="new")
    p.add_argument("--old-label", default="old")
    args = p.parse_args(argv)
    text = report(args.new, args.old, args.stages)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.plot:
        plot(args.new, args.old, args.stages, (args.new_label, args.old_label), args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
