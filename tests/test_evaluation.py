"""isfr.evaluation / isfr.evaluation.baselines / isfr.evaluation.paper_numbers: summaries, CIs, scoring, paper-vs-ours tables."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from isfr import evaluation as E
from isfr.evaluation import paper_numbers as P
from isfr.evaluation.baselines import biharmonic, isfrnet_method, mean_fill
from isfr.data.buckets import BUCKETS

SRC = "measured here (test, 32 px, hand-made, 0 steps, CPU, commit abc)"


def hand_df(n_per_bucket: int = 4, seed: int = 0, method: str = "m") -> pd.DataFrame:
    """Per-image rows with known values: psnr = 10 * (bucket index + 1) + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, b in enumerate(BUCKETS):
        for i in range(n_per_bucket):
            rows.append(dict(method=method, name=f"img{i}", bucket=b, psnr=10.0 * (k + 1) + rng.normal(),
                             ssim=0.9 - 0.1 * k + 0.01 * rng.normal(), l1=0.01 * (k + 1), lpips=math.nan,
                             id_dist=0.5, composite=True, source=SRC))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- summarise
def test_summarise_means_and_ranges():
    df = hand_df()
    s = E.summarise(df, n_boot=200).set_index("bucket")
    assert list(s.index) == [*BUCKETS, "20-40", "40-60", "all"]
    for b in BUCKETS:
        assert s.loc[b, "psnr"] == pytest.approx(df.loc[df.bucket == b, "psnr"].mean())
        assert s.loc[b, "n"] == 4
    assert s.loc["20-40", "psnr"] == pytest.approx(df.loc[df.bucket.isin(["20-30", "30-40"]), "psnr"].mean())
    assert s.loc["40-60", "ssim"] == pytest.approx(df.loc[df.bucket.isin(["40-50", "50-60"]), "ssim"].mean())
    assert s.loc["20-40", "n"] == 8 and s.loc["all", "n"] == 24
    assert math.isnan(s.loc["20-40", "lpips"]) and math.isnan(s.loc["20-40", "lpips_lo"])  # all-NaN metric
    assert (s["source"] == SRC).all()


def test_bootstrap_ci_contains_mean_shrinks_and_is_seeded():
    small, big = hand_df(5, seed=1), hand_df(200, seed=1)
    s5 = E.summarise(small, n_boot=500, seed=3).set_index("bucket")
    s200 = E.summarise(big, n_boot=500, seed=3).set_index("bucket")
    for s in (s5, s200):
        assert ((s["psnr_lo"] <= s["psnr"]) & (s["psnr"] <= s["psnr_hi"])).all()
    width = lambda s: (s["psnr_hi"] - s["psnr_lo"]).loc[list(BUCKETS)]  # noqa: E731
    assert (width(s200) < width(s5)).all()
    again = E.summarise(small, n_boot=500, seed=3)
    pd.testing.assert_frame_equal(again.set_index("bucket"), s5)
    other = E.summarise(small, n_boot=500, seed=4).set_index("bucket")
    assert not np.allclose(other["psnr_lo"], s5["psnr_lo"])


def test_bootstrap_means_ignore_nan():
    v = np.array([[1.0, np.nan], [3.0, np.nan], [5.0, 2.0]])
    b = E.bootstrap_means(v, 50, np.random.default_rng(0))
    assert b.shape == (50, 2)
    assert np.all((b[:, 0] >= 1) & (b[:, 0] <= 5))
    assert np.all(np.isnan(b[:, 1]) | (b[:, 1] == 2.0))


def test_seed_spread_std_of_means():
    a, b = hand_df(3, seed=0).assign(train_seed=0), hand_df(3, seed=0).assign(train_seed=1)
    b["psnr"] += 2.0
    sp = E.seed_spread(pd.concat([a, b])).set_index("bucket")
    assert sp.loc["0-10", "n_seeds"] == 2
    assert sp.loc["0-10", "psnr_std"] == pytest.approx(np.std([0.0, 2.0], ddof=1))
    assert sp.loc["0-10", "psnr_mean"] == pytest.approx(a.loc[a.bucket == "0-10", "psnr"].mean() + 1.0)
    with pytest.raises(ValueError, match="train_seed"):
        E.seed_spread(a.drop(columns="train_seed"))


# ---------------------------------------------------------------- evaluate on synthetic data
@pytest.fixture(scope="module")
def eval_ds():
    mp = pytest.MonkeyPatch()
    mp.delenv("ISFR_DATA_ROOT", raising=False)
    from isfr.data import build_dataset

    with pytest.warns(UserWarning, match="SYNTHETIC"):
        ds = build_dataset(root=None, split="val", resolution=32, limit=2)
    mp.undo()
    return ds


def test_baselines_keep_known_pixels_and_range(eval_ds):
    s = eval_ds[3]
    img, m = s["image"][None], s["mask"][None]
    for f in (mean_fill, biharmonic):
        out = f(img, m)
        assert out.shape == img.shape and out.min() >= -1 and out.max() <= 1
        assert torch.allclose(out * (1 - m), img * (1 - m), atol=1e-5)
        assert not torch.allclose(out * m, img * m, atol=1e-3)  # the hole was filled with something
    full = torch.ones_like(m)
    assert torch.all(biharmonic(img, full) == 0) and torch.all(mean_fill(img, full) == 0)


def test_evaluate_rows_and_biharmonic_beats_mean_fill(eval_ds, tmp_path):
    csv = tmp_path / "rows.csv"
    a = E.evaluate(mean_fill, eval_ds, name="mean_fill", batch_size=5, progress=False, csv_path=csv)
    b = E.evaluate(biharmonic, eval_ds, name="biharmonic", batch_size=5, progress=False)
    assert len(a) == len(b) == len(eval_ds) == 12
    assert set(E.ROW_COLUMNS) <= set(a.columns)
    assert list(a["name"]) == list(eval_ds.manifest["image"])
    assert list(a["bucket"]) == list(eval_ds.manifest["bucket"])
    assert a["source"].str.startswith("measured here (").all() and "32 px" in a["source"][0]
    assert a["lpips"].isna().all() and a["id_dist"].isna().all()  # no metric models given
    assert b["psnr"].mean() > a["psnr"].mean() + 1.0
    back = E.read_csv(csv)
    assert len(back) == 12 and np.allclose(back["psnr"], a["psnr"])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temp file


def test_gzip_csv_roundtrip_is_byte_stable(eval_ds, tmp_path):
    a = E.evaluate(mean_fill, eval_ds, name="mean_fill", batch_size=5, progress=False)
    first = E.write_csv(a, tmp_path / "rows.csv.gz").read_bytes()
    assert first[:2] == b"\x1f\x8b"  # gzip magic
    assert E.write_csv(a, tmp_path / "again.csv.gz").read_bytes() == first  # zero mtime: same bytes
    back = E.read_csv(tmp_path / "rows.csv.gz")
    assert list(back["name"]) == list(a["name"]) and np.allclose(back["psnr"], a["psnr"])
    assert (back["paper_range"] == a["paper_range"]).all()


def test_raw_mode_differs_for_method_that_changes_known_pixels(eval_ds):
    def shifted(image, mask):
        return (mean_fill(image, mask) + 0.2).clamp(-1, 1)

    comp = E.evaluate(shifted, eval_ds, name="shifted", progress=False)
    raw = E.evaluate(shifted, eval_ds, name="shifted", composite=False, progress=False)
    assert (raw["psnr"] < comp["psnr"] - 0.1).all() and (comp["psnr"] - raw["psnr"]).mean() > 1.0
    assert list(raw["ratio"]) == pytest.approx(list(comp["ratio"]))  # ratio from the real mask
    assert list(raw["bucket"]) == list(comp["bucket"]) and not raw["composite"].any()
    # a method that keeps known pixels scores the same either way
    same = E.evaluate(mean_fill, eval_ds, name="mf", composite=False, progress=False)
    assert np.allclose(same["psnr"], E.evaluate(mean_fill, eval_ds, name="mf", progress=False)["psnr"])


def test_evaluate_accepts_plain_iterables_and_checks_shapes():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:10, 4:10] = 1
    df = E.evaluate(mean_fill, [dict(image=img, mask=mask)], name="x", progress=False)  # a batched dict
    assert len(df) == 2 and (df["paper_range"] == "").all() and (df["bucket"] == "10-20").all()
    with pytest.raises(ValueError, match="expected a tensor of shape"):
        E.evaluate(lambda i, m: i[:, :1], [dict(image=img[0], mask=mask[0])], name="bad", progress=False)


class _FakeISFRNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, image, mask):
        return {"stage1": torch.zeros_like(image) + self.w, "output": image * (1 - mask)}


def test_isfrnet_method_keys():
    img, mask = torch.rand(1, 3, 8, 8) * 2 - 1, torch.zeros(1, 1, 8, 8)
    assert torch.all(isfrnet_method(_FakeISFRNet(), "stage1")(img, mask) == 0)
    assert torch.equal(isfrnet_method(_FakeISFRNet())(img, mask), img)
    with pytest.raises(KeyError, match="available"):
        isfrnet_method(_FakeISFRNet(), "ifr")(img, mask)


def test_evaluation_never_imports_training():
    tree = ast.parse(Path(E.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any("training" in x for x in names), names
    code = ("import sys, isfr.evaluation, isfr.evaluation.baselines, isfr.experiments.figures; "
            "bad = [m for m in sys.modules if m.startswith('isfr.training')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)  # nor transitively


# ---------------------------------------------------------------- paper numbers and comparison tables
def test_paper_numbers_frames():
    t2 = P.table2_long()
    assert (t2["source"] == P.REPORTED).all() and len(t2) == 5 * 2 * 4
    assert P.paper_value("table2", "ISFRNet", "40-60", "psnr") == 23.31
    assert P.paper_value("table1", "ISFRNet", "40-60", "psnr") == 13.31  # as printed
    assert P.ABSTRACT == P.TABLE2["ISFRNet"]
    assert list(P.wide(P.table1_long()).columns) == ["PSNR 20-40", "PSNR 40-60", "SSIM 20-40", "SSIM 40-60", "source"]
    inc = P.inconsistencies_frame()
    assert len(inc) >= 10 and inc["what"].str.contains("13.31").any() and inc["what"].str.contains(r"\[3\]").any()
    chk = P.l1_rmse_check().set_index(["method", "paper_range"])
    assert chk.loc[("pSp", "20-40"), "ratio"] > chk.loc[("pSp", "20-40"), "composite_bound"]


def _measured() -> pd.DataFrame:
    df = pd.concat([hand_df(4, 0, "ISFRNet"), hand_df(4, 1, E.PSP_COMPOSITE),
                    hand_df(4, 2, E.PSP_RAW).assign(composite=False), hand_df(4, 3, "biharmonic")])
    return df.reset_index(drop=True)


def test_table2_paper_beside_ours_and_sources_separate():
    meas = _measured()
    t = E.table2(meas, n_boot=100)
    summ = E.summarise(meas, n_boot=100)
    row = t[t["method"] == "ISFRNet"].iloc[0]
    assert row["paper method"] == "ISFRNet" and row["PSNR 40-60 (paper)"] == 23.31
    ours = summ[(summ.method == "ISFRNet") & (summ.bucket == "40-60")].iloc[0]
    assert row["PSNR 40-60 (ours)"] == pytest.approx(ours["psnr"])
    assert row["PSNR 40-60 (ours)_lo"] == pytest.approx(ours["psnr_lo"]) and row["n 40-60"] == 8
    psp = t[t["paper method"] == "pSp"]
    assert set(psp["method"]) == {E.PSP_COMPOSITE, E.PSP_RAW}
    assert set(psp["composited"]) == {"yes", "no"}
    assert (psp["L1 20-40 (paper)"] == 0.113).all()
    paper_only = t[t["source"] == P.REPORTED]
    assert set(paper_only["method"]) == {"LGNet", "MADF", "EC"}
    ours_cols = [c for c in t.columns if "(ours)" in c]
    assert paper_only[ours_cols].isna().all().all()
    assert t.loc[t["source"] != P.REPORTED, "source"].eq(SRC).all()
    extra = t[t["method"] == "biharmonic"].iloc[0]
    assert extra["paper method"] == "" and math.isnan(extra["PSNR 20-40 (paper)"])
    foot = t.attrs["footer"]
    assert P.REPORTED in foot and SRC in foot and E.PROTOCOL in foot and "composited = no" in foot


def test_table1_flags_typo_and_accepts_summary():
    meas = _measured().replace({"method": {"ISFRNet": "full"}})
    summ = E.summarise(meas, n_boot=50)
    t = E.table1(summ, {"ISFRNet": "full"})
    row = t[t["paper method"] == "ISFRNet"].iloc[0]
    assert row["method"] == "full" and row["PSNR 40-60 (paper)"] == 13.31
    assert "13.31" in t.attrs["footer"] and "23.31" in t.attrs["footer"]
    fixed = E.table1(summ, {"ISFRNet": "full"}, correct_typos=True)
    assert fixed.loc[fixed["paper method"] == "ISFRNet", "PSNR 40-60 (paper)"].iloc[0] == 23.31
    assert P.TABLE1["ISFRNet"]["40-60"]["psnr"] == 13.31  # the data itself is untouched
    assert not any("LPIPS" in c for c in t.columns)
    assert set(t["method"]) >= {"pSp+IFR", "pSp+SFR"}  # the paper's rows stay, measured or not
    mine = E.table1(summ, {"ISFRNet": "full"}, paper_only_rows=False)
    assert P.REPORTED not in set(mine["source"]) and "full" in set(mine["method"])
    assert mine.loc[mine["method"] == "full", "PSNR 40-60 (paper)"].iloc[0] == 13.31


def test_a_table_read_back_from_its_csv_writes_the_same_markdown(tmp_path):
    """write_table -> read_table -> comparison_footer gives the Table 2 the notebook wrote (raw pSp rows, paper-only
    rows with empty counts): how tests/test_tables.py checks the committed tables."""
    t = E.table2(_measured(), n_boot=50, protocol="Protocol: p\nnote on the metric models")
    first = E.write_table(t, tmp_path / "a", notes=E.agreement_notes(t, ("PSNR", "L1"))).read_bytes()
    back = E.read_table(tmp_path / "a.csv")
    assert str(back["n 20-40"].dtype) == "Int64" and back["n 20-40"].isna().any()
    back.attrs["footer"] = E.comparison_footer(back, "Table 2", ci_label=E.ci_text(n_boot=50),
                                               protocol="Protocol: p\nnote on the metric models")
    assert back.attrs["footer"] == t.attrs["footer"]
    again = E.write_table(back, tmp_path / "b", notes=E.agreement_notes(back, ("PSNR", "L1"))).read_bytes()
    assert again == first and (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert b"(ours) values: mean over images [95% percentile bootstrap CI over images (50 resamples, seed 0)]" in first
    assert E.comparison_footer(back, "Table 2").count("Note on Table 2, pSp") == 1  # FLAGS by the table's name


def test_to_markdown_shape_and_ci_cells():
    t = E.table2(_measured(), n_boot=50)
    md = E.to_markdown(t, footer=False)
    lines = md.strip().split("\n")
    n_cols = len([c for c in t.columns if not (c.endswith(("_lo", "_hi")) and c[:-3] in t.columns)])
    assert len(lines) == len(t) + 2
    assert all(line.count("|") == n_cols + 1 for line in lines)
    assert set(lines[1].replace("|", "").split()) == {"---"}
    isf = next(line for line in lines if line.startswith("| ISFRNet "))
    assert "[" in isf and "23.31" in isf
    full = E.to_markdown(t)
    assert full.startswith(md.rstrip("\n")) and E.PROTOCOL in full
    plain = E.to_markdown(pd.DataFrame({"a": [1, 2], "b|c": [0.5, math.nan]}))
    assert plain.splitlines() == ["| a | b\\|c |", "| --- | --- |", "| 1 | 0.500 |", "| 2 |  |"]


def test_provenance_format():
    s = E.provenance("small", 64, "CelebA test, 100 images", 7000, "CPU (2 cores)", "abc123")
    assert s == "measured here (small, 64 px, CelebA test, 100 images, 7000 steps, CPU (2 cores), commit abc123)"


def test_ranking_agreement_reports_whether_the_order_matches():
    import pandas as pd

    from isfr.evaluation import ranking_agreement

    t = pd.DataFrame({"method": ["a", "b", "c"], "PSNR 20-40 (paper)": [28.0, 27.0, float("nan")],
                      "PSNR 20-40 (ours)": [25.0, 24.0, 30.0], "L1 20-40 (paper)": [0.01, 0.02, 0.03],
                      "L1 20-40 (ours)": [0.03, 0.02, 0.01]})
    assert "follows the paper's" in ranking_agreement(t, "PSNR", "20-40")
    assert "(a > b)" in ranking_agreement(t, "PSNR", "20-40")  # the NaN row is left out
    assert "does not follow" in ranking_agreement(t, "L1", "20-40")  # lower is better for L1
    assert "fewer than two" in ranking_agreement(t.iloc[:1], "PSNR", "20-40")


def test_comparison_rows_composite_each_method():
    import torch

    from isfr.evaluation.baselines import mean_fill
    from isfr.evaluation import comparison_rows

    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.rand(3, 8, 8, generator=g) * 2 - 1, "mask": (torch.rand(1, 8, 8, generator=g) > 0.5).float()}
            for _ in range(3)]
    rows = comparison_rows({"zeros": lambda x, m: torch.zeros_like(x), "mean": mean_fill}, data, [0, 2])
    assert len(rows) == 2 and set(rows[0]) == {"input", "gt", "mask", "zeros", "mean"}
    known = rows[1]["mask"].expand(3, 8, 8) == 0
    assert torch.equal(rows[1]["zeros"][known], data[2]["image"][known])
    assert torch.equal(rows[1]["zeros"][~known], torch.zeros(int((~known).sum())))


def test_head_to_head_pairs_the_rows_and_tests_the_difference(eval_ds):
    a = E.evaluate(biharmonic, eval_ds, name="biharmonic", progress=False)
    b = E.evaluate(mean_fill, eval_ds, name="mean_fill", progress=False)
    h = E.head_to_head(pd.concat([a, b]), "biharmonic", "mean_fill", groups=("all",), metrics=("psnr", "l1"))
    row = h.iloc[0]
    assert row["n"] == len(eval_ds)
    assert row["psnr diff"] == pytest.approx(a["psnr"].mean() - b["psnr"].mean())
    assert row["psnr diff_lo"] <= row["psnr diff"] <= row["psnr diff_hi"]
    assert row["psnr better"] and row["l1 better"]  # L1: lower is better, the difference is negative
    back = E.head_to_head(pd.concat([a, b]), "mean_fill", "biharmonic", groups=("all",), metrics=("psnr", "l1"))
    assert not back.iloc[0]["psnr better"] and not back.iloc[0]["l1 better"]
    with pytest.raises(ValueError, match="same pairs"):
        E.head_to_head(pd.concat([a, b.iloc[1:]]), "biharmonic", "mean_fill")
    with pytest.raises(ValueError, match="no rows"):
        E.head_to_head(a, "biharmonic", "nobody")


def test_duels_put_each_pair_in_one_table(eval_ds):
    a = E.evaluate(biharmonic, eval_ds, name="biharmonic", progress=False)
    b = E.evaluate(mean_fill, eval_ds, name="mean_fill", progress=False)
    both = pd.concat([a, b])
    d = E.duels(both, [("biharmonic", "mean_fill"), ("mean_fill", "biharmonic")], groups=("all",))
    assert list(d["ours"]) == ["biharmonic", "mean_fill"] and list(d["baseline"]) == ["mean_fill", "biharmonic"]
    assert d.loc[0, "psnr ours"] == pytest.approx(a["psnr"].mean())
    assert d.loc[1, "psnr baseline"] == pytest.approx(a["psnr"].mean())
    assert d.loc[0, "psnr diff"] == pytest.approx(-d.loc[1, "psnr diff"])
    assert d.loc[0, "psnr better"] and not d.loc[1, "psnr better"]


def test_worst_pairs_are_where_ours_trails_most_within_the_ranges():
    rows = [  # (image, mask, bucket, paper range, ours, baseline): ours - baseline = -3, +1, -1, -9 (out of range), -2
        ("a.jpg", "1.png", "20-30", "20-40", 20.0, 23.0), ("b.jpg", "2.png", "30-40", "20-40", 25.0, 24.0),
        ("c.jpg", "3.png", "40-50", "40-60", 21.0, 22.0), ("d.jpg", "4.png", "0-10", "", 30.0, 39.0),
        ("e.jpg", "5.png", "50-60", "40-60", 18.0, 20.0)]
    df = pd.DataFrame([{"method": m, "name": r[0], "mask_name": r[1], "bucket": r[2], "paper_range": r[3], "psnr": v,
                        "l1": -v} for r in rows for m, v in (("ours", r[4]), ("base", r[5]))])
    manifest = pd.DataFrame({"image": ["e.jpg", "a.jpg", "b.jpg", "c.jpg", "d.jpg"],
                             "mask": ["5.png", "1.png", "2.png", "3.png", "4.png"]})
    w = E.worst_pairs(df, "ours", "base", manifest, n=2)
    assert list(w["name"]) == ["a.jpg", "e.jpg"] and list(w["diff"]) == [-3.0, -2.0]
    assert list(w["index"]) == [1, 0]  # rows of the manifest
    w = E.worst_pairs(df, "ours", "base", manifest, metric="l1", n=1)  # lower is better: ours' l1 - base's l1 = +3
    assert list(w["name"]) == ["a.jpg"] and list(w["diff"]) == [3.0]
    with pytest.raises(ValueError, match="no pairs"):
        E.worst_pairs(df, "ours", "nobody", manifest)


def test_write_duels_writes_the_table_its_ci_and_source(eval_ds, tmp_path):
    a = E.evaluate(biharmonic, eval_ds, name="biharmonic", progress=False)
    b = E.evaluate(mean_fill, eval_ds, name="mean_fill", progress=False)
    d = E.duels(pd.concat([a, b]), [("biharmonic", "mean_fill")], groups=("all",))
    md = E.write_duels(d, tmp_path / "h2h", "Heading line", "measured here (x)", diff="a - b", protocol="Protocol: p")
    assert md == tmp_path / "h2h.md"
    text = md.read_text().splitlines()
    assert text[0] == "Heading line" and "| ours | baseline |" in text[2]
    assert "Values: means; diff = a - b [95% percentile bootstrap CI" in md.read_text()
    assert text[-2:] == ["Source: measured here (x).", "Protocol: p"]
    back = pd.read_csv(tmp_path / "h2h.csv")
    assert back.loc[0, "psnr diff"] == pytest.approx(a["psnr"].mean() - b["psnr"].mean())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h2h.csv", "h2h.md"]  # no temporary file left


def test_hardware_text_names_the_runs_of_each_label_only_when_labels_differ():
    import pandas as pd

    from isfr.experiments.experiment import hardware_text

    one = pd.DataFrame({"run": ["stylegan", "psp"], "hardware": ["CPU A, 1 threads"] * 2})
    assert hardware_text(one) == "CPU A, 1 threads"
    two = pd.DataFrame({"run": ["stylegan", "psp", "ifr", "sfr"],
                        "hardware": ["CPU A, 1 threads", "CPU A, 1 threads", "CPU A (AVX2), 1 threads", "CPU A (AVX2), 1 threads"]})
    assert hardware_text(two) == "stylegan, psp: CPU A, 1 threads; ifr, sfr: CPU A (AVX2), 1 threads"
    assert hardware_text(two.iloc[:0]) == ""
