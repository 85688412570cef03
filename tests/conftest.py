"""Shared fixtures. Data fixtures: real data via ISFR_DATA_ROOT (fallback ../shared/data), else skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _real_data_root() -> Path | None:
    env = os.environ.get("ISFR_DATA_ROOT")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if (cand / "celeba").is_dir() and (cand / "nvidia_irregular_masks").is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The suite's thread policy: one torch thread. Its models are tiny (threads cost more than they
    save) and on a shared 2-core machine two contending threads stall (seconds instead of ms)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session", autouse=True)
def hermetic_outputs(tmp_path_factory):
    """Every folder the suite writes is a temporary one: runs, figures (manifests included) and the mask cache."""
    mp = pytest.MonkeyPatch()
    for var, name in (("ISFR_RUNS_DIR", "runs"), ("ISFR_FIGURES_DIR", "figures"), ("ISFR_CACHE", "cache")):
        mp.setenv(var, str(tmp_path_factory.mktemp(name)))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder holding celeba/ and nvidia_irregular_masks/ (skips when absent)."""
    root = _real_data_root()
    if root is None:
        pytest.skip("real data not found: set ISFR_DATA_ROOT to the folder holding celeba/ and "
                    "nvidia_irregular_masks/ (default ../shared/data beside the repo)")
    return root


@pytest.fixture(scope="session")
def mask_cache(tmp_path_factory) -> Path:
    """One mask cache folder for the whole test run (so NVIDIA ratios are computed once)."""
    return tmp_path_factory.mktemp("isfr-cache")


@pytest.fixture(scope="session")
def nvidia_256(data_root, mask_cache):
    """The real NVIDIA masks at 256 px (cache built once per test run, in tmp)."""
    from isfr.data import NvidiaMasks

    return NvidiaMasks(data_root / "nvidia_irregular_masks", 256, cache=mask_cache, workers=2)


# ---------------------------------------------------------------- torchvision weight files written by tests
VGG_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
             14: (256, 256)}
ALEX_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; any attempt to download weights fails the test. The weight files tests write
    there are stand-ins (their sha256 cannot match the name), accepted as ``isfr dryrun`` accepts them."""
    from isfr.models.pretrained import STANDIN_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv(STANDIN_ENV, "1")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda *a, **k: pytest.fail("tried to download"))
    return tmp_path


def _write_convs(path: Path, convs: dict, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, (o, c, *k) in convs.items():
        k = k[0] if k else 3
        sd[f"features.{i}.weight"] = torch.randn(o, c, k, k, generator=g) * (2 / (k * k * c)) ** 0.5
        sd[f"features.{i}.bias"] = torch.randn(o, generator=g) * 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return sd


def write_vgg_file(torch_home: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-format VGG-16 state_dict with the keys the loader uses, random values."""
    from isfr.models.backbones import VGG16_FILE

    return _write_convs(torch_home / "hub" / "checkpoints" / VGG16_FILE, VGG_CONVS, seed)


def write_alexnet_file(torch_home: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-format AlexNet state_dict (``features.{0,3,6,8,10}``), random values."""
    from isfr.models.backbones import ALEXNET_FILE

    return _write_convs(torch_home / "hub" / "checkpoints" / ALEXNET_FILE, ALEX_CONVS, seed)


def shipped_file() -> Path:
    """``weights/isfrnet_small.pt`` of this checkout, which must have it: the model ships with the repository."""
    from isfr.models.shipped import SHIPPED_NAME

    path = REPO / "weights" / SHIPPED_NAME
    assert path.is_file(), f"weights/{SHIPPED_NAME} ships with the repository; this checkout lacks it"
    return path


def load_tool(name: str):
    """The module ``tools/<name>.py`` (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
