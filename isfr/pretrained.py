"""The pretrained files a run reads, their identity, and the stand-ins a dry run writes (ours).

Real files (never downloaded here; see the README's "Before your first GPU run"):

* ``psp_ffhq_encode.pt`` -- pSp's IR-SE-50 encoder + 1024 px StyleGAN2 (stage 1, section 3.1),
  at ``PSPConfig.checkpoint``;
* ``vgg16-397923af.pth`` -- torchvision's VGG-16 (perceptual / style losses, eqs. 7-8) and
  ``alexnet-owt-7be5be79.pth`` -- torchvision's AlexNet (LPIPS), in ``torch.hub.get_dir()/checkpoints``;
* ``model_ir_se50.pth`` -- pSp's ArcFace IR-SE-50 (the ID loss when the encoder is trained here).

**Stand-ins**: :func:`write_standins` writes seeded random weights in exactly those formats, so that the
paper preset can be run end to end on a CPU before anyone spends a GPU-day on it (``isfr dryrun``). A
stand-in is refused wherever the real file is expected -- torchvision's files fail the sha256 prefix in
their names, the pSp and ArcFace stand-ins carry the top-level key :data:`STANDIN_KEY` -- unless
``ISFR_ALLOW_STANDIN_WEIGHTS=1`` (the dry run sets it); everything computed with one says
:data:`STANDIN_NOTE`.

**Identity**: :func:`weights_identity` (sha256 prefixes of every pretrained file a training run reads)
enters the run key (:func:`isfr.runs.run_key`), so a run trained on stand-ins is never
resumed or loaded by a run with the real files, nor the reverse.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from isfr.config import Preset

STANDIN_ENV = "ISFR_ALLOW_STANDIN_WEIGHTS"
STANDIN_KEY = "isfr_standin"  # top-level key of the pSp / ArcFace stand-ins (official files have none)
STANDIN_NOTE = "stand-in weights: numbers are meaningless"
PSP_FILE = "psp_ffhq_encode.pt"
_TORCHVISION_NAME = re.compile(r"-([a-f0-9]{8,})\.pth?$")


def standins_allowed() -> bool:
    """True when ``ISFR_ALLOW_STANDIN_WEIGHTS=1`` (set by ``isfr dryrun`` for its own processes)."""
    return os.environ.get(STANDIN_ENV, "") == "1"


def refuse_standin(path: str | Path, what: str) -> None:
    """Raise ``ValueError`` for the stand-in ``path`` unless stand-ins are allowed (then warn once)."""
    if not standins_allowed():
        raise ValueError(f"{path}: a stand-in {what} (seeded random weights written by isfr.pretrained."
                         f"write_standins for dry runs), not the released file: put the real file at this path, "
                         f"or set {STANDIN_ENV}=1 to accept stand-ins (`isfr dryrun` does); {STANDIN_NOTE}")
    _warn_once(str(path), what)


def drop_standin_marker(state: dict, path: str | Path) -> dict:
    """A state_dict file's tensors without :data:`STANDIN_KEY` (ArcFace stand-ins), refused unless allowed."""
    if STANDIN_KEY in state:
        refuse_standin(path, "ArcFace IR-SE-50 (model_ir_se50.pth)")
        return {k: v for k, v in state.items() if k != STANDIN_KEY}
    return state


@lru_cache(maxsize=None)
def _warn_once(path: str, what: str) -> None:
    warnings.warn(f"{path}: stand-in {what} accepted ({STANDIN_ENV}=1): {STANDIN_NOTE}", stacklevel=3)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file (cached per path, size and modification time: hashed once per process)."""
    st = os.stat(path)
    return _sha256(os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def torchvision_hash_ok(path: str | Path) -> bool | None:
    """torchvision's convention: the hex digits after the last '-' of the name prefix the file's sha256.
    None when the name carries no such digits."""
    m = _TORCHVISION_NAME.search(Path(path).name)
    return None if m is None else sha256_file(path).startswith(m.group(1))


def is_standin(path: str | Path) -> bool:
    """Whether ``path`` is not the released file: a torchvision name whose hash does not match, or a
    file carrying :data:`STANDIN_KEY` (read lazily with ``mmap``: no 1 GB load)."""
    ok = torchvision_hash_ok(path)
    if ok is not None:
        return not ok
    return _has_marker(os.fspath(Path(path).resolve()), os.stat(path).st_mtime_ns)


@lru_cache(maxsize=64)
def _has_marker(path: str, mtime_ns: int) -> bool:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not ours to judge here; the loader names what is wrong
        return False
    return isinstance(obj, dict) and STANDIN_KEY in obj


# ------------------------------------------------------------------------------ which files a run reads


def run_weights(preset: "Preset") -> dict[str, Path]:
    """The pretrained files a training run of ``preset`` reads: pSp's checkpoint (frozen stage 1), the
    ImageNet VGG-16 when it is in the hub cache (else random features, no file), ArcFace for the ID loss
    when stage 1 is trained here."""
    from isfr.backbones import VGG16_FILE, hub_checkpoint_path
    from isfr.paths import REPO_ROOT

    out: dict[str, Path] = {}
    if preset.psp.checkpoint:
        p = Path(preset.psp.checkpoint)
        out["psp"] = p if p.is_absolute() else REPO_ROOT / p
    vgg = hub_checkpoint_path(VGG16_FILE)
    if vgg.is_file():
        out["vgg16"] = vgg
    arc = preset.psp_loss.arcface_path
    if arc and preset.schedule.psp_steps > 0:
        out["arcface"] = Path(arc)
    return out


def weights_identity(preset: "Preset") -> dict[str, str]:
    """``{"psp": "<sha256[:12]>", ...}`` for :func:`run_weights` that exist (a missing file is the loader's
    error to report); empty when the run reads none (the CPU presets without a VGG file)."""
    return {k: sha256_file(p)[:12] for k, p in run_weights(preset).items() if p.is_file()}


def standin_flags(preset: "Preset") -> list[str]:
    """``[STANDIN_NOTE]`` when any file the preset reads is a stand-in (provenance lines), else ``[]``."""
    return [STANDIN_NOTE] if any(is_standin(p) for p in run_weights(preset).values() if p.is_file()) else []


# ------------------------------------------------------------------------------ writing stand-ins


def _save_atomic(obj: Any, path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def write_psp_standin(path: str | Path, *, seed: int = 0, size: int = 1024, style_dim: int = 512, n_mlp: int = 8,
                      channel_multiplier: int = 2, width: float = 1.0, channel_max: int | None = None) -> Path:
    """pSp's ``psp_ffhq_encode.pt`` layout (``state_dict`` with ``encoder.*`` / ``decoder.*``, ``opts``,
    ``latent_avg``) with seeded random weights; defaults: IR-SE-50 + the 1024 px config-f generator.
    Smaller sizes are for tests (:meth:`isfr.models.psp.PSP.from_official_checkpoint` reads them when
    given a matching ``decoder``)."""
    import torch

    from isfr.models.psp import GradualStyleEncoder, n_styles_for
    from isfr.models.stylegan2 import Generator
    from isfr.utils import seeded

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
                         STANDIN_KEY: STANDIN_NOTE}, Path(path))


def write_torchvision_standin(name: str, torch_home: str | Path, seed: int = 0) -> Path:
    """``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` (the whole torchvision state_dict, seeded
    random) in ``<torch_home>/hub/checkpoints/``: their sha256 cannot match the name, so they are refused
    without the stand-in flag."""
    import torch
    from torchvision.models import alexnet, vgg16

    from isfr.backbones import ALEXNET_FILE, VGG16_FILE

    build = {VGG16_FILE: vgg16, ALEXNET_FILE: alexnet}[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sd = build(weights=None).state_dict()
    return _save_atomic(sd, Path(torch_home) / "hub" / "checkpoints" / name)


def write_arcface_standin(path: str | Path, seed: int = 0) -> Path:
    """``model_ir_se50.pth`` (TreB1eN's keys, as pSp ships it) with seeded random weights + the marker."""
    from isfr.models.arcface import ArcFace
    from isfr.utils import seeded

    with seeded(seed):
        sd = ArcFace().state_dict()
    return _save_atomic({**sd, STANDIN_KEY: STANDIN_NOTE}, Path(path))


def write_standins(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Every stand-in, under ``folder`` (never the work tree): ``weights/psp_ffhq_encode.pt``,
    ``weights/model_ir_se50.pth`` and ``torch/hub/checkpoints/{vgg16,alexnet}-*.pth`` (point
    ``TORCH_HOME`` at ``folder/torch``). About 2 GB."""
    from isfr.backbones import ALEXNET_FILE, VGG16_FILE
    from isfr.models.arcface import ARCFACE_FILE

    folder = Path(folder)
    return {"psp": write_psp_standin(folder / "weights" / PSP_FILE, seed=seed),
            "arcface": write_arcface_standin(folder / "weights" / ARCFACE_FILE, seed),
            "vgg16": write_torchvision_standin(VGG16_FILE, folder / "torch", seed),
            "alexnet": write_torchvision_standin(ALEXNET_FILE, folder / "torch", seed)}
