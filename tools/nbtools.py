"""Keep committed notebooks diffable: outputs only where nbval checks them.

    python tools/nbtools.py strip notebooks/*.ipynb      # drop outputs except cells tagged nbval-check-output
    python tools/nbtools.py execute notebooks/01_*.ipynb # run in place (default parameters), then strip
    python tools/nbtools.py check notebooks/*.ipynb      # exit 1 if a notebook lacks a `parameters` cell
                                                         # or stores outputs it should not

Cells tagged ``nbval-check-output`` print deterministic, meaningful values (counts, hashes) that
``pytest --nbval-lax`` compares on every run; everything else is committed without outputs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

CHECK = "nbval-check-output"


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def strip(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type != "code":
            continue
        if CHECK in _tags(cell):  # nbval wants a checked cell to look run: keep its count
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "display_data"]
        else:
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


def execute(path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ISFR_DATA_ROOT"}  # nbval runs on the default source
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    "--ExecutePreprocessor.timeout=1800", str(path.resolve())], check=True, env=env,
                   cwd=path.resolve().parent)
    strip(path)


def check(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    problems = []
    if not any("parameters" in _tags(c) for c in nb.cells):
        problems.append(f"{path}: no cell tagged 'parameters'")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and c.outputs and CHECK not in _tags(c):
            problems.append(f"{path}: cell {i} stores outputs but is not tagged {CHECK}")
    return problems


if __name__ == "__main__":
    cmd, *paths = sys.argv[1:]
    problems: list[str] = []
    for p in map(Path, paths):
        if cmd == "strip":
            strip(p)
        elif cmd == "execute":
            execute(p)
        elif cmd == "check":
            problems += check(p)
        else:
            sys.exit(__doc__)
    print("\n".join(problems) or "ok")
    sys.exit(1 if problems else 0)
