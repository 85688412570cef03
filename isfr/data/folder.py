"""Any folder of aligned face images (jpg/png/webp/...), listed recursively and sorted."""

from __future__ import annotations

from pathlib import Path

from isfr.core.paths import shown_path
from .sources import ImageFiles
from .splits import Split, SplitFractions, seeded_split

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
EXCLUDED_DIRS: frozenset[str] = frozenset({"nvidia_irregular_masks"})  # masks living beside the faces


def list_images(root: str | Path) -> list[str]:
    """Sorted POSIX paths (relative to ``root``) of image files, skipping hidden and mask folders."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found; pass an existing folder or set ISFR_DATA_ROOT")
    names = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") or part in EXCLUDED_DIRS for part in rel.parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            names.append(rel.as_posix())
    return sorted(names)


class ImageFolder(ImageFiles):
    """A seeded split of the images under ``root`` (fractions as the paper protocol, section 4.1)."""

    def __init__(
        self, root: str | Path, split: Split = "train", seed: int = 0, fractions: SplitFractions = SplitFractions()
    ):
        all_names = list_images(root)
        if not all_names:
            raise FileNotFoundError(f"{root}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) found")
        names = seeded_split(all_names, split, seed, fractions)
        desc = f"image folder {shown_path(root)}, {split} split (seed {seed}, {len(names)} of {len(all_names)} images)"
        super().__init__(root, names, "folder", desc, split)
