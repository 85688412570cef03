"""Stages trained in sequence (section 3), earlier stages frozen; variants; export to one file."""
from __future__ import annotations

import pytest
import torch

from isfr.experiments.config import get_preset
from isfr.experiments.experiment import seed_replicates, training_record, upstream_hours
from isfr.models.isfrnet import ISFRNet
from isfr.experiments.runs import (TABLE1_ROWS, TABLE1_VARIANTS, VARIANTS, ablation_variants, data_tag, provenance, run_dir, run_key,
                                   stage_runs, steps_text, val_dataset, variant_preset, with_data_root)
from isfr.experiments.trained import build_model, export_path, export_pipeline, load_stage1, trained_model
from isfr.experiments import pipeline
from isfr.experiments.pipeline import (L1_ONLY, sfr_lr_decay, train_ifr, train_psp, train_sfr, train_stylegan,
                                       train_variant)

STEPS = {"schedule.stylegan_steps": 2, "schedule.psp_steps": 2, "schedule.ifr_steps": 2, "schedule.sfr_steps": 2,
         "schedule.ckpt_every": 1, "schedule.val_every": 1, "schedule.val_images": 1, "schedule.log_every": 1,
         "data.limit": 8, "data.synthetic_train": 8, "data.synthetic_eval": 2, "schedule.sfr_lr_decay": (2, 0.1),
         "schedule.sfr_lr": 3e-4, "schedule.sfr_guess_dropout": 0.5}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every stage of the smoke preset trained for two steps on synthetic faces."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ISFR_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    mp.delenv("ISFR_DATA_ROOT", raising=False)
    P = get_preset("smoke", **STEPS)
    before = build_model(P)
    results = {"stylegan": train_stylegan(P, progress=False), "psp": train_psp(P, progress=False)}
    stage1 = {k: v.clone() for k, v in load_stage1(build_model(P), P).stage1.state_dict().items()}
    results["ifr"] = train_ifr(P, progress=False)
    results["sfr"] = train_sfr(P, progress=False)
    yield P, results, before, stage1
    mp.undo()


def test_every_stage_runs_to_its_step_count(trained):
    P, results, _, _ = trained
    for name, r in results.items():
        assert r.finished and r.step == 2, name
        assert (run_dir(P, name) / "done.json").exists()
        assert (run_dir(P, name) / "train_log.csv").exists()
    for name in ("psp", "ifr", "sfr"):  # best checkpoint chosen on val PSNR
        assert results[name].best_score is not None and 0 < results[name].best_score < 100


def test_sfr_lr_and_its_decay_reach_the_sfr_loop_only(trained):
    import pandas as pd

    P, _, _, _ = trained
    sfr = pd.read_csv(run_dir(P, "sfr") / "train_log.csv")
    assert P.schedule.sfr_lr != P.schedule.lr
    assert list(sfr["lr_g"]) == pytest.approx([3e-4, 3e-5])
    assert list(sfr["lr_d"]) == pytest.approx([3e-4, 3e-5])
    assert (pd.read_csv(run_dir(P, "ifr") / "train_log.csv")["lr_g"] == P.schedule.lr).all()


def test_sfr_guess_dropout_reaches_the_sfr_stage(trained, monkeypatch):
    P = trained[0]
    seen: dict = {}

    def spy(*args, **kw):
        seen.update(kw)
        raise RuntimeError("stop here")

    monkeypatch.setattr(pipeline, "SFRStage", spy)
    with pytest.raises(RuntimeError, match="stop here"):
        train_sfr(P, progress=False)
    assert seen["guess_dropout"] == P.schedule.sfr_guess_dropout == 0.5


def test_later_stages_leave_stage_one_frozen(trained):
    P, _, before, stage1 = trained
    model = trained_model(P, "full", as_exported=False)  # the checkpoints as trained
    for k, v in model.stage1.state_dict().items():
        assert torch.equal(v, stage1[k]), f"stage-1 tensor {k} changed while training IFR/SFR"
    changed = [k for k, v in model.ifr.state_dict().items() if not torch.equal(v, before.ifr.state_dict()[k])]
    assert changed, "IFR weights were not trained"


def test_finished_run_is_loaded_not_retrained(trained):
    P, _, _, _ = trained
    log = (run_dir(P, "ifr") / "train_log.csv").read_text()
    r = train_ifr(P, progress=False)
    assert r.stop_reason == "already_done"
    assert (run_dir(P, "ifr") / "train_log.csv").read_text() == log


def test_upstream_hours_sum_the_logged_time_of_stage1_and_the_ifr(trained):
    import pandas as pd

    P = trained[0]
    logged = sum(pd.read_csv(run_dir(P, r) / "train_log.csv")["elapsed_s"].iloc[-1] for r in ("stylegan", "psp", "ifr"))
    assert upstream_hours(P) == pytest.approx(logged / 3600)
    assert upstream_hours(P, "psp_sfr") == pytest.approx(logged / 3600 - pd.read_csv(
        run_dir(P, "ifr") / "train_log.csv")["elapsed_s"].iloc[-1] / 3600)  # no IFR in that variant
    with pytest.raises(FileNotFoundError, match="ifr_nomask"):
        upstream_hours(P, "psp_ifr")  # its own IFR run, never trained here


def test_export_gives_the_same_outputs_as_the_stage_checkpoints(trained, tmp_path):
    """The export stores fp16 weights; trained_model (what the tables score) gives back exactly those."""
    P, _, _, _ = trained
    path = export_pipeline(P, "full", tmp_path / "isfrnet.pt")
    stored = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    a, b = trained_model(P, "full"), ISFRNet.from_checkpoint(path)
    exact = trained_model(P, "full", as_exported=False)  # the checkpoints' own fp32 weights
    image, mask = torch.rand(1, 3, 64, 64) * 2 - 1, (torch.rand(1, 1, 64, 64) > 0.6).float()
    with torch.no_grad():
        assert torch.equal(a(image, mask)["composite"], b(image, mask)["composite"])
        assert not torch.equal(exact(image, mask)["composite"], b(image, mask)["composite"])


def test_export_of_an_unfinished_run_warns_in_one_line_and_records_it(trained, tmp_path, monkeypatch):
    import os
    import shutil

    P, _, _, _ = trained
    copy = tmp_path / "runs"
    shutil.copytree(os.environ["ISFR_RUNS_DIR"], copy)
    monkeypatch.setenv("ISFR_RUNS_DIR", str(copy))
    (run_dir(P, "sfr") / "done.json").unlink()  # as while the SFR still trains
    with pytest.warns(RuntimeWarning, match=r"unfinished model \(sfr: best checkpoint so far step [12] of 2\)") as record:
        path = export_pipeline(P, "full", tmp_path / "isfrnet.pt")
    assert len([w for w in record if "unfinished" in str(w.message)]) == 1
    assert "isfr train --preset smoke" in str(record[0].message) and "\n" not in str(record[0].message)
    schedule = torch.load(path, map_location="cpu", weights_only=True)["schedule"]
    assert not schedule["sfr"]["finished"] and schedule["sfr"]["total_steps"] == 2 and schedule["ifr"]["finished"]


def test_variants_map_to_the_ablations_of_table_1():
    v = VARIANTS
    assert not v["psp_ifr"].use_sfr and not v["psp_ifr"].ifr_mask_constraint  # section 4.2.1
    assert not v["psp_sfr"].use_ifr  # section 4.2.2
    assert v["no_weighting"].overrides == {"sfr.weighting": "none"} and v["no_weighting"].ifr_run == "ifr"  # 4.2.3
    p = variant_preset(get_preset("small", seed=3), "no_weighting")
    assert p.sfr.weighting == "none" and p.seed == 3  # the preset's own overrides survive


def test_ablation_variants_add_every_eq1_reading_but_the_presets_own():
    for weighting in ("paper", "inverse_ratio", "valid_fraction", "none"):
        names = ablation_variants(get_preset("smoke", **{"sfr.weighting": weighting}))
        readings = [variant_preset(get_preset("smoke"), n).sfr.weighting for n in names if n.startswith("weight_")]
        assert names[:4] == TABLE1_VARIANTS and names[-1] == "leak_free"
        expected = {"paper", "inverse_ratio", "valid_fraction"} - {weighting}
        assert sorted(readings) == sorted(expected), (weighting, names)


def test_table1_rows_name_the_papers_rows_and_match_their_switches():
    from isfr.evaluation.paper_numbers import TABLE1, TABLE1_VARIANTS as ticks

    assert list(TABLE1_ROWS) == list(TABLE1) == list(ticks)
    for row, name in TABLE1_ROWS.items():
        v, t = VARIANTS[name], ticks[row]
        weighted = variant_preset(get_preset("small"), v).sfr.weighting != "none"
        assert (v.use_ifr, v.use_sfr) == (t["ifr"], t["sfr"]), row
        assert not t["weighting"] or weighted, row  # the full model weights eq. 1; "w/o weighting" does not
    assert variant_preset(get_preset("small"), TABLE1_ROWS["pSp+IFR+SFR w/o weighting"]).sfr.weighting == "none"


def test_missing_stage_checkpoint_names_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="stylegan"):
        train_psp(get_preset("smoke", **STEPS), progress=False)


def test_preset_overrides_are_checked():
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")
    with pytest.raises(KeyError, match="sfr.nope"):
        get_preset("smoke", **{"sfr.nope": 1})
    assert get_preset("paper").schedule.batch_size == 1 and get_preset("paper").schedule.lr == 1e-4  # section 4.1


def test_an_ablation_run_decays_its_lr_at_the_main_runs_fraction_of_its_steps():
    s = get_preset("smoke", **{"schedule.sfr_steps": 6000, "schedule.sfr_lr_decay": (5000, 0.1)}).schedule
    assert sfr_lr_decay(s, 6000) == (5000, 0.1)
    assert sfr_lr_decay(s, 1200) == (1000, 0.1)
    assert sfr_lr_decay(get_preset("paper").schedule, 10) is None


def test_ablation_budget_shares_runs_only_when_the_schedules_agree():
    small = get_preset("small")
    s = small.schedule
    assert stage_runs(small, "full", "main") == {"ifr": ("ifr", s.ifr_steps), "sfr": ("sfr", s.sfr_steps)}
    assert stage_runs(small, "full", "ablation") == {"ifr": ("ifr_abl", s.ablation_ifr_steps),
                                                       "sfr": ("sfr_abl", s.ablation_sfr_steps)}
    assert stage_runs(small, "no_weighting", "ablation")["sfr"] == ("sfr_noweight_abl", s.ablation_sfr_steps)
    smoke = get_preset("smoke")  # no ablation schedule: Table 1 reuses the main runs
    assert stage_runs(smoke, "psp_ifr", "ablation")["ifr"] == ("ifr_nomask", smoke.schedule.ifr_steps)
    with pytest.raises(ValueError, match="budget"):
        stage_runs(smoke, "full", "long")


def test_customised_presets_get_their_own_run_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    base = run_dir(get_preset("small"), "sfr")
    assert base.name == "sfr" and base.parent.parent == tmp_path / "small"
    assert base.parent.name.startswith("synthetic-")  # the data's identity is the folder above every run
    assert run_dir(get_preset("small", **{"schedule.sfr_steps": 99}), "sfr") == base  # extending a run
    other = {run_dir(get_preset("small", seed=1), "sfr"), run_dir(get_preset("small", **{"loss.lambda6_tv": 0.2}), "sfr")}
    assert base not in other and len(other) == 2
    assert all(p.name.startswith("sfr@") for p in other)


def test_sfr_records_the_ifr_checkpoint_it_was_trained_on(trained):
    from isfr.training.checkpoint import read_checkpoint

    P, _, _, _ = trained
    sfr = read_checkpoint(run_dir(P, "sfr") / "checkpoints" / "best.pt")
    ifr = read_checkpoint(run_dir(P, "ifr") / "checkpoints" / "best.pt")
    assert sfr["config"]["trained_on"]["ifr_step"] == ifr["step"]


def test_mismatched_ifr_and_sfr_checkpoints_warn(trained):
    """Runs last in this module: it edits the SFR checkpoint the other tests read."""
    P, _, _, _ = trained
    path = run_dir(P, "sfr") / "checkpoints" / "best.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["trained_on"]["ifr_step"] = 999
    torch.save(ckpt, path)
    with pytest.warns(RuntimeWarning, match="IFR step 999"):
        trained_model(P, "full")


def test_training_record_lists_the_trained_runs(trained):
    from isfr.core.utils import hardware

    P, results, _, _ = trained
    rec = training_record(P)
    rec.index = [r.removesuffix(run_key(P)) for r in rec["run"]]  # folders of a customised preset: run@hash
    assert list(rec.index) == ["stylegan", "psp", "ifr", "sfr"]  # ablation runs not trained: absent
    assert rec["finished"].all() and (rec["steps"] == 2).all() and (rec["total_steps"] == 2).all()
    assert rec.loc["sfr", "best_val_psnr"] == pytest.approx(results["sfr"].best_score)
    assert (rec["train_hours"] > 0).all() and (rec["hardware"] == hardware()).all()


def test_training_record_reads_a_gone_run_from_its_committed_records(trained, tmp_path, monkeypatch):
    import shutil

    import isfr.experiments.runs as runs_mod

    P, _, _, _ = trained
    ablation = stage_runs(P, "psp_ifr", "ablation")["ifr"][0]  # never trained here: no run folder
    committed = tmp_path / "figures" / P.name / "training_logs" / run_dir(P, ablation).name
    shutil.copytree(run_dir(P, "ifr"), committed, ignore=shutil.ignore_patterns("checkpoints"))
    monkeypatch.setattr(runs_mod, "REPO_ROOT", tmp_path)
    rec = training_record(P)
    assert list(rec["run"])[-1] == run_dir(P, ablation).name and len(rec) == 5
    assert rec.iloc[-1]["steps"] == 2 and rec.iloc[-1]["finished"]


def test_train_seconds_adds_the_segments_of_a_resumed_run():
    import pandas as pd

    from isfr.training.record import train_seconds

    assert train_seconds(pd.Series([1.0, 2.0, 3.0, 0.5, 1.5])) == 4.5  # killed at 3 s, resumed for 1.5 s
    assert train_seconds(pd.Series([2.0, 4.0])) == 4.0
    assert train_seconds(pd.Series([], dtype=float)) != train_seconds(pd.Series([], dtype=float))  # NaN


def test_cumulative_seconds_carry_over_resumes():
    import pandas as pd

    from isfr.training.record import cumulative_seconds, train_seconds

    e = pd.Series([1.0, 2.0, 3.0, 0.5, 1.5, 0.2])  # killed at 3 s, resumed for 1.5 s, resumed again
    assert list(cumulative_seconds(e)) == pytest.approx([1.0, 2.0, 3.0, 3.5, 4.5, 4.7])
    assert cumulative_seconds(e).iloc[-1] == pytest.approx(train_seconds(e))


def test_psp_stage_uses_the_arcface_id_loss_only_with_its_file(tmp_path, monkeypatch):
    import csv

    from isfr.models.arcface import ArcFace

    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    no_file = get_preset("smoke", **STEPS, **{"psp_loss.id_lambda": 0.1})
    train_stylegan(no_file, progress=False)
    with pytest.raises(ValueError, match="arcface_path"):
        train_psp(no_file, progress=False)
    torch.manual_seed(0)
    torch.save(ArcFace().state_dict(), tmp_path / "model_ir_se50.pth")
    P = get_preset("smoke", **STEPS, **{"psp_loss.id_lambda": 0.1, "psp_loss.arcface_path": str(tmp_path / "model_ir_se50.pth")})
    train_stylegan(P, progress=False)
    assert train_psp(P, progress=False).finished
    with open(run_dir(P, "psp") / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(0 < float(r["id"]) < 2 for r in rows)  # 1 - cos of unit embeddings


def test_seed_replicates_retrain_with_each_seed_on_the_same_pairs(trained):
    from isfr.evaluation import seed_spread

    P, _, _, _ = trained
    test = val_dataset(P, split="test")
    reps = seed_replicates(P, test, seeds=[1], budget="main", progress=False)
    assert sorted(reps["train_seed"].unique()) == [0, 1]
    a, b = (reps[reps["train_seed"] == s] for s in (0, 1))
    assert list(a["mask_name"]) == list(b["mask_name"]) and list(a["name"]) == list(b["name"])
    assert not a["psnr"].equals(b["psnr"])  # another seed, another model
    assert run_dir(get_preset("smoke", **STEPS, seed=1), "sfr").name.startswith("sfr@")
    spread = seed_spread(reps)
    row = spread[spread["bucket"] == "all"].iloc[0]
    assert row["n_seeds"] == 2 and row["psnr_std"] > 0


def test_steps_text_names_the_kept_checkpoint(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    P = get_preset("small")
    s = P.schedule
    plain = (f"StyleGAN2 {s.stylegan_steps} + pSp {s.psp_steps} steps + IFR {s.ifr_steps} + SFR {s.sfr_steps} "
             f"steps (batch {s.batch_size})")
    assert steps_text(P) == plain  # nothing trained yet: the schedule only
    d = run_dir(P, "sfr")
    d.mkdir(parents=True)
    (d / "done.json").write_text(json.dumps({"best": {"step": s.sfr_steps - 500}, "best_checkpoint": "best.pt"}))
    assert steps_text(P) == plain + f", val-best checkpoints SFR {s.sfr_steps - 500}"
    assert "val-best" not in steps_text(P, upto="ifr")
    (d / "done.json").write_text(json.dumps({"best": {"step": s.sfr_steps}, "best_checkpoint": "best.pt"}))
    assert steps_text(P) == plain  # the last checkpoint is the kept one


# ------------------------------------------------------------------ runs know their data, same seed same run


def _log_rows(path):
    """A train log without its wall-clock columns (time, seconds): what two identical runs share."""
    import pandas as pd

    df = pd.read_csv(path)
    return df.drop(columns=[c for c in df.columns if c in ("time", "sec_per_step", "elapsed_s", "wall")])


def test_two_fresh_runs_with_the_same_seed_write_identical_logs(trained, tmp_path, monkeypatch):
    P, _, _, _ = trained
    first = {n: _log_rows(run_dir(P, n) / "train_log.csv") for n in ("stylegan", "psp", "ifr", "sfr")}
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    train_stylegan(P, progress=False), train_psp(P, progress=False)
    train_ifr(P, progress=False), train_sfr(P, progress=False)
    for name, rows in first.items():
        again = _log_rows(run_dir(P, name) / "train_log.csv")
        assert again.equals(rows), f"{name}: a second fresh run with seed {P.seed} logged other losses"


def _face_folder(path, n=6):
    from PIL import Image

    path.mkdir()
    for i in range(n):
        Image.new("RGB", (40, 48), (40 * i, 100, 200 - 30 * i)).save(path / f"face{i}.png")
    return path


def test_a_run_of_other_data_is_never_reused(trained, tmp_path):
    P, _, _, _ = trained
    folder = _face_folder(tmp_path / "faces")
    synthetic, other = run_dir(P, "stylegan"), run_dir(with_data_root(P, folder), "stylegan")
    assert synthetic != other and other.parent.name.startswith("folder-")
    with pytest.raises(FileNotFoundError, match="folder-"):  # stage 1 of the folder data was never trained
        train_psp(P, str(folder), progress=False)
    assert not other.exists()


def test_an_upstream_checkpoint_of_other_data_is_refused(trained, tmp_path):
    import shutil

    P, _, _, _ = trained
    Q = with_data_root(P, _face_folder(tmp_path / "faces"))
    shutil.copytree(run_dir(P, "psp"), run_dir(Q, "psp"))  # moved by hand into the other data's folder
    with pytest.raises(ValueError, match="synthetic-.*folder-|trained on data synthetic"):
        load_stage1(build_model(Q), Q)


def test_run_records_and_the_export_carry_the_data_identity(trained, tmp_path):
    import json

    from isfr.apps.inpaint import checkpoint_info

    P, _, _, _ = trained
    tag = data_tag(P)
    for name in ("stylegan", "psp", "ifr", "sfr"):
        stored = json.loads((run_dir(P, name) / "config.json").read_text())["config"]["data_identity"]
        assert stored["tag"] == tag and stored["kind"] == "synthetic"
    path = export_pipeline(P)
    assert path == export_path(P) and tag in str(path)
    assert checkpoint_info(path)["data_identity"]["tag"] == tag
    schedule = checkpoint_info(path)["schedule"]
    assert set(schedule) == {"stylegan", "psp", "ifr", "sfr"}
    assert all(r["finished"] and r["step"] == r["total_steps"] == 2 for r in schedule.values())
    assert tag in provenance(P, __import__("isfr.data", fromlist=["x"]).resolve_data_root("synthetic"))


def test_resume_of_the_real_ifr_and_sfr_stages_is_exact(trained, tmp_path, monkeypatch):
    """Stopped after step 1 and resumed: the same logs and the same weights and buffers (BatchNorm's
    running statistics, spectral norm's power-iteration vectors) as the uninterrupted run."""
    import shutil

    P, _, _, _ = trained
    runs = {n: run_dir(P, n) for n in ("stylegan", "psp", "ifr", "sfr")}
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    for n in ("stylegan", "psp"):  # the same stage 1
        shutil.copytree(runs[n], run_dir(P, n))
    for n, train in (("ifr", train_ifr), ("sfr", train_sfr)):
        assert train(P, progress=False, max_steps_this_call=1).stop_reason == "max_steps_this_call"
        assert train(P, progress=False).step == 2
        assert _log_rows(run_dir(P, n) / "train_log.csv").equals(_log_rows(runs[n] / "train_log.csv")), n
        a = torch.load(runs[n] / "checkpoints" / "last.pt", weights_only=False)["modules"]
        b = torch.load(run_dir(P, n) / "checkpoints" / "last.pt", weights_only=False)["modules"]
        buffers = [k for m in a.values() for k in m if "running_mean" in k or k.endswith("weight_u")]
        assert buffers, f"{n}: no BatchNorm / spectral-norm buffers to compare"
        for m in a:
            for k in a[m]:
                assert torch.equal(a[m][k], b[m][k]), f"{n}: {m}.{k} differs after resume"


def test_sfr_stage_trains_any_generator_with_any_subset_of_eq10(tmp_path):
    """The learned U-Net baseline / ladder rungs: a one-encoder U-Net on L1 alone needs no stage 1,
    no D2 and no VGG; what is not weighted is neither built nor logged."""
    import pandas as pd

    from isfr.data import build_dataset
    from isfr.losses import LossConfig
    from isfr.models.unet import UNet
    from isfr.training.loop import TrainLoopConfig, fit
    from isfr.training.stages import SFRStage

    l1 = LossConfig(lambda4_perceptual=0, lambda5_style=0, lambda6_tv=0, lambda7_adv=0)
    stage = SFRStage(None, torch.nn.Linear(1, 1), None, l1, lr=1e-3, generator=UNet(ngf=4, depth=2, img_size=16),
                     key="gen", guess="none")
    assert set(stage.modules()) == {"gen"} and set(stage.optimizers()) == {"g"} and stage.frozen() == []
    data = build_dataset("synthetic", "train", resolution=16, limit=8, synthetic_train=8)
    res = fit(stage, data, TrainLoopConfig(total_steps=2, batch_size=2, log_every=1, progress=False,
                                           sample_seeds=True), tmp_path / "run")
    assert res.finished
    cols = set(pd.read_csv(tmp_path / "run" / "train_log.csv").columns)
    assert {"loss", "rec"} <= cols and not cols & {"adv", "d2", "perceptual", "style", "tv"}
    with pytest.raises(ValueError, match="guess"):
        SFRStage(None, None, None, l1, generator=UNet(ngf=4, depth=2, img_size=16), guess="ifr")


def test_a_variant_that_draws_other_training_masks_keeps_the_data_folder(trained):
    """The leak-free variant trains on procedural masks: its runs live beside the main model's (same data
    tag), record that tag, and load back as a pipeline."""
    P, _, _, _ = trained
    results = train_variant(P, "leak_free", progress=False)
    assert all(r.finished for r in results.values())
    import json

    for kind in ("ifr", "sfr"):
        run = stage_runs(P, "leak_free")[kind][0]
        cfg = json.loads((run_dir(P, run) / "config.json").read_text())["config"]
        assert cfg["data_identity"]["tag"] == data_tag(P) and cfg["data"]["mask_protocol"] == "leak_free"
    assert trained_model(P, "leak_free").sfr is not None


@pytest.mark.shared_data
def test_switching_between_synthetic_and_celeba_never_reuses(trained, data_root):
    """A synthetic-trained stage 1 is not found by a CelebA run (and a CelebA run's folder is another)."""
    P, _, _, _ = trained
    celeba = with_data_root(P, data_root)
    assert data_tag(celeba).startswith("celeba-") and run_dir(celeba, "stylegan") != run_dir(P, "stylegan")
    with pytest.raises(FileNotFoundError, match="celeba-"):
        train_psp(P, str(data_root), progress=False)  # its StyleGAN2 was trained on synthetic faces only
    assert not run_dir(celeba, "psp").exists()


def test_guess_dropout_feeds_i_i_to_e_c_for_that_share_of_samples():
    from isfr.training.context import StepContext
    from isfr.training.stages import SFRStage

    P = get_preset("smoke")
    seen: list[list[bool]] = []

    class Spy(torch.nn.Module):  # records, per sample, whether E_C's input is I_I itself
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, masked, e_c, mask):
            seen.append([bool(torch.equal(a, b)) for a, b in zip(masked, e_c)])
            return masked * 0 + self.w

    torch.manual_seed(0)
    image = torch.rand(32, 3, 64, 64) * 2 - 1
    mask = torch.zeros(32, 1, 64, 64)
    mask[..., 20:40, 20:40] = 1
    for p in (0.5, 0.5, 0.0):
        spy = Spy()
        stage = SFRStage(build_model(P), None, None, L1_ONLY, generator=spy, key="gen", guess_dropout=p)
        ctx = StepContext({"gen": spy}, torch.device("cpu"))
        ctx.step = 3
        stage.train_step({"image": image, "mask": mask}, ctx)
    assert 4 < sum(seen[0]) < 28  # about half the samples read I_I
    assert seen[0] == seen[1]  # the same step draws the same samples (exact resume)
    assert not any(seen[2])  # no dropout: E_C reads the IFR output, which fills the hole
    # the samples that read the guess get what stages 1-2 give the whole batch (they run on those samples only)
    got: list[torch.Tensor] = []

    class Keep(Spy):
        def forward(self, masked, e_c, mask):
            got.append(e_c)
            return masked * 0 + self.w

    gen = Keep()
    stage = SFRStage(build_model(P), None, None, L1_ONLY, generator=gen, key="gen", guess_dropout=0.5)
    ctx = StepContext({"gen": gen}, torch.device("cpu"))
    ctx.step = 3
    stage.train_step({"image": image, "mask": mask}, ctx)
    whole = stage._inputs(image, mask)[1]  # stages 1-2 on the whole batch
    keep = torch.tensor([not s for s in seen[0]])
    assert torch.allclose(got[0][keep], whole[keep], atol=1e-5)
    assert torch.equal(got[0][~keep], (image * (1 - mask))[~keep])
    with pytest.raises(ValueError, match="guess_dropout"):
        SFRStage(None, None, None, L1_ONLY, generator=Spy(), key="gen", guess="masked", guess_dropout=0.5)


def test_train_all_leaves_a_run_another_process_holds_and_comes_back_for_it(tmp_path, monkeypatch, capsys):
    import fcntl
    import threading

    from isfr.experiments.pipeline import train_all

    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("ISFR_DATA_ROOT", raising=False)
    P = get_preset("smoke", **STEPS)
    busy = run_dir(P, stage_runs(P, "psp_sfr", "ablation")["sfr"][0])
    busy.parent.mkdir(parents=True)
    held = open(busy.parent / f".{busy.name}.lock", "a")  # what fit holds while another process trains
    fcntl.flock(held, fcntl.LOCK_EX)
    order = []
    release = threading.Event()

    def let_go():  # the "other process" lets go once the free job is done
        release.wait(600)
        order.append("released")
        held.close()

    threading.Thread(target=let_go, daemon=True).start()
    import isfr.experiments.pipeline as pipeline

    real = pipeline.train_variant

    def spy(preset, v, *a, **kw):
        out = real(preset, v, *a, **kw)
        order.append(v)
        if v == "no_weighting":
            release.set()
        return out

    monkeypatch.setattr(pipeline, "train_variant", spy)
    results = dict(train_all(P, ["psp_sfr", "no_weighting"], main=False, wait_s=0.05, progress=False))
    held.close()
    assert "psp_sfr@ablation skipped" in capsys.readouterr().out  # said once, then left to its holder
    assert order[:2] == ["no_weighting", "released"] and order[2:] == ["psp_sfr"]  # the next job first, then back
    assert results["no_weighting/ifr@ablation"].finished and results["no_weighting/sfr@ablation"].finished
    assert results["psp_sfr/sfr@ablation"].finished and (busy / "done.json").is_file()


def test_final_table_reads_the_head_to_heads_and_the_runs_it_names(trained, tmp_path):
    import json

    import pandas as pd

    from isfr.experiments.experiment import final_table, final_table_markdown, write_final_table
    from isfr.experiments.runs import UNET_ROW

    P = trained[0]
    cells = lambda d, lo, hi: {"diff": d, "diff_lo": lo, "diff_hi": hi}
    # val: notebook 04's single head-to-head (columns named after the two methods); ISFRNet misses SSIM at 20-40
    val = []
    for g, ps, ss in (("20-40", cells(0.5, 0.4, 0.6), cells(-0.01, -0.02, 0.01)),
                      ("40-60", cells(1.0, 0.9, 1.1), cells(0.02, 0.01, 0.03)), ("all", cells(9, 9, 9), cells(9, 9, 9))):
        row = {"group": g, "n": 10, "psnr ISFRNet": 27.0, "psnr biharmonic": 26.5, "ssim ISFRNet": 0.88,
               "ssim biharmonic": 0.89}
        row.update({f"psnr {k}": v for k, v in ps.items()} | {f"ssim {k}": v for k, v in ss.items()})
        val.append(row)
    pd.DataFrame(val).to_csv(tmp_path / "val_isfrnet_vs_biharmonic.csv", index=False)
    # test: notebook 06's duels; the U-Net against biharmonic clears every CI, the ISFRNet-U-Net duel is not a row
    test = []
    for ours, base in ((UNET_ROW, "biharmonic"), ("ISFRNet", UNET_ROW)):
        for g in ("20-40", "40-60"):
            row = {"ours": ours, "baseline": base, "group": g, "n": 7}
            for m in ("psnr", "ssim"):
                row.update({f"{m} ours": 2.0, f"{m} baseline": 1.0, f"{m} diff": 1.0, f"{m} diff_lo": 0.5,
                            f"{m} diff_hi": 1.5})
            test.append(row)
    pd.DataFrame(test).to_csv(tmp_path / "test_head_to_head.csv", index=False)

    t = final_table(P, tmp_path)
    assert list(zip(t["model"], t["split"])) == [("ISFRNet", "val"), (UNET_ROW, "test")]
    isfr, unet = t.iloc[0], t.iloc[1]
    assert (isfr["psnr 20-40 diff"], isfr["ssim 20-40 diff_lo"], isfr["psnr 40-60 ours"]) == (0.5, -0.02, 27.0)
    assert not isfr["bar"] and unet["bar"] and isfr["n"] == 10 and unet["n"] == 7
    logged = sum(pd.read_csv(run_dir(P, r) / "train_log.csv")["elapsed_s"].iloc[-1] for r in ("stylegan", "psp", "ifr", "sfr"))
    assert isfr["cpu_hours"] == pytest.approx(logged / 3600)
    best = {r: json.loads((run_dir(P, r) / "done.json").read_text())["best"]["step"] for r in ("ifr", "sfr")}
    assert isfr["checkpoints"] == f"ifr step {best['ifr']}, sfr step {best['sfr']}"  # the val-best ones, scored
    assert isfr["resolution"] == P.data.resolution and isfr["data"] == data_tag(P) and data_tag(P).startswith("synthetic")
    assert pd.isna(unet["cpu_hours"]) and unet["checkpoints"] == "unet (not finished)"  # never trained here
    md = final_table_markdown(t)
    assert "27.00 vs 26.50: **+0.50 [+0.40, +0.60]**" in md and "0.880 vs 0.890: **-0.010 [-0.020, +0.010]**" in md
    assert md.splitlines()[2].endswith("| missed |") and md.splitlines()[3].endswith("| met |")
    assert "| not recorded |" in md.splitlines()[3]
    path = write_final_table(P, tmp_path)
    assert md in path.read_text() and len(pd.read_csv(tmp_path / "final_table.csv")) == 2
    assert final_table(P, tmp_path / "nothing").empty
