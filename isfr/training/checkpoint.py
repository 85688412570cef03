"""Checkpoint format, atomic saving with rotation, and loading with clear errors.

Layout of a run's checkpoint folder (``<run_dir>/checkpoints``)::

    step_0001000.pt   full, resumable state after 1000 optimisation steps (the last K kept)
    last.pt           hard link (or copy) of the newest step file
    best.pt           full state at the best validation score so far

Every file is written atomically (temp file + fsync + ``os.replace``) so a kill
leaves either the previous file or a hidden ``.*.tmp`` file, which is ignored.
A checkpoint is a plain dict (see :func:`make_checkpoint`) readable with
``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from isfr.models.checkpoint_utils import diff_state_dict
from isfr.core.utils import TMP_SUFFIX, atomic_torch_save, git_commit

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "CorruptCheckpointError",
    "CheckpointMismatchError",
    "make_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "to_plain",
    "config_diff",
    "state_dict_mismatches",
    "read_checkpoint",
    "list_step_checkpoints",
    "find_latest_checkpoint",
    "load_checkpoint",
    "CheckpointManager",
]

FORMAT = "isfr-checkpoint"
FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")
_MAX_LISTED = 8


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file and the fix."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, corrupt, or not an isfr checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint belongs to another stage, preset or architecture."""


# --------------------------------------------------------------------------- building


def to_plain(obj: Any) -> Any:
    """Dataclasses/mappings/sequences/paths/enums -> dicts, lists, str, numbers (safe for ``weights_only``)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (if available) all CUDA RNG states."""
    algo, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "algo": algo,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["algo"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = list(state.get("cuda") or [])
    if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    elif cuda or torch.cuda.is_available():
        warnings.warn("CUDA RNG state not restored (device count differs from the checkpoint's)", stacklevel=2)


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def make_checkpoint(
    *,
    stage: str,
    preset: str | None,
    step: int,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    scalers: Mapping[str, Any] | None = None,
    extra: Any = None,
    rng: list[dict[str, Any]] | None = None,
    data: Mapping[str, Any] | None = None,
    config: Any = None,
    loop_config: Any = None,
    best: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (format version :data:`FORMAT_VERSION`).

    Keys: ``format``, ``format_version``, ``stage``, ``preset``, ``step`` (completed
    optimisation steps), ``modules`` / ``optimizers`` / ``scalers`` (name -> state
    dict), ``extra`` (the stage's own state), ``rng`` (one RNG state per rank),
    ``data`` (sampler position), ``config`` / ``loop_config`` (plain dicts),
    ``best`` (``{"score", "step"}``), ``metrics`` (latest losses / validation),
    ``git_commit``, ``created`` (UTC ISO time), ``torch_version``.
    """
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "stage": stage,
        "preset": preset,
        "step": int(step),
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
        "scalers": {k: s.state_dict() for k, s in (scalers or {}).items()},
        "extra": extra,
        "rng": rng if rng is not None else [capture_rng_state()],
        "data": to_plain(data or {}),
        "config": to_plain(config),
        "loop_config": to_plain(loop_config),
        "best": to_plain(best),
        "metrics": to_plain(metrics or {}),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
    }


# --------------------------------------------------------------------------- comparing


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_diff(stored: Any, current: Any) -> list[str]:
    """``"field: checkpoint=X, current=Y"`` for every differing (dotted) config field."""
    a, b = _flatten(to_plain(stored) or {}), _flatten(to_plain(current) or {})
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            fa = "<absent>" if va is missing else repr(va)
            fb = "<absent>" if vb is missing else repr(vb)
            out.append(f"{key}: checkpoint={fa}, current={fb}")
    return out


def state_dict_mismatches(
    module: nn.Module, state: Mapping[str, torch.Tensor], prefix: str = ""
) -> list[str]:
    """One line per missing key, unexpected key and shape difference between ``module`` and ``state``
    (:func:`isfr.models.checkpoint_utils.diff_state_dict`)."""
    missing, unexpected, shapes = diff_state_dict(module, state)
    own = module.state_dict()
    return ([f"{prefix}{k}: missing in checkpoint (current {tuple(own[k].shape)})" for k in missing]
            + [f"{prefix}{k}: unexpected in checkpoint ({tuple(getattr(state[k], 'shape', ()))})" for k in unexpected]
            + [f"{prefix}{k}: shape {a} in checkpoint, {b} now" for k, a, b in shapes])


# --------------------------------------------------------------------------- finding / reading


def _step_of(path: Path) -> int | None:
    m = _STEP_RE.match(path.name)
    return int(m.group(1)) if m else None


def list_step_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step_*.pt`` in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(s, p) for p in folder.iterdir() if (s := _step_of(p)) is not None and p.is_file()]
    return sorted(found)


def _checkpoint_dir(path: Path) -> Path:
    """A run dir holding ``checkpoints/`` maps to that subfolder; any other folder to itself."""
    sub = path / "checkpoints"
    return sub if sub.is_dir() else path


def _previous_hint(path: Path) -> str:
    """Name the newest other step checkpoint older than ``path`` (for error messages)."""
    step = _step_of(path)
    others = [
        p for s, p in list_step_checkpoints(path.parent)
        if p.resolve() != path.resolve() and (step is None or s < step)
    ]
    if step is None:  # last.pt / best.pt: skip step files that are the same inode
        others = [p for p in others if not _same_file(p, path)]
    return f"resume from {others[-1]}" if others else "start the run again"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _unpickler_reason(msg: str) -> str:
    lines = [ln.strip() for ln in msg.splitlines() if "WeightsUnpickler error" in ln]
    return lines[0] if lines else msg.splitlines()[0]


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load`` one checkpoint file, turning every failure into an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zips raise RuntimeError/EOFError/OSError/UnpicklingError
        if "Weights only load failed" in str(exc):
            raise CorruptCheckpointError(
                f"{path}: holds objects that are not tensors or plain Python values, so it cannot be "
                f"loaded safely; it was not written by isfr.training (or a stage's extra_state() "
                f"returned custom objects). {_unpickler_reason(str(exc))}"
            ) from exc
        raise CorruptCheckpointError(
            f"{path}: the file is truncated or corrupt ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            f"delete it or {_previous_hint(path)}"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{path}: not an isfr checkpoint (no format={FORMAT!r} key)")
    if int(ckpt.get("format_version", -1)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {ckpt['format_version']} is newer than this code's "
            f"{FORMAT_VERSION}; update isfr"
        )
    ckpt["path"] = str(path)
    return ckpt


def find_latest_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """Newest complete step checkpoint in a checkpoint folder or run dir, loaded; None if none.

    Truncated or corrupt files and leftover ``.tmp`` files are skipped with a
    warning, falling back to the previous checkpoint.
    """
    folder = _checkpoint_dir(Path(path))
    if not folder.is_dir():
        return None
    for tmp in sorted(folder.glob(f".*{TMP_SUFFIX}")):
        warnings.warn(f"ignoring half-written temporary file {tmp}", stacklevel=2)
    for _, candidate in reversed(list_step_checkpoints(folder)):
        try:
            return read_checkpoint(candidate, map_location)
        except CorruptCheckpointError as exc:
            warnings.warn(f"skipping checkpoint {candidate}: {exc}", stacklevel=2)
    return None


def load_checkpoint(
    path_or_dir: str | Path,
    *,
    expected_stage: str | None = None,
    expected_preset: str | None = None,
    modules: Mapping[str, nn.Module] | None = None,
    config: Any = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load (and check) a checkpoint file, or the newest complete one in a folder/run dir.

    Checks, each failing with an error naming the file: it exists and is complete;
    it was saved by ``expected_stage`` / ``expected_preset`` (when given); its state
    dicts fit ``modules`` (when given; mismatched keys/shapes are listed, together
    with the config fields that differ from ``config``). When all checks pass the
    state dicts are loaded into ``modules``. Returns the checkpoint dict (its
    ``"path"`` key says which file was used).
    """
    path = Path(path_or_dir)
    if path.is_dir():
        ckpt = find_latest_checkpoint(path, map_location)
        if ckpt is None:
            raise FileNotFoundError(f"no complete checkpoint (step_*.pt) in {_checkpoint_dir(path)}")
    else:
        ckpt = read_checkpoint(path, map_location)
    check_checkpoint(ckpt, expected_stage=expected_stage, expected_preset=expected_preset,
                     modules=modules, config=config)
    for name, module in (modules or {}).items():
        module.load_state_dict(ckpt["modules"][name])
    return ckpt


def check_checkpoint(
    ckpt: Mapping[str, Any],
    *,
    expected_stage: str | None = None,
    expected_preset: str | None = None,
    modules: Mapping[str, nn.Module] | None = None,
    config: Any = None,
) -> None:
    """Raise :class:`CheckpointMismatchError` if ``ckpt`` does not fit this stage/preset/modules."""
    where = ckpt.get("path", "<checkpoint>")
    if expected_stage is not None and ckpt.get("stage") != expected_stage:
        raise CheckpointMismatchError(
            f"{where} was saved by stage {ckpt.get('stage')!r}, not {expected_stage!r}: "
            f"use the right checkpoint or another run_dir"
        )
    if expected_preset is not None and ckpt.get("preset") != expected_preset:
        raise CheckpointMismatchError(
            f"{where} was saved with preset {ckpt.get('preset')!r}, not {expected_preset!r}: "
            f"use the right checkpoint or another run_dir"
        )
    if not modules:
        return
    problems: list[str] = []
    stored = ckpt.get("modules", {})
    for name in modules:
        if name not in stored:
            problems.append(f"module {name!r} missing in checkpoint (it has {sorted(stored)})")
    for name in stored:
        if name not in modules:
            problems.append(f"unexpected module {name!r} in checkpoint")
    for name, module in modules.items():
        if name in stored:
            problems += state_dict_mismatches(module, stored[name], prefix=f"{name}.")
    if not problems:
        return
    shown = "\n  ".join(problems[:_MAX_LISTED]) + (
        f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    )
    if config is not None:
        diffs = config_diff(ckpt.get("config"), config)
        cfg_text = (
            "config fields that differ:\n  " + "\n  ".join(diffs[:_MAX_LISTED])
            if diffs else "the stored config equals the current one (the code changed?)"
        )
    else:
        cfg_text = "pass config= to see which config fields differ"
    raise CheckpointMismatchError(
        f"{where} does not fit the current architecture (stage {ckpt.get('stage')!r}, "
        f"preset {ckpt.get('preset')!r}):\n  {shown}\n{cfg_text}"
    )


# --------------------------------------------------------------------------- saving


def _link_or_copy(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` a hard link to ``src`` (a copy where links are unsupported)."""
    tmp = dst.with_name(f".{dst.name}.link{TMP_SUFFIX}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, dst)


class CheckpointManager:
    """Writes ``step_XXXXXXX.pt`` + ``last.pt`` (+ ``best.pt``) atomically, keeping the last K."""

    def __init__(self, folder: str | Path, keep_last: int = 3) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last

    def step_path(self, step: int) -> Path:
        return self.folder / f"step_{step:07d}.pt"

    @property
    def last_path(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def remove_temp_files(self) -> None:
        """Delete leftovers of writes that were killed midway."""
        for tmp in self.folder.glob(f".*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)

    def save(self, ckpt: Mapping[str, Any], *, best: bool = False) -> Path:
        """Write ``ckpt`` as the step file, point ``last.pt`` (and ``best.pt`` if ``best``) at it, prune."""
        path = self.step_path(int(ckpt["step"]))
        atomic_torch_save(dict(ckpt), path)
        _link_or_copy(path, self.last_path)
        if best:
            _link_or_copy(path, self.best_path)
        for _, old in list_step_checkpoints(self.folder)[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, ckpt: Mapping[str, Any]) -> Path:
        """Write ``ckpt`` as ``best.pt`` only (validation step that is not a checkpoint step)."""
        atomic_torch_save(dict(ckpt), self.best_path)
        return self.best_path
