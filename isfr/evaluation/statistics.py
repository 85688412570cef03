"""Statistics over per-image scores: per-bucket means with percentile-bootstrap CIs over images
(:func:`summarise`), the spread over training seeds (:func:`seed_spread`) and paired comparisons of two
methods on the same pairs (:func:`head_to_head`, :func:`duels`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from isfr.data.buckets import BUCKETS, PAPER_RANGES
from isfr.evaluation.scoring import METRICS

_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "lpips": False, "id_dist": False}


def ci_text(ci: float = 0.95, n_boot: int = 1000, seed: int = 0, what: str = "over images") -> str:
    """What a bootstrap CI is, as the tables print it: ``"95% percentile bootstrap CI over images (1000
    resamples, seed 0)"`` (:func:`summarise`; ``what="of the paired difference"`` for :func:`head_to_head`)."""
    return f"{ci:.0%} percentile bootstrap CI {what} ({n_boot} resamples, seed {seed})"


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


def worst_pairs(df: pd.DataFrame, ours: str, baseline: str, manifest: pd.DataFrame, metric: str = "psnr",
                n: int = 3, ranges: Sequence[str] = ("20-40", "40-60")) -> pd.DataFrame:
    """The ``n`` pairs of the paper's ``ranges`` on which ``ours`` trails ``baseline`` most on ``metric`` (the
    model card's failure cases): ``name``, ``mask_name``, ``bucket``, both scores, ``diff`` (``ours - baseline``,
    worst first) and ``index``, the pair's row in ``manifest`` (an evaluation set's, columns ``image``, ``mask``)."""
    key = ["name", "mask_name"]
    a, b = (df[(df["method"] == m) & df["paper_range"].isin(ranges)] for m in (ours, baseline))
    pairs = a[key + ["bucket", metric]].merge(b[key + [metric]], on=key, suffixes=("", "_base"))
    if pairs.empty:
        raise ValueError(f"worst_pairs: no pairs of {ours!r} and {baseline!r} in the ranges {list(ranges)}")
    pairs["diff"] = pairs[metric] - pairs[f"{metric}_base"]
    pairs = pairs.sort_values("diff", ascending=better(metric) == "higher", kind="stable").head(n)
    index = {(r.image, r.mask): i for i, r in enumerate(manifest[["image", "mask"]].itertuples(index=False))}
    pairs["index"] = [index[(r.name, r.mask_name)] for r in pairs.itertuples(index=False)]
    return pairs.reset_index(drop=True)


def better(metric: str) -> str:
    """``"higher"`` or ``"lower"``: which way ``metric`` improves (section 4.1)."""
    return "higher" if _HIGHER_IS_BETTER[metric] else "lower"
