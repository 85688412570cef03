"""Notebook 07 ("try it"): paint a hole on a face, see every stage of an exported ISFRNet, with metrics.

The notebook's cells only call this module:

* :func:`strokes_to_mask` -- mouse strokes on a canvas (lists of ``(x, y)`` canvas points, any canvas
  size) -> a ``(1, 1, R, R)`` float mask at the model's resolution, 1 = hole. The strokes are
  painted at the canvas's resolution as a round brush of radius ``brush`` canvas pixels (what the
  person sees), and a model pixel is a hole when *any* part of its footprint is painted (the
  convention of :mod:`isfr.apps.inpaint`: nothing painted over leaks into the known pixels).
* :class:`Examples` -- the faces and the manifest masks (NVIDIA, or procedural for synthetic data)
  of a preset's val (or test) split, picked by index and hole-ratio bucket
  (:mod:`isfr.data.buckets`: ``"0-10"`` ... ``"50-60"`` or the paper's ranges ``"20-40"``,
  ``"40-60"``); :func:`photo_face` aligns a person's own photo as ``isfr inpaint`` does;
  :func:`file_mask` reads a mask PNG (white = hole).
* :func:`run` -- the model on one face + mask: panels (masked input, stage 1 = pSp-StyleGAN, IFR,
  final composite, ground truth) and PSNR / SSIM / identity distance of each stage under
  :data:`isfr.evaluation.metrics.PROTOCOL` (identity: dlib's descriptor; NaN with a note when dlib is missing
  or cannot describe the face -- never made up).
* :func:`figure` -- the panels side by side, metrics under each, and a provenance footer (the
  notebook's set-up note, the checkpoint's preset, steps and schedule).
* the interactive version, :func:`isfr.apps.widget.widget` (ipycanvas + ipywidgets), calls these too.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from isfr.data.buckets import BUCKETS, PAPER_RANGES, members

Point = Sequence[float]


MASK_CHOICES: tuple[str, ...] = ("paint", *BUCKETS, *PAPER_RANGES)  # the widget's mask drop-down


PANELS: tuple[tuple[str, str], ...] = (("input", "Input (masked)"), ("stage1", "Stage 1: pSp-StyleGAN"),
                                       ("ifr", "Stage 2: IFR"), ("composite", "Final (ISFRNet)"),
                                       ("gt", "Ground truth"))


SCORED: tuple[str, ...] = ("stage1", "ifr", "composite")  # panels that get metrics


# ---------------------------------------------------------------- strokes -> mask
def _canvas_size(size: int | Sequence[int]) -> tuple[int, int]:
    w, h = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if w < 1 or h < 1:
        raise ValueError(f"canvas size must be positive, got {size!r}")
    return int(w), int(h)


def paint_strokes(strokes: Sequence[Sequence[Point]], size: int | Sequence[int], brush: float) -> np.ndarray:
    """The strokes painted at the canvas's resolution: bool ``(H, W)``, True = painted.

    A round brush of radius ``brush`` (canvas pixels) along the segments between consecutive points
    of each stroke; a one-point stroke (a click) paints a disc. Points outside the canvas are
    clipped to its border.
    """
    w, h = _canvas_size(size)
    if brush <= 0:
        raise ValueError(f"brush radius must be positive, got {brush}")
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        pts = [(min(max(float(x), 0.0), float(w)), min(max(float(y), 0.0), float(h))) for x, y in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, int(round(2 * brush))))
        for x, y in pts:  # round caps and joins
            draw.ellipse((x - brush, y - brush, x + brush, y + brush), fill=255)
    return np.asarray(img) > 0


def strokes_to_mask(strokes: Sequence[Sequence[Point]], size: int | Sequence[int], brush: float,
                    resolution: int) -> Tensor:
    """Mouse strokes on a ``size`` canvas (int, or ``(width, height)``) -> ``(1, 1, R, R)`` float mask, 1 = hole.

    ``strokes``: lists of ``(x, y)`` canvas points; ``brush``: the brush radius in canvas pixels
    (so at the model's resolution ``R`` it is ``brush * R / size``). A model pixel is a hole when
    any canvas pixel inside its footprint is painted (:func:`paint_strokes`).
    """
    w, h = _canvas_size(size)
    painted = paint_strokes(strokes, (w, h), brush)
    if not painted.any():
        return torch.zeros(1, 1, resolution, resolution)
    cover = Image.fromarray(painted.astype(np.float32), mode="F").resize((resolution, resolution),
                                                                         Image.Resampling.BOX)
    return torch.from_numpy((np.asarray(cover) > 1e-6).astype(np.float32))[None, None]


def file_mask(path: str | os.PathLike, resolution: int) -> Tensor:
    """A mask PNG (white = hole, :func:`isfr.data.load_mask`) as ``(1, 1, R, R)``; another size is center-cropped
    and resized like a photo, every model pixel the hole touches a hole (:func:`isfr.apps.inpaint.working_mask`)."""
    from isfr.apps.inpaint import working_mask
    from isfr.data import load_mask

    hole = load_mask(path)
    if hole.shape != (resolution, resolution):
        hole = working_mask(hole, resolution)
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def _as_mask(mask: Tensor | np.ndarray, resolution: int) -> Tensor:
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32) if not isinstance(mask, Tensor) else mask).float()
    m = m.reshape(1, 1, *m.shape[-2:])
    if m.shape[-2:] != (resolution, resolution):
        raise ValueError(f"mask is {tuple(m.shape[-2:])} but the model works at {resolution}x{resolution}")
    return (m > 0.5).float()


# ---------------------------------------------------------------- faces and masks
@dataclass
class Face:
    """One face at the model's resolution: ``image`` (3, R, R) in [-1, 1]."""

    image: Tensor
    name: str
    source: str = ""  # where it comes from (for the footer)


@dataclass
class PickedMask:
    mask: Tensor  # (1, 1, R, R), 1 = hole
    name: str
    bucket: str


class Examples:
    """The faces and manifest masks of a preset's ``split`` at ``resolution`` (default: the preset's).

    The pairs are those of :func:`isfr.experiments.runs.val_dataset` (the fixed manifest the
    notebooks validate on: NVIDIA masks for real data, procedural ones for synthetic faces).
    """

    def __init__(self, preset: Any, data_root: str | os.PathLike | None = None, resolution: int | None = None,
                 split: str = "val"):
        from isfr.experiments.runs import data_config, val_dataset

        root = os.fspath(data_root) if data_root else None
        if resolution is None or resolution == preset.data.resolution:
            ds = val_dataset(preset, root, split)
        else:  # a checkpoint of another resolution: the same data, a manifest at its resolution
            from isfr.data import build_from_config

            n = preset.schedule.val_images if split == "val" else preset.schedule.test_images
            cfg = dataclasses.replace(data_config(preset, root), resolution=resolution, limit=n, manifest=None)
            ds = build_from_config(cfg, split)
        self.dataset, self.split = ds, split
        self.resolution = ds.resolution
        self.names: list[str] = list(dict.fromkeys(ds.manifest["image"]))
        self.description = f"{ds.source} {split} data"

    def __len__(self) -> int:
        return len(self.names)

    def _rows(self, index: int) -> pd.DataFrame:
        name = self.names[index % len(self.names)]
        return self.dataset.manifest[self.dataset.manifest["image"] == name]

    def face(self, index: int) -> Face:
        """Face ``index`` (modulo the number of faces) of the split."""
        rows = self._rows(index)
        item = self.dataset[int(rows.index[0])]
        return Face(item["image"], str(item["name"]), self.description)

    def mask(self, index: int, bucket: str) -> PickedMask:
        """The manifest's mask of bucket (or paper range) ``bucket`` paired with face ``index``."""
        want = members(bucket)
        rows = self._rows(index)
        rows = rows[rows["bucket"].isin(want)]
        if not len(rows):
            raise ValueError(f"no manifest mask in bucket {bucket} for face {index} ({self.description})")
        item = self.dataset[int(rows.index[0])]
        return PickedMask(item["mask"][None].float(), str(item["mask_name"]), str(item["bucket"]))

    def pick(self, index: int, bucket: str, mask_file: str | os.PathLike = "") -> tuple[Face, PickedMask]:
        """Face ``index`` and the mask PNG ``mask_file`` (white = hole) or, without one, its manifest mask of ``bucket``."""
        if mask_file:
            from isfr.data.buckets import bucket_of

            m = file_mask(mask_file, self.resolution)
            return self.face(index), PickedMask(m, Path(mask_file).name, bucket_of(float(m.mean())))
        return self.face(index), self.mask(index, bucket)


def photo_face(photo: Image.Image, resolution: int, preprocess: str = "center_crop",
               name: str = "photo") -> tuple[Face, str]:
    """A person's photo framed like the training faces, as ``isfr inpaint`` does: ``(face, note)``.

    dlib finds the face and :func:`isfr.data.align.aligner_for` the model's ``preprocess`` warps it;
    without a detectable face (or without dlib) the photo is center-cropped instead, which the note says.
    """
    from isfr.data import image_to_tensor, to_square

    photo = photo.convert("RGB")
    try:
        from isfr.data.align import aligner_for

        aligned, _ = aligner_for(preprocess)(photo, resolution, name=name)
        note = f"{name}: aligned by dlib ({preprocess} framing)"
    except ValueError:  # no face found
        aligned = to_square(photo, resolution)
        note = f"{name}: dlib found no face to align; center-cropped instead (fine for an already aligned face)"
    except (ImportError, RuntimeError) as err:  # dlib or its landmark model missing
        aligned = to_square(photo, resolution)
        note = f"{name}: not aligned ({type(err).__name__}: {err}); center-cropped instead"
    return Face(image_to_tensor(aligned), name, "uploaded photo"), note


# ---------------------------------------------------------------- running the model
@dataclass
class TryResult:
    """What :func:`run` returns: images (3, R, R) in [-1, 1] (``None``: the model has no such stage)."""

    panels: dict[str, Tensor | None]
    mask: Tensor  # (1, 1, R, R)
    metrics: pd.DataFrame  # one row per scored panel: psnr, ssim, id_dist
    notes: list[str] = field(default_factory=list)

    @property
    def hole_ratio(self) -> float:
        return float(self.mask.mean())


def face_box_for(preprocess: str) -> tuple[float, float, float, float]:
    """The identity metric's fixed face box for faces framed by ``preprocess`` (:mod:`isfr.evaluation.metrics`)."""
    from isfr.evaluation.metrics import CELEBA_CENTER_CROP_FACE_BOX, CELEBA_RESIZE_FACE_BOX

    return CELEBA_RESIZE_FACE_BOX if preprocess == "resize" else CELEBA_CENTER_CROP_FACE_BOX


@lru_cache(maxsize=4)
def identity_model(face_box: tuple[float, float, float, float]) -> tuple[Any, str]:
    """:func:`isfr.evaluation.metrics.load_identity`, loaded once per face box: ``(DlibIdentity | None, note)``."""
    from isfr.evaluation.metrics import load_identity

    return load_identity(face_box=face_box)


@torch.no_grad()
def run(model: torch.nn.Module, image: Tensor, mask: Tensor | np.ndarray, identity: Any = "auto") -> TryResult:
    """``model`` (an :class:`~isfr.models.isfrnet.ISFRNet`) on one ``image`` ((3, R, R) or (1, 3, R, R) in
    [-1, 1]) with ``mask`` ((R, R) ... (1, 1, R, R), 1 = hole): the panels and their metrics.

    ``identity``: a :class:`~isfr.evaluation.metrics.DlibIdentity`, ``None`` (identity distance NaN), or ``"auto"``
    (dlib with the face box of the model's ``preprocess``, if it loads).
    """
    from isfr.evaluation.metrics import MetricModels, score_batch

    r = model.cfg.resolution
    x = image.reshape(1, 3, *image.shape[-2:]).float().cpu()
    m = _as_mask(mask, r)
    notes: list[str] = []
    if identity == "auto":
        identity, note = identity_model(face_box_for(getattr(model, "preprocess", "center_crop")))
        if identity is None:
            notes.append(note)
    elif identity is None:
        notes.append("Identity distance is NaN: not requested.")
    model.eval()
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    out = {k: v.float().cpu() for k, v in model(x.to(dev), m.to(dev)).items()}
    panels: dict[str, Tensor | None] = {
        "input": out["input"][0], "stage1": out["stage1"][0],
        "ifr": out["ifr_composite"][0] if "ifr_composite" in out else None,
        "composite": out["composite"][0], "gt": x[0]}
    mm = MetricModels(identity=identity)
    rows = []
    for key in SCORED:
        if panels[key] is None:
            continue
        row = score_batch(panels[key][None], x, m, mm)[0]  # composited with the ground truth (PROTOCOL)
        rows.append({"panel": key, **{k: row[k] for k in ("hole_ratio", "bucket", "psnr", "ssim", "id_dist")}})
    metrics = pd.DataFrame(rows).set_index("panel")
    if identity is not None and metrics["id_dist"].isna().any():
        notes.append("Identity distance is NaN where dlib could not describe the face (no usable landmarks).")
    if not m.any():
        notes.append("The mask has no hole: every panel is the input.")
    return TryResult(panels, m, metrics, notes)


# ---------------------------------------------------------------- figure
def checkpoint_line(checkpoint: str | os.PathLike, info: dict[str, Any] | None = None) -> str:
    """``Checkpoint <file>: preset ..., steps ..., schedule ...`` from what the exported file records."""
    from isfr.apps.inpaint import checkpoint_info

    info = checkpoint_info(checkpoint) if info is None else info
    parts = [f"Checkpoint {Path(checkpoint).name}: preset {info.get('preset', 'unknown')}",
             f"variant {info.get('variant', 'unknown')}", f"steps {info.get('steps', 'unknown')}"]
    sched = info.get("schedule")
    if isinstance(sched, dict) and sched:
        runs = ", ".join(f"{k} {v.get('step')}/{v.get('total_steps')}{'' if v.get('finished') else ' (unfinished)'}"
                         for k, v in sched.items())
        parts.append(f"schedule {runs}")
    ident = info.get("data_identity")
    if isinstance(ident, dict) and ident.get("tag"):
        parts.append(f"trained on {ident['tag']}")
    if info.get("commit"):
        parts.append(f"commit {info['commit']}")
    return "; ".join(parts) + "."


def _fmt(v: float, spec: str) -> str:
    return "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def metric_text(row: pd.Series) -> str:
    psnr = "inf" if np.isinf(row["psnr"]) else _fmt(row["psnr"], ".2f")
    return f"PSNR {psnr} dB\nSSIM {_fmt(row['ssim'], '.3f')}\nID dist {_fmt(row['id_dist'], '.3f')}"


def figure(result: TryResult, note: str = "", checkpoint: str | os.PathLike | None = None,
           info: dict[str, Any] | None = None, mask_name: str = "", face_name: str = ""):
    """The five panels side by side, each stage's metrics under it, provenance in the footer."""
    from isfr.data.buckets import bucket_of
    from isfr.experiments.figures import image_grid, to_rgb

    cells = [to_rgb(result.panels["gt"], result.mask[0]) if k == "input" else
             (to_rgb(result.panels[k]) if result.panels.get(k) is not None else None) for k, _ in PANELS]
    what = ", ".join(s for s in (face_name and f"face {face_name}", mask_name and f"mask {mask_name}") if s)
    title = (f"{what + '; ' if what else ''}hole {result.hole_ratio:.1%} (bucket {bucket_of(result.hole_ratio)})")
    footer = [note]
    if checkpoint is not None or info is not None:
        footer.append(checkpoint_line(checkpoint or "checkpoint", info))
    footer += ["Metrics: each stage composited with the ground truth's known pixels, whole image "
               "(isfr.evaluation.metrics.PROTOCOL); ID dist = dlib descriptor distance to the ground truth (< 0.6: same person)."]
    footer += result.notes
    fig = image_grid([cells], [t for _, t in PANELS], title=title, cell_in=2.0)
    text = "\n".join(textwrap.fill(s, 130) for s in footer if s)  # one paragraph per item (add_note's style)
    fig.text(0.5, 0.0, text, ha="center", va="top", fontsize=7, style="italic", color="0.25")
    for ax, (key, _) in zip(fig.axes, PANELS):
        if key in result.metrics.index:
            ax.set_xlabel(metric_text(result.metrics.loc[key]), fontsize=8)
    return fig


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def metrics_table(result: TryResult) -> pd.DataFrame:
    """The metrics with readable row names (for display)."""
    names = dict(PANELS)
    return result.metrics.rename(index=names)[["psnr", "ssim", "id_dist", "hole_ratio", "bucket"]]


# ---------------------------------------------------------------- one call for the notebook
def default_checkpoint(preset: Any) -> Path:
    """Notebook 07's model when its ``checkpoint`` parameter is empty: the shipped model
    (:func:`isfr.models.shipped.shipped_model_path`) for the ``small`` preset as defined, else the preset's own export
    (:func:`isfr.experiments.trained.export_path`, written by notebook 04)."""
    from isfr.experiments.runs import preset_overrides
    from isfr.experiments.trained import export_path
    from isfr.models.shipped import shipped_model_path

    if preset.name == "small" and not {k for k in preset_overrides(preset) if k != "data.root"}:
        try:
            return shipped_model_path()
        except FileNotFoundError:
            pass  # not shipped with this copy: the preset's own export, if notebook 04 wrote one
    return export_path(preset)


def load(checkpoint: str | os.PathLike, device: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The exported model (:func:`isfr.apps.inpaint.load_model`) and what its file records."""
    from isfr.apps.inpaint import checkpoint_info, load_model

    return load_model(checkpoint, device), checkpoint_info(checkpoint)


def headless() -> bool:
    """True when running under pytest (nbval): the widgets are not shown, nobody would click them."""
    return "PYTEST_CURRENT_TEST" in os.environ or os.environ.get("ISFR_HEADLESS", "") not in ("", "0")
