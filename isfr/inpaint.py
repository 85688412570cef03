"""Use a trained ISFRNet: fill the holes of photos (``isfr inpaint``), score a checkpoint (``isfr evaluate``).

Inpainting a photo (:func:`inpaint_image`, :func:`inpaint_file`, :func:`inpaint_folder`):

* The **mask** is given in the original photo's frame (white = hole, thresholded at 128 as
  :func:`isfr.data.load_mask`); a mask of another size is resized to the photo (with a warning).
  A mask with no hole pixels writes the photo unchanged (with a warning).
* ``align=True`` (default): the face is aligned the way the training data is framed
  (:func:`isfr.data.align.aligner_for` the ``preprocess`` the file records: CelebA framing, or FFHQ
  framing for a model trained with ``preprocess="ffhq"``, at the model's resolution), inpainted, and
  the result is warped back into the photo, changing hole pixels only; the output has the photo's
  size. ``align=False`` (the photo is already an aligned face): the photo is center-cropped and
  resized like training images (:func:`isfr.data.to_square`); the output is at the model's resolution.
* The hole at the working resolution covers every pixel the original hole touches (masks are
  resampled with the image's filter and any coverage counts), so no hole content leaks into the
  model's known pixels.
* Errors name the file: unreadable / non-image inputs are ``ValueError``, a missing file or
  checkpoint ``FileNotFoundError``, an existing output without ``overwrite`` ``FileExistsError``.
  Outputs are written atomically (temp file + ``os.replace``): never half-written.

Scoring (:func:`evaluate_checkpoint`): the manifest pairs of a data split at the checkpoint's
resolution, :func:`isfr.evaluation.evaluate` + :func:`~isfr.evaluation.summarise`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .utils import atomic_path
from .data.folder import IMAGE_EXTENSIONS
from .data.images import image_to_tensor, load_rgb, tensor_to_image, to_square
from .data.masks import THRESHOLD, load_mask
from .models.isfrnet import ISFRNet

HOW_TO_GET = ("make one with `isfr train --preset small`, then notebook 04 or "
              "`isfr.training.pipeline.export_pipeline(get_preset('small'))` (writes runs/small/isfrnet_full.pt); "
              "CPU / GPU time per preset is in the README")
COVER = 2.0 / 255.0  # a working-resolution pixel is a hole when the resampled mask exceeds this
OUTPUT_NAME = "{stem}.png"  # folder mode: one PNG per photo
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF"}


# ---------------------------------------------------------------- model
def load_model(checkpoint: str | os.PathLike, device: str | torch.device | None = None) -> ISFRNet:
    """:meth:`ISFRNet.from_checkpoint` on ``device`` (CUDA when available, else CPU), in eval mode."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ISFRNet checkpoint not found; {HOW_TO_GET}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return ISFRNet.from_checkpoint(path, map_location=device)


def checkpoint_info(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """What a pipeline file records besides its weights (``preset``, ``variant``, ``commit``, ``config``)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return {k: v for k, v in ckpt.items() if k != "state_dict"} if isinstance(ckpt, dict) else {}


def _model(model: ISFRNet | str | os.PathLike) -> ISFRNet:
    return model if isinstance(model, torch.nn.Module) else load_model(model)


# ---------------------------------------------------------------- files
def _check_image_suffix(path: Path, what: str) -> None:
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{path}: not an image file ({path.suffix or 'no suffix'}); the {what} must be one of "
                         f"{', '.join(sorted(IMAGE_EXTENSIONS))}")


def _image_file(path: str | os.PathLike, what: str, if_folder: str, if_missing: str) -> Path:
    """``path`` if it is an existing image file; else the error for a folder, a missing file or a non-image."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; {if_folder}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} not found; {if_missing}")
    _check_image_suffix(path, what)
    return path


def read_photo(path: str | os.PathLike) -> Image.Image:
    """The photo as RGB at its native size (``ValueError`` / ``FileNotFoundError`` naming the file)."""
    path = _image_file(path, "photo", "pass a folder of photos together with a folder of masks", "check the path")
    return load_rgb(path)


def read_hole_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """The mask file as bool (H, W) at the photo's ``size`` (W, H), True = hole; resized with a warning."""
    path = _image_file(path, "mask", "a single photo needs a single mask file",
                       "check the path (white = hole, same size as the photo)")
    hole = load_mask(path)
    if hole.shape != (size[1], size[0]):
        warnings.warn(f"{path}: mask is {hole.shape[1]}x{hole.shape[0]} but the photo is {size[0]}x{size[1]}; "
                      "resizing the mask to the photo", UserWarning, stacklevel=3)
        img = Image.fromarray(hole.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)
        hole = np.asarray(img) >= THRESHOLD
    return hole


def _save(img: Image.Image, out: Path) -> None:
    with atomic_path(out) as tmp:
        fmt = _FORMATS[out.suffix.lower()]
        img.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in _FORMATS:
        raise ValueError(f"{out}: unsupported output type ({out.suffix or 'no suffix'}); "
                         f"use one of {', '.join(sorted(_FORMATS))}")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give an output file name such as {out / 'result.png'}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")


# ---------------------------------------------------------------- inpainting
def working_mask(hole: np.ndarray, resolution: int, transform: Any | None = None) -> np.ndarray:
    """The hole at the model's resolution: aligned by ``transform``, else center-cropped like the photo.

    Covers every working pixel the original hole touches (resampled value > :data:`COVER`).
    """
    from .data.align import warp_image

    if transform is not None:
        cover = warp_image(hole.astype(np.float64), transform, (resolution, resolution), order=1, mode="constant")
    else:
        sq = to_square(Image.fromarray(hole.astype(np.uint8) * 255), resolution)  # same crop + filter as the photo
        cover = np.asarray(sq, dtype=np.float64) / 255.0
    return cover > COVER


@torch.no_grad()
def run_model(model: ISFRNet, image: Image.Image, mask: np.ndarray) -> Image.Image:
    """``model(image, mask)["composite"]`` for one RGB image and bool mask at the model's resolution."""
    model.eval()
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    x = image_to_tensor(image)[None].to(dev)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None].to(dev)
    return tensor_to_image(model(x, m)["composite"][0])


def inpaint_image(photo: Image.Image, hole: np.ndarray, model: ISFRNet, *, align: bool = True,
                  name: str | None = None) -> Image.Image:
    """Inpaint ``photo`` where ``hole`` (bool (H, W) in its frame) is True (module docstring).

    ``align=True``: returns the photo's size, only hole pixels changed; ``False``: the model's resolution.
    """
    from .data.align import aligner_for, paste_back

    r = model.cfg.resolution
    if not align:
        w, h = photo.size
        s = min(w, h)
        inside = np.zeros_like(hole)
        inside[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s] = True
        if (hole & ~inside).any():
            warnings.warn(f"{name or 'photo'}: {(hole & ~inside).sum() / hole.sum():.0%} of the hole lies outside the "
                          "central square that is inpainted (align=False crops the photo)", UserWarning, stacklevel=3)
        return run_model(model, to_square(photo, r), working_mask(hole, r))
    preprocess = getattr(model, "preprocess", "center_crop")  # recorded in the file by export_pipeline
    if preprocess == "resize":
        warnings.warn("the model was trained on squashed (preprocess='resize') faces: the photo is aligned in "
                      "CelebA center-crop framing, the nearest a similarity warp gets", UserWarning, stacklevel=3)
    aligned, t = aligner_for(preprocess)(photo, r, name=name)
    mask_a = working_mask(hole, r, t)
    return paste_back(photo, run_model(model, aligned, mask_a), t, mask_a, mask_original=hole)


def inpaint_file(image_path: str | os.PathLike, mask_path: str | os.PathLike, model: ISFRNet | str | os.PathLike,
                 out_path: str | os.PathLike, *, align: bool = True, overwrite: bool = False) -> Path:
    """Inpaint one photo file with one mask file into ``out_path`` (format from its suffix); returns it."""
    image_path, mask_path, out = Path(image_path), Path(mask_path), Path(out_path)
    _check_output(out, overwrite)
    photo = read_photo(image_path)
    hole = read_hole_mask(mask_path, photo.size)
    if not hole.any():
        warnings.warn(f"{mask_path}: mask has no hole pixels (white = hole); writing {image_path} unchanged to {out}",
                      UserWarning, stacklevel=2)
        same_type = _FORMATS[out.suffix.lower()] == _FORMATS.get(image_path.suffix.lower())
        with atomic_path(out) as tmp:
            if same_type:
                shutil.copyfile(image_path, tmp)
            else:
                photo.save(tmp, format=_FORMATS[out.suffix.lower()])
        return out
    result = inpaint_image(photo, hole, _model(model), align=align, name=str(image_path))
    _save(result, out)
    return out


def _by_stem(folder: Path, what: str) -> dict[str, Path]:
    if folder.is_file():
        raise ValueError(f"{folder} is a file; in folder mode the photos and the masks are both folders")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder not found")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS:
            if p.stem in files:
                raise ValueError(f"{folder}: two {what} files share the name {p.stem!r} ({files[p.stem].name}, "
                                 f"{p.name}); photos and masks are paired by file name without suffix")
            files[p.stem] = p
    if not files:
        raise ValueError(f"{folder}: no {what} images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def inpaint_folder(images_dir: str | os.PathLike, masks_dir: str | os.PathLike, model: ISFRNet | str | os.PathLike,
                   out_dir: str | os.PathLike, *, align: bool = True, overwrite: bool = False,
                   progress: bool = True) -> list[Path]:
    """Inpaint every photo of ``images_dir`` with the mask of the same stem in ``masks_dir``.

    Writes ``out_dir/<stem>.png``. Photos without a mask are skipped with a warning. All outputs are
    checked before any work starts; a photo that fails (e.g. no face found) does not stop the
    others, and a ``ValueError`` listing the failures is raised at the end.
    """
    from tqdm import tqdm

    photos, masks = _by_stem(Path(images_dir), "photo"), _by_stem(Path(masks_dir), "mask")
    pairs = [(s, photos[s], masks[s]) for s in photos if s in masks]
    missing = [s for s in photos if s not in masks]
    if not pairs:
        raise ValueError(f"no photo in {images_dir} has a mask of the same name in {masks_dir} "
                         "(pairs are made by file name without suffix, e.g. 001.jpg + 001.png)")
    if missing:
        warnings.warn(f"{len(missing)} photo(s) without a mask in {masks_dir} skipped: {', '.join(missing[:5])}"
                      + (" ..." if len(missing) > 5 else ""), UserWarning, stacklevel=2)
    out_dir = Path(out_dir)
    outs = [out_dir / OUTPUT_NAME.format(stem=s) for s, _, _ in pairs]
    exists = [o for o in outs if o.exists()]
    if exists and not overwrite:
        raise FileExistsError(f"{len(exists)} output(s) exist in {out_dir} ({', '.join(o.name for o in exists[:5])}"
                              f"{' ...' if len(exists) > 5 else ''}); pass --overwrite to replace them")
    net = _model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, failed = [], []
    for (stem, photo, mask), out in tqdm(list(zip(pairs, outs)), desc="inpaint", unit="photo", disable=not progress):
        try:
            done.append(inpaint_file(photo, mask, net, out, align=align, overwrite=True))
        except (ValueError, OSError) as err:
            failed.append(f"{photo.name}: {err}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(pairs)} photo(s) failed ({len(done)} written to {out_dir}):\n  "
                         + "\n  ".join(failed))
    return done


# ---------------------------------------------------------------- scoring a checkpoint
def evaluate_checkpoint(
    checkpoint: str | os.PathLike, data_root: str | os.PathLike | None = None, split: str = "test", *,
    limit: int | None = None, preset: str | None = None, csv_path: str | os.PathLike | None = None,
    learned_metrics: bool = True, batch_size: int = 8, device: str | None = None, progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a pipeline file on the manifest pairs of ``split`` at its resolution: ``(rows, summary)``.

    ``preset`` (default: the one the file records, else the data defaults) gives the data options
    (protocol, seed); ``limit`` keeps the split's first images (x 6 buckets = pairs).
    ``learned_metrics=False`` skips LPIPS and the identity distance (NaN). ``csv_path`` writes the
    per-image rows. ``summary.attrs["footer"]`` holds the data, provenance, CI and protocol lines.
    """
    from .baselines import isfrnet_method
    from .config import get_preset
    from .data import DataConfig, build_from_config
    from .evaluation import evaluate, provenance, summarise
    from .metrics import load_metric_models

    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    model = load_model(checkpoint, device)
    info = checkpoint_info(checkpoint)
    name = preset or info.get("preset")
    base, seed = (DataConfig(), 0)
    if name:
        p = get_preset(name)
        base, seed = p.data, p.seed
    res = model.cfg.resolution
    cfg = dataclasses.replace(base, root=os.fspath(data_root) if data_root else base.root, resolution=res,
                              limit=limit, seed=seed, manifest=None)
    ds = build_from_config(cfg, split)
    mm = load_metric_models(device=next(model.parameters()).device) if learned_metrics else None
    src = provenance(name, res, f"{ds.source} {split} data, {len(ds)} pairs",
                     f"checkpoint {Path(checkpoint).name}", commit=getattr(model, "commit", None) or "unknown")
    rows = evaluate(isfrnet_method(model, "output"), ds, name="ISFRNet", metric_models=mm, batch_size=batch_size,
                    progress=progress, source=src, csv_path=csv_path)
    summary = summarise(rows)
    summary.attrs["footer"] = "\n".join([f"Data: {ds.description}.", f"Source: {src}.",
                                         f"Values: mean [{summary.attrs.get('ci', '')}].",
                                         rows.attrs.get("protocol", "")])
    return rows, summary


def summary_table(summary: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """Markdown of :func:`evaluate_checkpoint`'s summary (``source`` / ``composite`` moved to the footer)."""
    from .evaluation import to_markdown

    keep = [c for c in summary.columns if c not in ("source", "composite", "id_nan")] if columns is None else columns
    table = summary[list(keep)].copy()
    table.attrs.update(summary.attrs)
    return to_markdown(table)
