"""CelebA in its official layout (paper section 4.1).

Expected layout under ``root``::

    img_align_celeba/000001.jpg ...   aligned-and-cropped 178x218 JPEGs
    list_eval_partition.txt           "<file> <0|1|2>"  (0 train, 1 val, 2 test)
    identity_CelebA.txt               "<file> <identity id>"  (optional; identities only)

Protocols: ``"official"`` uses the partition file; ``"paper"`` reproduces section 4.1, a seeded
random 90/10 train/test split over every listed image, with val carved from train
(:class:`~isfr.data.splits.SplitFractions`).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import pandas as pd

from isfr.core.paths import shown_path
from .sources import ImageFiles
from .splits import Split, SplitFractions, check_split, seeded_split

Protocol = Literal["official", "paper"]
IMAGE_DIR = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
OFFICIAL_CODES = {"train": 0, "val": 1, "test": 2}
_LAYOUT = (
    f"expected <root>/{IMAGE_DIR}/*.jpg, <root>/{PARTITION_FILE} and optionally <root>/{IDENTITY_FILE}; "
    "pass the CelebA folder (or the folder holding celeba/) as data root or set ISFR_DATA_ROOT"
)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: CelebA {what} not found; {_LAYOUT}")
    return path


def _read_two_columns(path: Path, second: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, names=["image", second], dtype={"image": str})
        df[second] = df[second].astype(int)
    except (ValueError, pd.errors.ParserError) as err:
        raise ValueError(f"{path}: malformed, expected lines '<file> <integer>' ({err}); re-download it") from err
    return df


def read_partition(root: str | Path) -> pd.DataFrame:
    """``list_eval_partition.txt`` as a DataFrame (``image``, ``partition`` in {0, 1, 2})."""
    path = _require(Path(root) / PARTITION_FILE, "partition file")
    df = _read_two_columns(path, "partition")
    if not df["partition"].isin([0, 1, 2]).all():
        raise ValueError(f"{path}: partition codes must be 0, 1 or 2; re-download it")
    return df


def read_identities(root: str | Path) -> dict[str, int]:
    """``identity_CelebA.txt`` as ``{file name: identity id}``."""
    df = _read_two_columns(_require(Path(root) / IDENTITY_FILE, "identity file"), "identity")
    return dict(zip(df["image"], df["identity"]))


def celeba_names(
    root: str | Path, split: Split, protocol: Protocol = "official", seed: int = 0,
    fractions: SplitFractions = SplitFractions(),
) -> list[str]:
    """Sorted file names of ``split`` under ``protocol`` (``seed``/``fractions``: paper protocol only)."""
    check_split(split)
    if protocol not in ("official", "paper"):
        raise ValueError(f"protocol must be 'official' or 'paper', got {protocol!r}")
    part = read_partition(root)
    if protocol == "paper":
        return seeded_split(part["image"].tolist(), split, seed, fractions)
    keep = part if split == "all" else part[part["partition"] == OFFICIAL_CODES[split]]
    return sorted(keep["image"])


class CelebA(ImageFiles):
    """The ``split`` of CelebA at ``root`` (see module docstring); ``identities`` maps name -> id."""

    def __init__(
        self, root: str | Path, split: Split = "train", protocol: Protocol = "official", seed: int = 0,
        fractions: SplitFractions = SplitFractions(),
    ):
        root = Path(root)
        _require(root, "folder")
        _require(root / IMAGE_DIR, "image folder")
        names = celeba_names(root, split, protocol, seed, fractions)
        extra = f", seed {seed}" if protocol == "paper" else ""
        super().__init__(
            root / IMAGE_DIR, names, "celeba",
            f"CelebA {split} split ({protocol} protocol{extra}, {len(names)} images) at {shown_path(root)}", split,
        )
        self.celeba_root = root
        self.protocol = protocol

    @cached_property
    def identities(self) -> dict[str, int]:
        """``{file name: identity id}`` from ``identity_CelebA.txt`` (all listed images)."""
        return read_identities(self.celeba_root)
