"""fit(): exact resume, logging, validation/best.pt, NaN stop, AMP, done marker.

Also defines the toy stage used by test_checkpoint.py and test_distributed.py.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from isfr.training import (
    CheckpointMismatchError,
    NonFiniteLossError,
    StepBatchSampler,
    StepContext,
    TrainLoopConfig,
    fit,
    is_finished,
    load_checkpoint,
)

# --------------------------------------------------------------------------- toy stage


class ToyData(Dataset):
    """Random 8x8 'images'; a key ``(index, seed)`` also flips the image from the seed."""

    def __init__(self, n: int = 10, size: int = 8) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        idx, seed = key if isinstance(key, tuple) else (key, 0)
        g = torch.Generator().manual_seed(1000 + idx)
        img = torch.rand(3, self.size, self.size, generator=g) * 2 - 1
        if seed % 2:
            img = img.flip(-1)
        return {"image": img, "index": torch.tensor(idx)}


class Killed(Exception):
    """Simulates the process dying in the middle of a step."""


@dataclasses.dataclass
class ToyConfig:
    width: int = 4
    lr: float = 1e-3


class ToyStage:
    """Small conv 'generator' + GAN-ish discriminator + a frozen module; records what it saw."""

    name = "toy"
    val_mode = "min"

    def __init__(self, cfg: ToyConfig = ToyConfig(), nan_at: int | None = None,
                 crash_at: int | None = None, scores: dict[int, float] | None = None) -> None:
        torch.manual_seed(123)  # like a stage built fresh in a new process
        w = cfg.width
        self.g = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                               nn.Conv2d(w, 3, 3, padding=1))
        self.d = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                               nn.Conv2d(w, 1, 3, padding=1))
        self.frozen = nn.Conv2d(3, 3, 1).requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr)
        self.nan_at, self.crash_at, self.scores = nan_at, crash_at, scores
        self.history: list[tuple[int, float, float]] = []
        self.seen: list[int] = []
        self.dtypes: set[torch.dtype] = set()

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.g, "d": self.d, "frozen": self.frozen}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, Any]:
        if ctx.step == self.crash_at:
            raise Killed(f"killed at step {ctx.step}")
        g, d = ctx.nets["g"], ctx.nets["d"]
        x = batch["image"]
        self.seen += batch["index"].tolist()
        noisy = x + 0.1 * torch.randn_like(x)  # global RNG: must be restored on resume
        with ctx.autocast():
            fake = g(self.frozen(noisy))
            real_logit, fake_logit = d(torch.cat([x, fake.detach()])).float().chunk(2)
            loss_d = F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()
        ctx.backward(loss_d, self.opt_d)
        with ctx.autocast():
            self.dtypes.add(fake.dtype)
            l1 = (fake.float() - x).abs().mean()
            loss_g = l1 + 0.1 * F.softplus(-d(fake).float()).mean()
        ctx.backward(loss_g, self.opt_g)
        self.history.append((ctx.step, loss_g.item(), loss_d.item()))
        out = {"loss_g": loss_g.detach(), "loss_d": loss_d.detach(), "l1": l1.item()}
        if ctx.step == self.nan_at:
            out["l1"] = float("nan")
        return out

    def validate(self, batches: Any, ctx: StepContext) -> dict[str, float]:
        torch.rand(3)  # like drawing random validation masks: must not shift the training RNG
        l1 = [float((ctx.nets["g"](b["image"]) - b["image"]).abs().mean()) for b in batches]
        score = self.scores[ctx.step] if self.scores else sum(l1) / len(l1)
        return {"val_score": score, "val_l1": sum(l1) / len(l1)}


def toy_cfg(**kw: Any) -> TrainLoopConfig:
    base = dict(total_steps=10, batch_size=2, seed=7, log_every=2, ckpt_every=4, keep_last=3,
                progress=False, tensorboard=False, sample_seeds=True)
    base.update(kw)
    return TrainLoopConfig(**base)


def val_batches() -> list[dict[str, torch.Tensor]]:
    data = ToyData(4)
    return [{"image": data[i]["image"][None]} for i in range(4)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def params(stage: ToyStage) -> dict[str, torch.Tensor]:
    return {f"{k}.{n}": p.detach().clone() for k, m in stage.modules().items()
            for n, p in m.state_dict().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ToyStage:
    """An uninterrupted 10-step run."""
    stage = ToyStage()
    stage.run_dir = tmp_path_factory.mktemp("ref")  # type: ignore[attr-defined]
    res = fit(stage, ToyData(), toy_cfg(), stage.run_dir, config=ToyConfig())  # type: ignore[attr-defined]
    assert res.finished and res.step == 10
    return stage


# --------------------------------------------------------------------------- resume


def test_resume_in_slices_matches_uninterrupted_run(tmp_path: Path, reference: ToyStage) -> None:
    first = ToyStage()
    res = fit(first, ToyData(), toy_cfg(max_steps_this_call=5), tmp_path, config=ToyConfig())
    assert (res.step, res.finished, res.stop_reason) == (5, False, "max_steps_this_call")
    assert (tmp_path / "checkpoints" / "step_0000005.pt").exists()  # slice end is checkpointed
    assert not (tmp_path / "done.json").exists()

    second = ToyStage()  # fresh process: new weights, new RNG, until fit restores them
    res = fit(second, ToyData(), toy_cfg(), tmp_path, config=ToyConfig())
    assert res.finished and res.step == 10
    assert [h[0] for h in second.history] == [6, 7, 8, 9, 10]
    assert first.history + second.history == reference.history  # exact, not approx
    assert first.seen + second.seen == reference.seen
    ref, got = params(reference), params(second)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    # the log row of step 6 averages steps 5 (first call) and 6 (second call), as uninterrupted
    ref_rows = read_csv(reference.run_dir / "train_log.csv")  # type: ignore[attr-defined]
    rows = read_csv(tmp_path / "train_log.csv")
    assert [(r["step"], r["loss_g"]) for r in rows] == [(r["step"], r["loss_g"]) for r in ref_rows]


def test_lr_decay_steps_down_and_survives_resume(tmp_path: Path) -> None:
    cfg = dict(lr_decay=(6, 0.1), log_every=1)
    whole = ToyStage()
    fit(whole, ToyData(), toy_cfg(**cfg), tmp_path / "whole", config=ToyConfig())
    lrs = [(int(r["step"]), float(r["lr_g"]), float(r["lr_d"])) for r in read_csv(tmp_path / "whole" / "train_log.csv")]
    assert lrs == [(s, 1e-3 if s < 6 else pytest.approx(1e-4), 1e-3 if s < 6 else pytest.approx(1e-4))
                   for s in range(1, 11)]
    first = ToyStage()  # stop after the decay started: the optimizer state saved holds the decayed lr
    fit(first, ToyData(), toy_cfg(max_steps_this_call=7, **cfg), tmp_path / "sliced", config=ToyConfig())
    second = ToyStage()
    fit(second, ToyData(), toy_cfg(**cfg), tmp_path / "sliced", config=ToyConfig())
    assert first.history + second.history == whole.history
    with pytest.raises(ValueError, match="lr_decay"):
        toy_cfg(lr_decay=(0, 0.1))


def test_resume_after_kill_and_csv_has_no_duplicates(tmp_path: Path, reference: ToyStage) -> None:
    with pytest.raises(Killed):
        fit(ToyStage(crash_at=7), ToyData(), toy_cfg(), tmp_path, config=ToyConfig())
    # step 6 was logged, but the last checkpoint is step 4
    assert [r["step"] for r in read_csv(tmp_path / "train_log.csv")] == ["2", "4", "6"]
    stage = ToyStage()
    fit(stage, ToyData(), toy_cfg(), tmp_path, config=ToyConfig())
    assert stage.history == reference.history[4:]
    rows = read_csv(tmp_path / "train_log.csv")
    assert [r["step"] for r in rows] == ["2", "4", "6", "8", "10"]
    assert {"loss_g", "loss_d", "l1", "lr_g", "lr_d", "epoch"} <= set(rows[0])
    ref_rows = read_csv(reference.run_dir / "train_log.csv")  # type: ignore[attr-defined]
    assert [r["loss_g"] for r in rows] == [r["loss_g"] for r in ref_rows]


def test_truncated_newest_checkpoint_is_skipped(tmp_path: Path, reference: ToyStage) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(max_steps_this_call=8), tmp_path, config=ToyConfig())
    ckpts = tmp_path / "checkpoints"
    newest = ckpts / "step_0000008.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    (ckpts / ".step_0000009.pt.abc123.tmp").write_bytes(b"half")  # a write killed midway
    stage = ToyStage()
    with pytest.warns(UserWarning) as rec:
        fit(stage, ToyData(), toy_cfg(), tmp_path, config=ToyConfig())
    text = " ".join(str(w.message) for w in rec)
    assert "skipping checkpoint" in text and "step_0000008.pt" in text and "abc123.tmp" in text
    assert stage.history == reference.history[4:]  # resumed from step 4
    assert not list(ckpts.glob(".*.tmp"))
    assert (ckpts / "step_0000008.pt.corrupt").exists()


def test_resume_with_other_architecture_names_key_and_field(tmp_path: Path) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(max_steps_this_call=4), tmp_path, config=ToyConfig())
    wide = ToyConfig(width=6)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)step_0000004\.pt.*g\.0\.weight.*width: checkpoint=4, current=6"):
        fit(ToyStage(wide), ToyData(), toy_cfg(), tmp_path, config=wide)


def test_resume_with_other_preset_is_refused(tmp_path: Path) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(max_steps_this_call=4), tmp_path, preset="cpu64")
    with pytest.raises(CheckpointMismatchError, match="preset 'cpu64', not 'paper256'"):
        fit(ToyStage(), ToyData(), toy_cfg(), tmp_path, preset="paper256")


# --------------------------------------------------------------------------- failures / budget


def test_nan_loss_stops_with_step_term_and_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match=r"step 5: l1=nan.*step_0000004\.pt"):
        fit(ToyStage(nan_at=5), ToyData(), toy_cfg(), tmp_path)
    assert not (tmp_path / "checkpoints" / "step_0000005.pt").exists()


def test_nan_before_any_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="step 1: l1=nan.*none"):
        fit(ToyStage(nan_at=1), ToyData(), toy_cfg(), tmp_path)


def test_time_budget_stops_with_checkpoint(tmp_path: Path) -> None:
    res = fit(ToyStage(), ToyData(), toy_cfg(time_budget_s=0.0), tmp_path)
    assert (res.step, res.stop_reason, res.finished) == (1, "time_budget", False)
    assert (tmp_path / "checkpoints" / "step_0000001.pt").exists()


# --------------------------------------------------------------------------- validation / done


def test_best_checkpoint_follows_validation_score(tmp_path: Path) -> None:
    scores = {2: 0.5, 4: 0.3, 6: 0.25, 8: 0.2, 10: 0.22}  # step 6 is also a checkpoint step
    cfg = toy_cfg(val_every=2, ckpt_every=3)
    res = fit(ToyStage(scores=scores), ToyData(), dataclasses.replace(cfg, max_steps_this_call=7),
              tmp_path, val_batches=val_batches)
    best = tmp_path / "checkpoints" / "best.pt"
    assert load_checkpoint(best)["step"] == 6 and res.best_score == pytest.approx(0.25)
    res = fit(ToyStage(scores=scores), ToyData(), cfg, tmp_path, val_batches=val_batches)
    assert load_checkpoint(best)["step"] == 8 and res.best_score == pytest.approx(0.2)
    assert load_checkpoint(best)["best"] == {"score": pytest.approx(0.2), "step": 8}
    rows = read_csv(tmp_path / "val_log.csv")
    assert [(r["step"], r["is_best"]) for r in rows] == [
        ("2", "1"), ("4", "1"), ("6", "1"), ("8", "1"), ("10", "0")]
    assert len(list((tmp_path / "checkpoints").glob("*.tmp"))) == 0


def test_max_mode_and_validation_keeps_training_sequence(tmp_path: Path, reference: ToyStage) -> None:
    stage = ToyStage(scores={5: 1.0, 10: 2.0})
    stage.val_mode = "max"
    fit(stage, ToyData(), toy_cfg(val_every=5), tmp_path, val_batches=val_batches())
    assert load_checkpoint(tmp_path / "checkpoints" / "best.pt")["step"] == 10
    assert stage.history == reference.history  # validation does not perturb RNG / modes
    assert stage.g.training and not stage.frozen.weight.requires_grad


def test_done_marker_skips_training_unless_overwrite(tmp_path: Path, reference: ToyStage) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(), tmp_path)
    assert is_finished(tmp_path) and is_finished(tmp_path, 10) and not is_finished(tmp_path, 11)
    again = ToyStage()
    res = fit(again, ToyData(), toy_cfg(), tmp_path)
    assert res.stop_reason == "already_done" and again.history == []
    ref, got = params(reference), params(again)
    assert all(torch.equal(ref[k], got[k]) for k in ref)  # final weights loaded
    fresh = ToyStage()
    res = fit(fresh, ToyData(), toy_cfg(), tmp_path, overwrite=True)
    assert res.stop_reason == "finished" and [h[0] for h in fresh.history] == list(range(1, 11))


def test_more_total_steps_continues_a_finished_run(tmp_path: Path) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4), tmp_path)
    stage = ToyStage()
    res = fit(stage, ToyData(), toy_cfg(total_steps=6), tmp_path)
    assert [h[0] for h in stage.history] == [5, 6] and res.finished


# --------------------------------------------------------------------------- amp / data


def test_bf16_autocast_runs_on_cpu(tmp_path: Path) -> None:
    stage = ToyStage()
    res = fit(stage, ToyData(), toy_cfg(total_steps=3, amp="bf16"), tmp_path)
    assert res.finished and stage.dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in stage.g.parameters())


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_cpus_bf16_support(tmp_path: Path, monkeypatch, native: bool) -> None:
    """amp="auto": bf16 autocast where the CPU runs bf16 in hardware, fp32 where it would be emulated (an AVX2-only
    EPYC took 33.8 s per small IFR + D1 step in bf16 against 2.2 s in fp32); config.json records what ran."""
    import json

    import isfr.core.utils as U

    monkeypatch.setattr(U, "cpu_runs_bf16", lambda: native)
    stage = ToyStage()
    res = fit(stage, ToyData(), toy_cfg(total_steps=3, amp="auto", device="cpu"), tmp_path)
    assert res.finished and stage.dtypes == ({torch.bfloat16} if native else {torch.float32})
    assert json.loads((tmp_path / "config.json").read_text())["precision"] == ("bf16" if native else "fp32")


def test_explicit_bf16_on_a_cpu_that_emulates_it_warns(monkeypatch) -> None:
    import isfr.core.utils as U

    monkeypatch.setattr(U, "cpu_runs_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert U.resolve_amp("bf16", "cpu") == "bf16"  # kept: the user asked for it
    monkeypatch.setattr(U, "cpu_runs_bf16", lambda: True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert U.resolve_amp("bf16", "cpu") == "bf16"
        assert U.resolve_amp("auto", "cuda") == "fp16"
    with pytest.raises(ValueError, match="amp must be"):
        U.resolve_amp("fp8", "cpu")


def test_a_resume_at_another_precision_is_recorded(tmp_path: Path, monkeypatch) -> None:
    """A run started where bf16 is native and resumed where it is not: config.json's history names the change."""
    import json

    import isfr.core.utils as U

    monkeypatch.setattr(U, "cpu_runs_bf16", lambda: True)
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4, amp="auto", device="cpu", max_steps_this_call=2), tmp_path)
    monkeypatch.setattr(U, "cpu_runs_bf16", lambda: False)
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4, amp="auto", device="cpu"), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["precision"] == "fp32"
    assert [h["changed"] for h in cfg["history"]] == [["precision"]] and cfg["history"][0]["from_step"] == 2


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs CUDA"):
        fit(ToyStage(), ToyData(), toy_cfg(amp="fp16", device="cpu"), tmp_path)


def test_callable_data_factory_gets_start_step(tmp_path: Path) -> None:
    starts: list[int] = []

    def factory(start: int):
        starts.append(start)
        data = ToyData()
        for s in range(start, 100):
            yield {k: v[None] for k, v in data[s % len(data)].items()}

    fit(ToyStage(), factory, toy_cfg(max_steps_this_call=3), tmp_path)
    fit(ToyStage(), factory, toy_cfg(total_steps=5), tmp_path)
    assert starts == [0, 3]


def test_step_batch_sampler_is_deterministic_disjoint_and_epoch_complete() -> None:
    ranks = [StepBatchSampler(10, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    steps_per_epoch = ranks[0].steps_per_epoch
    assert steps_per_epoch == 2  # 10 // (2 * 2), tail of 2 dropped
    epoch0 = [i for s in range(steps_per_epoch) for r in ranks for i in r.batch(s)]
    assert len(set(epoch0)) == 8  # disjoint across ranks and steps
    again = StepBatchSampler(10, 2, seed=3, start_step=1, stop_step=3, rank=1, world_size=2)
    assert list(again) == [ranks[1].batch(1), ranks[1].batch(2)]
    assert ranks[0].batch(0) != ranks[0].batch(2) or ranks[0].batch(1) != ranks[0].batch(3)
    other_seed = StepBatchSampler(10, 2, seed=4)
    assert [other_seed.batch(s) for s in range(5)] != [StepBatchSampler(10, 2, seed=3).batch(s) for s in range(5)]
    seeded = StepBatchSampler(10, 2, seed=3, with_seeds=True)
    assert [i for i, _ in seeded.batch(0)] == StepBatchSampler(10, 2, seed=3).batch(0)
    with pytest.raises(ValueError, match="smaller than one global batch"):
        StepBatchSampler(3, 2, seed=0, world_size=2)


def test_tensorboard_logs_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4, tensorboard=True), tmp_path)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_not_a_stage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="is not a Stage"):
        fit(object(), ToyData(), toy_cfg(), tmp_path)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_cuda_amp_resume(tmp_path: Path, amp: str) -> None:
    cfg = toy_cfg(total_steps=6, amp=amp)
    fit(ToyStage(), ToyData(), dataclasses.replace(cfg, max_steps_this_call=3), tmp_path)
    stage = ToyStage()
    res = fit(stage, ToyData(), cfg, tmp_path)
    assert res.finished and stage.dtypes == {torch.float16 if amp == "fp16" else torch.bfloat16}
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert set(ckpt["scalers"]) == ({"g", "d"} if amp == "fp16" else set())


def test_time_based_checkpoints(tmp_path: Path) -> None:
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=3, ckpt_every=100, ckpt_every_min=0.0, keep_last=5), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == [
        "step_0000001.pt", "step_0000002.pt", "step_0000003.pt"]


def test_csv_log_grows_columns_and_truncates_on_resume(tmp_path: Path) -> None:
    from isfr.training.logs import CsvLog as _CsvLog

    path = tmp_path / "log.csv"
    log = _CsvLog(path, keep_upto=0)
    log.write({"step": 1, "a": 1.5})
    log.write({"step": 2, "a": 2.5, "b": 3})
    with open(path, "a") as f:
        f.write("3,4.5")  # a row cut short by a kill
    assert [(r["step"], r["a"], r["b"]) for r in read_csv(path)] == [("1", "1.5", ""), ("2", "2.5", "3"), ("3", "4.5", None)]
    _CsvLog(path, keep_upto=1).write({"step": 2, "a": 9, "b": 9})
    assert [(r["step"], r["a"], r["b"]) for r in read_csv(path)] == [("1", "1.5", ""), ("2", "9", "9")]


def test_a_run_trained_by_another_process_is_refused(tmp_path: Path) -> None:
    import fcntl
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    lock = tmp_path / ".run.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); time.sleep(30)"), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match="another process"):
            fit(ToyStage(), ToyData(), toy_cfg(), run, config=ToyConfig())
        assert not (run / "checkpoints").exists()  # nothing written
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert fit(ToyStage(), ToyData(), toy_cfg(), run, config=ToyConfig()).finished  # free again
    with open(lock, "a") as f:  # and released after the run
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_config_json_follows_an_extended_run(tmp_path: Path) -> None:
    """Extending a finished run (more total steps) rewrites config.json with what it now trains to and
    says from which step; a plain resume with the same settings leaves it as it was."""
    import json

    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4), tmp_path)
    first = json.loads((tmp_path / "config.json").read_text())
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4), tmp_path)  # already done: nothing to record
    assert json.loads((tmp_path / "config.json").read_text()) == first
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=6, max_steps_this_call=1), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["loop_config"]["total_steps"] == 6 and cfg["started"] == first["started"]
    assert cfg["history"] == [{**cfg["history"][0], "from_step": 4, "changed": ["loop_config.total_steps"]}]
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=6), tmp_path)  # resumed with the same settings
    assert json.loads((tmp_path / "config.json").read_text())["history"] == cfg["history"]


def test_run_records_name_no_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """done.json names its checkpoints relative to the run folder, config.json the data root by its variable,
    and the resume warning the checkpoint below $ISFR_RUNS_DIR: no record holds the machine's folders."""
    import json
    import warnings

    from isfr.training import done_checkpoint

    runs, data = tmp_path / "runs", tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("ISFR_RUNS_DIR", str(runs))
    monkeypatch.setenv("ISFR_DATA_ROOT", str(data))
    run = runs / "small" / "toy"
    config = {"data": {"root": str(data)}, "width": 4}
    fit(ToyStage(), ToyData(), toy_cfg(total_steps=4, val_every=2), run, val_batches=val_batches(), config=config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(ToyStage(), ToyData(), toy_cfg(total_steps=6, val_every=2), run, val_batches=val_batches(),
            config={**config, "note": "extended"})
    resumed = [str(w.message) for w in caught if "changed config" in str(w.message)]
    assert resumed and resumed[0].startswith("resuming $ISFR_RUNS_DIR/small/toy/checkpoints/step_")
    records = {f.name: f.read_text() for f in run.iterdir() if f.is_file()}
    assert {"done.json", "config.json", "train_log.csv", "val_log.csv"} <= set(records)
    for name, text in records.items():
        assert str(tmp_path) not in text, f"{name} names an absolute path"
    done = json.loads(records["done.json"])
    assert (done["best_checkpoint"], done["last_checkpoint"]) == ("checkpoints/best.pt", "checkpoints/last.pt")
    assert done_checkpoint(run) == run / "checkpoints" / "best.pt" and done_checkpoint(run).is_file()
    assert done_checkpoint(run, "last_checkpoint") == run / "checkpoints" / "last.pt"
    assert json.loads(records["config.json"])["config"]["data"]["root"] == "$ISFR_DATA_ROOT"


def test_done_checkpoint_reads_an_absolute_entry_as_written(tmp_path: Path) -> None:
    """done.json files written before checkpoints were named relative to the run folder still resolve."""
    import json

    from isfr.training import done_checkpoint

    elsewhere = tmp_path / "old_runs" / "sfr" / "checkpoints" / "best.pt"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "done.json").write_text(json.dumps({"best_checkpoint": str(elsewhere),
                                                            "last_checkpoint": None}))
    assert done_checkpoint(tmp_path / "run") == elsewhere
    assert done_checkpoint(tmp_path / "run", "last_checkpoint") is None
    assert done_checkpoint(tmp_path / "absent") is None
