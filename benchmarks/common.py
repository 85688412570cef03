"""Shared helpers for the benchmark scripts: machine header, timing, memory, Markdown / CSV tables.

Timing rule: warm up, then time each call separately and report the minimum (best estimate on a
shared, noisy machine) and the median. On CUDA every timed call is bracketed by synchronisations.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """``lscpu``'s model name (from /proc/cpuinfo), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def env_header(title: str, device: torch.device, extra: Sequence[str] = ()) -> str:
    """Markdown header: date, device, torch version, threads, load average (plus ``extra`` lines)."""
    lines = [
        f"# {title}",
        "",
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- device: {device.type} ({device_name(device)}); {os.cpu_count()} logical CPUs",
        f"- torch {torch.__version__}, {torch.get_num_threads()} intra-op threads",
        f"- load average (1/5/15 min) at start: {loadavg()}",
        f"- isfr git commit: {_commit()}",
        *(f"- {e}" for e in extra),
    ]
    return "\n".join(lines)


def _commit() -> str:
    try:
        from isfr.core.utils import git_commit

        return git_commit(REPO)
    except Exception:  # noqa: BLE001 - a header line must never fail the benchmark
        return "unknown"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    return dev


def autocast(device: torch.device, dtype: str) -> Any:
    """Autocast context for ``dtype`` in {"fp32", "bf16", "fp16"} (fp32: no autocast)."""
    if dtype in ("fp32", "none"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


# ----------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, warmup: int = 1, repeats: int = 3,
               min_repeats: int = 1, budget_s: float | None = None) -> list[float]:
    """Seconds per call of ``fn`` after ``warmup`` untimed calls.

    Runs ``repeats`` timed calls, but stops early once ``min_repeats`` calls are done and the timed
    calls took more than ``budget_s`` seconds in all (keeps slow configurations bounded).
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    for _ in range(max(repeats, min_repeats)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if budget_s is not None and len(times) >= min_repeats and sum(times) > budget_s:
            break
    return times


def summarize(times: Sequence[float]) -> dict[str, float]:
    return {"min_s": min(times), "median_s": statistics.median(times), "n": len(times)}


# ----------------------------------------------------------------------------- memory


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib() -> float:
    """Current resident set size of this process (MiB)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        kib = _status_kib("VmRSS")
        return kib / 1024 if kib is not None else float("nan")


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak RSS of this process (MiB): VmHWM, else getrusage's ru_maxrss."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


# ----------------------------------------------------------------------------- tables


def fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.2f}"
        if a >= 0.01:
            return f"{v:.3f}"
        return f"{v:.2e}"
    return str(v)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---:" if rows and isinstance(rows[0].get(c), (int, float)) else "---" for c in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_out(path: str | Path, header: str, tables: Sequence[tuple[str, Sequence[dict], Sequence[str]]],
              notes: Sequence[str] = ()) -> Path:
    """Write ``tables`` (title, rows, columns) to ``path``: Markdown for ``.md``, one CSV for ``.csv``
    (bare names go to benchmarks/results/). No absolute path is written: the header and notes name paths as
    :func:`isfr.core.paths.portable_text` does (``$ISFR_DATA_ROOT/...``, relative to the repository)."""
    from isfr.core.paths import portable_text

    header, notes = portable_text(header), [portable_text(n) for n in notes]
    p = Path(path)
    if not p.is_absolute() and p.parent == Path("."):
        p = REPO / "benchmarks" / "results" / p
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".csv":
        cols: list[str] = ["table"]
        for _, _, c in tables:
            cols += [x for x in c if x not in cols]
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, cols, extrasaction="ignore")
            w.writeheader()
            for title, rows, _ in tables:
                for r in rows:
                    w.writerow({"table": title, **r})
    else:
        parts = [header, ""]
        for title, rows, c in tables:
            parts += [f"## {title}", "", markdown_table(rows, c), ""]
        if notes:
            parts += ["## Notes", "", *(f"- {n}" for n in notes), ""]
        p.write_text("\n".join(parts))
    return p
