"""Use a trained ISFRNet: fill the holes of photos (``isfr inpaint``), score a checkpoint (``isfr evaluate``).

Inpainting a photo (:func:`inpaint_image`, :func:`inpaint_file`, :func:`inpaint_folder`):

* The **photo**: any mode Pillow reads becomes 8-bit RGB (:func:`isfr.data.images.to_rgb8`: 16-bit
  grey / RGB and CMYK converted). It is read **as viewed**: an EXIF orientation tag (phone photos) is
  applied (:func:`isfr.apps.photos.as_viewed`), and the output is written that way, with no orientation tag. Its **alpha
  channel is not used**: transparent pixels are composited on white, with a warning (they are not
  holes: the mask says where the holes are). Photos under :data:`isfr.apps.photos.MIN_SIDE` pixels a side are refused.
* The **mask** is given in the photo's frame as viewed (it is read as viewed too): white = hole, values ``>= 128`` of 0-255
  (:data:`isfr.data.masks.THRESHOLD`: anti-aliased or blurred edges are cut there); a mask whose
  maximum is 1 is a 0/1 mask, 1 = hole. (The NVIDIA masks of the datasets are read by
  :func:`isfr.data.load_mask`, always at 128.) A mask of the photo's shape but another size is
  resized to the photo (with a warning); another aspect ratio is an error. A mask with no hole
  pixels writes the photo unchanged (with a warning); a mask that is all hole is an error, and a
  hole over :data:`MAX_RATIO` of the photo warns (an inverted mask?).
* ``align=True`` (default): the face is aligned the way the training data is framed
  (:func:`isfr.data.align.aligner_for` the ``preprocess`` the file records: CelebA framing, or FFHQ
  framing for a model trained with ``preprocess="ffhq"``, at the model's resolution), inpainted, and
  the result is warped back into the photo, changing hole pixels only; the output has the photo's
  size. With several faces, the one aligned is the one whose aligned crop holds most of the hole;
  when more than half of the hole lies outside every face's crop, the photo is an error (nothing
  would be filled there). The fill is made at the model's resolution and enlarged to the face's size
  in the photo; when that is more than :data:`UPSCALE_SAID` times, a line says so
  (``filled at 64 px, upscaled x40``): the fill is then softer than the photo around it.
  ``align=False`` (the photo is already an aligned face): the photo is center-cropped and
  resized like training images (:func:`isfr.data.to_square`); the output is at the model's resolution.
* The hole at the working resolution covers every pixel the original hole touches (masks are
  resampled with the image's filter and any coverage counts), so no hole content leaks into the
  model's known pixels.
* Errors name the file, the cause and a fix, on one line: unreadable / non-image inputs and
  checkpoints are ``ValueError``, a missing file, checkpoint or output folder ``FileNotFoundError``,
  an existing output without ``overwrite`` ``FileExistsError``. Outputs are written atomically
  (temp file + ``os.replace``): never half-written, and nothing is written on an error.
* Folder mode (:func:`inpaint_folder`): ``skip_existing`` leaves the photos whose output exists, so a
  rerun carries on; failures are listed one per photo (:class:`FolderErrors`); every warning names
  its file.
* ``align=False`` on a photo smaller than the model's resolution warns that it is upscaled.
  :func:`warn_if_undertrained` warns when the file's model is a smoke-preset model or its runs
  stopped before their schedule finished (``isfr inpaint`` and ``isfr evaluate`` call it).

Scoring (:func:`evaluate_checkpoint`): the manifest pairs of a data split at the checkpoint's
resolution, :func:`isfr.evaluation.evaluate` + :func:`~isfr.evaluation.summarise`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from isfr.apps.photos import FORMATS, OUTPUT_NAME, check_output, read_hole_mask, read_photo_as_viewed, save_photo
from isfr.core.utils import atomic_path, error_line
from isfr.data.folder import IMAGE_EXTENSIONS
from isfr.data.images import image_to_tensor, tensor_to_image, to_square
from isfr.experiments.config import PRESETS
from isfr.models.isfrnet import FORMAT, ISFRNet

HOW_TO_GET = (f"train one with `isfr train --preset <preset>` ({', '.join(PRESETS[:-1])} or {PRESETS[-1]}; it "
              "exports runs/<preset>/<data>/isfrnet_full.pt when done; CPU / GPU time per preset in the README), "
              "or export a trained preset with `isfr export --preset <preset> -o FILE`")


MAX_RATIO = 0.6  # the largest hole ratio of the NVIDIA masks the models are trained on


COVER = 2.0 / 255.0  # a working-resolution pixel is a hole when the resampled mask exceeds this




UPSCALE_SAID = 2.0  # a fill upscaled more than this many times is reported (``report``): it looks soft


Report = Callable[[str], None]  # where the lines for the user go (``isfr inpaint``: stdout)


# ---------------------------------------------------------------- model
ModelLike = ISFRNet | str | os.PathLike | Callable[[], ISFRNet]  # a callable is called once, when needed


def _export_hint(path: Path, preset: str | None = None) -> str:
    name = preset or next((p for p in PRESETS if p in path.parts), "<preset>")
    return f"re-export it with `isfr export --preset {name}` (with the --data-root / --set it was trained with)"


def checkpoint_info(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """What a pipeline file records besides its weights (``format``, ``preset``, ``variant``, ``commit``,
    ``config``; exports also ``steps`` and ``schedule``). Weights are memory-mapped, not read.

    ``FileNotFoundError`` / ``ValueError`` (truncated or not a torch file) name the file and the fix.
    """
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the ISFRNet .pt file (e.g. isfrnet_full.pt), or {HOW_TO_GET}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ISFRNet checkpoint not found; {HOW_TO_GET}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable ISFRNet checkpoint (truncated or not a torch file); "
                         f"{_export_hint(path)}") from err
    return {k: v for k, v in ckpt.items() if k != "state_dict"} if isinstance(ckpt, dict) else {}


def load_model(checkpoint: str | os.PathLike, device: str | torch.device | None = None) -> ISFRNet:
    """:meth:`ISFRNet.from_checkpoint` on ``device`` (CUDA when available, else CPU), in eval mode.

    Errors as :func:`checkpoint_info`, and a ``ValueError`` for a torch file that is not an ISFRNet export.
    """
    path = Path(checkpoint)
    info = checkpoint_info(path)
    if info.get("format") != FORMAT:
        raise ValueError(f"{path}: not an ISFRNet pipeline file (no format {FORMAT!r}; a stage checkpoint?); "
                         f"write one with `isfr export --preset {info.get('preset') or '<preset>'} -o FILE`")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return ISFRNet.from_checkpoint(path, map_location=device)
    except ValueError as err:  # weights that do not fit the config the file records
        raise ValueError(f"{path}: not a readable ISFRNet checkpoint ({error_line(err)}); "
                         f"{_export_hint(path, info.get('preset'))}") from err


def training_warning(info: dict[str, Any]) -> str | None:
    """One line when :func:`checkpoint_info`'s ``info`` is of a smoke-preset model or of runs that stopped
    before their schedule finished (``schedule`` of :func:`isfr.experiments.trained.export_pipeline`); else None."""
    preset, parts = info.get("preset"), []
    if preset == "smoke":
        parts.append(f"near-untrained: smoke preset, {info.get('steps') or 'a few steps'}; its results only show "
                     "that the code runs (`isfr train --preset small` trains a usable model)")
    sched = info.get("schedule")
    stopped = [f"{run} {r.get('step')}/{r.get('total_steps')}" for run, r in sched.items()
               if isinstance(r, dict) and not r.get("finished")] if isinstance(sched, dict) else []
    if stopped:
        parts.append(f"its runs stopped before the {preset} preset's schedule finished ({', '.join(stopped)} steps); "
                     f"resume with `isfr train --preset {preset}`, which exports again when done")
    return "; ".join(parts) or None


def warn_if_undertrained(checkpoint: str | os.PathLike, info: dict[str, Any] | None = None) -> None:
    """``warnings.warn`` :func:`training_warning` of ``checkpoint``'s file, naming it (nothing for old files)."""
    text = training_warning(checkpoint_info(checkpoint) if info is None else info)
    if text:
        warnings.warn(f"{checkpoint}: {text}", UserWarning, stacklevel=2)


def _model(model: ModelLike) -> ISFRNet:
    if isinstance(model, torch.nn.Module):
        return model
    return model() if callable(model) else load_model(model)


# ---------------------------------------------------------------- inpainting
def working_mask(hole: np.ndarray, resolution: int, transform: Any | None = None) -> np.ndarray:
    """The hole at the model's resolution: aligned by ``transform``, else center-cropped like the photo.

    Covers every working pixel the original hole touches (resampled value > :data:`COVER`).
    """
    from isfr.data.align import warp_image

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


def _some_known(mask: np.ndarray, name: str | None, r: int) -> np.ndarray:
    if mask.all():
        raise ValueError(f"{name or 'photo'}: the hole covers the whole {r}x{r} square the model sees, so nothing is "
                         "left to inpaint from; mark only the missing pixels white in the mask")
    return mask


def inpaint_image(photo: Image.Image, hole: np.ndarray, model: ISFRNet, *, align: bool = True,
                  name: str | None = None, report: Report | None = None) -> Image.Image:
    """Inpaint ``photo`` where ``hole`` (bool (H, W) in its frame) is True (module docstring).

    ``align=True``: returns the photo's size, only hole pixels changed, the face aligned being the one whose
    crop holds most of the hole (a ``ValueError`` naming ``name`` when more than half of the hole lies outside
    every face's crop); a fill upscaled more than :data:`UPSCALE_SAID` times is told to ``report``
    (``"<name>: filled at 64 px, upscaled x40"``). ``align=False``: the model's resolution.
    """
    from isfr.data.align import aligner_for, paste_back, upscale_factor

    r = model.cfg.resolution
    if not align:
        w, h = photo.size
        if min(w, h) < r:
            warnings.warn(f"{name or 'photo'}: the photo is {w}x{h}, smaller than the model's {r}x{r}: it is "
                          f"upscaled and the result is {r}x{r}", UserWarning, stacklevel=3)
        s = min(w, h)
        inside = np.zeros_like(hole)
        inside[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s] = True
        if (hole & ~inside).any():
            warnings.warn(f"{name or 'photo'}: {(hole & ~inside).sum() / hole.sum():.0%} of the hole lies outside the "
                          "central square that is inpainted (align=False crops the photo)", UserWarning, stacklevel=3)
        return run_model(model, to_square(photo, r), _some_known(working_mask(hole, r), name, r))
    preprocess = getattr(model, "preprocess", "center_crop")  # recorded in the file by export_pipeline
    if preprocess == "resize":
        warnings.warn(f"{name or 'photo'}: the model was trained on squashed (preprocess='resize') faces: the photo "
                      "is aligned in CelebA center-crop framing, the nearest a similarity warp gets", UserWarning,
                      stacklevel=3)
    aligned, t = aligner_for(preprocess)(photo, r, name=name, hole=hole)
    mask_a = _some_known(working_mask(hole, r, t), name, r)
    out = paste_back(photo, run_model(model, aligned, mask_a), t, mask_a, mask_original=hole, name=name)
    factor = upscale_factor(t)
    if report is not None and factor > UPSCALE_SAID:
        report(f"{name + ': ' if name else ''}filled at {r} px, upscaled x{factor:.0f}")
    return out


def inpaint_file(image_path: str | os.PathLike, mask_path: str | os.PathLike, model: ModelLike,
                 out_path: str | os.PathLike, *, align: bool = True, overwrite: bool = False,
                 report: Report | None = None) -> Path:
    """Inpaint one photo file with one mask file into ``out_path`` (format from its suffix); returns it.

    The output, the photo and the mask are checked before the model is loaded (``model`` may be a
    file or a callable returning the model). The photo and the mask are read as viewed (EXIF orientation);
    the output is written as viewed, with no orientation tag. ``report``: as :func:`inpaint_image`.
    """
    image_path, mask_path, out = Path(image_path), Path(mask_path), Path(out_path)
    check_output(out, overwrite, image_path)
    photo, turned = read_photo_as_viewed(image_path)
    hole = read_hole_mask(mask_path, photo.size)
    if hole.all():
        raise ValueError(f"{mask_path}: every pixel of the mask is a hole (white), so nothing is left to inpaint "
                         "from; mark only the missing pixels white, the pixels to keep black")
    if hole.mean() > MAX_RATIO:
        warnings.warn(f"{mask_path}: the hole covers {hole.mean():.0%} of the photo, more than the {MAX_RATIO:.0%} the "
                      "model was trained on; is the mask inverted? (white = hole)", UserWarning, stacklevel=2)
    if not hole.any():
        warnings.warn(f"{mask_path}: mask has no hole pixels (white, or 1 in a 0/1 mask, = hole); writing "
                      f"{image_path} unchanged to {out}", UserWarning, stacklevel=2)
        same_type = FORMATS[out.suffix.lower()] == FORMATS.get(image_path.suffix.lower())
        with atomic_path(out) as tmp:
            if same_type and not turned:
                shutil.copyfile(image_path, tmp)
            else:
                photo.save(tmp, format=FORMATS[out.suffix.lower()])
        return out
    result = inpaint_image(photo, hole, _model(model), align=align, name=str(image_path), report=report)
    save_photo(result, out)
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


class FolderErrors(ValueError):
    """Photos of a folder that failed: ``summary`` (one line), then ``details``, one line per photo naming it."""

    def __init__(self, summary: str, details: list[str]):
        super().__init__(summary + "\n" + "\n".join(details))
        self.summary, self.details = summary, details


def inpaint_folder(images_dir: str | os.PathLike, masks_dir: str | os.PathLike, model: ModelLike,
                   out_dir: str | os.PathLike, *, align: bool = True, overwrite: bool = False,
                   skip_existing: bool = False, progress: bool = True, report: Report | None = None) -> list[Path]:
    """Inpaint every photo of ``images_dir`` with the mask of the same stem in ``masks_dir``; returns the
    outputs written.

    Writes ``out_dir/<stem>.png`` (``out_dir`` created if missing). Photos without a mask are skipped
    with a warning. All outputs are checked before any work starts: existing ones are an error unless
    ``overwrite`` (replace them) or ``skip_existing`` (leave them and their photos: a rerun carries on).
    A photo that fails (e.g. no face found) does not stop the others; a :class:`FolderErrors` listing the
    failures, one per photo, is raised at the end. ``report`` gets the skipped outputs and the lines of
    :func:`inpaint_image`.
    """
    from tqdm import tqdm

    if overwrite and skip_existing:
        raise ValueError("overwrite replaces the outputs that exist and skip_existing keeps them: give one")
    photos, masks = _by_stem(Path(images_dir), "photo"), _by_stem(Path(masks_dir), "mask")
    pairs = [(s, photos[s], masks[s]) for s in photos if s in masks]
    missing = [photos[s].name for s in photos if s not in masks]
    if not pairs:
        raise ValueError(f"no photo in {images_dir} has a mask of the same name in {masks_dir} "
                         "(pairs are made by file name without suffix, e.g. 001.jpg + 001.png)")
    if missing:
        warnings.warn(f"{len(missing)} photo(s) without a mask in {masks_dir} skipped: {', '.join(missing[:5])}"
                      + (" ..." if len(missing) > 5 else ""), UserWarning, stacklevel=2)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; in folder mode the output is a folder (created if missing) "
                         "for the <stem>.png results: give a folder name")
    jobs = [(photo, mask, out_dir / OUTPUT_NAME.format(stem=s)) for s, photo, mask in pairs]
    exists = [o for _, _, o in jobs if o.exists()]
    if exists and not (overwrite or skip_existing):
        raise FileExistsError(f"{len(exists)} output(s) exist in {out_dir} ({', '.join(o.name for o in exists[:5])}"
                              f"{' ...' if len(exists) > 5 else ''}); pass --overwrite to replace them, or "
                              "--skip-existing to leave them and inpaint the other photos")
    if skip_existing and exists:
        jobs = [j for j in jobs if j[2] not in set(exists)]
        if report is not None:
            report(f"{len(exists)} photo(s) skipped: their output exists in {out_dir} "
                   f"({', '.join(o.name for o in exists[:5])}{' ...' if len(exists) > 5 else ''})")
    if not jobs:
        return []
    net = _model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    done, failed = [], []
    for photo, mask, out in tqdm(jobs, desc="inpaint", unit="photo", disable=not progress):
        try:
            done.append(inpaint_file(photo, mask, net, out, align=align, overwrite=True, report=report))
        except (ValueError, OSError) as err:
            line = error_line(err)
            failed.append(line if photo.name in line else f"{photo}: {line}")
    if failed:
        raise FolderErrors(f"{len(failed)} of {len(jobs)} photo(s) failed, {len(done)} written to {out_dir}"
                           + (f" ({len(exists)} left as they were: --skip-existing)" if skip_existing and exists
                              else "") + "; fix these and rerun with --skip-existing:", failed)
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
    from isfr.data import DataConfig, build_from_config
    from isfr.evaluation import evaluate, provenance, summarise
    from isfr.evaluation.baselines import isfrnet_method
    from isfr.evaluation.metrics import load_metric_models
    from isfr.experiments.config import get_preset

    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    model = load_model(checkpoint, device)
    info = checkpoint_info(checkpoint)
    name = preset or info.get("preset")
    base, seed = (DataConfig(), 0)
    if name:
        p = get_preset(name)
        base, seed = p.data, p.seed
    saved = (info.get("preset_config") or {}).get("data") if preset in (None, info.get("preset")) else None
    if isinstance(saved, dict):  # an export: the data options it was trained with (preprocess, protocol ...)
        base = dataclasses.replace(base, **{f.name: saved[f.name] for f in dataclasses.fields(DataConfig)
                                            if f.name in saved and f.name not in ("root", "manifest", "cache", "limit",
                                                                                  "fractions", "mask_augment")})
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
    from isfr.evaluation import to_markdown

    keep = [c for c in summary.columns if c not in ("source", "composite", "id_nan")] if columns is None else columns
    table = summary[list(keep)].copy()
    table.attrs.update(summary.attrs)
    return to_markdown(table)
