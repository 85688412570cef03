"""The README's condensed Tables 1 and 2 (`small`), made from the committed CSVs of notebooks 05 and 06, so that
the README quotes the tables rather than copies them by hand (``tests/test_readme.py`` holds it to them).

Table 2: our measured rows (mean [95 % CI] for PSNR, SSIM and identity distance, the mean for L1; LPIPS is left
out: it is NaN here), then the paper's ISFRNet and pSp rows. Table 1: "paper / ours" per cell (ours with its CI
for PSNR), the paper's 13.31 dB flagged beside Table 2's 23.31 for the same model and range.

Usage: ``python tools/readme_tables.py [figures/small]`` prints both tables as the README prints them.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from isfr.evaluation.paper_numbers import paper_value

RANGES = ("20-40", "40-60")
#: Table 2's measured rows, in the README's order: the method column of the CSV -> the README's label.
TABLE2_ROWS = {"ISFRNet": "ISFRNet (ours)", "U-Net, L1, equal CPU-hours (ours)": "U-Net, L1, equal CPU-hours (ours)",
               "biharmonic": "biharmonic (ours)", "pSp (composited)": "pSp composited (ours)",
               "pSp (raw)": "pSp raw (ours)"}
TABLE2_PAPER_ROWS = {"ISFRNet": "ISFRNet (paper, 256 px)", "pSp": "pSp (paper, 256 px)"}
TABLE2_METRICS = (("PSNR", 2, True), ("SSIM", 3, True), ("L1", 3, False), ("ID dist", 3, True))


def _cell(row: pd.Series, col: str, digits: int, ci: bool) -> str:
    """``mean [lo, hi]`` (or the mean alone) of an ``(ours)`` column; empty where the CSV has no value."""
    mean = row.get(col)
    if pd.isna(mean):
        return ""
    text = f"{mean:.{digits}f}"
    if ci and not pd.isna(row.get(f"{col}_lo")):
        text += f" [{row[f'{col}_lo']:.{digits}f}, {row[f'{col}_hi']:.{digits}f}]"
    return text


def _paper(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def table2_lines(csv: str | Path) -> list[str]:
    """Table 2 as the README prints it, from ``table2_comparison.csv``; a measured row the CSV lacks is left out."""
    t = pd.read_csv(csv).set_index("method")
    header = ["method"] + [f"{m} {r}" for m, _, _ in TABLE2_METRICS for r in RANGES]
    rows = [[label] + [_cell(t.loc[method], f"{m} {r} (ours)", d, ci) for m, d, ci in TABLE2_METRICS for r in RANGES]
            for method, label in TABLE2_ROWS.items() if method in t.index]
    rows += [[label] + [_paper(paper_value("table2", method, r, m.lower().replace(" dist", "_dist")), d)
                        for m, d, _ in TABLE2_METRICS for r in RANGES]
             for method, label in TABLE2_PAPER_ROWS.items()]
    return _markdown(header, rows)


def table1_lines(csv: str | Path) -> list[str]:
    """Table 1 as the README prints it, from ``table1_ablation.csv`` (rows in the paper's order)."""
    t = pd.read_csv(csv)
    header = ["row"] + [f"{m} {r} paper / ours" for m in ("PSNR", "SSIM") for r in RANGES]
    rows = []
    for _, row in t.iterrows():
        name, cells = row["paper method"], []
        for m, d in (("PSNR", 2), ("SSIM", 3)):
            for r in RANGES:
                paper = paper_value("table1", name, r, m.lower())
                other = paper_value("table2", name, r, m.lower())
                flag = f" (sic; {other:.{d}f} in Table 2)" if not math.isnan(other) and round(other, d) != round(paper, d) else ""
                cells.append(f"{_paper(paper, d)}{flag} / {_cell(row, f'{m} {r} (ours)', d, m == 'PSNR')}")
        rows.append([name, *cells])
    return _markdown(header, rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0] if argv else "figures/small")
    print("\n".join(table2_lines(folder / "table2_comparison.csv")))
    print()
    print("\n".join(table1_lines(folder / "table1_ablation.csv")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
