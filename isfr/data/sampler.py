"""Training-time mask sampling: a bucket (or uniform over buckets), a mask from a bank, augmentation.

The paper (section 4.1) combines CelebA images with NVIDIA masks "randomly" and mentions no mask
augmentation, so augmentation is off by default. The sampler never raises mid-training: an
augmented mask that ends up empty or outside the requested bucket is redrawn (up to
``max_tries``), then the un-augmented mask (inside its bucket by construction) is used. Without
a requested bucket the returned ratio is simply re-measured (re-bucketed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from PIL import Image, ImageFilter

from .buckets import BUCKETS, in_bucket, members
from .masks import NvidiaMasks
from .procedural import ProceduralMasks

MaskProtocol = Literal["paper", "leak_free"]
MASK_PROTOCOLS: tuple[str, ...] = ("paper", "leak_free")


class MaskBank(Protocol):
    resolution: int
    description: str

    def draw(self, bucket: str, rng: np.random.Generator) -> tuple[np.ndarray, str]: ...


class NvidiaBank:
    """Draws NVIDIA masks whose ratio at the working resolution is in the requested bucket."""

    source = "nvidia"

    def __init__(self, masks: NvidiaMasks):
        self.masks, self.resolution, self.description = masks, masks.resolution, masks.description
        self._by_bucket = {b: masks.indices_in(b) for b in BUCKETS}

    def available(self, bucket: str) -> bool:
        return any(len(self._by_bucket[b]) for b in members(bucket))

    def draw(self, bucket: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        idx = np.concatenate([self._by_bucket[b] for b in members(bucket)])
        i = int(idx[rng.integers(len(idx))])
        return self.masks.mask(i), self.masks.names[i]


@dataclass(frozen=True)
class MaskAugment:
    """Random mask augmentation (not in the paper; off unless asked for)."""

    flip: bool = True  # random horizontal and vertical flips
    rot90: bool = True  # random multiple of 90 degrees
    max_dilation: int = 0  # dilate by 0..max_dilation px (square MaxFilter)

    def __call__(self, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.flip:
            if rng.random() < 0.5:
                mask = mask[:, ::-1]
            if rng.random() < 0.5:
                mask = mask[::-1, :]
        if self.rot90:
            mask = np.rot90(mask, int(rng.integers(4)))
        if self.max_dilation > 0 and (d := int(rng.integers(self.max_dilation + 1))):
            img = Image.fromarray(np.ascontiguousarray(mask).astype(np.uint8) * 255)
            mask = np.asarray(img.filter(ImageFilter.MaxFilter(2 * d + 1))) > 0
        return np.ascontiguousarray(mask)


class MaskSampler:
    """Draws (mask, ratio, name) for training from ``bank``; ``bucket=None`` means uniform over buckets."""

    def __init__(
        self, bank: MaskBank, bucket: str | None = None, augment: MaskAugment | None = None, max_tries: int = 8
    ):
        self.bank, self.bucket, self.augment, self.max_tries = bank, bucket, augment, max_tries
        wanted = members(bucket) if bucket else BUCKETS
        avail = getattr(bank, "available", lambda b: True)
        self.choices = tuple(b for b in wanted if avail(b))
        if not self.choices:  # fail at construction, never mid-training
            raise ValueError(f"{bank.description} has no mask in bucket {bucket or BUCKETS}")
        self.description = f"{bank.description}; bucket {bucket or 'uniform over ' + ', '.join(self.choices)}"

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, float, str]:
        """A bool (H, W) mask (True = hole), its ratio at this resolution and its source name."""
        fallback = None
        for _ in range(self.max_tries):
            bucket = self.choices[int(rng.integers(len(self.choices)))]
            mask, name = self.bank.draw(bucket, rng)
            fallback = fallback or (mask, float(mask.mean()), name)
            if self.augment is None:
                return fallback
            aug = self.augment(mask, rng)
            ratio = float(aug.mean())
            if ratio > 0 and (self.bucket is None or in_bucket(ratio, self.bucket)):
                return aug, ratio, name
        return fallback


def train_bank(
    mask_protocol: MaskProtocol, resolution: int, nvidia: NvidiaMasks | None
) -> NvidiaBank | ProceduralMasks:
    """The training mask bank: NVIDIA masks (``"paper"``, section 4.1) or procedural (``"leak_free"``).

    Falls back to procedural masks when the NVIDIA set is absent (synthetic mode).
    """
    if mask_protocol not in MASK_PROTOCOLS:
        raise ValueError(f"mask_protocol must be one of {MASK_PROTOCOLS}, got {mask_protocol!r}")
    if mask_protocol == "paper" and nvidia is not None:
        return NvidiaBank(nvidia)
    return ProceduralMasks(resolution)
