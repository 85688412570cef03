"""Two trainings of one model scored on the same pairs: the paired difference of their per-image scores, with its
95 % bootstrap CI per hole-ratio range (``isfr.evaluation.duels``), e.g. the shipped retrain against the first
training of the same recipe and seed.

Usage: ``python tools/compare_trainings.py OLD NEW --out STEM [--method ISFRNet] [--old-label L] [--new-label L]``,
OLD and NEW being per-image files a notebook wrote (``comparison_per_image.csv.gz``, ``val_per_image.csv.gz``).
Writes ``STEM.csv`` and ``STEM.md``; a pair scored in one file and not the other is an error.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from isfr.core.paths import shown_path
from isfr.evaluation import duels, write_duels


def paired(old: Path, new: Path, method: str, old_label: str, new_label: str) -> pd.DataFrame:
    """``new_label - old_label`` per range (20-40, 40-60, all) for PSNR and SSIM, on the pairs both files scored."""
    a, b = (pd.read_csv(p) for p in (old, new))
    a, b = a[a["method"] == method].assign(method=old_label), b[b["method"] == method].assign(method=new_label)
    key = ["name", "mask_name"]
    if len(a) != len(b) or not a[key].sort_values(key).reset_index(drop=True).equals(
            b[key].sort_values(key).reset_index(drop=True)):
        raise ValueError(f"{old} and {new} did not score {method!r} on the same pairs ({len(a)} and {len(b)} rows)")
    return duels(pd.concat([a, b], ignore_index=True), [(new_label, old_label)], groups=("20-40", "40-60", "all"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--out", type=Path, required=True, help="STEM of STEM.csv and STEM.md")
    p.add_argument("--method", default="ISFRNet")
    p.add_argument("--old-label", default="first training")
    p.add_argument("--new-label", default="retrain")
    args = p.parse_args(argv)
    table = paired(args.old, args.new, args.method, args.old_label, args.new_label)
    md = write_duels(table, args.out, f"{args.method}, {args.new_label} against {args.old_label}, on the same "
                     "(image, mask) pairs", f"`{shown_path(args.old)}` and `{shown_path(args.new)}`",
                     diff=f"{args.new_label} - {args.old_label}")
    print(md.read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
