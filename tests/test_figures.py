"""isfr.experiments.figures: every figure function runs, carries its note and is written atomically."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from isfr.experiments import figures as F
from isfr.data.buckets import BUCKETS

NOTE = "synthetic faces - not a result"


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def _img(seed: int, s: int = 16) -> torch.Tensor:
    return torch.rand(3, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _mask(frac: float, s: int = 16) -> torch.Tensor:
    m = torch.zeros(1, s, s)
    m[:, : max(1, int(round(frac * s))), :] = 1
    return m


def _check(fig, path) -> None:
    assert NOTE in _texts(fig)
    out = F.save_figure(fig, path)
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*tmp*"))


def test_to_rgb_holes_white():
    x = -torch.ones(3, 4, 4)
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = 1
    rgb = F.to_rgb(x, m)
    assert rgb.shape == (4, 4, 3) and rgb[0, 0].tolist() == [1, 1, 1] and rgb[1, 1].tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        F.to_rgb(torch.zeros(2, 2))


def test_face_mask_grid(tmp_path):
    masks = torch.stack([_mask(f) for f in (0.05, 0.15, 0.25, 0.35, 0.45, 0.55)])
    fig = F.face_mask_grid([_img(0), _img(1)], masks, BUCKETS, note=NOTE)
    assert len(fig.axes) == 12
    assert "25%" in _texts(fig)  # 4 of 16 rows
    _check(fig, tmp_path / "faces.png")
    per_face = [[_mask(0.1), _mask(0.5)], [_mask(0.2), _mask(0.6)]]
    assert len(F.face_mask_grid([_img(0), _img(1)], per_face, ["a", "b"]).axes) == 4


def test_ratio_histogram(tmp_path):
    r = np.random.default_rng(0).uniform(0, 0.6, 300)
    fig = F.ratio_histogram(r, resolution=64, note=NOTE)
    n_0_10 = int((r < 0.1).sum())
    assert f"0-10%\nn={n_0_10}" in _texts(fig)
    _check(fig, tmp_path / "hist.png")


def test_loss_curves(tmp_path):
    steps = np.arange(1, 41) * 5
    df = pd.DataFrame({"step": steps, "epoch": steps / 100, "time": "t", "elapsed_s": steps * 0.1,
                       "lr_g": 1e-4, "rec": 1 / steps, "adv": np.sin(steps), "d": np.cos(steps)})
    path = tmp_path / "train_log.csv"
    df.to_csv(path, index=False)
    fig = F.loss_curves(path, "IFR", note=NOTE)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["rec", "adv", "d"]
    _check(fig, tmp_path / "loss.png")
    with pytest.raises(ValueError, match="step"):
        F.loss_curves(df.drop(columns="step"))


def _rows(n: int = 2) -> list[dict[str, torch.Tensor]]:
    return [dict(gt=_img(i), mask=_mask(0.3), stage1=_img(10 + i), ifr=_img(20 + i), composite=_img(30 + i),
                 biharmonic=_img(40 + i)) for i in range(n)]


def test_stage_grid_and_comparison_grid(tmp_path):
    fig = F.stage_grid(_rows(), note=NOTE)
    assert [ax.get_title() for ax in fig.axes[:5]] == list(F.STAGE_TITLES)
    # the input is derived from gt + mask with holes white
    top_left = fig.axes[0].images[0].get_array()
    assert np.all(np.asarray(top_left)[0] == 1.0)
    _check(fig, tmp_path / "fig2.png")
    fig = F.comparison_grid(_rows(3), ["biharmonic", "composite", "missing"], note=NOTE)
    assert len(fig.axes) == 3 * 5 and "n/a" in _texts(fig)
    _check(fig, tmp_path / "fig9.png")


def test_split_rows():
    out = {"stage1": torch.zeros(2, 3, 4, 4), "output": torch.ones(2, 3, 4, 4)}
    rows = F.split_rows(out, gt=torch.zeros(2, 3, 4, 4), mask=torch.zeros(2, 1, 4, 4))
    assert len(rows) == 2 and set(rows[0]) == {"stage1", "output", "gt", "mask"}
    assert rows[1]["output"].shape == (3, 4, 4)


def _summary() -> pd.DataFrame:
    rows = []
    for meth, off in (("a", 0.0), ("b", 1.0)):
        for k, b in enumerate(BUCKETS):
            v = 30 - 2 * k + off
            rows.append(dict(method=meth, bucket=b, n=4, psnr=v, psnr_lo=v - 1, psnr_hi=v + 1, ssim=0.9, ssim_lo=0.8,
                             ssim_hi=0.95, l1=0.01, l1_lo=0.0, l1_hi=0.02, lpips=math.nan, lpips_lo=math.nan,
                             lpips_hi=math.nan, id_dist=math.nan, id_dist_lo=math.nan, id_dist_hi=math.nan))
        rows.append(dict(rows[-1], bucket="20-40"))  # non-bucket rows are ignored
    return pd.DataFrame(rows)


def test_metric_lines_with_all_nan_metric(tmp_path):
    fig = F.metric_lines(_summary(), note=NOTE)
    texts = _texts(fig)
    assert "lpips: unavailable" in texts and "id_dist: unavailable" in texts
    psnr_ax = next(ax for ax in fig.axes if ax.get_title().startswith("PSNR"))
    assert len(psnr_ax.lines) == 2 and len(psnr_ax.collections) == 2  # two methods, two CI bands
    assert list(psnr_ax.lines[0].get_ydata()) == [30, 28, 26, 24, 22, 20]
    _check(fig, tmp_path / "metrics.png")
    empty = F.metric_lines(_summary().drop(columns=["ssim", "ssim_lo", "ssim_hi"]), metrics=("ssim",))
    assert "ssim: unavailable" in _texts(empty)


def test_table_figure(tmp_path):
    fig = F.table_figure(pd.DataFrame({"method": ["a"], "psnr": [27.123], "ssim": [math.nan]}), note=NOTE)
    _check(fig, tmp_path / "table.png")


def test_figures_index_lists_files_and_finds_the_missing(tmp_path):
    from isfr.experiments.figures import indexed_outputs, missing_outputs

    cpu, gpu = indexed_outputs(cpu_stage1=True), indexed_outputs(cpu_stage1=False)
    assert {"fig02_stages.png", "table1_ablation.md", "table2_comparison.md", "fig10_large_holes.png"} <= set(cpu)
    assert "stage1_stylegan_losses.png" in cpu and "stage1_stylegan_losses.png" not in gpu
    assert "notebooks/06_sota_comparison.ipynb" not in indexed_outputs(True, include_notebooks=False)
    assert sorted(f for f in set(cpu) if cpu.count(f) > 1) == [], "figures/README.md lists a file twice"
    (tmp_path / "fig02_stages.png").write_bytes(b"x")
    missing = missing_outputs(tmp_path, cpu_stage1=True)
    assert "fig02_stages.png" not in missing and "table1_ablation.md" in missing


def test_val_curves_vs_hours_place_each_run_at_its_hours(tmp_path):
    for name, secs in (("a", [360.0, 720.0]), ("b", [3600.0, 7200.0])):
        d = tmp_path / name
        d.mkdir()
        pd.DataFrame({"step": [10, 20], "elapsed_s": secs}).to_csv(d / "train_log.csv", index=False)
        pd.DataFrame({"step": [10, 20], "val_score": [20.0, 21.0]}).to_csv(d / "val_log.csv", index=False)
    fig = F.val_curves_vs_hours({"a": (tmp_path / "a", 0.0), "b": (tmp_path / "b", 1.5)})
    lines = fig.axes[0].get_lines()
    assert [list(l.get_xdata()) for l in lines] == [pytest.approx([0.1, 0.2]), pytest.approx([2.5, 3.5])]
    with pytest.raises(FileNotFoundError, match="train the run first"):
        F.val_curves_vs_hours({"c": (tmp_path / "c", 0.0)})
