"""Small shared helpers: seeding, git commit lookup, atomic file writes, one-line warnings."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import random
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Iterator, Literal

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "seeded",
    "git_commit",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "one_line_warnings",
    "each_warning_once",
    "error_line",
    "error_lines",
    "thread_policy",
    "cpu_runs_bf16",
    "resolve_amp",
    "autocast",
    "hardware",
    "TMP_SUFFIX",
]

#: Suffix of the temporary files written by the atomic helpers (``.<name>.<random>.tmp``).
TMP_SUFFIX = ".tmp"


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's global RNGs (all devices).

    With ``deterministic=True`` also ask torch for deterministic algorithms
    (``torch.use_deterministic_algorithms``; cuDNN benchmark off) and set
    ``CUBLAS_WORKSPACE_CONFIG`` if it is unset, as CUDA requires.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block on torch's CPU RNG seeded with ``seed``, then restore the state it had: weights
    initialised inside are the same in every fresh process (same seed, same run)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


_OWN_COMMIT: list[str] = []


def git_commit(repo_dir: str | Path | None = None) -> str:
    """Short hash of ``HEAD`` (``"-dirty"`` appended if tracked files changed), or ``"unknown"``.

    ``repo_dir`` defaults to the folder holding this package; that answer is read once per process,
    so a long run records the code it started with, not the edits made while it ran. Untracked files
    and changes under the top-level ``figures/`` (outputs the notebooks rewrite) do not count as dirty.
    """
    if repo_dir is None:
        if not _OWN_COMMIT:
            _OWN_COMMIT.append(_read_commit(Path(__file__).resolve().parent))
        return _OWN_COMMIT[0]
    return _read_commit(Path(repo_dir))


def _read_commit(cwd: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)figures"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    if status.returncode == 0 and status.stdout.strip():
        commit += "-dirty"
    return commit


def _fsync_dir(folder: Path) -> None:
    """Best-effort fsync of a directory so a rename survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only for an instant)
    os.umask(mask)
    return mask


def _mkstemp(path: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` next to ``path``, but with the mode a plain ``open`` would give (0666 & ~umask,
    0644 under umask 022) instead of mkstemp's 0600, so the file keeps it once moved onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError:
        pass
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temp file next to ``path``; on success fsync it and ``os.replace`` it onto ``path``.

    If the body raises, the temp file is removed and ``path`` is untouched. If the
    process is killed, only a hidden ``.<name>.*.tmp`` file can be left behind. The file gets the
    umask's mode (0644 under umask 022), as with ``open``; so do all the atomic helpers below.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_open writes whole files; mode must contain 'w', got {mode!r}")
    path = Path(path)
    fd, tmp = _mkstemp(path, f".{path.name}.", TMP_SUFFIX)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and move it onto ``path``.

    For writers that take a file name (``np.save``, ``Figure.savefig``, ``DataFrame.to_csv``): the
    temporary name keeps ``path``'s suffix so format inference works. On error it is removed.
    """
    path = Path(path)
    fd, tmp = _mkstemp(path, f".{path.stem}.", f"{TMP_SUFFIX}{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values via ``str``)."""
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


#: below this much room left on its disk, a failed ``torch.save`` is taken for a full disk
FULL_DISK_BYTES = 64 * 2**20


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` atomically: a crash or error never leaves a half-written ``path``. A disk that
    fills up part-way (torch says only "unexpected pos ...") is reported as ``OSError(ENOSPC)`` naming ``path``."""
    with atomic_open(path, "wb") as f:
        try:
            torch.save(obj, f)
        except RuntimeError as err:
            free = shutil.disk_usage(Path(path).parent).free  # the partial file still takes its room here
            if free >= FULL_DISK_BYTES:
                raise
            raise OSError(errno.ENOSPC, f"{path}: the disk filled up while writing it ({free / 2**20:.0f} MiB "
                          "left; nothing was written): free some space, or write it to another disk") from err


def one_line_warnings() -> None:
    """Print warnings as one line, ``warning: <message>`` (newlines in it become spaces), without the
    source line Python adds: for command lines and notebooks (``warnings.formatwarning`` only, so that
    ``catch_warnings(record=True)`` and pytest still record them)."""

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int,
            line: str | None = None) -> str:
        return "warning: " + " ".join(str(message).split()) + "\n"

    warnings.formatwarning = fmt


@contextlib.contextmanager
def each_warning_once() -> Iterator[None]:
    """Within the block, a warning whose category and text were already shown is not shown again (a command
    line says each thing once, e.g. that the data is synthetic, however many of its steps load that data).
    Only what is shown is filtered: ``catch_warnings(record=True)`` and pytest still see every warning."""
    shown: set[tuple[type, str]] = set()
    before = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        key = (category, str(message))
        if key not in shown:
            shown.add(key)
            before(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = before


def error_line(err: BaseException) -> str:
    """``err`` as one line (an ``OSError`` as ``<file>: <reason>``), for ``isfr <command>: error: ...``."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err)
    return " ".join(text.split())


def error_lines(err: BaseException, prefix: str = "") -> list[str]:
    """What a command prints for ``err``: ``prefix`` + :func:`error_line`; an error with ``summary`` and
    ``details`` (one failure per item, e.g. the photos of a folder) prints its summary, then one indented
    line per detail."""
    details = getattr(err, "details", None)
    if details:
        return [prefix + " ".join(str(getattr(err, "summary", "")).split())] + [
            "  " + " ".join(str(d).split()) for d in details]
    return [prefix + error_line(err)]


def thread_policy(n: int | None = None) -> int:
    """Set torch's intra-op threads for this process and return the count (``benchmarks/bench_threads.py``
    measured it): ``n`` if given, else ``$ISFR_THREADS``; else, when ``OMP_NUM_THREADS`` is unset, one
    thread while another job keeps a core busy (1-minute load average >= 0.75; two threads beside a busy
    process stall) and torch's default (every core) on an idle machine."""
    if n is None and os.environ.get("ISFR_THREADS"):
        n = int(os.environ["ISFR_THREADS"])
    if n is None and "OMP_NUM_THREADS" not in os.environ and os.getloadavg()[0] >= 0.75:
        n = 1
    if n is not None:
        torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


ResolvedAmp = Literal["none", "bf16", "fp16"]  # what runs; isfr.training.context.AmpMode adds "auto"


@functools.lru_cache(maxsize=None)
def cpu_runs_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (its own test: AVX-512 BW/VL/DQ, which AVX512_BF16 and AMX
    build on, or Arm BF16); "runs bf16 in hardware" in the docs. On an AVX2-only CPU it falls back to reference
    kernels: a `small` IFR + D1 step under bf16 autocast took 33.8 s against 2.2 s in fp32 (AMD EPYC family 25
    model 1; ``benchmarks/results/train_cpu_avx2.md``)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: read the CPU flags
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_amp(amp: str, device: torch.device | str) -> ResolvedAmp:
    """The precision a run or a forward pass uses on ``device``. ``"auto"`` (ours): fp16 AMP on CUDA, bf16
    autocast on a CPU that runs bf16 in hardware (:func:`cpu_runs_bf16`), else fp32 (``"none"``); any other
    value is kept, with a warning when it is bf16 on a CPU that emulates it (tens of times slower)."""
    device = torch.device(device)
    if amp == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_runs_bf16() else "none"
    if amp not in ("none", "bf16", "fp16"):
        raise ValueError(f"amp must be 'auto', 'none', 'bf16' or 'fp16', got {amp!r}")
    if amp == "bf16" and device.type == "cpu" and not cpu_runs_bf16():
        warnings.warn("bf16 autocast on this CPU is emulated (no AVX-512/AMX bf16 support: "
                      f"{torch.backends.cpu.get_cpu_capability()}): steps run tens of times slower than fp32 "
                      "(benchmarks/results/train_cpu_avx2.md); set schedule.amp=auto (or none) to train in fp32 here",
                      RuntimeWarning, stacklevel=2)
    return amp  # type: ignore[return-value]


def autocast(device: torch.device | str, amp: str) -> contextlib.AbstractContextManager:
    """Autocast for forward passes at ``amp`` (``"auto"`` resolved by :func:`resolve_amp`; a no-op at fp32)."""
    device = torch.device(device)
    mode = resolve_amp(amp, device) if amp == "auto" else amp  # an explicit mode was checked where it was set
    if mode == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def hardware() -> str:
    """A short description of where this process runs: GPU name, or CPU model, its SIMD level and whether it
    runs bf16 in hardware (two CPUs of one name can differ 2x per step), and the thread count."""
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    model = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    simd = f"{torch.backends.cpu.get_cpu_capability()}, {'' if cpu_runs_bf16() else 'no '}hardware bf16"
    return f"{model} ({simd}), {torch.get_num_threads()} threads"
