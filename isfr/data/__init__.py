"""Data layer: CelebA / image folders / synthetic faces paired with NVIDIA or procedural masks.

Paper section 4.1: CelebA images resized to 256x256, paired at random with the NVIDIA Irregular
Mask Dataset's testing set (six hole-ratio buckets, 0-10% ... 50-60%); results are reported for
the ranges 20-40% and 40-60%. Conventions (tensor ranges, mask polarity, buckets) are in
docs/conventions.md.

Public API
----------
Entry points
    ``resolve_data_root(data_root=None) -> DataRoot``  (kind, path, masks, description)
    ``build_dataset(root=None, split="train", resolution=256, preprocess="center_crop",
    protocol="official", mask_protocol="paper", seed=0, limit=None, **options)``
    -> ``InpaintingTrainDataset`` (split "train") | ``InpaintingEvalDataset`` (other splits);
    ``DataConfig`` holds every option; ``build_from_config(cfg, split)``.
Datasets (items: ``image`` (3,H,W) in [-1,1], ``mask`` (1,H,W) in {0,1} with 1 = hole, ``name``,
``ratio``, ``mask_name``; eval adds ``bucket``, ``paper_range``)
    ``InpaintingTrainDataset(images, sampler, resolution, preprocess, seed)`` with ``set_epoch``;
    ``InpaintingEvalDataset(images, manifest, resolution, preprocess, masks)``.
Images
    ``CelebA(root, split, protocol, seed, fractions)`` (``.identities``), ``ImageFolder(root, split,
    seed, fractions)``, ``SyntheticFaces(size, split, seed)``, ``draw_face(seed, index, resolution)``;
    ``load_rgb(path)``, ``load_square(path, resolution, preprocess)``, ``image_to_tensor``,
    ``tensor_to_image``; ``SplitFractions``, ``seeded_split``, ``read_partition``, ``read_identities``.
Masks
    ``BUCKETS``, ``PAPER_RANGES``, ``bucket_of(ratio)``, ``in_bucket(ratio, name)``,
    ``paper_range_of(ratio)``; ``NvidiaMasks(root, resolution, cache)``, ``load_mask(path, resolution)``;
    ``procedural_mask(bucket, resolution, seed)``; ``MaskSampler(bank, bucket, augment)``,
    ``MaskAugment``, ``NvidiaBank``, ``ProceduralMasks``, ``train_bank(mask_protocol, resolution, nvidia)``.
Manifest
    ``make_manifest(images, masks, resolution, seed)``, ``write_manifest(df, path) -> hash``,
    ``read_manifest(path)``, ``manifest_hash(df)``.
"""

from .buckets import BUCKETS, PAPER_RANGES, bucket_of, in_bucket, paper_range_of
from .build import DataConfig, build_dataset, build_from_config, build_images
from .celeba import CelebA, read_identities, read_partition
from .datasets import InpaintingEvalDataset, InpaintingTrainDataset
from .folder import ImageFolder, list_images
from .identity import DataIdentity, data_identity
from .images import image_to_tensor, load_rgb, load_square, tensor_to_image, to_square
from .manifest import load_manifest_mask, make_manifest, manifest_hash, read_manifest, write_manifest
from .masks import NvidiaMasks, load_mask
from .procedural import ProceduralMasks, procedural_mask
from .roots import DataRoot, resolve_data_root
from .sampler import MaskAugment, MaskSampler, NvidiaBank, train_bank
from .sources import ImageFiles, ImageSet
from .splits import SplitFractions, seeded_split
from .synthetic import SyntheticFaces, draw_face

__all__ = [
    "BUCKETS", "PAPER_RANGES", "bucket_of", "in_bucket", "paper_range_of",
    "DataConfig", "build_dataset", "build_from_config", "build_images",
    "CelebA", "read_identities", "read_partition",
    "InpaintingEvalDataset", "InpaintingTrainDataset",
    "DataIdentity", "data_identity",
    "ImageFolder", "list_images",
    "image_to_tensor", "load_rgb", "load_square", "tensor_to_image", "to_square",
    "load_manifest_mask", "make_manifest", "manifest_hash", "read_manifest", "write_manifest",
    "NvidiaMasks", "load_mask",
    "ProceduralMasks", "procedural_mask",
    "DataRoot", "resolve_data_root",
    "MaskAugment", "MaskSampler", "NvidiaBank", "train_bank",
    "ImageFiles", "ImageSet",
    "SplitFractions", "seeded_split",
    "SyntheticFaces", "draw_face",
]
