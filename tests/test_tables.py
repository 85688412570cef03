"""The committed Markdown tables of ``figures/small/`` come back byte for byte from their committed CSVs through
the writer the notebooks call (:func:`isfr.evaluation.write_table` and the functions built on it). Notebook 05
cannot be rerun at ``small`` (the ablation checkpoints are gone), so this is how its outputs are checked.

The expected values are the committed ``.md`` files as they are. A few of their lines are arguments of the
notebook recorded in no CSV, so the test passes the committed text on, and checks the rest:

- the heading and the ``Source:`` line of the head-to-head files (``write_duels``): the evaluation set's
  description and the runs' provenance, which a head-to-head CSV has no column for;
- in ``table2_comparison.md``, the metric models' notes under the protocol (which LPIPS and identity files the
  scoring machine had): the protocol paragraph itself is the code's :data:`isfr.evaluation.metrics.PROTOCOL`.

Everything else (tables, footers, CI lines, the ranking lines, the seed-spread and training-record headings, the
final table's lines) is rebuilt from the CSVs. Each CSV is also written back and compared with the committed one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from isfr import evaluation as E
from isfr.experiments.config import get_preset
from isfr.experiments.experiment import FINAL_SOURCES, write_final_table
from isfr.evaluation.metrics import PROTOCOL, MetricModels

FIG = Path(__file__).resolve().parents[1] / "figures" / "small"
pytestmark = pytest.mark.skipif(not (FIG / "table1_ablation.csv").is_file(), reason="figures/small not present")


def _same(written: Path, name: str) -> None:
    """``written`` holds the bytes of the committed ``figures/small/<name>``; on a difference, show the first line."""
    got, want = written.read_bytes(), (FIG / name).read_bytes()
    if got != want:
        pairs = zip(got.decode().splitlines(), want.decode().splitlines())
        first = next(((i, g, w) for i, (g, w) in enumerate(pairs, 1) if g != w), None)
        pytest.fail(f"{name}: the writer's output differs from the committed file "
                    + (f"at line {first[0]}:\n  written:   {first[1]!r}\n  committed: {first[2]!r}" if first else
                       f"in length ({len(got)} / {len(want)} bytes)"))


def _comparison(stem: str, name: str, protocol: str) -> pd.DataFrame:
    t = E.read_table(FIG / f"{stem}.csv")
    t.attrs["footer"] = E.comparison_footer(t, name, ci_label=E.ci_text(), protocol=protocol)
    return t


NO_MODELS = MetricModels(notes=[E.NO_METRIC_MODELS]).protocol_text()  # notebook 05 scores without metric models


@pytest.mark.parametrize("stem", ["extra_weighting_modes", "extra_mask_protocol"])
def test_extras_of_table1(stem, tmp_path):
    md = E.write_table(_comparison(stem, "Table 1", NO_MODELS), tmp_path / stem)
    _same(md, f"{stem}.md")
    _same(tmp_path / f"{stem}.csv", f"{stem}.csv")


def test_table1_and_its_ranking_lines(tmp_path):
    t1 = _comparison("table1_ablation", "Table 1", NO_MODELS)
    md = E.write_table(t1, tmp_path / "table1_ablation", notes=E.agreement_notes(t1, ("PSNR", "SSIM")))
    _same(md, "table1_ablation.md")
    _same(tmp_path / "table1_ablation.csv", "table1_ablation.csv")


def _metric_notes(committed: str) -> list[str]:
    """The paragraphs between the protocol and the ranking list of a committed table: the metric models' notes."""
    paras = committed.split("\n\n")
    assert PROTOCOL in paras, "the committed table's protocol paragraph is not isfr.evaluation.metrics.PROTOCOL"
    rest = paras[paras.index(PROTOCOL) + 1:]
    return [p for p in rest if p.strip() and not p.lstrip("\n").startswith("- ")]


def test_table2_and_its_ranking_lines(tmp_path):
    notes = _metric_notes((FIG / "table2_comparison.md").read_text())
    assert notes and notes[0].startswith("LPIPS")
    t2 = _comparison("table2_comparison", "Table 2", MetricModels(notes=notes).protocol_text())
    md = E.write_table(t2, tmp_path / "table2_comparison", notes=E.agreement_notes(t2, ("PSNR", "SSIM", "L1")))
    _same(md, "table2_comparison.md")
    _same(tmp_path / "table2_comparison.csv", "table2_comparison.csv")


def test_seed_spread(tmp_path):
    md = E.write_seed_spread(E.read_table(FIG / "seed_spread.csv"), tmp_path / "seed_spread")
    _same(md, "seed_spread.md")
    _same(tmp_path / "seed_spread.csv", "seed_spread.csv")


def test_training_record(tmp_path):
    record = E.read_table(FIG / "training_record.csv")
    md = E.write_table(record, tmp_path / "training_record", heading="Training runs of preset 'small'")
    _same(md, "training_record.md")
    _same(tmp_path / "training_record.csv", "training_record.csv")


@pytest.mark.parametrize("stem", ["ablation_paired", "val_unet_head_to_head", "test_head_to_head",
                                  "val_isfrnet_vs_biharmonic"])
def test_head_to_head_files(stem, tmp_path):
    committed = (FIG / f"{stem}.md").read_text()
    heading = committed.split("\n\n", 1)[0]
    tail = committed[committed.index("\nValues: "):].strip("\n").split("\n")  # Values, Source, [protocol]
    assert tail[1].startswith("Source: ") and tail[1].endswith(".")
    table = E.read_table(FIG / f"{stem}.csv")
    table.attrs["ci"] = E.ci_text(what="of the paired difference")
    diff = tail[0][len("Values: means; diff = "):tail[0].index(" [")]
    md = E.write_duels(table, tmp_path / stem, heading, tail[1][len("Source: "):-1], diff=diff,
                       protocol="\n".join(tail[2:]))
    _same(md, f"{stem}.md")
    _same(tmp_path / f"{stem}.csv", f"{stem}.csv")


def test_final_table(tmp_path):
    for files in FINAL_SOURCES.values():  # its "From ..." line names the head-to-head files beside it
        for f in files:
            shutil.copy(FIG / f, tmp_path / f)
    md = write_final_table(get_preset("small"), tmp_path, table=E.read_table(FIG / "final_table.csv"))
    _same(md, "final_table.md")
    _same(tmp_path / "final_table.csv", "final_table.csv")


def test_read_table_keeps_the_written_types(tmp_path):
    """Counts with a missing cell stay integers, booleans stay booleans, floats come back exactly, text stays text."""
    df = pd.DataFrame({"n": pd.array([1320, None], dtype="Int64"), "ok": [True, False], "maybe": [True, None],
                       "x": [0.1 + 0.2, float("nan")], "commit": ["0123456", "95c78dd"], "empty": [None, None]})
    E.write_csv(df, tmp_path / "t.csv")
    back = E.read_table(tmp_path / "t.csv")
    assert str(back["n"].dtype) == "Int64" and back["n"].iloc[0] == 1320 and back["n"].isna().iloc[1]
    assert back["ok"].tolist() == [True, False] and back["maybe"].iloc[0] is True and back["maybe"].iloc[1] is None
    assert back["x"].iloc[0] == 0.30000000000000004 and back["x"].isna().iloc[1]
    assert back["commit"].tolist() == ["0123456", "95c78dd"] and back["empty"].isna().all()
    assert E.to_markdown(back, footer=False) == E.to_markdown(df, footer=False)


def test_read_table_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        E.read_table(tmp_path / "nope.csv")


def test_write_table_layout(tmp_path):
    """heading, table, notes a blank line apart; ``columns`` limits the Markdown, not the CSV."""
    df = pd.DataFrame({"a": [1], "b": [0.5], "hidden": ["x"]})
    md = E.write_table(df, tmp_path / "t", heading="Heading", notes=["one", "two"], columns=["a", "b"])
    assert md.read_text() == "Heading\n\n| a | b |\n| --- | --- |\n| 1 | 0.500 |\n\n\none\ntwo\n"
    assert (tmp_path / "t.csv").read_text() == "a,b,hidden\n1,0.5,x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]
