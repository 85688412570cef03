"""Scoring one inpainting method per image (section 4): :func:`evaluate` runs a method over an evaluation
set and returns one row per (image, mask) under :data:`isfr.evaluation.metrics.PROTOCOL`, each with its
``source`` line (:func:`provenance`: ``measured here (<preset>, <res> px, <data>, <steps>, <hardware>, commit
<hash>)``); :func:`write_csv` / :func:`read_csv` / :func:`read_table` keep such rows on disk with their types.

This package never imports :mod:`isfr.training` (evaluation does not depend on training code; the layer order
is :data:`isfr.LAYERS`).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from isfr.core.utils import atomic_path, atomic_write_bytes
from isfr.data.buckets import bucket_of, paper_range_of
from isfr.evaluation.metrics import METRIC_COLUMNS, MetricModels, score_batch

METRICS: tuple[str, ...] = tuple(METRIC_COLUMNS)


ROW_COLUMNS: tuple[str, ...] = ("method", "name", "mask_name", "ratio", "bucket", "paper_range", "composite",
                                *METRICS, "source")


RAW_NOTE = ("Rows with composited = no skip the compositing step of the protocol: the method's raw output "
            "is quantised and compared with the ground truth over the whole frame.")




NO_METRIC_MODELS = "LPIPS and identity not computed (metric_models=None)."  # evaluate's note without metric models


# ---------------------------------------------------------------- provenance
def provenance(
    preset: str | None = None, resolution: int | str | None = None, data: str | None = None,
    steps: int | str | None = None, hardware: str | None = None, commit: str | None = None,
) -> str:
    """``"measured here (<preset>, <resolution> px, <data>, <steps>, <hardware>, commit <hash>)"``.

    ``steps``: an int (rendered "N steps") or free text such as ``"IFR 3000 + SFR 4000 steps"``;
    unknown parts read ``"preset ?"`` etc.; ``hardware`` / ``commit`` default to
    :func:`isfr.core.utils.hardware` / :func:`isfr.core.utils.git_commit`.
    """
    from isfr.core.utils import git_commit
    from isfr.core.utils import hardware as _hardware

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
    """:func:`isfr.evaluation.metrics.score_batch` without compositing: the raw output against the ground truth.

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
    ``composite=True`` follows :data:`isfr.evaluation.metrics.PROTOCOL`; ``False`` scores the raw output
    (:func:`score_raw`). ``metric_models=None`` computes PSNR / SSIM / L1 only (LPIPS and identity
    NaN); pass :func:`isfr.evaluation.metrics.load_metric_models` for the rest. ``ratio`` is the hole ratio of
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
