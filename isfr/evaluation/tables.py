"""The paper's tables beside ours and the one writer of every table the notebooks keep.

:func:`table1` / :func:`table2` place Table 1 / Table 2 of the paper (:mod:`isfr.evaluation.paper_numbers`,
only ever in ``(paper)`` columns) beside our summaries; :func:`to_markdown` renders any table (no ``tabulate``
needed), footer included; :func:`write_table` writes ``<stem>.csv`` and ``<stem>.md``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from isfr.core.utils import atomic_write_text
from isfr.evaluation import paper_numbers as P
from isfr.evaluation.metrics import PROTOCOL
from isfr.evaluation.scoring import RAW_NOTE, write_csv
from isfr.evaluation.statistics import better, summarise

PSP_COMPOSITE, PSP_RAW = "pSp (composited)", "pSp (raw)"  # Table 2's pSp row, scored both ways


def write_table(table: pd.DataFrame, stem: str | os.PathLike, *, heading: str | None = None,
                notes: Sequence[str] = (), columns: Sequence[str] | None = None, markdown: str | None = None) -> Path:
    """Write ``table`` as ``<stem>.csv`` (:func:`write_csv`, every column) and ``<stem>.md``, each atomically;
    returns the ``.md`` path. The Markdown holds ``heading``, the table and ``notes`` (one line each), a blank
    line apart; the table is :func:`to_markdown` of ``columns`` (default all; its ``attrs["footer"]`` under it),
    or ``markdown`` where the caller renders it (:func:`isfr.experiments.experiment.write_final_table`). The one writer of
    the tables notebooks 04-06 keep in ``figures/<preset>/``."""
    stem = Path(stem)
    if markdown is None:
        shown = table
        if columns is not None:
            shown = table[list(columns)]
            shown.attrs = dict(table.attrs)  # the footer stays under the columns shown
        markdown = to_markdown(shown)
    text = "\n\n".join(block for block in (heading, markdown, "\n".join(notes)) if block) + "\n"
    md = stem.with_name(stem.name + ".md")
    write_csv(table, stem.with_name(stem.name + ".csv"))
    atomic_write_text(text, md)
    return md


def write_seed_spread(spread: pd.DataFrame, stem: str | os.PathLike, what: str = "Full model (ablation budget)") -> Path:
    """Write a :func:`seed_spread` table (:func:`write_table`): a line saying which seeds ``what`` was trained
    with (or that one seed gives no spread), the columns that hold a value (metrics not scored are left out
    of the Markdown, not of the CSV), then the sources."""
    if spread["n_seeds"].max() > 1:
        heading = (f"{what} trained with seeds {spread['seeds'].iloc[0]}; mean and std (ddof=1) of the per-seed "
                   "means.")
    else:
        heading = "One training seed at this preset's budget (schedule.spread_seeds is empty): no spread."
    shown = [c for c in spread.columns if c != "source" and not spread[c].isna().all()]
    return write_table(spread, stem, heading=heading, columns=shown, notes=[f"Sources: {spread['source'].iloc[0]}"])


def write_duels(table: pd.DataFrame, stem: str | os.PathLike, heading: str, source: str,
                diff: str = "ours - baseline", protocol: str = "") -> Path:
    """Write a :func:`head_to_head` / :func:`duels` table as ``<stem>.csv`` and ``<stem>.md`` (``heading``, the
    table, what ``diff`` means with its CI, ``Source: <source>.``, then ``protocol``), each atomically;
    returns the ``.md`` path (:func:`write_table`)."""
    notes = [f"Values: means; diff = {diff} [{table.attrs.get('ci', '')}].", f"Source: {source}."]
    return write_table(table, stem, heading=heading, notes=notes + ([protocol] if protocol else []))


# ---------------------------------------------------------------- paper vs ours
def _as_summary(measured: pd.DataFrame, ci: float, n_boot: int, seed: int) -> pd.DataFrame:
    return measured if "psnr_lo" in measured.columns else summarise(measured, ci=ci, n_boot=n_boot, seed=seed)


def _col(metric: str, rng: str, who: str) -> str:
    return f"{P.METRIC_LABELS[metric]} {rng} ({who})"


def _compare(
    paper: Mapping[str, Mapping[str, Mapping[str, float]]], table_name: str, measured: pd.DataFrame | None,
    methods: Mapping[str, str | Sequence[str]], metrics: Sequence[str], ci: float, n_boot: int, seed: int,
    protocol: str | None, flags: Mapping[str, str], paper_only_rows: bool = True,
) -> pd.DataFrame:
    summ = _as_summary(measured, ci, n_boot, seed) if measured is not None else None
    ranges = P.RANGES
    value_cols = [c for m in metrics for r in ranges for c in (_col(m, r, "paper"), _col(m, r, "ours"))]

    def measured_row(meth: str, comp: bool, src: str) -> dict[str, Any]:
        row: dict[str, Any] = {"method": meth, "composited": "yes" if comp else "no", "source": src}
        assert summ is not None
        sel = summ[(summ["method"] == meth) & (summ["source"] == src) & (summ["composite"] == comp)]
        for r in ranges:
            hit = sel[sel["bucket"] == r]
            row[f"n {r}"] = int(hit["n"].iloc[0]) if len(hit) else 0
            for m in metrics:
                c = _col(m, r, "ours")
                for suf, key in (("", m), ("_lo", f"{m}_lo"), ("_hi", f"{m}_hi")):
                    row[c + suf] = float(hit[key].iloc[0]) if len(hit) and key in hit else math.nan
        return row

    mapped: dict[str, list[str]] = {k: ([v] if isinstance(v, str) else list(v)) for k, v in methods.items()}
    used: set[str] = set()
    rows: list[dict[str, Any]] = []
    keys = (summ[["method", "composite", "source"]].drop_duplicates().itertuples(index=False)
            if summ is not None else [])
    keys = list(keys)
    for pm, by_range in paper.items():
        paper_vals = {_col(m, r, "paper"): by_range.get(r, {}).get(m, math.nan) for m in metrics for r in ranges}
        hits = [k for name in mapped.get(pm, [pm]) for k in keys if k.method == name]
        for k in hits:
            used.add(k.method)
            rows.append({"paper method": pm, **measured_row(k.method, bool(k.composite), k.source), **paper_vals})
        if not hits and paper_only_rows:
            rows.append({"paper method": pm, "method": pm, "composited": "", "source": P.REPORTED, **paper_vals})
    for k in keys:
        if k.method not in used:  # measured methods the paper does not have (e.g. classical floors)
            rows.append({"paper method": "", **measured_row(k.method, bool(k.composite), k.source)})
    ci_cols = [c + s for m in metrics for r in ranges for c in [_col(m, r, "ours")] for s in ("_lo", "_hi")]
    order = ["method", "paper method", "composited", *value_cols, *ci_cols, *[f"n {r}" for r in ranges], "source"]
    out = pd.DataFrame(rows).reindex(columns=order)
    for r in ranges:
        out[f"n {r}"] = out[f"n {r}"].astype("Int64")
    out.attrs["footer"] = comparison_footer(
        out, table_name, flags={pm: text for pm, text in flags.items() if pm in paper},
        ci_label=summ.attrs.get("ci", f"{ci:.0%} bootstrap CI") if summ is not None else None,
        protocol=protocol or (summ.attrs.get("protocol") if summ is not None else None))
    out.attrs["title"] = table_name
    return out


def comparison_footer(table: pd.DataFrame, table_name: str, *, flags: Mapping[str, str] | None = None,
                      ci_label: str | None = None, protocol: str | None = None) -> str:
    """The footer :func:`table1` / :func:`table2` keep in ``attrs["footer"]``, from the table's own
    ``source`` and ``composited`` columns, so that a table read back from its CSV (:func:`read_table`) gets
    it again: where the ``(paper)`` numbers come from, ``flags`` (default: :data:`FLAGS` of ``table_name``),
    one line per measured source, the CI (``ci_label``, e.g. :func:`ci_text`; None when nothing was measured,
    which also drops the note on raw rows) and ``protocol`` (default :data:`isfr.evaluation.metrics.PROTOCOL`; the
    metric models' notes follow it, as :meth:`isfr.evaluation.metrics.MetricModels.protocol_text` gives them)."""
    lines = [f"(paper) columns: {P.REPORTED} ({table_name}, values as printed)."]
    for pm, text in (FLAGS.get(table_name, {}) if flags is None else flags).items():
        lines.append(f"Note on {table_name}, {pm}: {text}")
    srcs = [s for s in pd.unique(table["source"].dropna()) if s != P.REPORTED]
    lines += [f"(ours) columns, rows with source = {s}." for s in srcs] or ["(ours) columns: nothing measured yet."]
    if ci_label is not None:
        lines.append(f"(ours) values: mean over images [{ci_label}].")
        if (table["composited"] == "no").any():
            lines.append(RAW_NOTE)
    lines.append(protocol or PROTOCOL)
    return "\n".join(lines)


_TABLE1_FLAGS = {"ISFRNet": "PSNR 40-60 is 13.31 dB as printed; Table 2 and the abstract give 23.31 dB "
                             "(isfr.paper_numbers.INCONSISTENCIES)."}
# ^ the name the committed tables of figures/small print (the module is now isfr.evaluation.paper_numbers):
# change it together with those tables


_TABLE2_FLAGS = {"pSp": "the paper does not say whether pSp's output was composited; we score it both ways "
                        f"({PSP_COMPOSITE!r}, {PSP_RAW!r})."}


#: the notes under each table on the paper's own values (:func:`comparison_footer`)
FLAGS: dict[str, dict[str, str]] = {"Table 1": _TABLE1_FLAGS, "Table 2": _TABLE2_FLAGS}


def table1(
    measured: pd.DataFrame | None = None, methods: Mapping[str, str | Sequence[str]] | None = None, *,
    ci: float = 0.95, n_boot: int = 1000, seed: int = 0, protocol: str | None = None,
    correct_typos: bool = False, paper_only_rows: bool = True,
) -> pd.DataFrame:
    """Table 1 (ablation, PSNR / SSIM at 20-40% and 40-60%) beside our measurements.

    ``measured``: per-image rows (summarised here) or a :func:`summarise` table. ``methods`` maps a
    Table 1 variant (:data:`isfr.evaluation.paper_numbers.TABLE1_VARIANTS`) to our method name(s); unmapped
    variants are matched by name. Our methods the paper lacks come last with empty ``(paper)`` cells.
    Columns: ``method, paper method, composited``, ``"PSNR 20-40 (paper)"``, ``"PSNR 20-40 (ours)"``
    (mean; ``_lo`` / ``_hi`` = CI), ``n 20-40``, ..., ``source`` (of the row's ``(ours)`` values;
    rows only the paper has say :data:`isfr.evaluation.paper_numbers.REPORTED`). ``attrs["footer"]`` holds the
    provenance lines and the protocol. ``correct_typos`` replaces 13.31 by Table 2's 23.31 (flagged).
    ``paper_only_rows=False`` leaves out the paper's rows that nothing measured maps to.
    """
    paper = {k: {r: dict(v) for r, v in d.items()} for k, d in P.TABLE1.items()}
    flags = dict(_TABLE1_FLAGS)
    if correct_typos:
        paper["ISFRNet"]["40-60"]["psnr"] = P.TABLE2["ISFRNet"]["40-60"]["psnr"]
        flags = {"ISFRNet": "PSNR 40-60 printed as 13.31 dB, shown here as Table 2's 23.31 dB (correct_typos=True)."}
    return _compare(paper, "Table 1", measured, methods or {}, ("psnr", "ssim"), ci, n_boot, seed,
                    protocol, flags, paper_only_rows)


def table2(
    measured: pd.DataFrame | None = None, methods: Mapping[str, str | Sequence[str]] | None = None, *,
    metrics: Sequence[str] = ("psnr", "ssim", "l1", "lpips"), ci: float = 0.95, n_boot: int = 1000,
    seed: int = 0, protocol: str | None = None,
) -> pd.DataFrame:
    """Table 2 (PSNR / SSIM / L1 / LPIPS at 20-40% and 40-60%) beside our measurements.

    As :func:`table1`. By default the paper's ``pSp`` row is matched to :data:`PSP_COMPOSITE`,
    :data:`PSP_RAW` and ``"pSp"`` (the paper does not say whether pSp was composited), ``ISFRNet``
    (the paper's "Ours") to ``"ISFRNet"``. Add ``"id_dist"`` to ``metrics`` for identity (the paper
    has no such column: its ``(paper)`` cells stay empty).
    """
    mapping: dict[str, str | Sequence[str]] = {"pSp": [PSP_COMPOSITE, PSP_RAW, "pSp", "pSp (composite)"]}
    mapping.update(methods or {})
    return _compare(P.TABLE2, "Table 2", measured, mapping, tuple(metrics), ci, n_boot, seed, protocol, _TABLE2_FLAGS)


# ---------------------------------------------------------------- markdown
def _digits(col: str) -> int:
    return 2 if "psnr" in str(col).lower() else 3


def _fmt(v: Any, digits: int) -> str:
    if v is None or (np.ndim(v) == 0 and not isinstance(v, str) and pd.isna(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "inf" if math.isinf(v) else f"{v:.{digits}f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, index: bool = False, footer: bool = True) -> str:
    """A GitHub pipe table of ``table`` (no ``tabulate`` needed), footer from ``attrs["footer"]``.

    Columns ``c_lo`` / ``c_hi`` beside a column ``c`` are merged into its cells as
    ``"mean [lo, hi]"``. PSNR-like columns get 2 decimals, other floats 3; NaN is an empty cell.
    """
    df = table.reset_index() if index else table
    cols = [c for c in df.columns if not (str(c).endswith(("_lo", "_hi")) and str(c)[:-3] in df.columns)]
    lines = ["| " + " | ".join(_fmt(str(c), 0) for c in cols) + " |",
             "|" + "|".join(" --- " for _ in cols) + "|"]
    names = [str(c) for c in df.columns]
    for values in zip(*(df[c].tolist() for c in df.columns)):  # per column: keeps ints as ints
        row = dict(zip(names, values))
        cells = []
        for c in map(str, cols):
            d = _digits(c)
            cell = _fmt(row[c], d)
            lo, hi = f"{c}_lo", f"{c}_hi"
            if cell and lo in row and hi in row and _fmt(row[lo], d):
                cell += f" [{_fmt(row[lo], d)}, {_fmt(row[hi], d)}]"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    if footer and table.attrs.get("footer"):
        text += "\n\n" + "\n\n".join(table.attrs["footer"].split("\n"))
    return text + "\n"


# ---------------------------------------------------------------- figures' inputs and orderings
def comparison_rows(
    methods: Mapping[str, Callable[[Tensor, Tensor], Tensor]], dataset: Any, indices: Sequence[int],
    composite: bool = True,
) -> list[dict[str, Tensor]]:
    """Inputs for :func:`isfr.experiments.figures.comparison_grid` (Figs. 6-10): for each dataset index a dict
    with ``input`` (masked), ``gt``, ``mask`` and every method's output (composited by default)."""
    samples = [dataset[i] for i in indices]
    image = torch.stack([s["image"] for s in samples]).float()
    mask = torch.stack([s["mask"] for s in samples]).float()
    rows = [{"input": image[i] * (1 - mask[i]), "gt": image[i], "mask": mask[i]} for i in range(len(samples))]
    for name, method in methods.items():
        with torch.no_grad():
            out = method(image, mask).detach().float().cpu()
        if composite:
            out = out * mask + image * (1 - mask)
        for row, o in zip(rows, out):
            row[name] = o
    return rows


def ranking_agreement(table: pd.DataFrame, metric: str = "PSNR", rng: str = "20-40") -> str:
    """Does our order of the methods on ``metric`` at ``rng`` follow the paper's? One sentence.

    ``table``: :func:`table1` / :func:`table2` output (columns ``"<METRIC> <range> (paper|ours)"``).
    Only rows with both values count.
    """
    paper_col, ours_col = f"{metric} {rng} (paper)", f"{metric} {rng} (ours)"
    both = table.dropna(subset=[paper_col, ours_col])
    if len(both) < 2:
        return f"{metric} {rng}: fewer than two methods have both a paper and a measured value."
    sign = -1 if better(metric.lower()) == "lower" else 1
    paper_order = list(both.sort_values(paper_col, ascending=sign < 0)["method"])
    ours_order = list(both.sort_values(ours_col, ascending=sign < 0)["method"])
    verdict = "follows" if paper_order == ours_order else "does not follow"
    return (f"{metric} {rng}: our order ({' > '.join(ours_order)}) {verdict} the paper's "
            f"({' > '.join(paper_order)}).")


def agreement_notes(table: pd.DataFrame, metrics: Sequence[str] = ("PSNR", "SSIM"),
                    ranges: Sequence[str] = P.RANGES) -> list[str]:
    """:func:`ranking_agreement` for each metric and range, as the list written under Tables 1-2."""
    return [f"- {ranking_agreement(table, m, r)}" for m in metrics for r in ranges]
