"""A fixed evaluation manifest: each image of a split paired with one mask per bucket (section 4.1).

Columns: ``image`` (name in its image set), ``mask`` (an NVIDIA file name such as ``01234.png``,
or ``procedural:<bucket>:<seed>`` when the NVIDIA set is absent), ``bucket`` (one of the six),
``ratio`` (hole ratio at ``resolution``), ``paper_range`` (``20-40`` / ``40-60`` / empty, Table 2,
derived from ``ratio``), ``resolution``. Rows are ordered by image, then bucket.

For each bucket, the bucket's NVIDIA masks are shuffled with ``seed`` and dealt to the images in
order (cycling when there are more images than masks), so masks repeat as little as possible.
:func:`manifest_hash` is the sha256 of the canonical CSV bytes; notebooks print it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from isfr.core.utils import atomic_write_bytes
from .buckets import BUCKETS, paper_range_of
from .masks import NvidiaMasks
from .procedural import PREFIX, mask_from_name, procedural_mask, procedural_name

COLUMNS = ["image", "mask", "bucket", "ratio", "paper_range", "resolution"]


def make_manifest(
    images: Sequence[str], masks: NvidiaMasks | None, resolution: int, seed: int = 0,
    buckets: Sequence[str] = BUCKETS,
) -> pd.DataFrame:
    """Pair every name in ``images`` with one mask per bucket (NVIDIA, or procedural when ``masks`` is None)."""
    if masks is not None and masks.resolution != resolution:
        raise ValueError(f"masks are at {masks.resolution}px but the manifest is for {resolution}px")
    total = float(resolution * resolution)
    rows = []
    for k, bucket in enumerate(buckets):
        rng = np.random.default_rng([seed, k])
        if masks is not None:
            pool = rng.permutation(masks.indices_in(bucket))
            if len(pool) == 0:
                raise ValueError(f"{masks.description}: no mask in bucket {bucket}")
            picks = [(masks.names[j], float(masks.ratios[j])) for j in pool[np.arange(len(images)) % len(pool)]]
        else:
            seeds = rng.integers(0, 2**31 - 1, len(images))
            picks = [(procedural_name(bucket, int(s)), procedural_mask(bucket, resolution, int(s)).sum() / total)
                     for s in seeds]
        rows += [(img, m, bucket, r, i, k) for i, (img, (m, r)) in enumerate(zip(images, picks))]
    df = pd.DataFrame(rows, columns=["image", "mask", "bucket", "ratio", "_i", "_k"]).sort_values(["_i", "_k"])
    df["paper_range"] = [paper_range_of(r) for r in df["ratio"]]
    df["resolution"] = resolution
    return df[COLUMNS].reset_index(drop=True)


def manifest_csv_bytes(df: pd.DataFrame) -> bytes:
    """The canonical CSV bytes (fixed float format, ``\\n`` line ends) hashed and written to disk."""
    return df[COLUMNS].to_csv(index=False, float_format="%.8f", lineterminator="\n").encode()


def manifest_hash(df: pd.DataFrame) -> str:
    """sha256 hex digest of :func:`manifest_csv_bytes`."""
    return hashlib.sha256(manifest_csv_bytes(df)).hexdigest()


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write ``df`` atomically as CSV; return its hash."""
    data = manifest_csv_bytes(df)
    atomic_write_bytes(data, path)
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV (``FileNotFoundError`` / ``ValueError`` naming the file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: manifest not found; create it with isfr.data.make_manifest")
    df = pd.read_csv(path, dtype={"image": str, "mask": str, "bucket": str, "paper_range": str},
                     keep_default_na=False)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: not a manifest, missing columns {sorted(missing)}; recreate it")
    return df


def load_manifest_mask(name: str, resolution: int, masks: NvidiaMasks | None) -> np.ndarray:
    """The bool mask of a manifest ``mask`` entry (regenerated when procedural)."""
    if name.startswith(PREFIX + ":"):
        return mask_from_name(name, resolution)
    if masks is None:
        raise ValueError(f"manifest names NVIDIA mask {name!r} but no NVIDIA mask set was given")
    return masks.mask(masks.index_of(name))
