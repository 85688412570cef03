"""Where things live: the repository, per-preset figures and run folders.

Outputs are keyed by preset so that a smoke run (CI, tests) never overwrites the
committed figures of a real run: ``figures/smoke/`` and ``runs/`` are git-ignored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # isfr/core/paths.py -> the repository
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def figures_dir(preset: str, root: Path | None = None) -> Path:
    """``figures/<preset>/`` (created). ``ISFR_FIGURES_DIR`` overrides the base folder."""
    base = Path(os.environ.get("ISFR_FIGURES_DIR", root or REPO_ROOT / "figures"))
    out = base / preset
    out.mkdir(parents=True, exist_ok=True)
    return out


def runs_dir(preset: str, root: Path | None = None) -> Path:
    """``runs/<preset>/`` (created, git-ignored): checkpoints and logs. ``ISFR_RUNS_DIR`` overrides."""
    base = Path(os.environ.get("ISFR_RUNS_DIR", root or REPO_ROOT / "runs"))
    out = base / preset
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------- paths as records write them

def _hub_dir() -> Path:
    """``torch.hub.get_dir()``, without importing torch where it is not imported yet (same rule as torch)."""
    import sys

    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(home).expanduser() / "hub"


def _anchors() -> list[tuple[str, Path]]:
    """``(label, folder)`` for every folder a record may name a path below, deepest first: the environment
    variables that set the runs, data, figures and cache folders, the torch hub, the repository (label "":
    a relative path) and the home folder."""
    out: list[tuple[str, Path]] = []
    for var in ("ISFR_RUNS_DIR", "ISFR_DATA_ROOT", "ISFR_FIGURES_DIR", "ISFR_CACHE"):
        value = os.environ.get(var)
        if value and value != "synthetic":
            folder = Path(value).expanduser()
            out.append((f"${var}", folder if folder.is_absolute() else Path.cwd() / folder))
    out += [("torch.hub.get_dir()", _hub_dir()), ("", REPO_ROOT), ("~", Path.home())]
    out += [(label, p.resolve()) for label, p in out if p.is_absolute() and p.resolve() != p]
    return sorted((a for a in out if a[1].is_absolute()), key=lambda a: -len(a[1].parts))


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a table, log or provenance line writes it: below a known folder it is named from that folder
    (``$ISFR_RUNS_DIR/small/...``, ``$ISFR_DATA_ROOT/celeba``, ``torch.hub.get_dir()/checkpoints/...``, relative
    to the repository, ``~/...``); any other absolute path by its last part only (``.../celeba``). Never absolute."""
    p = Path(os.fspath(path)).expanduser()
    if not p.is_absolute():
        return p.as_posix()
    for label, base in _anchors():
        for q in (p, p.resolve()):
            try:
                rel = q.relative_to(base)
            except ValueError:
                continue
            tail = rel.as_posix() if rel.parts else ""
            return "/".join(x for x in (label, tail) if x) or "."
    return f".../{p.name}"


def portable_text(text: str) -> str:
    """``text`` with every known folder of :func:`shown_path` written as it writes it (for messages that embed
    paths, e.g. a warning caught into a log)."""
    import re

    for label, base in _anchors():
        b = re.escape(str(base))
        text = re.sub(b + r"/", f"{label}/" if label else "", text)
        text = re.sub(b + r"(?![\w-]|\.\w)", label or ".", text)
    return text


def portable(obj: Any) -> Any:
    """A JSON-like ``obj`` with every string that holds a path made portable (:func:`shown_path` for an absolute
    path, :func:`portable_text` for any other string): what ``config.json`` and ``done.json`` record."""
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v) for v in obj]
    if isinstance(obj, str):
        return shown_path(obj) if os.path.isabs(obj) else portable_text(obj)
    return obj
