"""No table, log or provenance line names a machine's folders: paths are written from the runs folder, the data
root, the torch hub or the repository (isfr.core.paths.shown_path), and the data layer's descriptions follow it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from isfr.data import CelebA, ImageFolder, NvidiaMasks
from isfr.core.paths import REPO_ROOT, portable, portable_text, shown_path


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """A runs folder and a data root set by their variables, and an empty TORCH_HOME, all under ``tmp_path``."""
    runs, data = tmp_path / "runs", tmp_path / "data"
    monkeypatch.setenv("ISFR_RUNS_DIR", str(runs))
    monkeypatch.setenv("ISFR_DATA_ROOT", str(data))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return runs, data


def test_shown_path_names_each_folder_by_its_variable(folders, tmp_path):
    runs, data = folders
    assert shown_path(runs / "small" / "celeba-1234abcd" / "sfr") == "$ISFR_RUNS_DIR/small/celeba-1234abcd/sfr"
    assert shown_path(data / "celeba") == "$ISFR_DATA_ROOT/celeba"
    assert shown_path(data) == "$ISFR_DATA_ROOT"
    assert shown_path(tmp_path / "torch" / "hub" / "checkpoints" / "x.pth") == "torch.hub.get_dir()/checkpoints/x.pth"
    assert shown_path(REPO_ROOT / "figures" / "small") == "figures/small"
    assert shown_path(tmp_path / "elsewhere" / "faces") == ".../faces"  # no known folder: its name only
    assert shown_path("figures/small/notebooks") == "figures/small/notebooks"  # relative stays as given


def test_portable_text_and_records(folders, tmp_path):
    runs, data = folders
    text = f"resuming {runs}/small/sfr/checkpoints/step_0000500.pt; data {data}; code {REPO_ROOT}/isfr/cli.py"
    assert portable_text(text) == ("resuming $ISFR_RUNS_DIR/small/sfr/checkpoints/step_0000500.pt; "
                                   "data $ISFR_DATA_ROOT; code isfr/cli.py")
    record = portable({"data": {"root": str(data), "cache": str(tmp_path / "cache")}, "steps": [1, 2],
                       "note": f"lock {runs}/small/.sfr.lock"})
    assert record == {"data": {"root": "$ISFR_DATA_ROOT", "cache": ".../cache"}, "steps": [1, 2],
                      "note": "lock $ISFR_RUNS_DIR/small/.sfr.lock"}


def _fake_celeba(root, n=10):
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        Image.new("RGB", (178, 218), (40, 80, 120)).save(root / "img_align_celeba" / name)
    (root / "list_eval_partition.txt").write_text("".join(f"{x} {i % 3}\n" for i, x in enumerate(names)))
    return root


def _fake_masks(folder, n=6):
    folder.mkdir(parents=True)
    for i in range(n):
        m = np.zeros((32, 32), np.uint8)
        m[: 4 * (i + 1)] = 255
        Image.fromarray(m).save(folder / f"{i:05d}.png")
    return folder


def test_dataset_descriptions_name_no_absolute_path(folders, tmp_path, monkeypatch):
    _, data = folders
    celeba = _fake_celeba(data / "celeba")
    masks = NvidiaMasks(_fake_masks(data / "nvidia_irregular_masks" / "testing_mask_dataset"), 16,
                        cache=tmp_path / "cache")
    val = CelebA(celeba, "val")
    assert val.description.endswith("at $ISFR_DATA_ROOT/celeba")
    assert masks.description.endswith("from $ISFR_DATA_ROOT/nvidia_irregular_masks/testing_mask_dataset")
    monkeypatch.delenv("ISFR_DATA_ROOT")  # a data root given as an argument: the folder by its name
    for text in (CelebA(celeba, "test").description, ImageFolder(celeba / "img_align_celeba").description,
                 val.limited(2).description):
        assert str(tmp_path) not in text and "/" + tmp_path.parts[1] not in text, text


def test_missing_lpips_weights_note_names_the_hub_folder(folders, tmp_path):
    from isfr.models.backbones import load_alexnet_state_dict

    with pytest.raises(FileNotFoundError) as err:
        load_alexnet_state_dict()
    assert "not found at torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth" in str(err.value)
    assert str(tmp_path) not in str(err.value)
