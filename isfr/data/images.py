"""Robust image loading and square preprocessing to the working resolution (paper section 4.1).

Decisions (all documented here once):

* **Corrupt files.** A file is read once, ``PIL.Image.verify``-ed (PNG CRCs, headers) and then
  decoded fully; any decoder error (unidentified format, truncated data, bad CRC) becomes a
  ``ValueError`` that names the file and says to re-download or remove it (``fix=`` gives other
  advice, e.g. for a user's photo in :mod:`isfr.apps.inpaint`). Pillow's global
  ``LOAD_TRUNCATED_IMAGES`` is never switched on, so truncated JPEGs fail instead of being
  silently padded with grey.
* **Modes.** Everything becomes 8-bit RGB: ``1``/``L``/``P``/``CMYK``/``YCbCr`` via Pillow's
  converters; images with alpha (``RGBA``, ``LA``, ``PA``, ``P`` with transparency) are
  **composited on white** (dropping alpha would expose arbitrary colours stored under fully
  transparent pixels); 16-bit and 32-bit integer greyscale (``I;16*``, ``I``) are scaled by
  1/257 (65535 -> 255); float ``F`` images are taken to hold [0, 1]. Pillow already reduces
  48-bit RGB PNGs to 8 bits per channel when opening them.
* **Square.** The paper only says images are "resized to 256x256" (section 4.1). The default
  ``preprocess="center_crop"`` takes the central square (178x178 of CelebA's 178x218) and resizes
  it, keeping the face's aspect ratio; ``"resize"`` squashes the full frame (faces become ~18%
  wider), which is what a literal reading of "resized" gives.
* **Resampling.** ``BICUBIC`` both ways. Pillow's resize is convolution based, so downsizing is
  antialiased (area-like); ``reducing_gap=3`` lets it box-reduce by an integer factor first for
  speed with no visible difference. For JPEGs, ``Image.draft`` first lets libjpeg decode at
  1/2, 1/4 or 1/8 scale (DCT scaling) while keeping the square at least ``resolution`` wide.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

Preprocess = Literal["center_crop", "resize", "ffhq"]
PREPROCESS: tuple[str, ...] = ("center_crop", "resize", "ffhq")
RESAMPLE = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_FIX = "re-download it or remove it from the dataset folder"


def _open_verified(path: Path, fix: str = _FIX) -> Image.Image:
    """Read ``path`` once, verify it, and return an opened (not yet decoded) image."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file not found; check the data root or {fix}") from None
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:  # its text names the BytesIO, not the file
        raise ValueError(f"{path}: not an image file (no image format Pillow knows, whatever its suffix); "
                         f"{fix}") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: corrupt or unreadable image ({err}); {fix}") from err


def _decode(img: Image.Image, path: Path, fix: str = _FIX) -> Image.Image:
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: corrupt or truncated image ({err}); {fix}") from err
    return img


def to_rgb8(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited on white; see module docstring)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(to_uint8_array(img)).convert("RGB")
    return img.convert("RGB")


def to_uint8_array(img: Image.Image) -> np.ndarray:
    """Single-channel image as ``uint8`` (16/32-bit integers / 257, float ``F`` as [0, 1])."""
    if img.mode.startswith("I"):
        arr = np.asarray(img).astype(np.float64) / 257.0
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64) * 255.0
    else:
        return np.asarray(img.convert("L"))
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def load_image(path: str | os.PathLike, fix: str = _FIX) -> Image.Image:
    """Load ``path`` verified and fully decoded, in its own mode; errors as :func:`load_rgb`."""
    path = Path(path)
    return _decode(_open_verified(path, fix), path, fix)


def load_rgb(path: str | os.PathLike, fix: str = _FIX) -> Image.Image:
    """Load ``path`` as an 8-bit RGB ``PIL.Image`` at its native size.

    Raises ``FileNotFoundError`` (missing) or ``ValueError`` (corrupt / truncated), naming the file
    and ending with ``fix`` (default: re-download it or remove it from the dataset folder).
    """
    return to_rgb8(load_image(path, fix))


def _crop_box(size: tuple[int, int], preprocess: Preprocess) -> tuple[int, int, int, int]:
    w, h = size
    if preprocess == "resize":
        return (0, 0, w, h)
    if preprocess != "center_crop":
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return (left, top, left + s, top + s)


def to_square(img: Image.Image, resolution: int, preprocess: Preprocess = "center_crop") -> Image.Image:
    """Crop (``center_crop``) or not (``resize``) and resize to ``resolution`` x ``resolution``."""
    box = _crop_box(img.size, preprocess)
    return img.resize((resolution, resolution), RESAMPLE, box=box, reducing_gap=REDUCING_GAP)


def load_square(path: str | os.PathLike, resolution: int, preprocess: Preprocess = "center_crop") -> Image.Image:
    """Load ``path`` as RGB ``resolution`` x ``resolution`` (JPEG DCT-scaled decode when smaller).

    ``preprocess="ffhq"`` re-aligns the face the way FFHQ was aligned (dlib's 68 landmarks, offline;
    :func:`isfr.data.align.ffhq_align`), which the pretrained pSp of the paper preset expects; a
    photo where no face is found falls back to ``center_crop`` with a warning. It costs a face
    detection per image (tens of ms): meant for the paper preset's DataLoader workers.
    """
    path = Path(path)
    if preprocess == "ffhq":
        from .align import ffhq_align

        img = load_rgb(path)
        try:
            return ffhq_align(img, resolution, name=str(path))[0]
        except ValueError as err:
            warnings.warn(f"{err}; using center_crop for this image", RuntimeWarning, stacklevel=2)
            return to_square(img, resolution, "center_crop")
    img = _open_verified(path)
    w, h = img.size
    s = min(w, h) if preprocess == "center_crop" else None
    want = (-(-resolution * w // s), -(-resolution * h // s)) if s else (resolution, resolution)
    if img.format == "JPEG" and want[0] < w and want[1] < h:
        img.draft(img.mode, want)  # keeps the decoded size >= want
    return to_square(to_rgb8(_decode(img, path)), resolution, preprocess)


def image_to_tensor(img: Image.Image | np.ndarray) -> torch.Tensor:
    """RGB uint8 image (H, W, 3) -> float32 tensor (3, H, W) in [-1, 1] (docs/conventions.md)."""
    chw = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    out = np.empty(chw.shape, np.float32)
    np.divide(chw, np.float32(127.5), out=out, dtype=np.float32)  # numpy: no torch intra-op threads here
    out -= np.float32(1.0)
    return torch.from_numpy(out)


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [-1, 1] -> RGB ``PIL.Image`` (for figures and notebooks)."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return Image.fromarray(arr.permute(1, 2, 0).numpy())
