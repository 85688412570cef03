"""The shipped model scored again from its file: ``isfr evaluate``'s scoring of ``weights/isfrnet_small.pt`` against
the ISFRNet rows that notebooks 04 and 06 committed for the same pairs (``figures/small/comparison_per_image.csv.gz``
for test, ``val_per_image.csv.gz`` for val), per range: the model card's promise that the final table's row can be
had again from the file (PSNR within 0.02 dB, SSIM within 0.001).

Usage: ``python benchmarks/score_shipped.py [--split test] [--data-root DATA] [--checkpoint FILE] [--limit N]
[--out score_shipped.md]``; exit 1 when a range is outside its tolerance. The whole test split is 3,960 pairs
(PSNR, SSIM and L1 only: the committed identity distances need dlib for every pair, and take longer than the rest).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_header, write_out  # noqa: E402

from isfr.apps.inpaint import evaluate_checkpoint  # noqa: E402
from isfr.core.paths import shown_path  # noqa: E402
from isfr.models.shipped import shipped_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMITTED = {"test": REPO / "figures" / "small" / "comparison_per_image.csv.gz",
             "val": REPO / "figures" / "small" / "val_per_image.csv.gz"}
TOLERANCE = {"psnr": 0.02, "ssim": 0.001}
RANGES = ("20-40", "40-60")
COLUMNS = ["metric", "range", "pairs", "from the file", "committed", "difference", "largest pair difference",
           "tolerance", "within"]


def compare(rows: pd.DataFrame, committed: pd.DataFrame) -> list[dict]:
    """Per metric and paper range: the mean of ``rows`` and of the committed ISFRNet rows on the same pairs."""
    key = ["name", "mask_name"]
    old = committed[committed["method"] == "ISFRNet"]
    both = rows[key + ["paper_range", *TOLERANCE]].merge(old[key + list(TOLERANCE)], on=key, how="left",
                                                        suffixes=("", "_committed"), validate="one_to_one")
    if both["psnr_committed"].isna().any():
        raise SystemExit("some scored pairs have no committed ISFRNet row: is --split the committed file's split?")
    out = []
    for metric, tol in TOLERANCE.items():
        for r in RANGES:
            sub = both[both["paper_range"] == r]
            new, was = sub[metric].mean(), sub[f"{metric}_committed"].mean()
            out.append({"metric": metric.upper(), "range": r, "pairs": len(sub), "from the file": new,
                        "committed": was, "difference": new - was,
                        "largest pair difference": (sub[metric] - sub[f"{metric}_committed"]).abs().max(),
                        "tolerance": tol, "within": bool(abs(new - was) <= tol)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=tuple(COMMITTED), default="test")
    ap.add_argument("--data-root", default=os.environ.get("ISFR_DATA_ROOT"))
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped model (its sha256 checked)")
    ap.add_argument("--limit", type=int, default=None, help="the split's first N images (x 6 buckets = pairs)")
    ap.add_argument("--out", default="score_shipped.md")
    args = ap.parse_args(argv)
    if not args.data_root:
        ap.error("give --data-root (or set ISFR_DATA_ROOT): the folder holding celeba/ and nvidia_irregular_masks/")
    ckpt = args.checkpoint or shipped_model_path()
    rows, _ = evaluate_checkpoint(ckpt, args.data_root, args.split, limit=args.limit, learned_metrics=False,
                                  device="cpu", progress=True)
    table = compare(rows, pd.read_csv(COMMITTED[args.split]))
    header = env_header(f"The shipped model scored again ({args.split} split)", torch.device("cpu"),
                        [f"model: {shown_path(ckpt)}", f"pairs: {len(rows)}" + (f" (first {args.limit} images)"
                                                                                 if args.limit else " (whole split)")])
    notes = [f"committed: the ISFRNet rows of `{shown_path(COMMITTED[args.split])}` for the same pairs; on the whole "
             "test split their means are the final table's (`figures/small/final_table.md`, ISFRNet test)",
             "composited, uint8, the evaluation protocol of `isfr.evaluation.metrics`"]
    path = write_out(args.out, header, [("From the file against the committed scores", table, COLUMNS)], notes)
    print(path.read_text())
    return 0 if all(r["within"] for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
