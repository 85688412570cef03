"""The README's smoke-preset block of "Inpainting your own photo" runs as written (parsed from README.md); its
final table is the committed ``figures/small/final_table.md``, its Tables 1 and 2 are those of the committed CSVs
(``tools/readme_tables.py``), and every value it quotes with a CI is in a committed table."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "At the smoke preset, in an empty folder"  # the sentence right above the block


def smoke_block() -> list[str]:
    """The command lines of the fenced bash block that follows :data:`MARKER` in README.md."""
    text = (REPO / "README.md").read_text()
    start = text.index(MARKER)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block, f"no ```bash block after {MARKER!r} in README.md"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.slow
def test_the_readme_smoke_block_runs_verbatim(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ISFR_DATA_ROOT"}
    env.update(ISFR_RUNS_DIR=str(tmp_path / "runs"), ISFR_FIGURES_DIR=str(tmp_path / "figures"),
               ISFR_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # isfr, python of this venv
    lines = smoke_block()
    assert any(line.startswith("isfr inpaint") for line in lines) and any(line.startswith("isfr train") for line in lines)
    for line in lines:
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"README line failed: {line}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "out.png").is_file()


def test_the_readme_final_table_is_the_committed_one():
    """Every row of ``figures/small/final_table.md`` (written by notebook 06) stands verbatim in README.md."""
    committed = REPO / "figures" / "small" / "final_table.md"
    if not committed.is_file():
        pytest.skip("figures/small/final_table.md not committed yet (notebook 06 at the small preset writes it)")
    rows = [line for line in committed.read_text().splitlines() if line.startswith("| ")]
    readme = (REPO / "README.md").read_text().splitlines()
    assert rows, f"{committed} has no table"
    assert [r for r in rows if r not in readme] == [], "README.md's final table differs from figures/small/final_table.md"


def test_the_readme_tables_1_and_2_are_the_committed_ones():
    """README.md prints Tables 1 and 2 of ``figures/small/`` as ``tools/readme_tables.py`` makes them from the CSVs."""
    from conftest import load_tool

    tool = load_tool("readme_tables")
    readme = (REPO / "README.md").read_text().splitlines()
    folder = REPO / "figures" / "small"
    for lines in (tool.table2_lines(folder / "table2_comparison.csv"), tool.table1_lines(folder / "table1_ablation.csv")):
        assert len(lines) > 4
        assert [r for r in lines if r not in readme] == [], "README.md's table differs: `python tools/readme_tables.py`"


CI_NUMBER = re.compile(r"[+-]?\d+\.\d+ \[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]")  # "mean [lo, hi]", as every table prints


def test_every_readme_number_with_a_ci_is_in_a_committed_table():
    """A README value with its CI, e.g. ``+0.14 [+0.09, +0.20]``, is quoted from a committed table (a '+' sign may
    be added), so a number left over from an older run cannot survive a regeneration unnoticed. Narratives
    (``RUN.md``, ``README.md``) are not tables: they keep old runs' numbers on purpose."""
    tables = [p for folder in ("figures", "benchmarks/results") for p in (REPO / folder).rglob("*.md")
              if p.name not in ("RUN.md", "README.md")]
    committed = "\n".join(p.read_text() for p in tables).replace("+", "")
    quoted = set(CI_NUMBER.findall(" ".join((REPO / "README.md").read_text().split())))  # a CI wrapped over two lines too
    assert len(quoted) > 10, "README.md quotes almost no value with a CI: has the table format changed?"
    assert sorted(q for q in quoted if q.replace("+", "") not in committed) == []
