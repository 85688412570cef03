"""The NVIDIA Irregular Mask Dataset, testing set (Liu et al. 2018; paper section 4.1).

12,000 PNGs (512x512, mode L, white = hole). Each mask is resized to the working resolution with
``NEAREST`` and thresholded at 128 (``value >= 128`` is a hole; this also binarises any
non-binary / antialiased mask), and its hole ratio is computed **at that resolution** (after a
nearest resize to 256, 50 masks leave their nominal bucket: the bucket follows the measured ratio).

The first use at a resolution decodes every PNG once and writes a cache (``$ISFR_CACHE`` or
``~/.cache/isfr``; atomically): ``nvidia-<res>px-<key>.npy``, the masks bit-packed along the last
axis and memory-mapped on load (so loading a mask is free), and ``nvidia-<res>px-<key>.csv``, the
index (name, count, ratio, bucket). ``<key>`` hashes the folder, file names, sizes, mtimes,
resolution and threshold, so a changed folder builds a new cache.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from isfr.core.paths import shown_path
from isfr.core.utils import atomic_path
from .buckets import BUCKETS, PAPER_RANGES, bucket_of, members
from .images import to_uint8_array

MASK_DIR = "testing_mask_dataset"
THRESHOLD = 128  # docs/conventions.md: masks thresholded at 128 on load


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """``path`` if given, else ``$ISFR_CACHE``, else ``~/.cache/isfr``."""
    return Path(path or os.environ.get("ISFR_CACHE") or Path.home() / ".cache" / "isfr")


def load_mask(path: str | os.PathLike, resolution: int | None = None, threshold: int = THRESHOLD) -> np.ndarray:
    """A mask file as a bool array (H, W), True = hole; resized with NEAREST when ``resolution`` is given.

    Any mode is accepted (RGB via luminance, 16-bit scaled to 8 bits); pixels ``>= threshold`` are holes.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if resolution is not None and img.size != (resolution, resolution):
                img = img.resize((resolution, resolution), Image.Resampling.NEAREST)
            arr = to_uint8_array(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: mask file not found; check the NVIDIA mask folder") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: corrupt mask image ({err}); re-download the NVIDIA mask set or remove it") from err
    return arr >= threshold


def find_mask_dir(root: str | os.PathLike) -> Path:
    """The folder holding the mask PNGs: ``root/testing_mask_dataset``, or ``root`` itself."""
    root = Path(root)
    for cand in (root / MASK_DIR, root / "nvidia_irregular_masks" / MASK_DIR, root):
        if cand.is_dir() and any(cand.glob("*.png")):
            return cand
    raise FileNotFoundError(
        f"{root}: no NVIDIA mask PNGs found; expected <root>/{MASK_DIR}/00000.png ... 11999.png "
        "(the NVIDIA Irregular Mask Dataset testing set)"
    )


def _build_chunk(args: tuple[str, list[str], int, int, int, str]) -> list[int]:
    """Worker: load masks ``names`` into rows ``start...`` of the packed memmap; return hole counts."""
    folder, names, start, resolution, threshold, out = args
    packed = np.load(out, mmap_mode="r+")
    counts = []
    for k, name in enumerate(names):
        m = load_mask(Path(folder) / name, resolution, threshold)
        packed[start + k] = np.packbits(m, axis=-1)
        counts.append(int(m.sum()))
    packed.flush()
    return counts


class NvidiaMasks:
    """The NVIDIA masks at ``resolution``: ``names``, ``counts``, ``ratios``, ``buckets``, :meth:`mask`."""

    def __init__(
        self, root: str | os.PathLike, resolution: int = 256, cache: str | os.PathLike | None = None,
        threshold: int = THRESHOLD, workers: int | None = None,
    ):
        self.folder = find_mask_dir(root)
        self.resolution, self.threshold = resolution, threshold
        files = sorted(p for p in self.folder.glob("*.png"))
        key = hashlib.sha256(f"{self.folder.resolve()}|{resolution}|{threshold}".encode())
        for p in files:
            st = p.stat()
            key.update(f"|{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        stem = cache_dir(cache) / f"nvidia-{resolution}px-{key.hexdigest()[:16]}"
        self.array_path, self.index_path = stem.with_suffix(".npy"), stem.with_suffix(".csv")
        if not (self.index_path.exists() and self.array_path.exists()):
            self._build([p.name for p in files], workers)
        self.index = pd.read_csv(self.index_path, dtype={"name": str, "bucket": str})
        self.names: list[str] = self.index["name"].tolist()
        self.counts: np.ndarray = self.index["count"].to_numpy()
        self.ratios: np.ndarray = self.counts / float(resolution * resolution)
        self.buckets: np.ndarray = self.index["bucket"].to_numpy()
        self._packed: np.ndarray | None = None
        self._lookup = {n: i for i, n in enumerate(self.names)}
        self.description = f"NVIDIA irregular masks ({len(self)} at {resolution}px) from {shown_path(self.folder)}"

    def _build(self, names: list[str], workers: int | None) -> None:
        r = self.resolution
        workers = workers or min(2, os.cpu_count() or 1)
        with atomic_path(self.array_path) as tmp:
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(names), r, (r + 7) // 8)).flush()
            step = -(-len(names) // (workers * 8)) or 1
            jobs = [(str(self.folder), names[i : i + step], i, r, self.threshold, str(tmp))
                    for i in range(0, len(names), step)]
            if workers > 1 and len(jobs) > 1:
                with ProcessPoolExecutor(workers) as pool:
                    counts = [c for chunk in pool.map(_build_chunk, jobs) for c in chunk]
            else:
                counts = [c for job in jobs for c in _build_chunk(job)]
        ratios = np.asarray(counts) / float(r * r)
        index = pd.DataFrame({"name": names, "count": counts, "ratio": ratios,
                              "bucket": [bucket_of(x) for x in ratios]})
        with atomic_path(self.index_path) as tmp:
            index.to_csv(tmp, index=False, float_format="%.8f")

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_packed": None}  # workers reopen the memmap instead of copying it

    def mask(self, index: int) -> np.ndarray:
        """Mask ``index`` as a bool array (resolution, resolution), True = hole."""
        if self._packed is None:
            self._packed = np.load(self.array_path, mmap_mode="r")
        return np.unpackbits(self._packed[index], axis=-1, count=self.resolution).astype(bool)

    def index_of(self, name: str) -> int:
        try:
            return self._lookup[name]
        except KeyError:
            raise KeyError(f"mask {name!r} is not in {self.folder}") from None

    def indices_in(self, name: str) -> np.ndarray:
        """Indices of the masks whose ratio (at this resolution) is in bucket / paper range ``name``."""
        return np.flatnonzero(np.isin(self.buckets, members(name)))

    def bucket_counts(self) -> dict[str, int]:
        """Masks per bucket (six buckets, then ``empty`` / ``60-100`` when present)."""
        counts = pd.Series(self.buckets).value_counts()
        order = list(BUCKETS) + [b for b in counts.index if b not in BUCKETS]
        return {b: int(counts.get(b, 0)) for b in order}

    def range_counts(self) -> dict[str, int]:
        """Masks per paper range (Table 2's ``20-40`` and ``40-60``)."""
        return {r: len(self.indices_in(r)) for r in PAPER_RANGES}
