"""Offline, seeded procedural faces drawn with PIL: a test fixture and smoke default.

Never a source of reported numbers: every object built on it has ``source == "synthetic"`` and a
``description`` that says so. A face is a pure function of (seed, index, resolution); it is drawn
at twice the resolution and box-downsampled (``Image.reduce(2)``) for antialiasing.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .images import Preprocess
from .sources import ImageSet

_SKIN = np.array([[255, 224, 196], [234, 192, 160], [198, 144, 110], [141, 95, 66], [98, 64, 45]])
_HAIR = np.array([[25, 20, 18], [70, 45, 30], [120, 80, 45], [200, 160, 90], [150, 60, 30], [160, 160, 160]])
_IRIS = np.array([[60, 40, 25], [70, 110, 150], [80, 120, 70], [40, 30, 25]])


def draw_face(seed: int, index: int, resolution: int) -> Image.Image:
    """One synthetic RGB face of size ``resolution`` x ``resolution``, deterministic per (seed, index)."""
    rng = np.random.default_rng([seed, index])
    s = 2 * resolution

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    def tone(palette: np.ndarray, jitter: int = 12) -> tuple[int, ...]:
        i = u(0, len(palette) - 1)
        c = palette[int(i)] + (palette[min(int(i) + 1, len(palette) - 1)] - palette[int(i)]) * (i % 1)
        return tuple(int(v) for v in np.clip(c + rng.integers(-jitter, jitter + 1, 3), 0, 255))

    def box(cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        return (cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s

    # background: vertical blend of two random colours
    top, bottom = rng.integers(30, 230, 3), rng.integers(30, 230, 3)
    ramp = np.linspace(0, 1, s)[:, None, None]
    bg = np.broadcast_to(top + (bottom - top) * ramp, (s, s, 3))
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)

    skin, hair = tone(_SKIN), tone(_HAIR)
    shade = tuple(int(c * 0.8) for c in skin)
    cx, cy = 0.5 + u(-0.03, 0.03), 0.53 + u(-0.03, 0.03)
    rx, ry = u(0.24, 0.3), u(0.31, 0.37)
    hair_len = u(0.0, 0.45)
    d.ellipse(box(cx, cy - 0.05, rx + u(0.03, 0.08), ry + 0.04 + hair_len / 3), fill=hair)  # hair mass
    d.rectangle(box(cx, cy + ry, rx * 0.45, 0.2), fill=shade)  # neck
    d.ellipse(box(cx, cy, rx, ry), fill=skin)  # face
    d.chord(box(cx, cy - ry * 0.55, rx * 1.02, ry * 0.6), 180 + u(0, 15), 360 - u(0, 15), fill=hair)  # fringe
    for side in (-1, 1):
        ex, ey = cx + side * rx * u(0.36, 0.44), cy - ry * u(0.05, 0.15)
        d.ellipse(box(ex, ey, rx * 0.2, ry * 0.07), fill=(245, 245, 240))  # sclera
        d.ellipse(box(ex, ey, ry * 0.065, ry * 0.065), fill=tone(_IRIS, 8))
        d.ellipse(box(ex, ey, ry * 0.03, ry * 0.03), fill=(10, 10, 10))
        by = ey - ry * u(0.14, 0.2)
        d.line([(ex - rx * 0.2) * s, by * s, (ex + rx * 0.2) * s, (by - side * u(-0.02, 0.02)) * s],
               fill=hair, width=max(1, int(s * u(0.012, 0.022))))  # brow
    ny = cy + ry * u(0.15, 0.25)
    d.polygon([(cx * s, (cy - ry * 0.05) * s), ((cx - rx * 0.13) * s, ny * s), ((cx + rx * 0.13) * s, ny * s)],
              fill=shade)  # nose
    my, mw = cy + ry * u(0.45, 0.55), rx * u(0.3, 0.5)
    lips = tuple(int(v) for v in np.clip(np.array(skin) * [0.85, 0.5, 0.5] + [30, 0, 0], 0, 255))
    d.chord(box(cx, my - ry * 0.05, mw, ry * u(0.06, 0.14)), 0, 180, fill=lips)  # mouth

    # lighting: a horizontal brightness gradient in a random direction
    gain = np.linspace(u(0.7, 1.0), u(1.0, 1.2), s)[None, :, None]
    if rng.random() < 0.5:
        gain = gain[:, ::-1]
    lit = np.clip(np.asarray(img, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
    return Image.fromarray(lit, "RGB").reduce(2)


class SyntheticFaces(ImageSet):
    """``size`` synthetic faces for ``split``; faces of different splits never coincide."""

    source = "synthetic"
    _OFFSETS = {"train": 0, "val": 10**7, "test": 2 * 10**7, "all": 0}

    def __init__(self, size: int = 1000, split: str = "train", seed: int = 0):
        self.split, self.seed = split, seed
        self.offset = self._OFFSETS[split]
        self.names = [f"synthetic-{self.offset + i:08d}" for i in range(size)]
        self.description = (
            f"SYNTHETIC procedural faces ({split}, seed {seed}, {size} images): a smoke-test fixture, "
            "not CelebA; never report numbers from it"
        )

    def load(self, index: int, resolution: int, preprocess: Preprocess = "center_crop") -> Image.Image:
        """The face; ``preprocess`` is irrelevant (faces are drawn square)."""
        return draw_face(self.seed, int(self.names[index].rsplit("-", 1)[1]), resolution)
