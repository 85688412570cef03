"""Hole-ratio buckets (paper section 4.1) and the paper's evaluation ranges (Table 2).

Buckets are percent ranges, half-open ``[lo, hi)``; a ratio of exactly 0.6 belongs to ``50-60``.
Two extra labels keep :func:`bucket_of` total: ``"empty"`` for a ratio of exactly 0 (no hole,
N_M = 0) and ``"60-100"`` above 0.6. The paper's ranges ``20-40`` and ``40-60`` are unions of
buckets. Ratios are compared with a 1e-9 tolerance so that float round-off of ``count / total``
never moves a ratio across a boundary.
"""

from __future__ import annotations

import math

BUCKETS: tuple[str, ...] = ("0-10", "10-20", "20-30", "30-40", "40-50", "50-60")  # section 4.1
PAPER_RANGES: dict[str, tuple[str, ...]] = {"20-40": ("20-30", "30-40"), "40-60": ("40-50", "50-60")}  # Table 2
EMPTY, OVER = "empty", "60-100"
_EPS = 1e-9


def bucket_of(ratio: float) -> str:
    """The bucket of a hole ratio in [0, 1]: ``"empty"``, ``"0-10"`` ... ``"50-60"`` or ``"60-100"``."""
    ratio = float(ratio)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"hole ratio must lie in [0, 1], got {ratio}")
    if ratio == 0.0:
        return EMPTY
    if ratio > 0.6 + _EPS:
        return OVER
    return BUCKETS[min(int(math.floor(ratio * 10 + _EPS)), len(BUCKETS) - 1)]


def members(name: str) -> tuple[str, ...]:
    """Buckets making up ``name`` (a bucket, or a paper range such as ``"20-40"``)."""
    if name in BUCKETS:
        return (name,)
    if name in PAPER_RANGES:
        return PAPER_RANGES[name]
    raise ValueError(f"unknown bucket {name!r}; use one of {BUCKETS} or {tuple(PAPER_RANGES)}")


def bounds(name: str) -> tuple[float, float]:
    """``(lo, hi)`` as ratios of a bucket or paper range, e.g. ``"20-40"`` -> ``(0.2, 0.4)``."""
    parts = members(name)
    return int(parts[0].split("-")[0]) / 100, int(parts[-1].split("-")[1]) / 100


def in_bucket(ratio: float, name: str) -> bool:
    """Whether ``ratio`` falls in bucket or paper range ``name``."""
    return bucket_of(ratio) in members(name)


def paper_range_of(ratio: float) -> str:
    """``"20-40"``, ``"40-60"`` or ``""`` (outside both ranges of Table 2)."""
    b = bucket_of(ratio)
    return next((r for r, parts in PAPER_RANGES.items() if b in parts), "")


def count_range(name: str, total: int) -> tuple[int, int]:
    """Smallest and largest hole-pixel count (out of ``total``) inside bucket / range ``name``.

    Raises ``ValueError`` when no count fits (a resolution too small for the bucket).
    """
    lo, hi = bounds(name)
    c_lo = max(1, math.ceil(lo * total - _EPS))
    c_hi = math.floor(hi * total + _EPS)
    while c_hi >= c_lo and not in_bucket(c_hi / total, name):
        c_hi -= 1
    while c_lo <= c_hi and not in_bucket(c_lo / total, name):
        c_lo += 1
    if c_lo > c_hi:
        raise ValueError(f"no mask of {total} pixels has a hole ratio in bucket {name}")
    return c_lo, c_hi
