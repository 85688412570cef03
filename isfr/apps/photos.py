"""A user's photos and masks as ``isfr inpaint`` reads and writes them: read as viewed (EXIF orientation
applied), a mask's holes (white = hole) at the photo's size, the output written atomically in the format its
suffix names and without the orientation tag; every refusal names the file, the cause and a fix.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

from isfr.core.utils import atomic_path
from isfr.data.folder import IMAGE_EXTENSIONS
from isfr.data.images import load_image, to_rgb8, to_uint8_array
from isfr.data.masks import THRESHOLD

OUTPUT_NAME = "{stem}.png"  # folder mode: one PNG per photo
PHOTO_FIX = "check that it opens in an image viewer and re-save it as PNG or JPEG"


MASK_FIX = "check that it opens in an image viewer and re-save it as a PNG (white = hole)"


MIN_SIDE = 16  # pixels: smaller photos are refused


FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF"}


# ---------------------------------------------------------------- files
def check_image_suffix(path: Path, what: str) -> None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: not an image file ({path.suffix or 'no suffix'}); the {what} must be one of "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}")


def image_file(path: str | os.PathLike, what: str, if_folder: str, if_missing: str) -> Path:
    """``path`` if it is an existing image file; else the error for a folder, a missing file or a non-image."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; {if_folder}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found; {if_missing}")
    check_image_suffix(path, what)
    return path


def as_viewed(img: Image.Image) -> tuple[Image.Image, bool]:
    """``img`` turned the way its EXIF orientation tag says, i.e. as image viewers show it
    (``PIL.ImageOps.exif_transpose``: the tag is dropped), and whether it was turned."""
    if img.getexif().get(ExifTags.Base.Orientation, 1) in (0, 1):
        return img, False
    return ImageOps.exif_transpose(img), True


def read_photo_as_viewed(path: str | os.PathLike) -> tuple[Image.Image, bool]:
    path = image_file(path, "photo", "pass a folder of photos together with a folder of masks", "check the path")
    img, turned = as_viewed(load_image(path, PHOTO_FIX))
    if min(img.size) < MIN_SIDE:
        raise ValueError(f"{path}: the photo is {img.size[0]}x{img.size[1]} pixels, too small to inpaint; "
                         f"use a photo of at least {MIN_SIDE}x{MIN_SIDE} (ideally the model's resolution or more)")
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (img.mode == "P" and "transparency" in img.info):
        clear = np.asarray(img.convert("RGBA").getchannel("A")) < 255
        if clear.any():
            warnings.warn(f"{path}: {clear.mean():.0%} of the photo is (partly) transparent; its alpha channel is "
                          "not used: composited on white, not read as holes (mark holes in the mask)",
                          UserWarning, stacklevel=3)
    return to_rgb8(img), turned


def read_photo(path: str | os.PathLike) -> Image.Image:
    """The photo as RGB at its native size, as viewed (:func:`as_viewed`: an EXIF orientation is applied);
    ``ValueError`` / ``FileNotFoundError`` naming the file.

    Transparent pixels are composited on white with a warning; photos under :data:`MIN_SIDE` px are refused.
    """
    return read_photo_as_viewed(path)[0]


def mask_holes(img: Image.Image) -> np.ndarray:
    """A user's mask image as bool (H, W), True = hole: ``>= 128`` of 0-255 (:data:`THRESHOLD`; 16-bit
    scaled to 8), or ``1`` when the mask's maximum is 1 (a 0/1 mask)."""
    raw = np.asarray(img) if img.mode == "L" or img.mode.startswith("I") else to_uint8_array(img)
    if raw.size and raw.max() == 1:
        return raw >= 1
    return to_uint8_array(img) >= THRESHOLD


def read_hole_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """The mask file as bool (H, W) at the photo's ``size`` (W, H), True = hole (:func:`mask_holes`).

    The mask is read as viewed (:func:`as_viewed`), like the photo. A mask of the photo's aspect ratio but another
    size is resized with a warning; another aspect is an error.
    """
    path = image_file(path, "mask", "a single photo needs a single mask file",
                       "check the path (white = hole, same size as the photo)")
    hole = mask_holes(as_viewed(load_image(path, MASK_FIX))[0])
    (w, h), (mh, mw) = size, hole.shape
    if (mh, mw) != (h, w):
        if abs(mw * h - mh * w) > 0.02 * max(mw * h, mh * w):
            turned = (" (width and height swapped: a phone photo's EXIF orientation turns it; draw the mask on the "
                      "photo as an image viewer shows it)" if (mw, mh) == (h, w) else " (another shape)")
            raise ValueError(f"{path}: the mask is {mw}x{mh} but the photo is {w}x{h} as viewed{turned}; "
                             f"draw the mask on the photo itself, at {w}x{h}")
        warnings.warn(f"{path}: mask is {mw}x{mh} but the photo is {w}x{h}; resizing the mask to the photo",
                      UserWarning, stacklevel=3)
        img = Image.fromarray(hole.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)
        hole = np.asarray(img) >= THRESHOLD
    return hole


def save_photo(img: Image.Image, out: Path) -> None:
    with atomic_path(out) as tmp:
        fmt = FORMATS[out.suffix.lower()]
        img.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))


def check_output(out: Path, overwrite: bool, photo: Path | None = None) -> None:
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give an output file name such as "
                         f"{out / OUTPUT_NAME.format(stem=photo.stem if photo else 'result')} (a folder is the output "
                         "only when the photos are a folder too)")
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out}: unsupported output type ({out.suffix or 'no suffix'}); "
                         f"use one of {', '.join(sorted(FORMATS))}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: the output folder {out.parent} does not exist; create it first "
                                f"(mkdir -p {out.parent}) or write elsewhere")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
