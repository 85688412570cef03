"""Procedural free-form masks (strokes, ellipses, boxes) that hit a requested hole-ratio bucket.

Used for leak-free training (``mask_protocol="leak_free"``) and as evaluation masks when the
NVIDIA set is absent (synthetic mode). A mask is a pure function of (bucket, resolution, seed) and
is named ``procedural:<bucket>:<seed>`` so a manifest can regenerate it.

Algorithm: draw a target ratio uniformly inside the bucket; add random shapes (a shape that
would overshoot the bucket is rejected and the shape scale halves) until the ratio reaches the
target, at most ``MAX_SHAPES`` tries. If the bucket is still missed, the mask is grown by
one-pixel rings (or shrunk by peeling rings), the last ring partially in random order, until the
hole count is exactly inside the bucket: termination and a hit are guaranteed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .buckets import count_range, in_bucket

PREFIX = "procedural"
MAX_SHAPES = 80
GENERATOR_VERSION = 1  # bump when the masks a (bucket, resolution, seed) draws change: it enters run identities


def procedural_name(bucket: str, seed: int) -> str:
    return f"{PREFIX}:{bucket}:{seed}"


def parse_procedural_name(name: str) -> tuple[str, int]:
    """``"procedural:20-30:17"`` -> ``("20-30", 17)``."""
    prefix, bucket, seed = name.split(":")
    if prefix != PREFIX:
        raise ValueError(f"{name!r} is not a procedural mask name ({PREFIX}:<bucket>:<seed>)")
    return bucket, int(seed)


def _shape(draw: ImageDraw.ImageDraw, rng: np.random.Generator, r: int, scale: float) -> None:
    """One random stroke (70%), ellipse (20%) or box (10%) of size ~ ``scale`` * ``r``."""
    kind = rng.random()
    x, y = rng.uniform(0, r, 2)
    if kind < 0.7:  # free-form stroke: a thick polyline with round joints
        width = max(1, int(r * scale * rng.uniform(0.02, 0.08)))
        pts, angle = [(x, y)], rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(3, 9))):
            angle += rng.uniform(-1.2, 1.2)
            step = r * scale * rng.uniform(0.05, 0.2)
            x, y = np.clip(x + step * np.cos(angle), 0, r - 1), np.clip(y + step * np.sin(angle), 0, r - 1)
            pts.append((x, y))
        draw.line(pts, fill=255, width=width, joint="curve")
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - width / 2, py - width / 2, px + width / 2, py + width / 2), fill=255)
    elif kind < 0.9:
        rx, ry = r * scale * rng.uniform(0.03, 0.2, 2)
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=255)
    else:
        w, h = r * scale * rng.uniform(0.05, 0.3, 2)
        draw.rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=255)


def _fix_count(mask: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Grow or peel ``mask`` ring by ring until it has exactly ``target`` hole pixels."""
    mask = mask.copy()
    while (count := int(mask.sum())) != target:
        img = Image.fromarray(mask.astype(np.uint8) * 255)
        if count < target:
            ring = (np.asarray(img.filter(ImageFilter.MaxFilter(3))) > 0) & ~mask
            if not ring.any():  # empty mask: seed the centre
                ring = np.zeros_like(mask)
                ring[mask.shape[0] // 2, mask.shape[1] // 2] = True
        else:
            ring = mask & ~(np.asarray(img.filter(ImageFilter.MinFilter(3))) > 0)
        idx = np.flatnonzero(ring)
        take = rng.permutation(idx)[: abs(target - count)]
        mask.flat[take] = count < target
    return mask


def procedural_mask(bucket: str, resolution: int, seed: int) -> np.ndarray:
    """A bool (resolution, resolution) mask, True = hole, whose ratio lies in ``bucket``.

    ``bucket`` is one of the six buckets or a paper range (``"20-40"``); deterministic per arguments.
    """
    total = resolution * resolution
    c_lo, c_hi = count_range(bucket, total)
    rng = np.random.default_rng([seed, resolution, c_lo])
    target = int(rng.integers(c_lo, c_hi + 1))
    canvas = Image.new("L", (resolution, resolution), 0)
    count, scale = 0, 1.0
    for _ in range(MAX_SHAPES):
        trial = canvas.copy()
        _shape(ImageDraw.Draw(trial), rng, resolution, scale)
        new = int(np.count_nonzero(np.asarray(trial)))
        if new > c_hi:
            scale *= 0.5
            continue
        canvas, count = trial, new
        if count >= target:
            break
    mask = np.asarray(canvas) > 0
    if not in_bucket(count / total, bucket):
        mask = _fix_count(mask, target, rng)
    return mask


def mask_from_name(name: str, resolution: int) -> np.ndarray:
    """Regenerate a ``procedural:<bucket>:<seed>`` mask."""
    bucket, seed = parse_procedural_name(name)
    return procedural_mask(bucket, resolution, seed)


class ProceduralMasks:
    """A mask bank drawing procedural masks on the fly (same interface as the NVIDIA bank in sampling)."""

    source = "procedural"

    def __init__(self, resolution: int):
        self.resolution = resolution
        self.description = f"procedural free-form masks (strokes, ellipses, boxes) at {resolution}px"

    def draw(self, bucket: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        seed = int(rng.integers(0, 2**31 - 1))
        return procedural_mask(bucket, self.resolution, seed), procedural_name(bucket, seed)
