"""The bar over every stage of `isfr train --main-only` (isfr.training.progress)."""
from __future__ import annotations

import io

from isfr.training.progress import STEP_COST, OverallProgress, active


def test_work_is_steps_weighed_by_each_stage_cost_and_a_resume_counts_what_was_done():
    plan = [("stylegan", 0, 10), ("psp", 0, 4), ("sfr", 2, 6)]
    with OverallProgress(plan, file=io.StringIO()) as p:
        assert active() is p
        C = p.cost
        assert C == {k: round(100 * STEP_COST[k]) for k in ("stylegan", "psp", "sfr")}
        assert p.bar.total == (10 * C["stylegan"] + 4 * C["psp"] + 6 * C["sfr"])
        assert p.bar.n == (2 * C["sfr"])  # an SFR already 2 steps in
        p.begin("stylegan", 3)  # resumed at step 3: three steps count as done at once
        p.advance("stylegan")
        assert p.done["stylegan"] == 4
        assert p.bar.n == (4 * C["stylegan"] + 2 * C["sfr"])
        for _ in range(20):  # never past a stage's total
            p.advance("psp")
        p.advance("unet")  # not in the plan: ignored
        assert p.done["psp"] == 4 and "unet" not in p.done
    assert active() is None


def test_isfr_train_main_only_shows_one_bar_over_every_stage(tmp_path, monkeypatch, capsys):
    from isfr.experiments.config import get_preset
    from isfr.experiments.pipeline import train_all

    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    P = get_preset("smoke", **{"schedule.stylegan_steps": 4, "schedule.psp_steps": 3, "schedule.ifr_steps": 3,
                               "schedule.sfr_steps": 3, "schedule.val_every": 3, "schedule.ckpt_every": 3})
    results = dict(train_all(P, data_root="synthetic", main_only=True, progress=True))
    assert set(results) == {"stylegan", "psp", "full/ifr@main", "full/sfr@main"}  # nothing else: no U-Net, no rows
    err = capsys.readouterr().err
    assert "main model" in err and "100%" in err and "left" in err
