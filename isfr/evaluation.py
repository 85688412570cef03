"""Scoring inpainting methods (section 4) and the tables that put the paper's numbers beside ours.

:func:`evaluate` runs one method over an evaluation set and returns per-image rows under
:data:`isfr.metrics.PROTOCOL`; :func:`summarise` gives per-bucket means with percentile-bootstrap
CIs over images; :func:`table1` / :func:`table2` place Table 1 / Table 2 of the paper beside our
summaries; :func:`to_markdown` renders any of them (no ``tabulate`` needed), footer included;
:func:`write_table` writes every table the notebooks keep, as ``<stem>.csv`` and ``<stem>.md``, and
:func:`read_table` reads such a CSV back with the types it was written with.

Provenance: measured rows carry ``source = "measured here (<preset>, <res> px, <data>, <steps>,
<hardware>, commit <hash>)"`` (:func:`provenance`); the paper's numbers carry
:data:`isfr.paper_numbers.REPORTED` and only ever appear in ``(paper)`` columns.

This module never imports :mod:`isfr.training` (evaluation does not depend on training code).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from isfr import paper_numbers as P
from isfr.utils import atomic_path, atomic_write_bytes, atomic_write_text
from isfr.data.buckets import BUCKETS, PAPER_RANGES, bucket_of, paper_range_of
from isfr.metrics import METRIC_COLUMNS, PROTOCOL, MetricModels, score_batch

METRICS: tuple[str, ...] = tuple(METRIC_COLUMNS)
ROW_COLUMNS: tuple[str, ...] = ("method", "name", "mask_name", "ratio", "bucket", "paper_range", "composite",
                                *METRICS, "source")
PSP_COMPOSITE, PSP_RAW = "pSp (composited)", "pSp (raw)"  # Table 2's pSp row, scored both ways
RAW_NOTE = ("Rows with composited = no skip the compositing step of the protocol: the method's raw output "
            "is quantised and compared with the ground truth over the whole frame.")
_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "lpips": False, "id_dist": False}
NO_METRIC_MODELS = "LPIPS and identity not computed (metric_models=None)."  # evaluate's note without metric models


def ci_text(ci: float = 0.95, n_boot: int = 1000, seed: int = 0, what: str = "over images") -> str:
    """What a bootstrap CI is, as the tables print it: ``"95% percentile bootstrap CI over images (1000
    resamples, seed 0)"`` (:func:`summarise`; ``what="of the paired difference"`` for :func:`head_to_head`)."""
    return f"{ci:.0%} percentile bootstrap CI {what} ({n_boot} resamples, seed {seed})"


# ---------------------------------------------------------------- provenance
def provenance(
    preset: str | None = None, resolution: int | str | None = None, data: str | None = None,
    steps: int | str | None = None, hardware: str | None = None, commit: str | None = None,
) -> str:
    """``"measured here (<preset>, <resolution> px, <data>, <steps>, <hardware>, commit <hash>)"``.

    ``steps``: an int (rendered "N steps") or free text such as ``"IFR 3000 + SFR 4000 steps"``;
    unknown parts read ``"preset ?"`` etc.; ``hardware`` / ``commit`` default to
    :func:`isfr.utils.hardware` / :func:`isfr.utils.git_commit`.
    """
    from isfr.utils import git_commit, hardware as _hardware

    if commit is None:
        commit = git_commit()
    steps_txt = "steps ?" if steps is None else f"{steps} steps" if isinstance(steps, int) else str(steps)
    hw = hardware if hardware is not None else _hardware()
    parts = [preset or "preset ?", f"{resolution if resolution is not None else '?'} px", data or "data ?",
             steps_txt, hw, f"commit {commit}"]
    return f"measured here ({', '.join(map(str, parts))})"


# ---------------------------------------------------------------- per-image scoring
def _samples(dataset: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Single samples from ``dataset``; dicts holding a batch (4-D ``image``) are split."""
    for item in dataset:
        img = item["image"]
        if img.dim() == 3:
            yield dict(item)
            continue
        for i in range(img.shape[0]):
            yield {k: (v[i] if isinstance(v, (Tensor, list, tuple, np.ndarray)) and len(v) == img.shape[0] else v)
                   for k, v in item.items()}


def _batches(dataset: Iterable[Mapping[str, Any]], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for s in _samples(dataset):
        batch.append(s)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _value(v: Any) -> Any:
    return v.item() if isinstance(v, Tensor) and v.numel() == 1 else v


def score_raw(pred: Tensor, gt: Tensor, mask: Tensor, models: MetricModels | None = None) -> list[dict[str, Any]]:
    """:func:`isfr.metrics.score_batch` without compositing: the raw output against the ground truth.

    Done through the public API: an all-ones mask makes the composite ``pred * 1 + gt * 0`` equal to
    ``pred`` exactly; hole ratio and bucket are then restored from the real ``mask``.
    """
    rows = score_batch(pred, gt, torch.ones_like(mask), models)
    for row, r in zip(rows, mask.detach().float().flatten(1).mean(1).cpu().tolist()):
        row.update(hole_ratio=r, bucket=bucket_of(r))
    return rows


def _data_label(dataset: Any) -> str:
    """Short data description for :func:`provenance`: ``"<source> data, <N> pairs"`` when known."""
    kind = getattr(dataset, "source", None) or "unknown"
    n = f", {len(dataset)} pairs" if hasattr(dataset, "__len__") else ""
    return f"{kind} data{n}"


def evaluate(
    method: Callable[[Tensor, Tensor], Tensor], dataset: Iterable[Mapping[str, Any]], *, name: str,
    composite: bool = True, metric_models: MetricModels | None = None, batch_size: int = 8,
    progress: bool = True, source: str | None = None, csv_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Score ``method`` on every (image, mask) pair of ``dataset``: one row per pair (:data:`ROW_COLUMNS`).

    ``dataset``: an :class:`isfr.data.InpaintingEvalDataset` or any iterable of dicts with ``image``
    (3, H, W) and ``mask`` (1, H, W) (optional ``name``, ``mask_name``, ``bucket``, ``paper_range``).
    ``composite=True`` follows :data:`isfr.metrics.PROTOCOL`; ``False`` scores the raw output
    (:func:`score_raw`). ``metric_models=None`` computes PSNR / SSIM / L1 only (LPIPS and identity
    NaN); pass :func:`isfr.metrics.load_metric_models` for the rest. ``ratio`` is the hole ratio of
    the mask fed to the method; ``bucket`` / ``paper_range`` come from the dataset when it gives them.
    ``source`` defaults to :func:`provenance` with what is known here. The protocol text (with the
    metric models' notes) is stored in ``df.attrs["protocol"]``; ``csv_path`` writes the rows atomically.
    """
    models = metric_models or MetricModels(notes=[NO_METRIC_MODELS])
    total = None
    if hasattr(dataset, "__len__"):
        total = math.ceil(len(dataset) / batch_size)  # type: ignore[arg-type]
    it: Iterable[list[dict[str, Any]]] = _batches(dataset, batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=total, desc=f"evaluate {name}", unit="batch", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for batch in it:
        image = torch.stack([s["image"] for s in batch]).float()
        mask = torch.stack([s["mask"] for s in batch]).float()
        with torch.no_grad():
            pred = method(image, mask)
        if not isinstance(pred, Tensor) or pred.shape != image.shape:
            raise ValueError(f"method {name!r} returned {getattr(pred, 'shape', type(pred))}; "
                             f"expected a tensor of shape {tuple(image.shape)} in [-1, 1]")
        pred = pred.detach().float().cpu()
        if source is None:
            source = provenance(resolution=image.shape[-1], data=_data_label(dataset))
        scored = (score_batch(pred, image, mask, models) if composite else score_raw(pred, image, mask, models))
        for k, (s, sc) in enumerate(zip(batch, scored)):
            ratio = sc["hole_ratio"]
            bucket = _value(s.get("bucket", sc["bucket"]))
            rows.append(dict(
                method=name, name=_value(s.get("name", f"{len(rows)}")), mask_name=_value(s.get("mask_name", "")),
                ratio=ratio, bucket=bucket,
                paper_range=_value(s.get("paper_range", paper_range_of(ratio))),
                composite=bool(composite), **{m: sc[m] for m in METRICS}, source=source,
            ))
    df = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    df["source"] = df["source"].astype(object)
    df["paper_range"] = df["paper_range"].fillna("").astype(str)
    df.attrs["protocol"] = models.protocol_text()
    if csv_path is not None:
        write_csv(df, csv_path)
    return df


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` (no index) to ``path`` atomically (temp file in the same folder + ``os.replace``);
    a ``.gz`` name is gzip-compressed with a zero timestamp (the same rows give the same bytes), for
    the per-image tables whose ``source`` column repeats on every row."""
    if str(path).endswith(".gz"):
        text = df.to_csv(index=False, lineterminator="\n")
        atomic_write_bytes(gzip.compress(text.encode(), mtime=0), path)  # no file name or time in the header
    else:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False, lineterminator="\n")
    return Path(path)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Per-image rows written by :func:`write_csv` (``paper_range`` kept as text, '' for none)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: per-image CSV not found; write it with evaluate(..., csv_path=...)")
    df = pd.read_csv(path, dtype={"name": str, "mask_name": str, "bucket": str, "paper_range": str},
                     compression="gzip" if path.name.endswith(".gz") else None)
    df["paper_range"] = df["paper_range"].fillna("")
    return df


_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")  # how to_csv writes an integer (a float always has '.', 'e', 'inf' or 'nan')


def _typed(cells: pd.Series) -> pd.Series:
    """One CSV column of text back to the type :func:`write_csv` wrote: integers (nullable ``Int64``),
    booleans, floats (exactly: ``float`` reads ``repr`` back), else text; an empty cell is missing."""
    given = cells[cells != ""]
    if given.empty:
        return pd.Series(math.nan, index=cells.index, dtype=float)
    if given.isin(["True", "False"]).all():
        return cells.map({"True": True, "False": False, "": None}).astype(object if len(given) < len(cells) else bool)
    if given.map(lambda v: _INT.fullmatch(v) is not None).all():
        return pd.Series([int(v) if v else pd.NA for v in cells], index=cells.index, dtype="Int64")
    try:
        return cells.map(lambda v: float(v) if v else math.nan).astype(float)
    except ValueError:
        return cells.map(lambda v: v if v else None).astype(object)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A table written by :func:`write_table` / :func:`write_csv`, each column with the type it was written
    with (counts with missing cells stay integers, ``True`` / ``False`` stay booleans, floats are read
    exactly), so that :func:`to_markdown` renders it as it rendered the table that was written.
    ``attrs`` (a footer, a CI) are not in a CSV: set them again where the Markdown needs them
    (:func:`comparison_footer`, :func:`ci_text`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: table not found; the notebook that writes it (write_table) makes it")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, compression="gzip" if path.name.endswith(".gz") else None)
    return pd.DataFrame({c: _typed(raw[c]) for c in raw.columns}, index=raw.index)


def write_table(table: pd.DataFrame, stem: str | os.PathLike, *, heading: str | None = None,
                notes: Sequence[str] = (), columns: Sequence[str] | None = None, markdown: str | None = None) -> Path:
    """Write ``table`` as ``<stem>.csv`` (:func:`write_csv`, every column) and ``<stem>.md``, each atomically;
    returns the ``.md`` path. The Markdown holds ``heading``, the table and ``notes`` (one line each), a blank
    line apart; the table is :func:`to_markdown` of ``columns`` (default all; its ``attrs["footer"]`` under it),
    or ``markdown`` where the caller renders it (:func:`isfr.experiment.write_final_table`). The one writer of
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


# ---------------------------------------------------------------- summaries with bootstrap CIs
def _groups(df: pd.DataFrame, by: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """Buckets in order, then the paper's ranges (unions of buckets), then ``all``."""
    if by != "bucket":
        for key, g in df.groupby(by, sort=True):
            yield str(key), g
        yield "all", df
        return
    present = list(pd.unique(df["bucket"]))
    for b in [*[b for b in BUCKETS if b in present], *sorted(b for b in present if b not in BUCKETS)]:
        yield b, df[df["bucket"] == b]
    for r, parts in PAPER_RANGES.items():
        sel = df[df["bucket"].isin(parts)]
        if len(sel):
            yield r, sel
    yield "all", df


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 100) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, over rows) of ``values`` ``(n, k)``: ``(n_boot, k)``.

    NaNs are left out of each resample's mean (NaN where a resample holds none). Resamples are drawn
    in chunks so memory stays at ``chunk * n`` indices.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    n = v.shape[0]
    finite = np.isfinite(v)
    v0 = np.where(finite, v, 0.0)
    out = np.empty((n_boot, v.shape[1]))
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        s, c = v0[idx].sum(axis=1), finite[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + len(idx)] = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return out


def summarise(
    df: pd.DataFrame, by: str = "bucket", ci: float = 0.95, n_boot: int = 1000, seed: int = 0,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Per-method, per-group means with percentile-bootstrap CIs over images.

    Rows: one per (``method``, ``source``, ``composite``) and group; with ``by="bucket"`` the groups
    are the six buckets (section 4.1), the paper's ``20-40`` / ``40-60`` (Tables 1-2) and ``all``.
    Columns: ``method, source, composite, <by>, n`` and per metric ``m, m_lo, m_hi`` (NaN-aware:
    the mean over non-NaN images) plus ``id_nan`` (images with a NaN identity distance). The images
    of a group are resampled jointly for all metrics, from ``numpy.random.default_rng([seed, i])``
    for the i-th group of a method: the same inputs give the same CIs.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    metrics = [m for m in metrics if m in df.columns]
    d = df.copy()
    for col, default in (("method", ""), ("source", "measured here (unspecified)"), ("composite", True)):
        if col not in d:
            d[col] = default
    alpha = (1 - ci) / 2
    rows = []
    for (method, source, comp), g in d.groupby(["method", "source", "composite"], sort=False, dropna=False):
        for i, (label, sub) in enumerate(_groups(g, by)):
            vals = sub[metrics].to_numpy(dtype=np.float64)
            row: dict[str, Any] = {"method": method, "source": source, "composite": bool(comp), by: label,
                                   "n": len(sub)}
            boots = bootstrap_means(vals, n_boot, np.random.default_rng([seed, i])) if n_boot > 0 else None
            for j, m in enumerate(metrics):
                col = vals[:, j]
                row[m] = float(np.nanmean(col)) if np.isfinite(col).any() else math.nan
                if boots is not None and np.isfinite(boots[:, j]).any():
                    lo, hi = np.nanquantile(boots[:, j], [alpha, 1 - alpha])
                    row[f"{m}_lo"], row[f"{m}_hi"] = float(lo), float(hi)
                else:
                    row[f"{m}_lo"] = row[f"{m}_hi"] = math.nan
            if "id_dist" in sub:
                row["id_nan"] = int(sub["id_dist"].isna().sum())
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(df.attrs)
    out.attrs["ci"] = ci_text(ci, n_boot, seed)
    return out


def seed_spread(
    df: pd.DataFrame, seed_col: str = "train_seed", by: str = "bucket", metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Spread over training seeds: per method and group, the mean and std (ddof=1) of per-seed means.

    ``df``: per-image rows of the same method trained with several seeds, told apart by ``seed_col``.
    Columns: ``method, <by>, n_seeds, seeds, source`` and per metric ``m_mean``, ``m_std`` (NaN with
    one seed). ``source`` joins the measured sources of the seeds.
    """
    if seed_col not in df:
        raise ValueError(f"no column {seed_col!r}: add the training seed of each row, e.g. "
                         f"df.assign({seed_col}=0), and concatenate the seeds' rows")
    metrics = [m for m in metrics if m in df.columns]
    rows = []
    for method, g in df.groupby("method", sort=False):
        per_seed: dict[str, list[pd.Series]] = {}
        for _, gs in g.groupby(seed_col, sort=True):
            for label, sub in _groups(gs, by):
                per_seed.setdefault(label, []).append(sub[metrics].mean())
        seeds = sorted(g[seed_col].unique().tolist())
        src = "; ".join(pd.unique(g["source"].astype(str))) if "source" in g else "measured here (unspecified)"
        for label, means in per_seed.items():
            m_df = pd.DataFrame(means)
            row: dict[str, Any] = {"method": method, by: label, "n_seeds": len(means),
                                   "seeds": ", ".join(map(str, seeds)), "source": src}
            for m in metrics:
                row[f"{m}_mean"] = float(m_df[m].mean())
                row[f"{m}_std"] = float(m_df[m].std(ddof=1)) if len(means) > 1 else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


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


def head_to_head(
    df: pd.DataFrame, ours: str, baseline: str, groups: Sequence[str] = ("20-40", "40-60", "all"),
    metrics: Sequence[str] = ("psnr", "ssim"), ci: float = 0.95, n_boot: int = 1000, seed: int = 0,
) -> pd.DataFrame:
    """``ours`` against ``baseline`` on the same (image, mask) pairs: per group, both means and the
    paired difference ``ours - baseline`` with a percentile-bootstrap CI over pairs, and ``better``
    (the CI of the difference excludes 0 on the right side; for L1 / LPIPS / identity lower is
    better). Groups as :func:`summarise` (buckets, the paper's ranges, ``all``)."""
    key = ["name", "mask_name"]
    a, b = (df[df["method"] == m] for m in (ours, baseline))
    if a.empty or b.empty:
        raise ValueError(f"head_to_head: no rows for {ours if a.empty else baseline!r} in df['method']")
    pairs = a.merge(b[key + list(metrics)], on=key, suffixes=("", "_base"))
    if len(pairs) != len(a) or len(pairs) != len(b):
        raise ValueError(f"head_to_head: {ours!r} and {baseline!r} were not scored on the same pairs "
                         f"({len(a)} / {len(b)} rows, {len(pairs)} in common)")
    alpha, rows = (1 - ci) / 2, []
    found = dict(_groups(pairs, "bucket"))
    for i, g in enumerate(groups):
        sub = found.get(g)
        if sub is None:
            continue
        row: dict[str, Any] = {"group": g, "n": len(sub)}
        diffs = np.stack([sub[m].to_numpy(float) - sub[f"{m}_base"].to_numpy(float) for m in metrics], 1)
        boots = bootstrap_means(diffs, n_boot, np.random.default_rng([seed, i]))
        for j, m in enumerate(metrics):
            lo, hi = np.nanquantile(boots[:, j], [alpha, 1 - alpha])
            sign = 1 if better(m) == "higher" else -1
            row.update({f"{m} {ours}": float(sub[m].mean()), f"{m} {baseline}": float(sub[f"{m}_base"].mean()),
                        f"{m} diff": float(np.nanmean(diffs[:, j])), f"{m} diff_lo": float(lo), f"{m} diff_hi": float(hi),
                        f"{m} better": bool(sign * (lo if sign > 0 else hi) > 0)})
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["ci"] = ci_text(ci, n_boot, seed, "of the paired difference")
    return out


def duels(df: pd.DataFrame, pairs: Sequence[tuple[str, str]], **kw: Any) -> pd.DataFrame:
    """:func:`head_to_head` of each ``(ours, baseline)`` pair in one table: columns ``ours``, ``baseline``,
    ``group``, ``n`` and per metric ``<m> ours``, ``<m> baseline``, ``<m> diff`` [``diff_lo``, ``diff_hi``],
    ``<m> better`` (e.g. the val head-to-head of ISFRNet and the learned U-Net against biharmonic)."""
    parts = []
    for ours, base in pairs:
        h = head_to_head(df, ours, base, **kw)
        h = h.rename(columns={c: c.replace(f" {ours}", " ours").replace(f" {base}", " baseline") for c in h.columns
                              if c.endswith(f" {ours}") or c.endswith(f" {base}")})
        parts.append(h.assign(ours=ours, baseline=base))
    out = pd.concat(parts, ignore_index=True)
    out = out[["ours", "baseline"] + [c for c in out.columns if c not in ("ours", "baseline")]]
    out.attrs["ci"] = parts[0].attrs.get("ci", "") if parts else ""
    return out


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
    which also drops the note on raw rows) and ``protocol`` (default :data:`isfr.metrics.PROTOCOL`; the
    metric models' notes follow it, as :meth:`isfr.metrics.MetricModels.protocol_text` gives them)."""
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
    Table 1 variant (:data:`isfr.paper_numbers.TABLE1_VARIANTS`) to our method name(s); unmapped
    variants are matched by name. Our methods the paper lacks come last with empty ``(paper)`` cells.
    Columns: ``method, paper method, composited``, ``"PSNR 20-40 (paper)"``, ``"PSNR 20-40 (ours)"``
    (mean; ``_lo`` / ``_hi`` = CI), ``n 20-40``, ..., ``source`` (of the row's ``(ours)`` values;
    rows only the paper has say :data:`isfr.paper_numbers.REPORTED`). ``attrs["footer"]`` holds the
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


def better(metric: str) -> str:
    """``"higher"`` or ``"lower"``: which way ``metric`` improves (section 4.1)."""
    return "higher" if _HIGHER_IS_BETTER[metric] else "lower"


# ---------------------------------------------------------------- figures' inputs and orderings
def comparison_rows(
    methods: Mapping[str, Callable[[Tensor, Tensor], Tensor]], dataset: Any, indices: Sequence[int],
    composite: bool = True,
) -> list[dict[str, Tensor]]:
    """Inputs for :func:`isfr.figures.comparison_grid` (Figs. 6-10): for each dataset index a dict
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
