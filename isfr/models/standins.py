"""Stand-ins (ours): seeded random weights in exactly the formats of the pretrained files
(:mod:`isfr.models.pretrained`), so the paper preset can run end to end on a CPU before anyone spends a GPU-day
on it (``isfr dryrun``). Each is refused where the real file is expected unless
``ISFR_ALLOW_STANDIN_WEIGHTS=1``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torchvision.models import alexnet, vgg16

from isfr.models.backbones import ALEXNET_FILE, VGG16_FILE
from isfr.models.arcface import ARCFACE_FILE, ArcFace
from isfr.models.psp import GradualStyleEncoder, n_styles_for
from isfr.models.stylegan2 import Generator
from isfr.models.pretrained import PSP_FILE, STANDIN_KEY, STANDIN_NOTE
from isfr.core.utils import seeded


def compact_tensor(t: Tensor) -> Tensor:
    """``t``'s shape and dtype held in a few of its own values: element ``[i, j, ...]`` is ``t.flatten()[i + j +
    ...]``, a strided view that ``torch.save`` writes as its small storage. Values keep their initialisation's
    range (a BatchNorm variance stays positive); integer and empty tensors are returned as they are."""
    if t.dim() == 0 or t.numel() == 0 or not t.is_floating_point():
        return t
    n = sum(s - 1 for s in t.shape) + 1
    return t.flatten()[:n].clone().as_strided(t.shape, (1,) * t.dim())


def _compacted(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return compact_tensor(obj)
    if isinstance(obj, dict):
        return {k: _compacted(v) for k, v in obj.items()}
    return obj


def _save_atomic(obj: Any, path: Path, compact: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(_compacted(obj) if compact else obj, tmp)
    os.replace(tmp, path)
    return path


def write_psp_standin(path: str | Path, *, seed: int = 0, size: int = 1024, style_dim: int = 512, n_mlp: int = 8,
                      channel_multiplier: int = 2, width: float = 1.0, channel_max: int | None = None,
                      compact: bool = False) -> Path:
    """pSp's ``psp_ffhq_encode.pt`` layout (``state_dict`` with ``encoder.*`` / ``decoder.*``, ``opts``,
    ``latent_avg``) with seeded random weights; defaults: IR-SE-50 + the 1024 px config-f generator.
    Smaller sizes are for tests (:meth:`isfr.models.psp.PSP.from_official_checkpoint` reads them when
    given a matching ``decoder``)."""
    with seeded(seed):
        enc = GradualStyleEncoder(input_nc=3, n_styles=n_styles_for(size), style_dim=style_dim, width=width)
        dec = Generator(size, style_dim, n_mlp, channel_multiplier=channel_multiplier, channel_max=channel_max)
        with torch.no_grad():
            latent_avg = dec.mean_latent(1000).reshape(-1)  # as pSp stores it (the generator's mean W)
    state = {**{f"encoder.{k}": v for k, v in enc.state_dict().items()},
             **{f"decoder.{k}": v for k, v in dec.state_dict().items()}}
    opts = {"encoder_type": "GradualStyleEncoder", "output_size": size, "input_nc": 3,
            "start_from_latent_avg": True, "learn_in_w": False, "dataset_type": "ffhq_encode"}
    return _save_atomic({"state_dict": state, "opts": opts, "latent_avg": latent_avg.expand(n_styles_for(size), -1).clone(),
                         STANDIN_KEY: STANDIN_NOTE}, Path(path), compact)


def write_torchvision_standin(name: str, torch_home: str | Path, seed: int = 0, compact: bool = False) -> Path:
    """``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` (the whole torchvision state_dict, seeded
    random) in ``<torch_home>/hub/checkpoints/``: their sha256 cannot match the name, so they are refused
    without the stand-in flag."""
    build = {VGG16_FILE: vgg16, ALEXNET_FILE: alexnet}[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sd = build(weights=None).state_dict()
    return _save_atomic(sd, Path(torch_home) / "hub" / "checkpoints" / name, compact)


def write_arcface_standin(path: str | Path, seed: int = 0, compact: bool = False) -> Path:
    """``model_ir_se50.pth`` (TreB1eN's keys, as pSp ships it) with seeded random weights + the marker."""
    with seeded(seed):
        sd = ArcFace().state_dict()
    return _save_atomic({**sd, STANDIN_KEY: STANDIN_NOTE}, Path(path), compact)


def write_standins(folder: str | Path, seed: int = 0, compact: bool = False) -> dict[str, Path]:
    """Every stand-in, under ``folder`` (never the work tree): ``weights/psp_ffhq_encode.pt``,
    ``weights/model_ir_se50.pth`` and ``torch/hub/checkpoints/{vgg16,alexnet}-*.pth`` (point
    ``TORCH_HOME`` at ``folder/torch``). About 2 GB, as the real files; ``compact`` stores every tensor as a
    strided view of a few of its values (:func:`compact_tensor`): the same keys, shapes and dtypes in under 3 MB, for
    a dry run on a small disk (loading them then takes less memory than loading the real files)."""
    folder = Path(folder)
    return {"psp": write_psp_standin(folder / "weights" / PSP_FILE, seed=seed, compact=compact),
            "arcface": write_arcface_standin(folder / "weights" / ARCFACE_FILE, seed, compact=compact),
            "vgg16": write_torchvision_standin(VGG16_FILE, folder / "torch", seed, compact=compact),
            "alexnet": write_torchvision_standin(ALEXNET_FILE, folder / "torch", seed, compact=compact)}
