"""The package's layers (``isfr.LAYERS``, lowest first) hold: no module imports from a layer above its own, nor
from a sibling layer (``training`` and ``evaluation``). Every import counts, those inside functions included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import isfr

PACKAGE = Path(isfr.__file__).resolve().parent


def entry_of(rel: Path) -> str | None:
    """The layer entry of a module path relative to the package folder (None for the package's __init__)."""
    if rel.parts == ("__init__.py",):
        return None
    return rel.parts[0].removesuffix(".py")


def imported_modules(path: Path, package: str, rel: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every module ``path`` imports (relative imports resolved; for
    ``from <package> import x`` the name ``<package>.x``)."""
    here = [package, *rel.with_suffix("").parts]
    if rel.name == "__init__.py":
        here = here[:-1] + ["__init__"]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level] + ([node.module] if node.module else []))
            if base == package:
                out += [(node.lineno, f"{package}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, base))
    return out


def layer_violations(root: Path, layers: tuple[tuple[str, ...], ...], package: str = "isfr") -> list[str]:
    """One line per import that points up or sideways, for every module below ``root`` (the package folder)."""
    rank = {name: i for i, group in enumerate(layers) for name in group}
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        src = entry_of(rel)
        if src is None:
            continue
        if src not in rank:
            bad.append(f"{rel}: {src!r} is in no layer of LAYERS")
            continue
        for line, mod in imported_modules(path, package, rel):
            parts = mod.split(".")
            if parts[0] != package or len(parts) < 2 or parts[1] not in rank:
                continue  # another library, or a name of the package's __init__ (__version__, LAYERS)
            dst = parts[1]
            if rank[dst] > rank[src] or (rank[dst] == rank[src] and dst != src):
                bad.append(f"{rel}:{line}: {src} imports {mod} ({dst} is "
                           f"{'a sibling' if rank[dst] == rank[src] else 'above it'})")
    return bad


def test_every_entry_of_the_package_is_in_a_layer():
    entries = {entry_of(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")} - {None}
    layered = {name for group in isfr.LAYERS for name in group}
    assert entries == layered, f"in the package, not in LAYERS: {entries - layered}; in LAYERS only: {layered - entries}"
    assert len(entries) + 1 <= 9  # the entries of isfr/ with its __init__.py


def test_no_module_imports_from_above_or_from_a_sibling():
    assert layer_violations(PACKAGE, isfr.LAYERS) == []


@pytest.mark.parametrize("module, source, culprit", [
    ("data/bad.py", "from isfr.training.loop import fit\n", "data imports isfr.training.loop"),
    ("evaluation/bad.py", "def f():\n    import isfr.training\n", "evaluation imports isfr.training"),
    ("training/bad.py", "from ..evaluation import scoring\n", "training imports isfr.evaluation"),
    ("losses.py", "from isfr import apps\n", "losses imports isfr.apps"),
    ("core/sub/bad.py", "from ...models import x\n", "core imports isfr.models"),
])
def test_the_checker_finds_a_planted_bad_import(tmp_path, module, source, culprit):
    root = tmp_path / "isfr"
    for entry in ("core", "data", "models", "training", "evaluation", "apps"):
        (root / entry).mkdir(parents=True)
        (root / entry / "__init__.py").write_text("from isfr.core import paths\n")
    (root / "__init__.py").write_text("from isfr import apps\n")  # the package's own __init__ is not checked
    (root / "models" / "ok.py").write_text("from isfr.data import x\nfrom ..core import y\nfrom isfr import LAYERS\n")
    (root / "core" / "sub").mkdir()
    assert layer_violations(root, isfr.LAYERS) == []
    (root / module).write_text(source)
    found = layer_violations(root, isfr.LAYERS)
    assert len(found) == 1 and culprit in found[0], found


def test_the_checker_refuses_a_module_outside_every_layer(tmp_path):
    root = tmp_path / "isfr"
    (root / "extras").mkdir(parents=True)
    (root / "extras" / "x.py").write_text("import os\n")
    assert layer_violations(root, isfr.LAYERS) == ["extras/x.py: 'extras' is in no layer of LAYERS"]
