"""What notebook 01 reports: split sizes, hole-ratio statistics, and the written evaluation manifests."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from isfr.core.utils import atomic_write_json

from .buckets import BUCKETS, PAPER_RANGES, bucket_of, in_bucket
from .build import DataConfig, build_images
from .identity import data_identity
from .manifest import make_manifest, write_manifest
from .masks import NvidiaMasks
from .procedural import procedural_mask
from .roots import DataRoot

SPLITS = ("train", "val", "test")


def split_table(cfg: DataConfig, root: DataRoot) -> pd.DataFrame:
    """Images (and identities, for CelebA) per split, before any ``limit``."""
    rows = []
    for split in SPLITS:
        images = build_images(dataclasses.replace(cfg, limit=None), split, root)
        ids = getattr(images, "identities", None)
        n_ids = len({ids[n] for n in images.names if n in ids}) if ids else None
        rows.append({"split": split, "images": len(images), "identities": n_ids})
    return pd.DataFrame(rows)


def mask_ratios(root: DataRoot, resolution: int, cache: str | None = None, procedural_per_bucket: int = 50,
                seed: int = 0) -> tuple[np.ndarray, str]:
    """Hole ratios at ``resolution``: the NVIDIA set when present, else a procedural sample per bucket."""
    if root.masks is not None:
        masks = NvidiaMasks(root.masks, resolution, cache)
        return np.asarray(masks.ratios, dtype=float), f"NVIDIA irregular masks ({len(masks)} files)"
    rng = np.random.default_rng(seed)
    ratios = [procedural_mask(b, resolution, int(s)).mean() for b in BUCKETS
              for s in rng.integers(0, 2**31 - 1, procedural_per_bucket)]
    return np.asarray(ratios), f"procedural masks ({procedural_per_bucket} per bucket; no NVIDIA set found)"


def bucket_table(ratios: np.ndarray) -> pd.DataFrame:
    """Masks per bucket and per paper range (section 4.1), from ratios at the working resolution."""
    names = list(BUCKETS) + list(PAPER_RANGES)
    counts = [int(sum(in_bucket(r, b) for r in ratios)) for b in names]
    other = int(sum(bucket_of(r) not in BUCKETS for r in ratios))
    return pd.DataFrame({"bucket": names + ["outside 0-60"], "masks": counts + [other]})


def write_manifests(cfg: DataConfig, root: DataRoot, out_dir: Path, limits: dict[str, int | None],
                    masks: NvidiaMasks | None = None) -> pd.DataFrame:
    """Write ``manifest_<split>.csv`` (one mask per bucket per image) for each split in ``limits``, and
    ``data_identity.json`` naming the data they were drawn from; returns split, pairs and sha256 per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(data_identity(cfg).as_dict(), out_dir / "data_identity.json")  # whose pairs these are
    rows = []
    for split, limit in limits.items():
        images = build_images(dataclasses.replace(cfg, limit=limit), split, root)
        df = make_manifest(images.names, masks, cfg.resolution, cfg.seed)
        path = out_dir / f"manifest_{split}.csv"
        rows.append({"split": split, "images": len(images), "pairs": len(df), "file": path.name,
                     "sha256": write_manifest(df, path)[:16]})
    return pd.DataFrame(rows)
