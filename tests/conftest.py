"""Shared fixtures. Data fixtures: real data via ISFR_DATA_ROOT (fallback ../shared/data), else skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _real_data_root() -> Path | None:
    env = os.environ.get("ISFR_DATA_ROOT")
    cand = Path(env) if env else REPO.parent / "shared" / "data"
    return cand if (cand / "celeba").is_dir() and (cand / "nvidia_irregular_masks").is_dir() else None


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
    """One mask cache folder for the whole session (so NVIDIA ratios are computed once)."""
    return tmp_path_factory.mktemp("isfr-cache")


@pytest.fixture(scope="session")
def nvidia_256(data_root, mask_cache):
    """The real NVIDIA masks at 256 px (cache built once per session, in tmp)."""
    from isfr.data import NvidiaMasks

    return NvidiaMasks(data_root / "nvidia_irregular_masks", 256, cache=mask_cache, workers=2)
