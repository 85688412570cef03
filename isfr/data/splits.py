"""Seeded train/val/test splits (paper section 4.1: a random 90/10 train/test split)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Split = Literal["train", "val", "test", "all"]
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of a seeded random split.

    ``test`` is taken from all images; ``val`` is then carved from what remains (the paper's
    training 90%), so the paper's test set stays untouched and train + val = 90%.
    """

    test: float = 0.1  # section 4.1: 20,260 of 202,599 CelebA images for testing
    val: float = 0.05  # not in the paper (it reports no validation set): a small seeded slice of train

    def __post_init__(self) -> None:
        if not (0 <= self.test < 1 and 0 <= self.val < 1):
            raise ValueError(f"split fractions must lie in [0, 1): test={self.test}, val={self.val}")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def seeded_split(
    names: Sequence[str], split: Split, seed: int = 0, fractions: SplitFractions = SplitFractions()
) -> list[str]:
    """The ``split`` part of a seeded random permutation of ``sorted(names)``, returned sorted.

    ``n_test = round(test * n)`` (202,599 -> 20,260 as in section 4.1), ``n_val = round(val *
    (n - n_test))``, the rest is train. The same (names, seed, fractions) always give the same split.
    """
    check_split(split)
    ordered = sorted(names)
    if split == "all":
        return ordered
    n = len(ordered)
    n_test = int(round(fractions.test * n))
    n_val = int(round(fractions.val * (n - n_test)))
    perm = np.random.default_rng(seed).permutation(n)
    parts = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
    return [ordered[i] for i in sorted(parts[split])]
