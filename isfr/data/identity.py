"""What a run was trained on: the data source's kind and a fingerprint of what was read.

A run folder, ``config.json``, ``done.json``, every exported checkpoint and every provenance line
carry :func:`data_identity` (``celeba-1a2b3c4d``), so a run trained on synthetic faces is never
reused by a run on CelebA, nor the reverse. The fingerprint hashes what decides the training and
evaluation data, never where it lies on disk: the image names of every split (after ``limit``), the
split protocol and seed, the preprocessing, and the mask file names (NVIDIA) or the procedural
generator's version and seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

from .build import DataConfig, build_images
from .masks import MASK_DIR
from .procedural import GENERATOR_VERSION
from .roots import DataRoot, resolve_data_root

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataIdentity:
    """``kind`` (celeba | folder | synthetic), ``fingerprint`` (8 hex), ``images`` per split, ``masks``."""

    kind: str
    fingerprint: str
    images: tuple[tuple[str, int], ...]
    masks: str

    @property
    def tag(self) -> str:
        """``<kind>-<fingerprint>``: the folder a run of this data lives in, and its provenance word."""
        return f"{self.kind}-{self.fingerprint}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "fingerprint": self.fingerprint, "tag": self.tag,
                "images": dict(self.images), "masks": self.masks}


def _mask_files(root: DataRoot) -> list[str]:
    folder = root.masks / MASK_DIR if root.masks is not None else None
    return sorted(p.name for p in folder.glob("*.png")) if folder is not None and folder.is_dir() else []


@lru_cache(maxsize=32)
def _identity(root: DataRoot, cfg: DataConfig) -> DataIdentity:
    h = hashlib.sha256()
    counts = []
    for split in SPLITS:
        names = build_images(cfg, split, root).names
        counts.append((split, len(names)))
        h.update(json.dumps([split, names]).encode())
    files = _mask_files(root)
    if files and (cfg.mask_protocol == "paper"):
        masks = f"nvidia ({len(files)} files)"
        h.update(json.dumps(["nvidia", files]).encode())
    elif files:  # NVIDIA masks score the eval splits; training draws procedural masks
        masks = f"procedural v{GENERATOR_VERSION} seed {cfg.seed} (train) + nvidia ({len(files)} files, eval)"
        h.update(json.dumps(["procedural+nvidia", GENERATOR_VERSION, files]).encode())
    else:
        masks = f"procedural v{GENERATOR_VERSION} seed {cfg.seed}"
        h.update(json.dumps(["procedural", GENERATOR_VERSION]).encode())
    fields = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k in ("protocol", "preprocess", "seed", "limit", "fractions", "mask_protocol", "train_bucket",
                       "mask_augment", "synthetic_train", "synthetic_eval")}
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return DataIdentity(root.kind, h.hexdigest()[:8], tuple(counts), masks)


def data_identity(cfg: DataConfig) -> DataIdentity:
    """The identity of the data ``cfg`` reads (root resolved as :func:`resolve_data_root` does; cached)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic warning is for whoever loads the data, not for a key
        root = resolve_data_root(cfg.root)
    return _identity(root, dataclasses.replace(cfg, root=None, manifest=None, cache=None))
