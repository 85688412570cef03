"""Where the data is: argument > ``ISFR_DATA_ROOT`` > synthetic faces (docs/conventions.md)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .celeba import IMAGE_DIR, PARTITION_FILE
from .folder import IMAGE_EXTENSIONS
from .masks import MASK_DIR

ENV_VAR = "ISFR_DATA_ROOT"
SYNTHETIC = "synthetic"
MASKS_DIR = "nvidia_irregular_masks"
Kind = Literal["celeba", "folder", "synthetic"]


@dataclass(frozen=True)
class DataRoot:
    """A resolved data root: ``kind``, image ``path`` (None if synthetic), NVIDIA ``masks`` folder if found."""

    kind: Kind
    path: Path | None
    masks: Path | None
    description: str


def _is_celeba(p: Path) -> bool:
    return (p / IMAGE_DIR).is_dir() or (p / PARTITION_FILE).is_file()


def _find_masks(*candidates: Path) -> Path | None:
    return next((c for c in candidates if (c / MASK_DIR).is_dir()), None)


def _has_images(p: Path) -> bool:
    return any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.rglob("*") if MASKS_DIR not in f.parts)


def resolve_data_root(data_root: str | os.PathLike | None = None) -> DataRoot:
    """Resolve the data root; ``"synthetic"`` (or nothing set) gives synthetic faces with a warning.

    A root may be the folder holding ``celeba/`` and ``nvidia_irregular_masks/`` (the shared data
    layout), a CelebA folder itself (masks then looked for beside it), or any folder of face images.
    """
    given = data_root if data_root not in (None, "") else os.environ.get(ENV_VAR) or None
    origin = "argument" if data_root not in (None, "") else ENV_VAR
    if given is None or str(given) == SYNTHETIC:
        why = "requested" if given else f"no data root given (argument or {ENV_VAR})"
        warnings.warn(f"{why}: using SYNTHETIC procedural faces and procedural masks; "
                      f"results are a smoke test, not CelebA numbers", UserWarning, stacklevel=2)
        return DataRoot(SYNTHETIC, None, None, "SYNTHETIC procedural faces (no real data)")
    p = Path(given).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: data root ({origin}) does not exist; set {ENV_VAR} to the folder holding "
                                f"celeba/ and {MASKS_DIR}/, a CelebA folder, or a folder of face images")
    if (p / "celeba").is_dir():
        kind, path, masks = "celeba", p / "celeba", _find_masks(p / MASKS_DIR)
    elif _is_celeba(p):
        kind, path, masks = "celeba", p, _find_masks(p / MASKS_DIR, p.parent / MASKS_DIR)
    elif _has_images(p):
        kind, path, masks = "folder", p, _find_masks(p / MASKS_DIR)
    else:
        raise FileNotFoundError(f"{p}: no CelebA layout ({IMAGE_DIR}/, {PARTITION_FILE}) and no images found; "
                                f"point {ENV_VAR} at real data or use 'synthetic'")
    mask_desc = f"NVIDIA masks at {masks}" if masks else "no NVIDIA masks (procedural masks)"
    return DataRoot(kind, path, masks, f"{kind} images at {path}; {mask_desc}")
