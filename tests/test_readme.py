"""README.md and docs/ against the committed files.

- The README's inpaint block runs as written on the shipped model: only hole pixels change, and the fill beats the
  hole's border colour; the smoke block of ``docs/inpainting.md`` runs as written.
- The README's results table and the Tables 1-2 of ``docs/results.md`` equal the committed CSVs, read here with
  pandas (not through the tool that writes the tables).
- Every number a page quotes with a CI (``+0.50 [+0.43, +0.56]``) and every signed difference (``-0.06``) stands,
  exactly and sign included, in a file that its paragraph names; archived tables (``figures/<preset>/archive/``)
  count only under a "Superseded" heading, never for a current claim.
- Every page of docs/ is linked from the README, and every relative link resolves.
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import shipped_file

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "figures" / "small"
MARKER = "At the smoke preset, in an empty folder"  # the sentence right above docs/inpainting.md's block
INPAINT_MARKER = "and a hole over her eyes:"  # the words right above the README's inpaint block
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def bash_block(path: Path, marker: str) -> list[str]:
    """The command lines of the fenced bash block that follows ``marker`` in ``path``."""
    text = read(path)
    start = text.index(marker)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block, f"no ```bash block after {marker!r} in {path.name}"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def smoke_block() -> list[str]:
    return bash_block(REPO / "docs" / "inpainting.md", MARKER)


def _run_lines(lines: list[str], cwd: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    done = []
    for line in lines:
        proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"line failed: {line}\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
        done.append(proc)
    return done


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ISFR_DATA_ROOT", "ISFR_WEIGHTS")}
    env.update(ISFR_RUNS_DIR=str(tmp_path / "runs"), ISFR_FIGURES_DIR=str(tmp_path / "figures"),
               ISFR_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # isfr, python of this venv
    return env


@pytest.mark.slow
def test_the_readme_inpaint_block_runs_verbatim_on_the_shipped_model(tmp_path):
    import numpy as np
    from PIL import Image
    from scipy.ndimage import binary_dilation
    from skimage.metrics import peak_signal_noise_ratio

    shipped_file()
    lines = bash_block(REPO / "README.md", INPAINT_MARKER)
    assert lines[-1].startswith("isfr inpaint") and "--checkpoint" not in lines[-1]
    out = _run_lines(lines, tmp_path, _env(tmp_path))[-1].stdout
    assert "the shipped small ISFRNet" in out and "filled at 64 px, upscaled x3" in out
    photo = np.asarray(Image.open(tmp_path / "astronaut.png").convert("RGB"))
    result = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    hole = np.asarray(Image.open(tmp_path / "hole.png")) >= 128
    assert result.shape == photo.shape and 0 < hole.mean() < 0.5
    assert np.array_equal(result[~hole], photo[~hole]), "pixels outside the hole changed"
    border = binary_dilation(hole) & ~hole
    flat = np.broadcast_to(photo[border].mean(0).round().astype(np.uint8), photo[hole].shape)
    model_db = peak_signal_noise_ratio(photo[hole], result[hole], data_range=255)
    flat_db = peak_signal_noise_ratio(photo[hole], flat, data_range=255)
    assert model_db > flat_db, f"the fill ({model_db:.2f} dB) does not beat the border's mean colour ({flat_db:.2f} dB)"


@pytest.mark.slow
def test_the_smoke_block_of_the_inpainting_page_runs_verbatim(tmp_path):
    lines = smoke_block()
    assert any(line.startswith("isfr inpaint") for line in lines) and any(line.startswith("isfr train") for line in lines)
    _run_lines(lines, tmp_path, _env(tmp_path))
    assert (tmp_path / "out.png").is_file()


# ---------------------------------------------------------------- tables against the CSVs
def markdown_table(text: str, header_start: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first Markdown table whose header line starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    assert rows, f"no rows under {header_start!r}"
    return rows


def fmt(value: float, digits: int) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def test_the_readme_results_table_is_table2_comparison_csv():
    """The README's compact table: our means and the paper's, at 20-40 and 40-60 %, for PSNR, SSIM and ID dist."""
    t = pd.read_csv(SMALL / "table2_comparison.csv").set_index("method")
    results = read(REPO / "README.md").split("## Results", 1)[1]
    rows = {r[0]: r[1:] for r in markdown_table(results, "| model | PSNR 20-40")}
    ours = {"ISFRNet (ours, 64 px)": "ISFRNet", "U-Net, L1, equal CPU-hours (ours)": "U-Net, L1, equal CPU-hours (ours)",
            "biharmonic (ours)": "biharmonic", "pSp composited (ours)": "pSp (composited)"}
    paper = {"ISFRNet (paper, 256 px)": "ISFRNet", "pSp (paper, 256 px)": "pSp (composited)"}
    assert set(rows) == set(ours) | set(paper)
    cols = [(m, r, d) for m, d in (("PSNR", 2), ("SSIM", 3), ("ID dist", 3)) for r in ("20-40", "40-60")]
    for label, method in [*((k, (v, "ours")) for k, v in ours.items()), *((k, (v, "paper")) for k, v in paper.items())]:
        expected = [fmt(float(t.loc[method[0], f"{m} {r} ({method[1]})"]), d) for m, r, d in cols]
        assert rows[label] == expected, f"README results row {label!r}: {rows[label]} != CSV {expected}"


def ci_cell(row: pd.Series, col: str, digits: int) -> str:
    return f"{row[col]:.{digits}f} [{row[col + '_lo']:.{digits}f}, {row[col + '_hi']:.{digits}f}]"


def test_docs_results_table2_is_the_committed_csv():
    t = pd.read_csv(SMALL / "table2_comparison.csv").set_index("method")
    rows = {r[0]: r[1:] for r in markdown_table(read(REPO / "docs" / "results.md"), "| method | PSNR 20-40")}
    labels = {"ISFRNet (ours)": "ISFRNet", "U-Net, L1, equal CPU-hours (ours)": "U-Net, L1, equal CPU-hours (ours)",
              "biharmonic (ours)": "biharmonic", "pSp composited (ours)": "pSp (composited)", "pSp raw (ours)": "pSp (raw)"}
    for label, method in labels.items():
        r = t.loc[method]
        expected = [ci_cell(r, f"PSNR {g} (ours)", 2) for g in ("20-40", "40-60")]
        expected += [ci_cell(r, f"SSIM {g} (ours)", 3) for g in ("20-40", "40-60")]
        expected += [f"{r[f'L1 {g} (ours)']:.3f}" for g in ("20-40", "40-60")]
        expected += [ci_cell(r, f"ID dist {g} (ours)", 3) for g in ("20-40", "40-60")]
        assert rows[label] == expected, f"docs/results.md Table 2 row {label!r} differs from table2_comparison.csv"
    paper = t.loc["ISFRNet"]
    assert rows["ISFRNet (paper, 256 px)"][:2] == [f"{paper['PSNR 20-40 (paper)']:.2f}", f"{paper['PSNR 40-60 (paper)']:.2f}"]


def test_docs_results_table1_is_the_committed_csv():
    t = pd.read_csv(SMALL / "table1_ablation.csv")
    rows = {r[0]: r[1:] for r in markdown_table(read(REPO / "docs" / "results.md"), "| row | PSNR 20-40 paper / ours")}
    assert len(rows) == 4
    for label, cells in rows.items():
        r = t.loc[t["paper method"] == label].iloc[0]
        for cell, (m, g) in zip(cells, [("PSNR", "20-40"), ("PSNR", "40-60"), ("SSIM", "20-40"), ("SSIM", "40-60")]):
            ours = ci_cell(r, f"{m} {g} (ours)", 2) if m == "PSNR" else f"{r[f'{m} {g} (ours)']:.3f}"
            assert cell.split(" / ")[-1] == ours, f"docs/results.md Table 1 {label!r} {m} {g}: {cell} vs CSV {ours}"
            assert cell.startswith(f"{r[f'{m} {g} (paper)']:.{2 if m == 'PSNR' else 3}f}")


def test_docs_results_final_table_is_the_committed_one():
    """Every row of ``figures/small/final_table.md`` (written by notebook 06) stands verbatim in docs/results.md."""
    rows = [line for line in read(SMALL / "final_table.md").splitlines() if line.startswith("| ")]
    page = read(REPO / "docs" / "results.md").splitlines()
    assert rows and [r for r in rows if r not in page] == [], "docs/results.md's final table differs from final_table.md"


# ---------------------------------------------------------------- every quoted number has a named source
CI = re.compile(r"(?<![\w.])[+-]?\d+\.\d+ \[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]")  # "mean [lo, hi]"
SIGNED = re.compile(r"(?<![\w.\[,])[+-]\d+\.\d+(?![\d\]])")  # "+0.50", "-0.06": a difference, its sign included
SOURCE = re.compile(r"`([^`\s]+\.(?:md|csv|log|csv\.gz))`|\]\(([^)\s#]+\.(?:md|csv))\)")


def blocks(path: Path) -> list[tuple[str, str]]:
    """``(heading, paragraph)`` for every blank-line-separated block outside code fences, tables included."""
    out, heading, buf, fenced = [], "", [], False
    for line in read(path).splitlines() + [""]:
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("#"):
            heading = line
        if line.strip():
            buf.append(line)
        elif buf:
            out.append((heading, " ".join(" ".join(buf).split())))
            buf = []
    return out


def sources(paragraph: str, page: Path) -> list[Path]:
    """The committed files a paragraph names, as written, under figures/small/, or beside the page."""
    found = []
    for m in SOURCE.finditer(paragraph):
        name = m.group(1) or m.group(2)
        for base in (REPO, SMALL, page.parent, REPO / "figures", REPO / "benchmarks" / "results"):
            if (base / name).is_file():
                found.append((base / name).resolve())
                break
    return found


def quoted_numbers(paragraph: str) -> set[str]:
    cis = set(CI.findall(paragraph))
    rest = CI.sub(" ", paragraph)
    return cis | set(SIGNED.findall(rest))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_quoted_number_stands_in_a_file_its_paragraph_names(page):
    archive = REPO / "figures"
    problems, caption = [], []
    for heading, paragraph in blocks(page):
        files = sources(paragraph, page)
        if paragraph.startswith("|"):
            files = files + caption  # a table's sources: its own and those the paragraph above it names
        caption = files
        numbers = quoted_numbers(paragraph)
        if not numbers:
            continue
        if "superseded" not in heading.lower():
            files = [f for f in files if "archive" not in f.relative_to(REPO).parts]
        if not files:
            problems.append(f"names no current source file for {sorted(numbers)[:3]}: {paragraph[:100]!r}")
            continue
        text = " ".join(" ".join(read(f).split()) for f in files if f.suffix != ".gz")
        missing = sorted(n for n in numbers if n not in text)
        if missing:
            problems.append(f"{missing} not in {[str(f.relative_to(REPO)) for f in files]}: {paragraph[:100]!r}")
    assert archive.is_dir()
    assert problems == [], f"{page.relative_to(REPO)}:\n" + "\n".join(problems)


def test_the_number_check_can_fail(tmp_path):
    """The checker above, on a page whose number is not in the file it names, and on an archived source."""
    (tmp_path / "t.md").write_text("x +0.50 [+0.43, +0.56] y\n")
    page = tmp_path / "page.md"
    page.write_text("Ours: +0.51 [+0.43, +0.56] (`t.md`).\n")
    (heading, para), = blocks(page)
    assert quoted_numbers(para) == {"+0.51 [+0.43, +0.56]"}
    assert sources(para, page) == [(tmp_path / "t.md").resolve()]
    assert "+0.51 [+0.43, +0.56]" not in read(tmp_path / "t.md")
    assert quoted_numbers("a gain of -0.06 dB, 27.04 vs 26.54") == {"-0.06"}


# ---------------------------------------------------------------- the README's shape and links
def test_the_readme_is_short_and_starts_with_a_picture_and_the_install():
    text = read(REPO / "README.md")
    lines = text.splitlines()
    assert len(lines) <= 250 and len(text.encode()) <= 20_000
    head = "\n".join(lines[:40])
    assert re.search(r"!\[[^\]]*\]\([^)]+\.png\)", head) and "make setup" in head and "source .venv/bin/activate" in head


def test_every_docs_page_is_linked_from_the_readme_and_every_link_resolves():
    readme = read(REPO / "README.md")
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", read(page)):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links a missing {target}"
