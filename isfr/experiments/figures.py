"""Figures named after the paper's (Fig. 2 stages, Figs. 6-10 comparisons) and the notebooks' own.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
nothing shown, Agg renders it on save; notebooks display it as the cell's value) and takes a
``note`` rendered as a footer -- say there what the figure is made of ("synthetic faces -- not a
result", preset / steps / hardware). Images are ``(3, H, W)`` or ``(1, 3, H, W)`` tensors in
[-1, 1]; masks ``(1, H, W)`` with 1 = hole; holes in inputs are drawn white. :func:`save_figure`
writes atomically at :data:`DPI`.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from isfr.core.utils import atomic_path
from isfr.data.buckets import BUCKETS, bucket_of

DPI = 150
CELL_IN = 1.6  # inches per image cell
STAGE_COLUMNS: tuple[str, ...] = ("input", "stage1", "ifr", "composite", "gt")
STAGE_TITLES: tuple[str, ...] = ("Input", "pSp-StyleGAN", "IFR", "Final (ISFRNet)", "GT")  # Fig. 2 (a)-(e)
METRIC_TITLES: dict[str, str] = {"psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "l1": "L1 ↓", "lpips": "LPIPS ↓",
                                 "id_dist": "identity distance ↓"}
_LOG_META = {"step", "epoch", "time", "elapsed_s", "is_best"}


# ---------------------------------------------------------------- helpers
def to_rgb(x: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """[-1, 1] ``(3, H, W)`` / ``(1, 3, H, W)`` -> float ``(H, W, 3)`` in [0, 1]; ``mask`` holes white."""
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    a = a.reshape(a.shape[-3:]) if a.ndim == 4 else a
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"image must be (3, H, W) or (1, 3, H, W), got {a.shape}")
    rgb = np.clip((np.repeat(a, 3, 0) if a.shape[0] == 1 else a).transpose(1, 2, 0) * 0.5 + 0.5, 0, 1)
    if mask is not None:
        m = mask.detach().float().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        rgb = np.where(m.reshape(rgb.shape[:2])[..., None] > 0.5, 1.0, rgb)
    return rgb


def add_note(fig: Figure, note: str, width: int = 120) -> None:
    """Footer text under the axes (kept by ``bbox_inches="tight"`` on save)."""
    if note:
        fig.text(0.5, 0.0, textwrap.fill(note, width), ha="center", va="top", fontsize=7, style="italic",
                 color="0.25")


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) atomically: temp file + ``os.replace``."""
    path = Path(path)
    meta = {"Software": None} if path.suffix.lower() == ".png" else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata=meta)
    return path


def _blank(ax: Any, text: str = "") -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if text:
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")


def image_grid(
    cells: Sequence[Sequence[np.ndarray | None]], col_titles: Sequence[str] = (),
    row_titles: Sequence[str] = (), note: str = "", title: str = "", cell_in: float = CELL_IN,
) -> Figure:
    """Grid of ``(H, W, 3)`` [0, 1] arrays (``None`` = empty cell marked "n/a")."""
    n_rows, n_cols = len(cells), max((len(r) for r in cells), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("image_grid needs at least one row and one column")
    fig = Figure(figsize=(cell_in * n_cols, cell_in * n_rows + 0.3), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(cells):
        for j in range(n_cols):
            ax = axes[i, j]
            img = row[j] if j < len(row) else None
            if img is None:
                _blank(ax, "n/a")
            else:
                ax.imshow(img, interpolation="nearest")
                _blank(ax)
            if i == 0 and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=9)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    add_note(fig, note)
    return fig


def split_rows(batch: Mapping[str, torch.Tensor], **extra: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """A batch dict (e.g. ``ISFRNet.forward``'s, plus ``gt=`` / ``mask=``) -> one dict per image."""
    items = {**batch, **extra}
    n = next(iter(items.values())).shape[0]
    return [{k: v[i] for k, v in items.items() if isinstance(v, torch.Tensor) and v.shape[0] == n} for i in range(n)]


def _row_cells(row: Mapping[str, Any], keys: Sequence[str]) -> list[np.ndarray | None]:
    mask = row.get("mask")
    cells: list[np.ndarray | None] = []
    for k in keys:
        if k == "input" and "input" not in row and "gt" in row and mask is not None:
            cells.append(to_rgb(row["gt"], mask))  # masked input from the ground truth
        elif k in row:
            cells.append(to_rgb(row[k], mask if k == "input" else None))
        else:
            cells.append(None)
    return cells


# ---------------------------------------------------------------- notebook 01 (data)
def face_mask_grid(
    images: torch.Tensor | Sequence[torch.Tensor], masks: torch.Tensor | Sequence[Any],
    bucket_labels: Sequence[str] = BUCKETS, note: str = "", title: str = "",
) -> Figure:
    """Faces (rows) x buckets (columns), holes white over the face; each cell states its hole ratio.

    ``masks``: ``(K, 1, H, W)`` (the same K masks for every face), or per face ``(N, K, 1, H, W)`` /
    a nested list ``masks[face][bucket]`` (e.g. the evaluation manifest's pairs).
    """
    imgs = list(images)
    per_face = (isinstance(masks, torch.Tensor) and masks.dim() == 5) or (
        not isinstance(masks, torch.Tensor) and len(masks) > 0 and not isinstance(masks[0], torch.Tensor))
    grid = [list(masks[i]) for i in range(len(imgs))] if per_face else [list(masks)] * len(imgs)
    cells = [[to_rgb(img, m) for m in ms] for img, ms in zip(imgs, grid)]
    fig = image_grid(cells, list(bucket_labels), note=note, title=title)
    n_cols = max(len(ms) for ms in grid)
    for i, ms in enumerate(grid):
        for j, m in enumerate(ms):
            ax = fig.axes[i * n_cols + j]
            ax.text(0.03, 0.03, f"{float(torch.as_tensor(m).float().mean()):.0%}", transform=ax.transAxes,
                    fontsize=7, color="k", backgroundcolor=(1, 1, 1, 0.6))
    return fig


def ratio_histogram(
    ratios: Sequence[float] | np.ndarray, buckets: Sequence[str] = BUCKETS, resolution: int | None = None,
    note: str = "", title: str = "", bin_pct: float = 1.0,
) -> Figure:
    """Histogram of hole ratios (percent) with the bucket edges (section 4.1) and per-bucket counts
    (:func:`isfr.data.buckets.bucket_of`, the same rule as the manifest)."""
    r = np.asarray(ratios, dtype=float) * 100
    edges = sorted({float(e) for b in buckets for e in b.split("-")})
    top = max(edges[-1], float(np.ceil(r.max())) if r.size else edges[-1])
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(r, bins=np.arange(0, top + bin_pct, bin_pct), color="0.45")
    ymax = ax.get_ylim()[1] * 1.25  # head room for the counts
    ax.set_ylim(top=ymax)
    for e in edges:
        ax.axvline(e, color="C3", ls="--", lw=0.8)
    counts = pd.Series([bucket_of(v) for v in r / 100], dtype=object).value_counts()
    for b in buckets:
        lo, hi = (float(e) for e in b.split("-"))
        ax.text((lo + hi) / 2, ymax * 0.97, f"{b}%\nn={int(counts.get(b, 0))}", ha="center", va="top", fontsize=7)
    ax.set_xlabel("hole ratio (%)" + (f" at {resolution} px" if resolution else ""))
    ax.set_ylabel("masks")
    ax.set_title(title or f"Hole ratios (n={r.size})", fontsize=10)
    add_note(fig, note)
    return fig


# ---------------------------------------------------------------- training logs
def loss_curves(
    log: str | os.PathLike | pd.DataFrame, title: str = "", terms: Sequence[str] | None = None,
    smooth_span: int | None = None, note: str = "",
) -> Figure:
    """One panel per loss term against ``step``: raw (faint) and exponentially smoothed.

    ``log``: a training CSV (``isfr.training`` ``train_log.csv``) or its DataFrame. ``terms``
    default to every numeric column except step / epoch / time / elapsed_s / lr_* / is_best;
    ``smooth_span`` defaults to a twentieth of the rows.
    """
    df = pd.read_csv(log) if not isinstance(log, pd.DataFrame) else log
    if "step" not in df:
        raise ValueError(f"{log if not isinstance(log, pd.DataFrame) else 'log'}: no 'step' column")
    if terms is None:
        terms = [c for c in df.columns if c not in _LOG_META and not str(c).startswith("lr_")
                 and pd.api.types.is_numeric_dtype(df[c])]
    if not terms:
        raise ValueError("no loss columns to plot")
    span = smooth_span or max(1, len(df) // 20)
    n_cols = min(3, len(terms))
    n_rows = math.ceil(len(terms) / n_cols)
    fig = Figure(figsize=(3.4 * n_cols, 2.4 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax, t in zip(axes.flat, terms):
        y = pd.to_numeric(df[t], errors="coerce")
        ax.plot(df["step"], y, color="C0", alpha=0.3, lw=0.8, label="raw")
        ax.plot(df["step"], y.ewm(span=span).mean(), color="C0", lw=1.5, label=f"EMA (span {span})")
        ax.set_title(t, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    add_note(fig, note)
    return fig


def val_curves_vs_hours(runs: Mapping[str, tuple[str | os.PathLike, float]], note: str = "",
                        title: str = "Val PSNR against CPU-hours") -> Figure:
    """Each run's checkpoint-selection val PSNR (``val_log.csv``) against its CPU-hours: ``runs`` maps a label
    to (run folder, hours spent before it, e.g. the upstream stages the main model's SFR builds on)."""
    from isfr.training.record import cumulative_seconds

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for label, (folder, offset) in runs.items():
        d = Path(folder)
        if not (d / "val_log.csv").is_file() or not (d / "train_log.csv").is_file():
            raise FileNotFoundError(f"{d}: no val_log.csv / train_log.csv: train the run first")
        log, val = pd.read_csv(d / "train_log.csv"), pd.read_csv(d / "val_log.csv")
        hours = np.interp(val["step"], log["step"], cumulative_seconds(log["elapsed_s"]) / 3600) + offset
        ax.plot(hours, val["val_score"], marker="o", ms=3, label=f"{label} (from {offset:.2f} h)" if offset else label)
    ax.set(xlabel="CPU-hours (one process, one torch thread)", ylabel="val PSNR (dB, selection pairs)", title=title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    add_note(fig, note)
    return fig


# ---------------------------------------------------------------- paper figures
def stage_grid(
    rows: Sequence[Mapping[str, torch.Tensor]], columns: Sequence[str] = STAGE_COLUMNS,
    titles: Sequence[str] | None = None, note: str = "", title: str = "",
) -> Figure:
    """Fig. 2: each stage's output per example (input, pSp-StyleGAN, IFR, final, GT).

    ``rows``: dicts with the ``columns`` keys (:func:`split_rows` of ``ISFRNet.forward`` plus
    ``gt`` / ``mask``); ``mask`` draws the input's holes white. Missing keys give "n/a" cells.
    """
    titles = list(titles) if titles is not None else [
        dict(zip(STAGE_COLUMNS, STAGE_TITLES)).get(c, c) for c in columns]
    return image_grid([_row_cells(r, columns) for r in rows], titles, note=note, title=title)


def comparison_grid(
    rows: Sequence[Mapping[str, torch.Tensor]], methods: Sequence[str], titles: Sequence[str] | None = None,
    note: str = "", title: str = "",
) -> Figure:
    """Figs. 6-10: input, method A, method B, ..., GT per example (``rows[i][method]`` = its output)."""
    cols = ["input", *methods, "gt"]
    titles = list(titles) if titles is not None else ["Input", *methods, "GT"]
    return image_grid([_row_cells(r, cols) for r in rows], titles, note=note, title=title)


def metric_lines(
    summary: pd.DataFrame, metrics: Sequence[str] = ("psnr", "ssim", "l1", "lpips", "id_dist"),
    buckets: Sequence[str] = BUCKETS, note: str = "", title: str = "",
) -> Figure:
    """Every metric over the six buckets, one line per method with its CI band (``m_lo`` / ``m_hi``).

    ``summary``: :func:`isfr.evaluation.summarise` output. A metric that is missing or all-NaN
    (e.g. LPIPS without AlexNet weights) gets an "unavailable" panel.
    """
    n_cols = min(3, len(metrics))
    n_rows = math.ceil(len(metrics) / n_cols)
    fig = Figure(figsize=(3.6 * n_cols, 2.7 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    s = summary[summary["bucket"].isin(buckets)] if "bucket" in summary else summary.iloc[0:0]
    keys = ["method"] + [c for c in ("composite", "source") if c in s]
    groups = list(s.groupby(keys, sort=False)) if len(s) else []
    names = [k[0] if isinstance(k, tuple) else k for k, _ in groups]
    x = np.arange(len(buckets))
    handles = []
    for ax, m in zip(axes.flat, metrics):
        ax.set_title(METRIC_TITLES.get(m, m), fontsize=9)
        if m not in s or not np.isfinite(s[m].to_numpy(dtype=float)).any():
            _blank(ax, f"{m}: unavailable")
            continue
        for k, (key, g) in enumerate(groups):
            g = g.set_index("bucket").reindex(buckets)
            label = names[k] if names.count(names[k]) == 1 else f"{names[k]} ({k})"
            (h,) = ax.plot(x, g[m].to_numpy(dtype=float), marker="o", ms=3, lw=1.2, color=f"C{k % 10}", label=label)
            if f"{m}_lo" in g and f"{m}_hi" in g:
                ax.fill_between(x, g[f"{m}_lo"].to_numpy(dtype=float), g[f"{m}_hi"].to_numpy(dtype=float),
                                color=f"C{k % 10}", alpha=0.2, lw=0)
            if len(handles) < len(groups):
                handles.append(h)
        ax.set_xticks(x, list(buckets), fontsize=7, rotation=30)
        ax.set_xlabel("hole ratio (%)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    if handles:
        # the title heads the legend: a suptitle and an "outside upper" legend would overlap
        fig.legend(handles=handles, loc="outside upper center", ncols=min(4, len(handles)), fontsize=8,
                   title=title or None, title_fontsize=10)
    elif title:
        fig.suptitle(title, fontsize=10)
    add_note(fig, note)
    return fig


def table_figure(df: pd.DataFrame, note: str = "", title: str = "", max_rows: int = 40) -> Figure:
    """A DataFrame drawn as a table (floats: 2 decimals for PSNR columns, else 3)."""
    d = df.head(max_rows)

    def fmt(v: Any, col: str) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if math.isnan(v) else f"{v:.{2 if 'psnr' in col.lower() else 3}f}"
        return str(v)

    text = [[fmt(v, str(c)) for c, v in row.items()] for _, row in d.iterrows()]
    fig = Figure(figsize=(min(2 + 1.2 * len(d.columns), 24), 0.6 + 0.28 * (len(d) + 1)), layout="constrained")
    ax = fig.subplots()
    _blank(ax)
    tab = ax.table(cellText=text or [[""] * len(d.columns)], colLabels=[str(c) for c in d.columns], loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    if title:
        ax.set_title(title, fontsize=10)
    add_note(fig, note)
    return fig


# ---------------------------------------------------------------- the index of figures/
def indexed_outputs(cpu_stage1: bool, readme: str | os.PathLike | None = None,
                    include_notebooks: bool = True, upto: str | None = None) -> list[str]:
    """Files ``figures/README.md`` lists for one run (rows ``| `file` | notebook | presets | ...``).

    ``cpu_stage1``: stage 1 was trained here (rows marked "CPU presets" count only then); ``upto``
    (e.g. ``"06"``): only files of the notebooks up to that one.
    """
    from isfr.core.paths import REPO_ROOT

    text = Path(readme or REPO_ROOT / "figures" / "README.md").read_text(encoding="utf-8")
    files = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not (cells[0].startswith("`") and cells[0].endswith("`")):
            continue
        name, notebook, presets = cells[0].strip("`"), cells[1], cells[2]
        if (presets == "CPU presets" and not cpu_stage1) or (notebook == "reproduce" and not include_notebooks):
            continue
        if upto is not None and notebook.isdigit() and int(notebook) > int(upto):
            continue
        files.append(name)
    return files


def missing_outputs(folder: str | os.PathLike, cpu_stage1: bool, include_notebooks: bool = True,
                    upto: str | None = None) -> list[str]:
    """Indexed files absent from ``folder`` (``figures/<preset>/``), of the notebooks up to ``upto``."""
    return [f for f in indexed_outputs(cpu_stage1, include_notebooks=include_notebooks, upto=upto)
            if not (Path(folder) / f).is_file()]
