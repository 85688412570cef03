"""Datasets, DataLoader, data-root resolution and the build entry point."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import fields

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from isfr.data import DataConfig, ImageFiles, InpaintingEvalDataset, InpaintingTrainDataset, MaskSampler
from isfr.data import ProceduralMasks, build_dataset, make_manifest, resolve_data_root


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)


def _synthetic(split="train", res=32, **kw):
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        return build_dataset("synthetic", split, res, **kw)


def _check_item(item, res):
    assert item["image"].shape == (3, res, res) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert item["mask"].shape == (1, res, res) and set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert item["ratio"] == pytest.approx(item["mask"].mean().item())


def test_train_items_deterministic_per_epoch():
    ds = _synthetic(limit=8)
    assert isinstance(ds, InpaintingTrainDataset)
    a, b = ds[3], ds[3]
    _check_item(a, 32)
    assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["mask"], a["mask"])


def test_train_items_keyed_by_sample_seed():
    """(index, sample_seed) keys, as the training loop's sampler passes them, pick the mask."""
    ds = _synthetic(limit=8)
    a, b, c = ds[(3, 11)], ds[(3, 11)], ds[(3, 12)]
    _check_item(a, 32)
    assert a["name"] == ds[3]["name"]
    assert torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["mask"], c["mask"])


def test_dataloader_workers_match_single_process():
    ds = _synthetic(limit=12)
    batches = [list(DataLoader(ds, batch_size=4, num_workers=w)) for w in (0, 2)]
    for b0, b2 in zip(*batches):
        assert b0["image"].shape == (4, 3, 32, 32) and b0["mask"].shape == (4, 1, 32, 32)
        assert torch.equal(b0["mask"], b2["mask"]) and b0["name"] == b2["name"]


def test_eval_dataset_from_manifest():
    ds = _synthetic("test", limit=3)
    assert isinstance(ds, InpaintingEvalDataset) and len(ds) == 18
    item = ds[7]
    _check_item(item, 32)
    assert item["bucket"] == "10-20" and item["name"] == ds.images.names[1]
    with pytest.raises(ValueError, match="64px"):
        InpaintingEvalDataset(ds.images, ds.manifest, 64)


def test_saved_manifest_used_and_limited(tmp_path):
    from isfr.data import manifest_hash, write_manifest

    full = _synthetic("test", limit=4)
    path = tmp_path / "m.csv"
    h = write_manifest(full.manifest, path)
    again = _synthetic("test", limit=4, manifest=str(path), seed=9)  # the file wins over the seed
    assert manifest_hash(again.manifest) == h
    assert len(_synthetic("test", limit=2, manifest=str(path))) == 12


def test_corrupt_training_image_skipped(tmp_path):
    for i in range(4):
        Image.new("RGB", (20, 20), (60 * i, 0, 0)).save(tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"garbage")
    images = ImageFiles(tmp_path, [f"{i}.png" for i in range(4)], "folder", "test images")
    ds = InpaintingTrainDataset(images, MaskSampler(ProceduralMasks(16)), 16)
    with pytest.warns(RuntimeWarning, match="1.png"):
        item = ds[1]
    assert item["name"] == "2.png"  # the next image, deterministically
    _check_item(item, 16)
    (tmp_path / "2.png").unlink()
    with pytest.warns(RuntimeWarning):
        assert ds[1]["name"] == "3.png"


def test_empty_and_full_masks_are_legal():
    ds = _synthetic("test", limit=2)
    df = ds.manifest.copy()
    df.loc[0, ["mask", "ratio"]] = ["procedural:0-10:1", 0.0]
    eval_ds = InpaintingEvalDataset(ds.images, df, 32)
    assert eval_ds[0]["mask"].shape == (1, 32, 32)
    from isfr.data.datasets import mask_to_tensor

    for m in (np.zeros((8, 8), bool), np.ones((8, 8), bool)):
        assert mask_to_tensor(m).mean() in (0.0, 1.0)


def test_resolve_data_root(tmp_path, monkeypatch, no_env):
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        assert resolve_data_root().kind == "synthetic"
    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    (tmp_path / "nvidia_irregular_masks" / "testing_mask_dataset").mkdir(parents=True)
    r = resolve_data_root(tmp_path)
    assert (r.kind, r.path, r.masks) == ("celeba", tmp_path / "celeba", tmp_path / "nvidia_irregular_masks")
    monkeypatch.setenv("ISFR_DATA_ROOT", str(tmp_path / "celeba"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = resolve_data_root()
    assert (r.kind, r.masks) == ("celeba", tmp_path / "nvidia_irregular_masks")
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.new("RGB", (8, 8)).save(faces / "a.jpg")
    assert resolve_data_root(faces).kind == "folder"  # argument beats the environment
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_root(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        resolve_data_root(tmp_path / "empty")


def test_build_dataset_defaults_match_config():
    sig = inspect.signature(build_dataset).parameters
    defaults = {f.name: f.default for f in fields(DataConfig)}
    for name in ("resolution", "preprocess", "protocol", "mask_protocol", "seed", "limit"):
        assert sig[name].default == defaults[name], name
    assert defaults["resolution"] == 256
    with pytest.raises(ValueError, match="preprocess"):
        DataConfig(preprocess="stretch")
    with pytest.raises(ValueError, match="mask_protocol"):
        build_dataset("synthetic", mask_protocol="mine")
    with pytest.raises(ValueError, match="protocol"):
        DataConfig(protocol="celeba-hq")


@pytest.mark.shared_data
def test_real_loader_shapes(data_root, mask_cache, nvidia_256):
    ds = build_dataset(data_root, "train", 256, cache=mask_cache, limit=32)
    assert ds.source == "celeba" and "CelebA train" in ds.description and "NVIDIA" in ds.description
    batch = next(iter(DataLoader(ds, batch_size=8, num_workers=2)))
    assert batch["image"].shape == (8, 3, 256, 256) and batch["mask"].shape == (8, 1, 256, 256)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert torch.allclose(batch["mask"].mean((1, 2, 3)).double(), batch["ratio"])
    leak = build_dataset(data_root, "train", 64, mask_protocol="leak_free", cache=mask_cache, limit=4)
    assert leak[0]["mask_name"].startswith("procedural:")
    test = build_dataset(data_root, "test", 256, cache=mask_cache, limit=2)
    assert len(test) == 12 and test[11]["bucket"] == "50-60" and not test[11]["mask_name"].startswith("proc")
    manifest = make_manifest(test.images.names, nvidia_256, 256, seed=0)
    assert manifest.equals(test.manifest)


class _Probe(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        from isfr.data.workers import tune_worker_malloc

        return tune_worker_malloc()


def test_malloc_tuning_only_in_workers():
    from isfr.data.workers import tune_worker_malloc

    assert tune_worker_malloc() is False  # main process: untouched
    flags = [bool(b) for batch in DataLoader(_Probe(), batch_size=1, num_workers=1) for b in batch]
    assert flags == [True, True]
