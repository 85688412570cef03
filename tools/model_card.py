"""Write ``weights/README.md``, the shipped model's card, from the committed files, so that its every number is
one of theirs: the file itself (size, sha256, parameters, the steps and schedule it records), the main model's
runs in ``figures/small/training_record.csv``, the final table, the per-bucket test means, the val per-image
scores and the failure cases of notebook 06.

Usage: ``python tools/model_card.py`` (writes the card) or ``python tools/model_card.py --check`` (exit 1 when the
committed card is not what the files give; ``tests/test_model_card.py`` runs it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from isfr.evaluation import summarise, worst_pairs
from isfr.evaluation.paper_numbers import TABLE2
from isfr.experiments.experiment import hardware_text
from isfr.models.isfrnet import ISFRNet
from isfr.models.shipped import SHIPPED_NAME, STORED_DTYPE, sha256_of

REPO = Path(__file__).resolve().parents[1]
FIG = REPO / "figures" / "small"
CARD = REPO / "weights" / "README.md"
MAIN_RUNS = ("stylegan", "psp", "ifr", "sfr")
RANGES = ("20-40", "40-60")


def _ci(mean: float, lo: float, hi: float, digits: int) -> str:
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _signed(mean: float, lo: float, hi: float, digits: int) -> str:
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def _means(summary: pd.DataFrame, method: str) -> list[str]:
    """PSNR and SSIM at 20-40 and 40-60 %, ``mean [lo, hi]``, of one method of a :func:`summarise` frame."""
    rows = summary[summary["method"] == method].set_index("bucket")
    return [_ci(rows.loc[r, m], rows.loc[r, f"{m}_lo"], rows.loc[r, f"{m}_hi"], 2 if m == "psnr" else 3)
            for m in ("psnr", "ssim") for r in RANGES]


def scores_table() -> tuple[str, int, int]:
    """The card's score table (ours on val and test with CIs, the paper's Table 2 row beside), and the pairs per
    range on val and on test."""
    val = summarise(pd.read_csv(FIG / "val_per_image.csv.gz"), metrics=("psnr", "ssim"))
    test = pd.read_csv(FIG / "metrics_by_bucket.csv", dtype={"bucket": str})
    final = pd.read_csv(FIG / "final_table.csv").set_index(["model", "split"])
    head = "| model | split | PSNR 20-40 | PSNR 40-60 | SSIM 20-40 | SSIM 40-60 |\n|---|---|---|---|---|---|"
    rows = [f"| ISFRNet, this file | val | " + " | ".join(_means(val, "ISFRNet")) + " |",
            f"| ISFRNet, this file | test | " + " | ".join(_means(test, "ISFRNet")) + " |",
            f"| biharmonic | test | " + " | ".join(_means(test, "biharmonic")) + " |"]
    diffs = []
    for split in ("val", "test"):
        f = final.loc[("ISFRNet", split)]
        diffs.append(f"| ISFRNet - biharmonic | {split} | " + " | ".join(
            _signed(f[f"{m} {r} diff"], f[f"{m} {r} diff_lo"], f[f"{m} {r} diff_hi"], 2 if m == "psnr" else 3)
            for m in ("psnr", "ssim") for r in RANGES) + " |")
    paper = TABLE2["ISFRNet"]
    rows += diffs + ["| ISFRNet, the paper (256 px) | its test split | " + " | ".join(
        f"{paper[r][m]:.{2 if m == 'psnr' else 3}f}" for m in ("psnr", "ssim") for r in RANGES) + " |"]
    n_val = int(final.loc[("ISFRNet", "val"), "n"])
    n_test = int(final.loc[("ISFRNet", "test"), "n"])
    return "\n".join([head, *rows]), n_val, n_test


def failure_lines() -> str:
    """The pairs of notebook 06's ``failure_cases.png``: the same selection, from the same files."""
    scores = pd.read_csv(FIG / "comparison_per_image.csv.gz")
    manifest = pd.read_csv(FIG / "manifests" / "manifest_test.csv")
    worst = worst_pairs(scores, "ISFRNet", "biharmonic", manifest, n=3)
    return "\n".join(f"- face `{r.name}`, mask `{r.mask_name}` ({r.bucket} % hole): ISFRNet {r.psnr:.2f} dB, "
                     f"biharmonic {r.psnr_base:.2f} dB ({r.diff:+.2f})" for r in worst.itertuples())


def render(weights: Path) -> str:
    """The card's text."""
    raw = torch.load(weights, map_location="cpu", weights_only=True)
    params = sum(p.numel() for p in ISFRNet.from_checkpoint(weights).parameters())
    rec = pd.read_csv(FIG / "training_record.csv").set_index("run").loc[list(MAIN_RUNS)]
    hours = " + ".join(f"{r} {rec.loc[r, 'train_hours']:.2f}" for r in MAIN_RUNS)
    commits = ", ".join(sorted(set(rec["commit"].astype(str))))
    hardware = hardware_text(rec.reset_index())
    started, ended = str(rec["started"].min())[:10], str(rec["ended"].max())[:10]
    table, n_val, n_test = scores_table()
    data = raw["data_identity"]
    steps_done = ", ".join(f"{k} {v['step']:,} of {v['total_steps']:,}" for k, v in raw["schedule"].items())
    sha = sha256_of(weights)
    wide = [k for k, v in raw["state_dict"].items() if v.is_floating_point() and v.dtype != STORED_DTYPE]
    kept = f" but for {', '.join(f'`{k}`' for k in wide)}, beyond fp16's range and kept in fp32" if wide else ""
    ident = pd.read_csv(FIG / "table2_comparison.csv").set_index("method").loc["ISFRNet"]
    return f"""# `{SHIPPED_NAME}`: the `small` ISFRNet

*Written by `tools/model_card.py` from the file and the committed records; edit the tool, not this page.*

The trained model of isfr's `small` preset, shipped so that `isfr inpaint`, `isfr evaluate` and notebook 07 work on
a fresh clone: ISFRNet (Wang & Shin, 2023) at 64 px, trained from scratch on one CPU core.

| | |
|---|---|
| file | `weights/{SHIPPED_NAME}`, {weights.stat().st_size / 1e6:.1f} MB; weights stored in fp16{kept}, cast to fp32 on load (`weights_only=True`) |
| sha256 | `{sha}` (also `isfr.models.shipped.SHIPPED_SHA256`: a file with another hash is refused in one line) |
| model | stage 1 pSp encoder + StyleGAN2, stage 2 IFR, stage 3 SFR (two encoders, one decoder, eq. 1's weighting): {params / 1e6:.1f} M parameters; the discriminators D1 and D2 are not shipped |
| preset | `small`, seed {raw['preset_config']['seed']}, fp32 (`schedule.amp=none`), exported at commit {raw['commit']} |
| steps | {raw['steps']}; runs: {steps_done} |
| training | {rec['train_hours'].sum():.2f} CPU-hours ({hours}), {started} to {ended}, commit {commits}; {hardware}; no GPU |
| data | CelebA in its official split (data tag `{data['tag']}`: {data['images']['train']:,} train / {data['images']['val']:,} val / {data['images']['test']:,} test images), the NVIDIA irregular test masks (data identity `{data['masks']}`) |

## What it is and is not

- Faces only, framed as CelebA's aligned crops, at 64 x 64 px. `isfr inpaint` aligns a photo's face with dlib
  first and pastes the fill back, so only the hole's pixels change; a large photo's hole is filled at 64 px and
  upscaled.
- Not the paper's model: 64 px, not 256; stage 1 is a StyleGAN2 and a pSp encoder trained here on
  {data['images']['train']:,} CelebA images, not the FFHQ pSp; pSp's perceptual loss ran on random VGG features
  (no ImageNet weights here), and the SFR's perceptual and style losses (eqs. 7-8) have weight 0 in this recipe
  (`docs/ladder.md`). LPIPS is not measured.
- Not for recognising or verifying people, and not evaluated on anything but CelebA.

## Data and terms

CelebA is for non-commercial research and educational use only; the NVIDIA Irregular Mask Dataset is CC BY-NC-SA
4.0. The weights were trained on both and inherit both terms: they are not under the code's MIT licence
(`LICENSE`).

## Scores

PSNR (dB) and SSIM, composited, uint8, means with 95 % bootstrap CIs over pairs (1,000 resamples, seed 0), one
NVIDIA mask per image and hole-ratio bucket: {n_val:,} val and {n_test:,} test pairs per range. Test from
`figures/small/metrics_by_bucket.csv`, the differences from `figures/small/final_table.csv`, val from
`figures/small/val_per_image.csv.gz`. The paper's row is its Table 2 at 256 px on its own split, beside ours, not
comparable to it.

{table}

## Known failure cases

ISFRNet trails `inpaint_biharmonic` most on these test pairs of 20-60 % holes (`isfr.evaluation.worst_pairs`,
notebook 06):

{failure_lines()}

![The three test pairs above: input, biharmonic, ISFRNet, ground truth](../figures/small/failure_cases.png)

Beyond them: the fill drifts from the person as the hole grows. The dlib face-descriptor distance between the
output and the ground truth is {ident['ID dist 20-40 (ours)']:.3f} at 20-40 % holes and {ident['ID dist 40-60 (ours)']:.3f} at 40-60 % on test
(`figures/small/table2_comparison.csv`; dlib reads < 0.6 as the same person). Faces far from CelebA's framing
(profiles, strong rotation, several faces in a crop) were in neither its training nor its test data.

## Score it again, train it again

With the CelebA subset and the NVIDIA masks in `DATA` (the README's data layout):

```bash
isfr evaluate --data-root DATA --split test --basic-metrics      # the ISFRNet test row of figures/small/final_table.md
isfr train --preset small --main-only --set schedule.amp=none     # stages 1-3 from scratch, then the export
```

The first prints PSNR and SSIM per range of this file on the test split; `python benchmarks/score_shipped.py`
does the same and sets the result beside the committed scores of the same pairs (within 0.02 dB and 0.001 SSIM:
`benchmarks/results/score_shipped.md`). After the second, `isfr export --preset small -o weights/{SHIPPED_NAME}`
writes the retrained model where this one lies.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=REPO / "weights" / SHIPPED_NAME)
    ap.add_argument("--out", type=Path, default=CARD)
    ap.add_argument("--check", action="store_true", help="exit 1 when --out is not what the files give")
    args = ap.parse_args(argv)
    text = render(args.weights)
    if args.check:
        if not args.out.is_file() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is not what the committed files give: run `python tools/model_card.py`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
