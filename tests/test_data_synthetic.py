"""Synthetic faces: determinism, shape/range, and that they always say they are synthetic."""

from __future__ import annotations

import numpy as np
import pytest

from isfr.data import SyntheticFaces, build_dataset, draw_face


def test_deterministic_per_seed_and_index():
    a, b = np.asarray(draw_face(3, 7, 64)), np.asarray(draw_face(3, 7, 64))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert (a == b).all()
    assert not (a == np.asarray(draw_face(3, 8, 64))).all()
    assert not (a == np.asarray(draw_face(4, 7, 64))).all()


def test_faces_have_structure_and_sizes():
    for res in (32, 64, 256):
        img = np.asarray(draw_face(0, 1, res))
        assert img.shape == (res, res, 3)
        assert img.std() > 10  # not a flat colour
    # the face sits in the middle: centre differs from the corner colour
    img = np.asarray(draw_face(0, 2, 64)).astype(int)
    assert np.abs(img[32, 32] - img[1, 1]).sum() > 0


def test_splits_disjoint_and_labelled():
    train, test = SyntheticFaces(5, "train", 0), SyntheticFaces(5, "test", 0)
    assert not set(train.names) & set(test.names)
    for s in (train, test):
        assert s.source == "synthetic" and "SYNTHETIC" in s.description and "not CelebA" in s.description
    assert (np.asarray(train.load(2, 32)) == np.asarray(draw_face(0, 2, 32))).all()


def test_synthetic_dataset_labelled(monkeypatch):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = build_dataset(None, "train", 32, limit=4)
    assert ds.source == "synthetic" and "SYNTHETIC" in ds.description
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and -1 <= item["image"].min() and item["image"].max() <= 1
