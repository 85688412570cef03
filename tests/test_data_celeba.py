"""CelebA layout, splits (official / paper), identities, image folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from isfr.data import CelebA, ImageFolder, SplitFractions, list_images, read_partition, seeded_split
from isfr.data.celeba import celeba_names


def _fake_celeba(root, n=40):
    """A tiny CelebA in official layout: n images, partitions 0/1/2 by i % 10 (8/1/1)."""
    (root / "img_align_celeba").mkdir(parents=True)
    lines, ids = [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.new("RGB", (178, 218), (i * 5 % 256, 80, 120)).save(root / "img_align_celeba" / name)
        lines.append(f"{name} {0 if i % 10 < 8 else i % 10 - 7}")
        ids.append(f"{name} {i // 4}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    (root / "identity_CelebA.txt").write_text("\n".join(ids) + "\n")
    return root


def test_official_split_on_fake(tmp_path):
    root = _fake_celeba(tmp_path / "celeba")
    tr, va, te = (CelebA(root, s) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (32, 4, 4)
    assert not set(tr.names) & set(te.names) and tr.names == sorted(tr.names)
    assert tr.source == "celeba" and "official" in tr.description
    img = tr.load(0, 64)
    assert img.size == (64, 64) and img.getpixel((10, 10))[1] == 80
    assert tr.identities["000005.jpg"] == 1


def test_missing_folder_and_partition(tmp_path):
    with pytest.raises(FileNotFoundError, match="ISFR_DATA_ROOT"):
        CelebA(tmp_path / "absent")
    root = _fake_celeba(tmp_path / "celeba", n=3)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt.*ISFR_DATA_ROOT"):
        CelebA(root, "train")
    (root / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(ValueError, match="list_eval_partition.txt"):
        read_partition(root)
    with pytest.raises(ValueError, match="protocol"):
        celeba_names(root, "train", protocol="mine")


def test_seeded_split_paper_fractions():
    names = [f"{i:06d}.jpg" for i in range(202_599)]
    test = seeded_split(names, "test", seed=0)
    assert len(test) == 20_260  # section 4.1: 182,339 train / 20,260 test
    small = [f"{i}" for i in range(1000)]
    parts = {s: seeded_split(small, s, 1) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [855, 45, 100]
    assert sorted(sum(parts.values(), [])) == sorted(small)
    assert seeded_split(small, "test", 1) == parts["test"] and seeded_split(small, "test", 2) != parts["test"]
    assert len(seeded_split(small, "val", 1, SplitFractions(test=0.1, val=0.0))) == 0
    with pytest.raises(ValueError):
        SplitFractions(test=1.2)


def test_image_folder(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for i in range(10):
            Image.new("RGB", (20, 30), (i, 0, 0)).save(tmp_path / sub / f"{i}.{'png' if sub == 'a' else 'webp'}")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "nvidia_irregular_masks").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "nvidia_irregular_masks" / "m.png")
    assert len(list_images(tmp_path)) == 20
    f = ImageFolder(tmp_path, "test", seed=3)
    assert len(f) == 2 and f.source == "folder" and f.load(0, 16).size == (16, 16)
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "empty-nothing")


@pytest.mark.shared_data
def test_real_official_counts(data_root):
    counts = [len(celeba_names(data_root / "celeba", s)) for s in ("train", "val", "test")]
    assert counts == [4560, 780, 660]
    ids = CelebA(data_root / "celeba", "test").identities
    assert len(ids) == 6000 and len(set(ids.values())) == 200


@pytest.mark.shared_data
def test_real_paper_protocol(data_root):
    parts = {s: celeba_names(data_root / "celeba", s, "paper", seed=0) for s in ("train", "val", "test")}
    assert len(parts["test"]) == 600 and len(parts["train"]) + len(parts["val"]) == 5400
    assert len(parts["val"]) == 270
    assert not set(parts["train"]) & set(parts["test"]) and not set(parts["val"]) & set(parts["test"])
    img = np.asarray(CelebA(data_root / "celeba", "test", "paper").load(0, 128))
    assert img.shape == (128, 128, 3) and img.std() > 5
