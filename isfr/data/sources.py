"""Image sets: an ordered list of named images that can be loaded square at any resolution."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .images import Preprocess, load_square


class ImageSet:
    """Base class: ``names`` (ordered), ``source`` ("celeba" | "folder" | "synthetic"), ``description``.

    Subclasses implement :meth:`load`, returning an RGB ``resolution`` x ``resolution`` image.
    """

    source: str = "unknown"
    description: str = ""
    split: str = "all"
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int, resolution: int, preprocess: Preprocess = "center_crop") -> Image.Image:
        raise NotImplementedError

    def index_of(self, name: str) -> int:
        """Position of ``name`` (``KeyError`` naming it when absent)."""
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            lookup = self.__dict__["_lookup"] = {n: i for i, n in enumerate(self.names)}
        try:
            return lookup[name]
        except KeyError:
            raise KeyError(f"image {name!r} is not in {self.description}") from None

    def limited(self, limit: int | None) -> "ImageSet":
        """The first ``limit`` images (all when ``None``); descriptions say so."""
        if limit is None or limit >= len(self.names):
            return self
        clone = object.__new__(type(self))
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_lookup"})
        clone.names = list(self.names[:limit])
        clone.description = f"{self.description} (first {limit})"
        return clone


class ImageFiles(ImageSet):
    """Image files under ``root`` named by their path relative to it."""

    def __init__(self, root: str | Path, names: list[str], source: str, description: str, split: str = "all"):
        self.root = Path(root)
        self.names = list(names)
        self.source = source
        self.description = description
        self.split = split

    def path(self, index: int) -> Path:
        return self.root / self.names[index]

    def load(self, index: int, resolution: int, preprocess: Preprocess = "center_crop") -> Image.Image:
        return load_square(self.path(index), resolution, preprocess)
