"""Measure the mean dlib 5-point landmarks of CelebA faces (isfr.data.align.CELEBA_TEMPLATE).

Usage: ``python tools/measure_template.py /path/to/img_align_celeba [N=200] [RESOLUTION=256]``: the first N
files (sorted names), each center-cropped and resized by ``isfr.data.load_square``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from isfr.data import load_square
from isfr.data.align import measure_template


def main(argv: list[str]) -> None:
    folder, n = argv[0], int(argv[1]) if len(argv) > 1 else 200
    res = int(argv[2]) if len(argv) > 2 else 256
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))[:n]
    mean, std, found = measure_template(load_square(os.path.join(folder, f), res) for f in names)
    np.set_printoptions(precision=4, suppress=True)
    print(f"faces found: {found} of {len(names)}\nmean:\n{mean!r}\nstd:\n{std!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
