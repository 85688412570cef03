"""How much PSNR a `small` model needs over `inpaint_biharmonic` before its SSIM lead is above zero (a planning
estimate from committed per-image val scores; session 10).

For every scored model (the session-6 ISFRNet in ``val_per_image.csv.gz`` and every ladder rung in
``ladder_runs/*/val_scores.csv.gz``) and paper range: the mean paired PSNR and SSIM difference against biharmonic
and the lower end of the SSIM difference's 95 % bootstrap CI (1,000 resamples, seed 0). A straight line through
the rungs' (PSNR, SSIM) pairs gives the SSIM a PSNR lead buys; the ISFRNet's offset from that line says how much
less SSIM its recipe gets per dB than the L1-trained rungs.

Usage: ``python tools/ssim_bar.py [figures/small]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from isfr.evaluation import read_csv

RANGES = ("20-40", "40-60")


def differences(folder: Path) -> pd.DataFrame:
    val = read_csv(folder / "val_per_image.csv.gz")
    key = ["name", "mask_name"]
    bih = val[val.method == "biharmonic"].set_index(key)
    models = {"ISFRNet (session 6)": val[val.method == "ISFRNet"]}
    models |= {p.parent.name: read_csv(p) for p in sorted(folder.glob("ladder_runs/*/val_scores.csv.gz"))}
    rows = []
    for name, df in models.items():
        df = df.set_index(key)
        for rng in RANGES:
            m = df[df.paper_range == rng]
            b = bih.loc[m.index]
            dp, ds = (m.psnr - b.psnr).to_numpy(), (m.ssim - b.ssim).to_numpy()
            idx = np.random.default_rng(0).integers(0, len(ds), (1000, len(ds)))
            rows.append({"model": name, "range": rng, "n": len(ds), "dPSNR": dp.mean(), "dSSIM": ds.mean(),
                         "dSSIM CI lo": np.percentile(ds[idx].mean(1), 2.5)})
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
