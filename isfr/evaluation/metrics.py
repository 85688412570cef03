"""Evaluation metrics under one protocol (:data:`PROTOCOL`, printed under every table).

PSNR and SSIM come from scikit-image, LPIPS from the ``lpips`` package (AlexNet trunk loaded
from the torchvision file in the hub cache -- never downloaded, never random), identity distance
from dlib's 128-D face descriptor. :func:`score_batch` gives one dict per image (rows of the
per-image CSV); :func:`aggregate` turns such rows into a per-bucket table.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

from isfr.models.backbones import ALEXNET_CONV_IDX, load_alexnet_state_dict
from isfr.data.buckets import PAPER_RANGES, bucket_of, members

PROTOCOL = (
    "Protocol: for every method the output is composited (known pixels of the ground truth pasted "
    "back: out*M + gt*(1-M)); composite and ground truth are quantised to uint8 as a saved image "
    "would be (floor((x+1)/2*255 + 0.5), clipped to [0, 255]); RGB; whole image at the working "
    "resolution. PSNR: skimage peak_signal_noise_ratio, data_range=255. SSIM: skimage "
    "structural_similarity, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
    "channel_axis=-1, data_range=255 (Wang et al. 2004). L1: mean absolute error on [0, 1] over all "
    "pixels and channels. LPIPS: lpips v0.1, net='alex', torchvision ImageNet AlexNet trunk loaded "
    "from the hub cache; NaN when that file is absent (never computed with a random trunk). "
    "Identity: Euclidean distance between dlib 128-D face descriptors of composite and ground truth "
    "(dlib: < 0.6 = same person); aligned faces, no detection: a fixed face box (fractions of the "
    "frame, default that of CelebA center-crops; face_box=None = whole frame), 5-point landmarks, "
    "frames smaller than 256 px upsampled (bicubic) to 256 first; failures are NaN and counted. "
    "Means over images; buckets by hole ratio at the working resolution."
)

METRIC_COLUMNS = ("psnr", "ssim", "l1", "lpips", "id_dist")


# ---------------------------------------------------------------- compositing / quantisation
def to_uint8(x: Tensor) -> np.ndarray:
    """[-1, 1] ``(B, 3, H, W)`` -> uint8 ``(B, H, W, 3)``, rounded as torchvision's ``save_image``."""
    y = ((x.detach().float().cpu() + 1.0) * 0.5 * 255.0 + 0.5).clamp_(0, 255)
    return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def to_uint8_composite(pred: Tensor, gt: Tensor, mask: Tensor) -> np.ndarray:
    """Composite ``pred * M + gt * (1 - M)`` (known pixels pasted back), then :func:`to_uint8`."""
    m = mask.to(pred.dtype)
    return to_uint8(pred * m + gt * (1.0 - m))


# ---------------------------------------------------------------- pixel metrics (uint8 HWC)
def psnr(pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    """PSNR in dB (skimage, data_range=255); identical images -> inf."""
    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(gt_u8, pred_u8, data_range=255))


def ssim(pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    """SSIM of Wang et al. 2004 (Gaussian window sigma 1.5, population covariance), RGB mean."""
    return float(structural_similarity(gt_u8, pred_u8, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, channel_axis=-1, data_range=255))


def l1(pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    """Mean absolute error on [0, 1]."""
    return float(np.abs(pred_u8.astype(np.float64) - gt_u8.astype(np.float64)).mean() / 255.0)


# ---------------------------------------------------------------- LPIPS
def load_lpips(alexnet_path: str | Path | None = None, device: str | torch.device = "cpu"):
    """``(lpips.LPIPS(net='alex') with the ImageNet trunk, note)`` or ``(None, note)``.

    The lpips package would call ``torchvision.alexnet(pretrained=True)``, which downloads. We build
    it with ``pnet_rand=True`` (random trunk, no download; its linear heads ship with the package)
    and load the torchvision AlexNet file from the hub cache into the trunk. Without the file,
    LPIPS is not computed (NaN) and the note says why.
    """
    try:
        state = load_alexnet_state_dict(alexnet_path)
    except FileNotFoundError as e:
        return None, f"LPIPS is NaN: {e}"
    import lpips  # deferred: prints and warns on import of torchvision's legacy API

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    trunk = {}
    for slice_no, idx in enumerate(ALEXNET_CONV_IDX, start=1):  # lpips keeps torchvision indices
        for p in ("weight", "bias"):
            trunk[f"slice{slice_no}.{idx}.{p}"] = state[f"{idx}.{p}"]
    model.net.load_state_dict(trunk, strict=True)
    model.requires_grad_(False)
    from isfr.models.backbones import ALEXNET_FILE, hub_checkpoint_path
    from isfr.models.pretrained import STANDIN_NOTE, is_standin

    if is_standin(alexnet_path or hub_checkpoint_path(ALEXNET_FILE)):
        return model.eval().to(device), f"LPIPS: lpips v0.1 alex heads + a stand-in AlexNet trunk ({STANDIN_NOTE})."
    return model.eval().to(device), "LPIPS: lpips v0.1 alex heads + torchvision ImageNet AlexNet trunk."


@torch.no_grad()
def lpips_distance(model: Any, pred_u8: np.ndarray, gt_u8: np.ndarray) -> np.ndarray:
    """LPIPS per image of uint8 ``(B, H, W, 3)`` batches (mapped back to [-1, 1])."""
    dev = next(model.parameters()).device

    def t(a: np.ndarray) -> Tensor:
        return torch.from_numpy(a).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(dev)

    return model(t(pred_u8), t(gt_u8)).flatten().cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------- identity (dlib)
#: Face box (left, top, right, bottom as fractions of the frame) for CelebA aligned images after
#: ``isfr.data`` ``preprocess="center_crop"``: median of dlib's HOG detector boxes on 192 such
#: images (identities 100-199 of the shared subset; spread ~0.03). Measured on 30 identities x 3
#: images at 256 px: same-person distance 0.48 mean (90% < 0.6), different 0.85 (0% < 0.6); at 64 px
#: upsampled: 0.50 / 0.83. With the whole frame as the box the 5-point landmarks land off the face
#: and the distances stop separating people (same 0.51, different 0.55, 76% of different < 0.6).
CELEBA_CENTER_CROP_FACE_BOX = (0.262, 0.375, 0.766, 0.879)
#: The same for ``preprocess="resize"`` (178x218 squashed to a square).
CELEBA_RESIZE_FACE_BOX = (0.262, 0.375, 0.730, 0.824)


class DlibIdentity:
    """dlib 128-D face descriptors on aligned faces, without a detection step.

    The face box is fixed: ``face_box`` fractions of the frame (default
    :data:`CELEBA_CENTER_CROP_FACE_BOX`; ``None`` = the whole frame, which dlib's landmark model
    handles badly on CelebA crops -- see the constant). dlib's ResNet works on a 150x150 chip cut
    around the 5-point landmarks; frames smaller than ``upsample_to`` (e.g. 64 px) are first resized
    to ``upsample_to`` (bicubic) so the landmark model and the chip see enough pixels. A failure
    (exception, non-finite descriptor) gives NaN and increments ``failures``.

    The ground truth's descriptor is cached by content (the same image is scored in six buckets and
    for every method; ``reference_cache`` entries at most): half the dlib calls of an evaluation.
    """

    def __init__(
        self,
        face_box: tuple[float, float, float, float] | None = CELEBA_CENTER_CROP_FACE_BOX,
        upsample_to: int = 256,
        num_jitters: int = 0,
        padding: float = 0.25,
        reference_cache: int = 4096,
    ) -> None:
        import dlib
        import face_recognition_models as frm

        self._dlib = dlib
        self.shape_predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self.face_box = face_box
        self.upsample_to = upsample_to
        self.num_jitters = num_jitters
        self.padding = padding
        self.failures = 0
        self.calls = 0
        self.reference_cache = reference_cache
        self._cache: OrderedDict[bytes, np.ndarray | None] = OrderedDict()

    def _prepare(self, img_u8: np.ndarray) -> np.ndarray:
        h, w = img_u8.shape[:2]
        if min(h, w) < self.upsample_to:
            from PIL import Image

            img_u8 = np.asarray(Image.fromarray(img_u8).resize((self.upsample_to, self.upsample_to),
                                                               Image.Resampling.BICUBIC))
        return np.ascontiguousarray(img_u8, dtype=np.uint8)

    def box(self, h: int, w: int):
        """The dlib rectangle of :attr:`face_box` in an ``h`` x ``w`` frame."""
        if self.face_box is None:
            return self._dlib.rectangle(0, 0, w - 1, h - 1)
        l, t, r, b = self.face_box
        px = [min(max(int(round(v * n)), 0), n - 1) for v, n in ((l, w), (t, h), (r, w), (b, h))]
        return self._dlib.rectangle(*px)

    def _descriptor(self, img: np.ndarray) -> np.ndarray:
        shape = self.shape_predictor(img, self.box(img.shape[0], img.shape[1]))
        d = np.asarray(self.encoder.compute_face_descriptor(img, shape, self.num_jitters, self.padding))
        if d.shape != (128,) or not np.all(np.isfinite(d)):
            raise ValueError("dlib returned an invalid descriptor")
        return d

    def descriptor(self, img_u8: np.ndarray) -> np.ndarray | None:
        """128-D descriptor of a uint8 ``(H, W, 3)`` RGB face, or None on failure (counted)."""
        self.calls += 1
        try:
            return self._descriptor(self._prepare(img_u8))
        except Exception:  # dlib raises RuntimeError / plain Exception types
            self.failures += 1
            return None

    def reference_descriptor(self, gt_u8: np.ndarray) -> np.ndarray | None:
        """:meth:`descriptor` of a ground truth, cached by content (a cached failure counts again)."""
        key = hashlib.blake2b(repr(gt_u8.shape).encode() + np.ascontiguousarray(gt_u8).tobytes(), digest_size=16).digest()
        if key in self._cache:
            self._cache.move_to_end(key)
            d = self._cache[key]
            self.calls += 1
            self.failures += d is None
            return d
        d = self.descriptor(gt_u8)
        if self.reference_cache > 0:
            self._cache[key] = d
            if len(self._cache) > self.reference_cache:
                self._cache.popitem(last=False)
        return d

    def distance(self, pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
        """Euclidean descriptor distance (dlib: < 0.6 = same person); NaN on failure."""
        a, b = self.descriptor(pred_u8), self.reference_descriptor(gt_u8)
        if a is None or b is None:
            return math.nan
        return float(np.linalg.norm(a - b))


def load_identity(**kwargs: Any) -> tuple[DlibIdentity | None, str]:
    """``(DlibIdentity, note)``, or ``(None, note)`` if dlib / its models cannot be loaded."""
    try:
        idm = DlibIdentity(**kwargs)
        box = "whole frame" if idm.face_box is None else f"fixed box {idm.face_box}"
        return idm, f"Identity: dlib 128-D descriptor distance, face box = {box}."
    except Exception as e:  # ImportError, or RuntimeError for a missing model file
        return None, f"Identity distance is NaN: dlib unavailable ({type(e).__name__}: {e})."


# ---------------------------------------------------------------- per image / aggregate
@dataclass
class MetricModels:
    """Optional learned metrics and the notes that must be printed with :data:`PROTOCOL`."""

    lpips: Any = None
    identity: DlibIdentity | None = None
    notes: list[str] = field(default_factory=list)

    def protocol_text(self) -> str:
        """:data:`PROTOCOL` followed by the notes (print under every table)."""
        return "\n".join([PROTOCOL, *self.notes])


def load_metric_models(
    lpips: bool = True, identity: bool = True, alexnet_path: str | Path | None = None,
    device: str | torch.device = "cpu",
    face_box: tuple[float, float, float, float] | None = CELEBA_CENTER_CROP_FACE_BOX,
) -> MetricModels:
    """Load what is available offline; every unavailable metric leaves a note.

    ``face_box``: see :class:`DlibIdentity` (use :data:`CELEBA_RESIZE_FACE_BOX` for
    ``preprocess="resize"`` data, ``None`` for the whole frame).
    """
    mm = MetricModels()
    if lpips:
        mm.lpips, note = load_lpips(alexnet_path, device)
    else:
        note = "LPIPS is NaN: not requested."
    mm.notes.append(note)
    if identity:
        mm.identity, note = load_identity(face_box=face_box)
    else:
        note = "Identity distance is NaN: not requested."
    mm.notes.append(note)
    return mm


def score_batch(
    pred: Tensor, gt: Tensor, mask: Tensor, models: MetricModels | None = None,
    ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Per-image metrics under :data:`PROTOCOL` for a batch (images in [-1, 1], mask 1 = hole).

    Row keys: ``id`` (if given), ``hole_ratio``, ``bucket`` (:func:`isfr.data.buckets.bucket_of`), ``psnr``, ``ssim``, ``l1``, ``lpips``,
    ``id_dist`` (NaN where the model is unavailable or failed).
    """
    if pred.shape != gt.shape or mask.shape[0] != pred.shape[0] or mask.shape[1] != 1:
        raise ValueError(f"shapes: pred {tuple(pred.shape)}, gt {tuple(gt.shape)}, mask {tuple(mask.shape)}; "
                         "expected (B,3,H,W), (B,3,H,W), (B,1,H,W)")
    models = models or MetricModels()
    out_u8 = to_uint8_composite(pred, gt, mask)
    gt_u8 = to_uint8(gt)
    ratios = mask.detach().float().flatten(1).mean(1).cpu().tolist()
    lp = (lpips_distance(models.lpips, out_u8, gt_u8) if models.lpips is not None
          else np.full(len(ratios), np.nan))
    rows = []
    for i, r in enumerate(ratios):
        row: dict[str, Any] = {} if ids is None else {"id": ids[i]}
        row.update(
            hole_ratio=r, bucket=bucket_of(r),
            psnr=psnr(out_u8[i], gt_u8[i]), ssim=ssim(out_u8[i], gt_u8[i]), l1=l1(out_u8[i], gt_u8[i]),
            lpips=float(lp[i]),
            id_dist=(models.identity.distance(out_u8[i], gt_u8[i]) if models.identity is not None
                     else math.nan),
        )
        rows.append(row)
    return rows


def aggregate(df: pd.DataFrame, by: str = "bucket", paper_ranges: bool = True) -> pd.DataFrame:
    """Mean of each metric per group, with ``n`` (images) and ``id_nan`` (NaN identity rows).

    With ``by="bucket"`` and ``paper_ranges``, rows for the paper's ``20-40`` and ``40-60``
    (unions of buckets, :data:`isfr.data.buckets.PAPER_RANGES`) and ``all`` are appended.
    """
    cols = [c for c in METRIC_COLUMNS if c in df.columns]

    def summary(g: pd.DataFrame) -> pd.Series:
        s = g[cols].mean(numeric_only=True)
        s["n"] = len(g)
        if "id_dist" in g:
            s["id_nan"] = int(g["id_dist"].isna().sum())
        return s

    parts = {key: summary(g) for key, g in df.groupby(by, sort=True)}
    if by == "bucket" and paper_ranges:
        for name in PAPER_RANGES:
            sel = df[df["bucket"].isin(members(name))]
            if len(sel):
                parts[name] = summary(sel)
        parts["all"] = summary(df)
    table = pd.DataFrame(parts).T
    table.index.name = by
    for c in ("n", "id_nan"):
        if c in table:
            table[c] = table[c].astype(int)
    return table
