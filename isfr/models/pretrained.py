"""The pretrained files a run may read, how a stand-in is told from the real file, and their sha256 (ours).

Real files (never downloaded here; see the README's "Before your first GPU run"):

* ``psp_ffhq_encode.pt`` -- pSp's IR-SE-50 encoder + 1024 px StyleGAN2 (stage 1, section 3.1),
  at ``PSPConfig.checkpoint``;
* ``vgg16-397923af.pth`` -- torchvision's VGG-16 (perceptual / style losses, eqs. 7-8) and
  ``alexnet-owt-7be5be79.pth`` -- torchvision's AlexNet (LPIPS), in ``torch.hub.get_dir()/checkpoints``;
* ``model_ir_se50.pth`` -- pSp's ArcFace IR-SE-50 (the ID loss when the encoder is trained here).

**Stand-ins**: :func:`isfr.models.standins.write_standins` writes seeded random weights in exactly those formats, so that the
paper preset can be run end to end on a CPU before anyone spends a GPU-day on it (``isfr dryrun``). A
stand-in is refused wherever the real file is expected -- torchvision's files fail the sha256 prefix in
their names, the pSp and ArcFace stand-ins carry the top-level key :data:`STANDIN_KEY` -- unless
``ISFR_ALLOW_STANDIN_WEIGHTS=1`` (the dry run sets it); everything computed with one says
:data:`STANDIN_NOTE`.

**Identity**: :func:`isfr.experiments.runs.weights_identity` (sha256 prefixes of every pretrained file a training run
reads, :func:`sha256_file`) enters the run key (:func:`isfr.experiments.runs.run_key`), so a run trained on stand-ins
is never resumed or loaded by a run with the real files, nor the reverse.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path

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
        raise ValueError(f"{path}: a stand-in {what} (seeded random weights written by isfr.models.pretrained."
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
