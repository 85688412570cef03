"""Face alignment with dlib (offline): photos are warped to the framing the model was trained on.

* :func:`align_face` — CelebA framing. dlib's HOG detector finds the faces (once more with one
  upsampling if none is found); the face aligned is the largest, or, given the hole to fill, the one
  whose aligned crop holds most of the hole (:func:`choose_face`: an error when more than half of the
  hole lies outside every face's crop). The 5-point predictor (eye corners + nose base) gives landmarks,
  and a similarity transform (:class:`skimage.transform.SimilarityTransform`) maps them onto
  :data:`CELEBA_TEMPLATE`, the mean landmark positions of CelebA's aligned faces *after our
  preprocessing* (central 178x178 square of the 178x218 image, then resized; ``isfr.data.images``).
  A photo aligned this way looks like a training image.
* :func:`ffhq_align` — FFHQ framing (the public ``ffhq-dataset`` recipe: an oriented square built
  from the eyes and the mouth corners of the 68-point predictor). The official pSp encoder
  (``psp_ffhq_encode.pt``, used frozen by the ``paper`` preset) was trained on FFHQ-aligned faces,
  which are framed differently from our CelebA squares (an FFHQ crop is at least 4 eye distances
  wide, ours ~4.7, and FFHQ levels the eyes exactly); this is the data option for feeding it
  FFHQ-framed faces: ``DataConfig(preprocess="ffhq")`` uses it (a simpler version of the recipe: one similarity warp,
  no reflect-pad-and-blur of the border).
* :func:`paste_back` — puts an inpainted aligned crop back into the photo, changing hole pixels only.

Coordinates: ``(x, y)`` pixel centres (dlib's and scikit-image's convention); a normalised template
coordinate ``u`` in [0, 1] of an ``R``-pixel square is the pixel position ``u * R - 0.5``. Every
transform returned here maps **original-photo coordinates to aligned-crop coordinates**. Warps are
antialiased when they shrink (box reduce by an integer factor, then a Gaussian prefilter for the
rest, as ``skimage.transform.rescale(anti_aliasing=True)``), then bicubic; outside the photo the
border pixels are repeated (``mode="edge"``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image
from skimage.filters import gaussian
from skimage.transform import ProjectiveTransform, SimilarityTransform, warp

# Mean dlib 5-point landmarks (rows: the predictor's parts 0..4 = outer and inner corner of the eye
# on the image's right, outer and inner corner of the eye on the image's left, base of the nose) as
# (x, y) normalised to [0, 1] of the square crop. Measured 2026-11-25 at commit 486de84 with
# ``measure_template`` on the first 200 files (sorted names, 000002.jpg ... 007331.jpg) of CelebA's
# ``img_align_celeba`` folder (under the data root), each center-cropped and resized to 256 px by
# ``load_square``: dlib found a face in 194 of 200 (the mean is over those). Per-point std over
# images is CELEBA_TEMPLATE_STD (same units; CelebA's own alignment leaves ~1-2% jitter, the nose
# ~2.5%). Re-measure: ``python tools/measure_template.py /path/to/img_align_celeba 200``.
CELEBA_TEMPLATE = np.array([
    [0.65130, 0.52146],
    [0.56379, 0.52831],
    [0.34909, 0.52201],
    [0.43629, 0.52875],
    [0.49895, 0.69360],
])
CELEBA_TEMPLATE_STD = np.array([
    [0.0120, 0.0093],
    [0.0076, 0.0071],
    [0.0114, 0.0084],
    [0.0070, 0.0068],
    [0.0246, 0.0188],
])
DETECT_MAX_SIDE = 1024  # HOG runs on a copy no larger than this (landmarks use the full image)
NO_FACE_HINT = "pass --no-align if the photo is already an aligned, cropped face"


# ---------------------------------------------------------------- dlib models (cached, offline)
@lru_cache(maxsize=1)
def _detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=2)
def _predictor(points: int) -> Any:
    import dlib
    import face_recognition_models as frm

    path = frm.pose_predictor_five_point_model_location() if points == 5 else frm.pose_predictor_model_location()
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: dlib {points}-point landmark model missing; "
                                "reinstall face_recognition_models (pip install face_recognition_models)")
    return dlib.shape_predictor(path)


def detect_faces(image: Image.Image | np.ndarray, points: int = 5, limit: int | None = None) -> list[np.ndarray]:
    """``(points, 2)`` landmarks (x, y) of every face found (the ``limit`` largest), the largest first (``[]``
    when none).

    HOG detection runs on a copy at most :data:`DETECT_MAX_SIDE` wide (again with one upsampling if
    nothing is found); the predictor runs on the full-resolution image.
    """
    import dlib

    arr = np.ascontiguousarray(np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image,
                                          dtype=np.uint8))
    h, w = arr.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = arr if scale == 1.0 else np.asarray(
        Image.fromarray(arr).resize((round(w * scale), round(h * scale)), Image.Resampling.BOX))
    det = _detector()
    faces = sorted(list(det(small, 0)) or list(det(small, 1)), key=lambda r: -r.width() * r.height())
    out = []
    for f in faces[:limit]:
        rect = dlib.rectangle(*(int(round(v / scale)) for v in (f.left(), f.top(), f.right(), f.bottom())))
        out.append(np.array([[p.x, p.y] for p in _predictor(points)(arr, rect).parts()], dtype=np.float64))
    return out


def detect_landmarks(image: Image.Image | np.ndarray, points: int = 5) -> np.ndarray | None:
    """``(points, 2)`` landmarks (x, y) of the largest face, or ``None`` when no face is found."""
    faces = detect_faces(image, points, limit=1)
    return faces[0] if faces else None


def template_pixels(resolution: int, template: np.ndarray = CELEBA_TEMPLATE) -> np.ndarray:
    """The normalised ``template`` as pixel-centre coordinates of a ``resolution`` square."""
    return np.asarray(template, dtype=np.float64) * resolution - 0.5


def measure_template(faces: Iterable[Image.Image]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and std of the normalised 5-point landmarks over square ``faces`` (e.g. ``load_square``'d
    files); faces found. How :data:`CELEBA_TEMPLATE` was made (``tools/measure_template.py``)."""
    found = []
    for face in faces:
        lm = detect_landmarks(face)
        if lm is not None:
            found.append((lm + 0.5) / face.size[0])
    if not found:
        raise ValueError("no face found in any of the given images; cannot measure a template")
    arr = np.stack(found)
    return arr.mean(0), arr.std(0), len(found)


# ---------------------------------------------------------------- warping
def _matrix(t: Any) -> np.ndarray:
    return np.asarray(t.params if hasattr(t, "params") else t, dtype=np.float64)


def warp_image(image: Image.Image | np.ndarray, transform: Any, shape: tuple[int, int], order: int = 3,
               mode: str = "edge", cval: float = 0.0) -> np.ndarray:
    """Resample ``image`` into an ``shape`` (H, W) frame; ``transform`` maps source to target coords.

    Returns float64 in [0, 1] (H, W[, C]). Shrinking warps are antialiased (module docstring).
    """
    src = np.asarray(image)
    m = _matrix(transform)
    scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))  # target pixels per source pixel
    k = int(1 / scale) if scale < 0.5 and src.ndim == 3 and src.dtype == np.uint8 else 1
    if k >= 2:  # box-reduce first: reduced pixel j covers source pixels [j k, (j + 1) k)
        src = np.asarray(Image.fromarray(src).reduce(k))
        m = m @ np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1]])
        scale *= k
    arr = src.astype(np.float64) / (255.0 if src.dtype == np.uint8 else 1.0)
    sigma = (1 / scale - 1) / 2 if scale < 1 else 0.0
    if sigma > 0.1:
        arr = gaussian(arr, sigma=sigma, channel_axis=-1 if arr.ndim == 3 else None, mode="nearest",
                       preserve_range=True)
    inv = ProjectiveTransform(matrix=np.linalg.inv(m))
    return warp(arr, inv, output_shape=shape, order=order, mode=mode, cval=cval, clip=True, preserve_range=True)


def _to_pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8))


def _no_face(name: str | None) -> ValueError:
    return ValueError(f"no face found in {name or 'the image'}; {NO_FACE_HINT}")


def _fit(src: np.ndarray, dst: np.ndarray, name: str | None) -> SimilarityTransform:
    t = SimilarityTransform.from_estimate(src, dst)
    if not t:
        raise ValueError(f"could not fit an alignment transform to the landmarks of {name or 'the image'} "
                         f"({t}); {NO_FACE_HINT}")
    return t


def crop_share(transform: Any, hole: np.ndarray, resolution: int) -> float:
    """Share of the ``hole`` (bool (H, W) in the photo's frame) that lies inside the ``resolution`` square
    crop ``transform`` (photo -> crop) makes; 1.0 for an empty hole."""
    ys, xs = np.nonzero(hole)
    if not len(xs):
        return 1.0
    m = _matrix(transform)
    ax = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    ay = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    lim = resolution - 0.5
    return float(((ax >= -0.5) & (ax <= lim) & (ay >= -0.5) & (ay <= lim)).mean())


def choose_face(transforms: list[Any], hole: np.ndarray | None, resolution: int, name: str | None = None) -> Any:
    """The transform of the face whose aligned crop holds most of ``hole`` (the first, i.e. the largest face,
    when there is no hole to go by). ``ValueError`` naming the photo when more than half of the hole lies
    outside every face's crop: only the part of the hole inside a face's crop is filled."""
    if hole is None or not hole.any():
        return transforms[0]
    shares = [crop_share(t, hole, resolution) for t in transforms]
    best = int(np.argmax(shares))
    if shares[best] < 0.5:
        n = len(transforms)
        raise ValueError(f"{name or 'the photo'}: {1 - shares[best]:.0%} of the hole lies outside the face crop of "
                         f"{'the face' if n == 1 else f'every one of the {n} faces'} found, and only holes on a face "
                         "are filled; mark the hole on a face, or crop the photo around the face with the hole "
                         "(a face too small or turned away is not found)")
    return transforms[best]


def upscale_factor(transform: Any) -> float:
    """Photo pixels per aligned-crop pixel of ``transform`` (photo -> crop): how much the crop is enlarged when
    pasted back (:func:`paste_back`); a face 640 px wide in the photo and 64 px wide in the crop gives 10."""
    return 1.0 / float(np.sqrt(abs(np.linalg.det(_matrix(transform)[:2, :2]))))


# ---------------------------------------------------------------- public API
def align_face(image: Image.Image, resolution: int, *, name: str | None = None,
               template: np.ndarray = CELEBA_TEMPLATE, hole: np.ndarray | None = None
               ) -> tuple[Image.Image, SimilarityTransform]:
    """``(aligned RGB crop resolution x resolution, transform original -> aligned)`` in CelebA framing.

    The face is the largest, or the one whose crop holds most of ``hole`` (bool (H, W), :func:`choose_face`).
    ``name`` (e.g. the file) appears in the ``ValueError`` raised when no face is found.
    """
    image = image.convert("RGB")
    faces = detect_faces(image, 5, limit=None if hole is not None else 1)
    if not faces:
        raise _no_face(name)
    dst = template_pixels(resolution, template)
    t = choose_face([_fit(lm, dst, name) for lm in faces], hole, resolution, name)
    return _to_pil(warp_image(image, t, (resolution, resolution))), t


def ffhq_quad(lm68: np.ndarray) -> np.ndarray:
    """The FFHQ crop square (4 corners: top-left, bottom-left, bottom-right, top-right) from 68 landmarks.

    ``ffhq-dataset/download_ffhq.py`` (``recreate_aligned_images``): eyes = means of points 36-41 and
    42-47, mouth = points 48 and 54.
    """
    lm = np.asarray(lm68, dtype=np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_align(image: Image.Image, resolution: int, *, name: str | None = None, hole: np.ndarray | None = None
               ) -> tuple[Image.Image, SimilarityTransform]:
    """``(aligned crop, transform)`` in FFHQ framing (module docstring); the face and the errors as
    :func:`align_face`."""
    image = image.convert("RGB")
    faces = detect_faces(image, 68, limit=None if hole is not None else 1)
    if not faces:
        raise _no_face(name)
    r = resolution - 0.5
    corners = np.array([[-0.5, -0.5], [-0.5, r], [r, r], [r, -0.5]])
    t = choose_face([_fit(ffhq_quad(lm), corners, name) for lm in faces], hole, resolution, name)
    return _to_pil(warp_image(image, t, (resolution, resolution))), t


def aligner_for(preprocess: str):
    """The alignment that frames a photo like training data preprocessed with ``preprocess``
    (``isfr.data.images``): :func:`ffhq_align` for ``"ffhq"``, else :func:`align_face` (CelebA
    framing; for ``"resize"``, whose faces are squashed vertically, the nearest a similarity warp gets)."""
    if preprocess not in ("center_crop", "resize", "ffhq"):
        raise ValueError(f"unknown preprocess {preprocess!r}: expected 'center_crop', 'resize' or 'ffhq'")
    return ffhq_align if preprocess == "ffhq" else align_face


def paste_back(original: Image.Image, aligned_result: Image.Image, transform: Any,
               mask_aligned: np.ndarray | Image.Image, mask_original: np.ndarray | None = None,
               name: str | None = None) -> Image.Image:
    """``original`` with its hole pixels replaced by ``aligned_result`` warped back (inverse of ``transform``).

    The hole is ``mask_original`` (bool (H, W) in the photo's frame, True = hole) when given, else
    ``mask_aligned`` (True / white = hole) warped back. Only hole pixels inside the aligned crop's
    footprint change; every other pixel is returned bit-identical. Hole pixels outside the crop are
    left as they are, with a warning naming ``name`` (the photo).
    """
    orig = np.asarray(original.convert("RGB"))
    h, w = orig.shape[:2]
    m = _matrix(transform)
    back_t = np.linalg.inv(m)  # aligned -> original
    res = np.asarray(aligned_result.convert("RGB"))
    rh, rw = res.shape[:2]
    if mask_original is not None:
        hole = np.asarray(mask_original, dtype=bool)
        if hole.shape != (h, w):
            raise ValueError(f"mask_original has shape {hole.shape}; expected the photo's {(h, w)}")
    else:
        ma = np.asarray(mask_aligned)
        ma = (ma >= 128) if ma.dtype == np.uint8 else ma.astype(bool)
        hole = warp_image(ma.astype(np.float64), back_t, (h, w), order=1, mode="constant") >= 0.5
    out = orig.copy()
    if not hole.any():
        return Image.fromarray(out)
    # work in the hole's bounding box only (the photo may be large)
    y0, y1 = np.flatnonzero(hole.any(1))[[0, -1]]
    x0, x1 = np.flatnonzero(hole.any(0))[[0, -1]]
    hole = hole[y0:y1 + 1, x0:x1 + 1]
    xs, ys = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.float64), np.arange(y0, y1 + 1, dtype=np.float64))
    ax = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    ay = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    inside = (ax >= -0.5) & (ax <= rw - 0.5) & (ay >= -0.5) & (ay <= rh - 0.5)  # the crop's footprint
    outside = hole & ~inside
    if outside.any():
        warnings.warn(f"{name + ': ' if name else ''}{outside.sum() / hole.sum():.0%} of the hole lies outside the "
                      "aligned face crop and was left unchanged", UserWarning, stacklevel=2)
    region = hole & inside
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    patch = warp_image(res, shift @ back_t, hole.shape)
    patch_u8 = np.clip(np.rint(patch * 255.0), 0, 255).astype(np.uint8)
    out[y0:y1 + 1, x0:x1 + 1][region] = patch_u8[region]
    return Image.fromarray(out)
