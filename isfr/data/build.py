"""One entry point: :func:`build_dataset` from a :class:`DataConfig` (paper section 4.1 defaults)."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field

from isfr.core.paths import shown_path
from .celeba import CelebA, Protocol
from .datasets import InpaintingEvalDataset, InpaintingTrainDataset
from .folder import ImageFolder
from .images import PREPROCESS, Preprocess
from .manifest import make_manifest, read_manifest
from .masks import NvidiaMasks
from .roots import DataRoot, resolve_data_root
from .sampler import MASK_PROTOCOLS, MaskAugment, MaskProtocol, MaskSampler, train_bank
from .sources import ImageSet
from .splits import Split, SplitFractions, check_split
from .synthetic import SyntheticFaces


@dataclass(frozen=True)
class DataConfig:
    """Everything that decides what the data layer yields."""

    root: str | None = None  # argument > ISFR_DATA_ROOT > synthetic (roots.resolve_data_root)
    resolution: int = 256  # section 4.1: "all images are resized to 256x256"
    preprocess: Preprocess = "center_crop"  # section 4.1 says only "resized"; see isfr.data.images
    protocol: Protocol = "official"  # "paper": section 4.1's seeded random 90/10 split
    mask_protocol: MaskProtocol = "paper"  # section 4.1: NVIDIA test masks for train and test; "leak_free"
    seed: int = 0
    limit: int | None = None  # first `limit` images of the split (smoke runs)
    fractions: SplitFractions = field(default_factory=SplitFractions)  # section 4.1: 10% test
    train_bucket: str | None = None  # section 4.1 "randomly combine": uniform over the six buckets
    mask_augment: MaskAugment | None = None  # not in the paper
    manifest: str | None = None  # evaluation manifest CSV; made with `seed` when None
    cache: str | None = None  # mask cache folder; $ISFR_CACHE or ~/.cache/isfr when None
    synthetic_train: int = 1000  # synthetic mode only: faces in train
    synthetic_eval: int = 100  # synthetic mode only: faces in val / test

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {PREPROCESS}, got {self.preprocess!r}")
        if self.protocol not in ("official", "paper"):
            raise ValueError(f"protocol must be 'official' or 'paper', got {self.protocol!r}")
        if self.mask_protocol not in MASK_PROTOCOLS:
            raise ValueError(f"mask_protocol must be one of {MASK_PROTOCOLS}, got {self.mask_protocol!r}")
        if self.resolution < 8:
            raise ValueError(f"resolution must be >= 8, got {self.resolution}")


def build_images(cfg: DataConfig, split: Split, root: DataRoot) -> ImageSet:
    """The image set of ``split`` for a resolved root (limited to ``cfg.limit``)."""
    if root.kind == "celeba":
        images: ImageSet = CelebA(root.path, split, cfg.protocol, cfg.seed, cfg.fractions)
    elif root.kind == "folder":
        images = ImageFolder(root.path, split, cfg.seed, cfg.fractions)
    else:
        size = cfg.synthetic_train if split in ("train", "all") else cfg.synthetic_eval
        images = SyntheticFaces(size, split, cfg.seed)
    return images.limited(cfg.limit)


def build_from_config(cfg: DataConfig, split: Split = "train") -> InpaintingTrainDataset | InpaintingEvalDataset:
    """Train split: random masks per step (:class:`InpaintingTrainDataset`); other splits: a manifest."""
    check_split(split)
    root = resolve_data_root(cfg.root)
    images = build_images(cfg, split, root)
    needs_nvidia = root.masks is not None and (split != "train" or cfg.mask_protocol == "paper")
    nvidia = NvidiaMasks(root.masks, cfg.resolution, cfg.cache) if needs_nvidia else None
    if split == "train":
        if cfg.mask_protocol == "paper" and nvidia is None and root.kind != "synthetic":
            warnings.warn(f"NVIDIA masks not found beside {shown_path(root.path)}: training with procedural masks",
                          UserWarning, stacklevel=2)
        bank = train_bank(cfg.mask_protocol, cfg.resolution, nvidia)
        sampler = MaskSampler(bank, cfg.train_bucket, cfg.mask_augment)
        ds: InpaintingTrainDataset | InpaintingEvalDataset = InpaintingTrainDataset(
            images, sampler, cfg.resolution, cfg.preprocess, cfg.seed)
    else:
        if cfg.manifest:  # a saved manifest, restricted to the (possibly limited) images
            manifest = read_manifest(cfg.manifest)
            manifest = manifest[manifest["image"].isin(set(images.names))]
        else:
            manifest = make_manifest(images.names, nvidia, cfg.resolution, cfg.seed)
        ds = InpaintingEvalDataset(images, manifest, cfg.resolution, cfg.preprocess, nvidia)
    ds.data_root, ds.config = root, cfg
    return ds


def build_dataset(
    root: str | os.PathLike | None = None, split: Split = "train", resolution: int = 256,
    preprocess: Preprocess = "center_crop", protocol: Protocol = "official", mask_protocol: MaskProtocol = "paper",
    seed: int = 0, limit: int | None = None, **options,
) -> InpaintingTrainDataset | InpaintingEvalDataset:
    """Build the dataset of ``split``; ``options`` are the remaining :class:`DataConfig` fields."""
    cfg = DataConfig(root=None if root is None else os.fspath(root), resolution=resolution,
                     preprocess=preprocess, protocol=protocol, mask_protocol=mask_protocol, seed=seed,
                     limit=limit, **options)
    return build_from_config(cfg, split)


def config_dict(cfg: DataConfig) -> dict:
    """``cfg`` as a plain dict (for logging next to results)."""
    return asdict(cfg)
