"""Pretrained backbones loaded from torchvision weight files in the torch.hub cache.

Nothing here downloads. Every network is built with ``weights=None`` (or from
``torchvision.models.vgg.make_layers``) and filled with ``load_state_dict`` from
the file torchvision itself would have cached::

    <torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth        (VGG-16, ImageNet)
    <torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth  (AlexNet, ImageNet; LPIPS)

``torch.hub.get_dir()`` honours ``TORCH_HOME`` (default ``~/.cache/torch/hub``).

* :func:`load_vgg16_features` -- the perceptual / style feature extractor of
  section 3.4 (eqs. 7-8): activations after ``vgg16().features`` slices
  ``[:5]``, ``[5:10]``, ``[10:17]`` (the paper's "5th, 10th and 17th layers",
  i.e. pool1, pool2, pool3 as in partial convolutions / LGNet). Frozen, eval mode,
  ImageNet mean/std applied to [-1, 1] inputs. ``weights="random"`` (only with
  ``allow_random=True``) gives a seeded random VGG whose ``random_features`` flag
  is ``True``: every log / table that uses it must say "random VGG features".
* :func:`load_alexnet_state_dict` -- the torchvision AlexNet ``features.*`` weights,
  used by :mod:`isfr.evaluation.metrics` to fill the LPIPS trunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.models import AlexNet_Weights, VGG16_Weights
from torchvision.models.vgg import cfgs as _vgg_cfgs
from torchvision.models.vgg import make_layers as _vgg_make_layers

from isfr.core.paths import shown_path
from isfr.models.pretrained import STANDIN_ENV, STANDIN_NOTE, sha256_file, standins_allowed, torchvision_hash_ok

VGG16_FILE = "vgg16-397923af.pth"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
VGG16_URL = VGG16_Weights.IMAGENET1K_V1.url  # .../models/vgg16-397923af.pth (not fetched)
ALEXNET_URL = AlexNet_Weights.IMAGENET1K_V1.url  # .../models/alexnet-owt-7be5be79.pth (not fetched)

#: torchvision ``vgg16().features`` slice ends: the paper's 5th, 10th, 17th layers (sec. 3.4).
VGG_SLICE_ENDS: tuple[int, ...] = (5, 10, 17)
#: torchvision AlexNet conv layers (indices in ``features``) that LPIPS uses.
ALEXNET_CONV_IDX: tuple[int, ...] = (0, 3, 6, 8, 10)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def hub_checkpoint_path(filename: str) -> Path:
    """Path torchvision would cache ``filename`` at: ``torch.hub.get_dir()/checkpoints/``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _missing_file_error(path: Path, url: str, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} weights not found at {shown_path(path)}. Put torchvision's file '{Path(url).name}' "
        f"(URL {url}) there, e.g. copy it from a machine with internet; the directory is "
        f"torch.hub.get_dir()/checkpoints and honours TORCH_HOME. Nothing is downloaded at run time."
    )


def _check_release(path: Path, url: str, what: str) -> bool:
    """torchvision's convention: the hex digits after the last '-' of the name prefix the file's sha256.
    A file that fails it is corrupt, not the release, or a stand-in (:mod:`isfr.models.pretrained`): refused unless
    stand-ins are allowed. Returns True for a stand-in (accepted), False for the release (or a name
    without a hash)."""
    if torchvision_hash_ok(path) is not False:
        return False
    if not standins_allowed():
        raise ValueError(f"{path}: sha256 {sha256_file(path)[:12]}... does not match the hash prefix in its name, "
                         f"so it is corrupt, not torchvision's release, or a stand-in: put torchvision's "
                         f"'{Path(url).name}' ({what}, URL {url}) there, or set {STANDIN_ENV}=1 to accept a "
                         f"stand-in (`isfr dryrun` does; {STANDIN_NOTE})")
    return True


def _load_features_state(path: Path, conv_idx: tuple[int, ...]) -> dict[str, Tensor]:
    """Read a torchvision checkpoint and keep ``features.{i}.weight/bias`` for ``i in conv_idx``.

    The keys keep their torchvision index (``"0.weight"``), ready for a ``features`` Sequential.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    out: dict[str, Tensor] = {}
    for i in conv_idx:
        for p in ("weight", "bias"):
            key = f"features.{i}.{p}"
            if key not in state:
                raise ValueError(f"{path} has no key '{key}': not a torchvision state_dict "
                                 f"of the expected architecture.")
            out[f"{i}.{p}"] = state[key]
    return out


class VGG16Features(nn.Module):
    """Frozen VGG-16 ``features[:17]`` returning the pool1, pool2, pool3 activations.

    Input: image ``(B, 3, H, W)`` in [-1, 1]; it is mapped to [0, 1] and ImageNet-normalised.
    Output: list of 3 tensors, ``(B, 64, H/2, W/2)``, ``(B, 128, H/4, W/4)``, ``(B, 256, H/8, W/8)``.
    ``random_features`` is True when the weights are a random init, not ImageNet.
    """

    def __init__(self, features: nn.Sequential, random_features: bool, source: str, standin: bool = False) -> None:
        super().__init__()
        starts = (0,) + VGG_SLICE_ENDS[:-1]
        self.slices = nn.ModuleList(
            nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in zip(starts, VGG_SLICE_ENDS)
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.random_features = random_features
        self.standin = standin  # a stand-in file (isfr.models.pretrained): ImageNet's layout, random values
        self.source = source
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG16Features":
        """Always stays in eval mode (frozen backbone)."""
        return super().train(False)

    def normalize(self, x: Tensor) -> Tensor:
        """[-1, 1] -> ImageNet-normalised."""
        return ((x + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, x: Tensor) -> list[Tensor]:
        h = self.normalize(x)
        feats = []
        for s in self.slices:
            h = s(h)
            feats.append(h)
        return feats

    @property
    def label(self) -> str:
        """Text for logs / tables."""
        if self.random_features:
            return "random VGG features"
        return "stand-in VGG-16 weights (numbers are meaningless)" if self.standin else "ImageNet VGG-16 features"


def _vgg16_layers() -> nn.Sequential:
    """Untrained VGG-16 ``features[:17]`` exactly as torchvision builds them (conv indices kept)."""
    return _vgg_make_layers(_vgg_cfgs["D"], batch_norm=False)[: VGG_SLICE_ENDS[-1]]


def load_vgg16_features(
    weights: Literal["imagenet", "random"] = "imagenet",
    allow_random: bool = False,
    *,
    seed: int = 0,
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> VGG16Features:
    """VGG-16 feature extractor for the perceptual / style losses (eqs. 7-8).

    ``weights="imagenet"``: load ``path`` (default: :func:`hub_checkpoint_path` of
    ``vgg16-397923af.pth``); if the file is missing, fall back to random weights only when
    ``allow_random`` is True, else raise ``FileNotFoundError`` naming the path and file. A file whose
    sha256 does not match its name is refused unless stand-ins are allowed (:mod:`isfr.models.pretrained`).
    ``weights="random"`` requires ``allow_random=True``. Random weights follow torchvision's
    VGG init (Kaiming-normal fan-out, zero bias) drawn from ``torch.Generator`` seeded by ``seed``.
    The global RNG is never touched.
    """
    if weights not in ("imagenet", "random"):
        raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
    if weights == "random" and not allow_random:
        raise ValueError("weights='random' needs allow_random=True (and every output must say "
                         "'random VGG features').")
    with torch.random.fork_rng(devices=[]):  # default layer init must not advance the global RNG
        layers = _vgg16_layers()
    conv_idx = tuple(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    file = Path(path) if path is not None else hub_checkpoint_path(VGG16_FILE)
    if weights == "imagenet" and file.is_file():
        standin = _check_release(file, VGG16_URL, "VGG-16, ImageNet")
        layers.load_state_dict(_load_features_state(file, conv_idx), strict=True)
        model = VGG16Features(layers, random_features=False, source=shown_path(file), standin=standin)
    elif weights == "imagenet" and not allow_random:
        raise _missing_file_error(file, VGG16_URL, "VGG-16 (ImageNet)")
    else:
        g = torch.Generator().manual_seed(seed)
        for m in layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
                nn.init.zeros_(m.bias)
        model = VGG16Features(layers, random_features=True, source=f"random(seed={seed})")
    return model.to(device)


def load_alexnet_state_dict(path: str | Path | None = None) -> dict[str, Tensor]:
    """torchvision AlexNet conv weights ``{"0.weight", "0.bias", "3.weight", ..., "10.bias"}``.

    Keys are indices into ``torchvision.models.alexnet().features`` (the LPIPS trunk).
    Raises ``FileNotFoundError`` naming ``<hub>/checkpoints/alexnet-owt-7be5be79.pth`` if absent; a file
    whose sha256 does not match its name is refused unless stand-ins are allowed (:mod:`isfr.models.pretrained`).
    """
    file = Path(path) if path is not None else hub_checkpoint_path(ALEXNET_FILE)
    if not file.is_file():
        raise _missing_file_error(file, ALEXNET_URL, "AlexNet (ImageNet, for LPIPS)")
    _check_release(file, ALEXNET_URL, "AlexNet, ImageNet, for LPIPS")
    return _load_features_state(file, ALEXNET_CONV_IDX)
