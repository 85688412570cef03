"""Torch datasets yielding ``dict(image, mask, name, ratio, ...)`` (docs/conventions.md).

``image``: float32 (3, H, W) in [-1, 1]; ``mask``: float32 (1, H, W) in {0, 1}, 1 = hole.
All-valid (ratio 0) and all-hole masks are legal; nothing here rejects them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .images import Preprocess, image_to_tensor
from .manifest import load_manifest_mask
from .masks import NvidiaMasks
from .sampler import MaskSampler
from .sources import ImageSet
from .workers import tune_worker_malloc


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """Bool (H, W) -> float32 (1, H, W) in {0, 1}."""
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)[None])


class InpaintingTrainDataset(Dataset):
    """Images paired with a fresh random mask per (seed, epoch, index) (section 4.1).

    Deterministic for any ``num_workers``: the draw depends only on (seed, epoch, index). Call
    :meth:`set_epoch` before each epoch (with ``persistent_workers=False``, the default, workers
    receive the new epoch). An unreadable image is skipped with a warning and the next image
    (index + 1, + 2, ...) is returned instead, paired with the same mask.
    """

    def __init__(
        self, images: ImageSet, sampler: MaskSampler, resolution: int, preprocess: Preprocess = "center_crop",
        seed: int = 0, max_skips: int = 64,
    ):
        self.images, self.sampler, self.resolution, self.preprocess = images, sampler, resolution, preprocess
        self.seed, self.epoch, self.max_skips = seed, 0, max_skips
        self.source = images.source
        self.description = f"train: {images.description}; masks: {sampler.description}; {resolution}px"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """``key``: an index (mask drawn from (seed, epoch, index)) or ``(index, sample_seed)`` as
        :class:`isfr.training.sampler.StepBatchSampler` passes with ``with_seeds``: the mask is then
        drawn from ``sample_seed``, which already mixes (seed, epoch, index)."""
        tune_worker_malloc()
        index, rng_key = (key[0], [key[1]]) if isinstance(key, tuple) else (key, [self.seed, self.epoch, key])
        rng = np.random.default_rng(rng_key)
        mask, ratio, mask_name = self.sampler.sample(rng)
        n = len(self.images)
        for k in range(min(self.max_skips, n)):
            j = (index + k) % n
            try:
                img = self.images.load(j, self.resolution, self.preprocess)
                break
            except (ValueError, OSError) as err:  # FileNotFoundError is an OSError
                warnings.warn(f"skipping unreadable training image: {err}", RuntimeWarning, stacklevel=2)
        else:
            raise RuntimeError(f"{min(self.max_skips, n)} consecutive unreadable images from index {index} "
                               f"in {self.images.description}; check the data folder")
        return dict(image=image_to_tensor(img), mask=mask_to_tensor(mask), name=self.images.names[j],
                    ratio=ratio, mask_name=mask_name)


class InpaintingEvalDataset(Dataset):
    """Rows of an evaluation manifest (:mod:`isfr.data.manifest`); errors are raised, never skipped."""

    def __init__(
        self, images: ImageSet, manifest: pd.DataFrame, resolution: int, preprocess: Preprocess = "center_crop",
        masks: NvidiaMasks | None = None,
    ):
        res = set(manifest["resolution"].unique())
        if res and res != {resolution}:
            raise ValueError(f"manifest ratios are for {sorted(res)}px but the dataset is {resolution}px; "
                             "make a manifest at this resolution")
        self.images, self.manifest, self.masks = images, manifest.reset_index(drop=True), masks
        self.resolution, self.preprocess = resolution, preprocess
        self.source = images.source
        mask_desc = masks.description if masks is not None else "procedural masks"
        self.description = (f"eval: {images.description}; {len(self.manifest)} manifest rows "
                            f"(one mask per bucket per image); masks: {mask_desc}; {resolution}px")

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict:
        tune_worker_malloc()
        row = self.manifest.iloc[index]
        img = self.images.load(self.images.index_of(row["image"]), self.resolution, self.preprocess)
        mask = load_manifest_mask(row["mask"], self.resolution, self.masks)
        return dict(image=image_to_tensor(img), mask=mask_to_tensor(mask), name=row["image"],
                    ratio=float(row["ratio"]), mask_name=row["mask"], bucket=row["bucket"],
                    paper_range=row["paper_range"])
