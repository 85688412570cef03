"""How much PSNR a `small` model needs over `inpaint_biharmonic` before its SSIM lead is above zero (a planning
estimate from committed per-image val scores, first made on 2026-12-04).

For every scored model (the ISFRNet of ``val_per_image.csv.gz`` and every ladder rung in
``ladder_runs/*/val_scores.csv.gz``) and paper range: the mean paired PSNR and SSIM difference against biharmonic
and the lower end of the SSIM difference's 95 % bootstrap CI (``isfr.evaluation.head_to_head``). A straight line through
the rungs' (PSNR, SSIM) pairs gives the SSIM a PSNR lead buys; the ISFRNet's offset from that line says how much
less SSIM its recipe gets per dB than the L1-trained rungs.

Usage: ``python tools/ssim_bar.py [figures/small]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from isfr.evaluation import head_to_head, read_csv

RANGES = ("20-40", "40-60")


def differences(folder: Path) -> pd.DataFrame:
    val = read_csv(folder / "val_per_image.csv.gz")
    bih = val[val.method == "biharmonic"]
    models = {"ISFRNet": val[val.method == "ISFRNet"]}
    models |= {p.parent.name: read_csv(p) for p in sorted(folder.glob("ladder_runs/*/val_scores.csv.gz"))}
    rows = []
    for name, df in models.items():
        # every model was scored on the same (image, mask) pairs as biharmonic: head_to_head pairs and bootstraps them
        h2h = head_to_head(pd.concat([df.assign(method=name), bih]), name, "biharmonic", groups=RANGES)
        rows += [{"model": name, "range": r.group, "n": r.n, "dPSNR": r["psnr diff"], "dSSIM": r["ssim diff"],
                  "dSSIM CI lo": r["ssim diff_lo"]} for _, r in h2h.iterrows()]
    return pd.DataFrame(rows)


def main(folder: Path) -> None:
    t = differences(folder)
    print(t.to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    for rng in RANGES:
        rungs = t[(t.range == rng) & ~t.model.str.startswith("ISFRNet")]
        slope, icpt = np.polyfit(rungs.dPSNR, rungs.dSSIM, 1)
        isfr = t[(t.range == rng) & t.model.str.startswith("ISFRNet")].iloc[0]
        offset = isfr.dSSIM - (slope * isfr.dPSNR + icpt)
        half = isfr.dSSIM - isfr["dSSIM CI lo"]
        need = (half - icpt - offset) / slope
        print(f"{rng} %: rungs dSSIM = {slope:.4f} x dPSNR {icpt:+.4f}; ISFRNet off that line by {offset:+.4f}; "
              f"its SSIM CI's lower end clears 0 at about dPSNR = {need:+.2f} dB (CI half-width {half:.4f})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "figures/small"))
