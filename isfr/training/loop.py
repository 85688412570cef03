"""One training loop for every stage: :func:`fit` trains a :class:`~isfr.training.context.Stage` to its
step count, with exact resume, validation, AMP and DDP; :func:`train_step` is one step of it, whole.

A stage owns its modules, optimizers and the maths of one step; the loop owns everything else, in modules
of their own: the order of the data (:mod:`~isfr.training.sampler`), the state of a run and its checkpoints
(:mod:`~isfr.training.run`), the logs (:mod:`~isfr.training.logs`), the run folder's records
(:mod:`~isfr.training.rundir`), the lock against a second process (:mod:`~isfr.training.lock`) and the
tidying of a resumed run's checkpoints (:mod:`~isfr.training.tidy`). Steps are numbered from 1; a checkpoint
``step_0000100.pt`` holds the state after 100 completed steps.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import torch
from tqdm.auto import tqdm

from isfr.core.paths import shown_path
from isfr.core.utils import seed_everything
from isfr.training import distributed as D
from isfr.training.checkpoint import check_checkpoint, find_latest_checkpoint
from isfr.training.context import Stage, StepContext, TrainLoopConfig, ValBatches
from isfr.training.lock import run_lock
from isfr.training.logs import RunLogs, fmt_loss
from isfr.training.progress import active as active_progress
from isfr.training.run import Run
from isfr.training.rundir import clear_run, read_done, write_config, write_done
from isfr.training.sampler import to_device
from isfr.training.tidy import tidy_checkpoint_dir

__all__ = ["FitResult", "NonFiniteLossError", "TrainLoopConfig", "fit", "train_step"]


@dataclass
class FitResult:
    """What :func:`fit` did."""

    step: int  # completed steps
    total_steps: int
    finished: bool  # step >= total_steps (done.json written)
    stop_reason: Literal["finished", "already_done", "max_steps_this_call", "time_budget"]
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    best_score: float | None
    losses: dict[str, float] = field(default_factory=dict)  # last step's
    val: dict[str, float] = field(default_factory=dict)  # last validation's


class NonFiniteLossError(RuntimeError):
    """A loss became NaN/inf; the message names the step, the term and the last good checkpoint."""


def fit(
    stage: Stage,
    data: Any,
    cfg: TrainLoopConfig,
    run_dir: str | Path,
    *,
    val_batches: ValBatches | None = None,
    config: Any = None,
    preset: str | None = None,
    overwrite: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> FitResult:
    """Train ``stage`` to ``cfg.total_steps``, resuming from ``run_dir`` if it holds a checkpoint.

    ``data``: a map-style dataset (order drawn by :class:`StepBatchSampler`; exact
    resume) or a callable ``start_step -> iterable of batches`` (continuing after
    ``start_step`` completed steps is then the callable's job; under DDP it must
    shard by rank). ``val_batches``: batches (or a callable returning them) passed to
    ``stage.validate`` every ``cfg.val_every`` steps and at the last step; the best
    ``val_score`` is kept as ``best.pt``. ``config`` (dataclass or dict) and
    ``preset`` are stored in checkpoints and checked on resume. If ``run_dir/done.json``
    says the run is complete, the final weights are loaded into the stage's modules
    and nothing is trained, unless ``overwrite=True``, which deletes what earlier
    fit() calls wrote in ``run_dir`` and starts again.

    Writes (rank 0): ``checkpoints/``, ``train_log.csv``, ``val_log.csv``,
    ``config.json``, ``tb/`` (if tensorboard is installed), ``done.json``.
    Raises :class:`NonFiniteLossError` when a loss becomes NaN/inf.
    """
    if not isinstance(stage, Stage):
        raise TypeError(f"{type(stage).__name__} is not a Stage: it needs name, modules(), optimizers(), train_step()")
    run_dir = Path(run_dir)
    with run_lock(run_dir) if D.dist_info().is_main else nullcontext():
        return _fit(stage, data, cfg, run_dir, val_batches, config, preset, overwrite, collate_fn)


def _fit(stage: Stage, data: Any, cfg: TrainLoopConfig, run_dir: Path, val_batches: ValBatches | None,
         config: Any, preset: str | None, overwrite: bool, collate_fn: Callable[[list[Any]], Any] | None) -> FitResult:
    run = Run(stage, cfg, run_dir, config, preset)
    info = run.info
    if info.is_main:
        if overwrite:
            clear_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    D.barrier()

    ckpt = find_latest_checkpoint(run.mgr.folder)
    done = read_done(run_dir)
    if ckpt is not None and int(ckpt["step"]) >= cfg.total_steps:
        check_checkpoint(ckpt, expected_stage=stage.name, expected_preset=preset,
                         modules=run.modules, config=config)
        for k, m in run.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        if info.is_main and done is None:
            write_done(run, int(ckpt["step"]), Path(ckpt["path"]))
        D.barrier()
        best = ckpt.get("best") or {}
        return FitResult(int(ckpt["step"]), cfg.total_steps, True, "already_done", Path(ckpt["path"]),
                         run.mgr.best_path if run.mgr.best_path.exists() else None, best.get("score"),
                         dict((ckpt.get("metrics") or {}).get("losses", {})),
                         dict((ckpt.get("metrics") or {}).get("val", {})))

    seed_everything(cfg.seed + info.rank, cfg.deterministic)
    if ckpt is not None:
        run.restore(ckpt)  # restores the RNG states saved with it
    if info.is_main:
        tidy_checkpoint_dir(run, ckpt)
        (run_dir / "done.json").unlink(missing_ok=True)
        write_config(run_dir, stage.name, preset, config, cfg, info.world_size, None if ckpt is None else int(ckpt["step"]),
                      run.amp)
    if val_batches is not None and not hasattr(stage, "validate"):
        raise TypeError(f"stage {stage.name!r} has no validate() but val_batches were given")

    start = run.step
    stop = cfg.total_steps if cfg.max_steps_this_call is None else min(
        cfg.total_steps, start + cfg.max_steps_this_call)
    batches = run.batches(data, stop, collate_fn)
    run.check_data_position(ckpt)
    return _train(run, batches, start, stop, val_batches)


@dataclass
class _Clock:
    """When this call started and when it last saved (``time_budget_s``, ``ckpt_every_min``)."""

    t0: float
    last_save: float


def _train(run: Run, batches: Iterator[Any], start: int, stop: int, val_batches: ValBatches | None) -> FitResult:
    cfg, main, name = run.cfg, run.info.is_main, run.stage.name
    nets = D.wrap_ddp(run.modules, run.device, cfg.find_unused_parameters)
    ctx = StepContext(nets, run.device, run.amp, run.scalers, {id(o): k for k, o in run.optimizers.items()}, run.info)
    logs = RunLogs(run.run_dir, start, main, cfg.tensorboard)
    overall = active_progress() if main else None  # the bar over every stage of `isfr train --main-only`
    if overall is not None:
        overall.begin(name, start)
    bar = tqdm(total=cfg.total_steps, initial=start, desc=name, disable=not (cfg.progress and main),
               dynamic_ncols=True, position=1 if overall is not None else None, leave=overall is None)
    clock = _Clock(time.monotonic(), time.monotonic())
    losses: dict[str, float] = {}
    reason: str = "finished"
    try:
        for step in range(start + 1, stop + 1):
            try:
                batch = next(batches)
            except StopIteration:
                raise RuntimeError(f"data ran out before step {step}") from None
            losses, over_budget = train_step(run, ctx, batch, step, stop, logs, clock, val_batches)
            bar.update(1)
            bar.set_postfix({k: fmt_loss(v) for k, v in losses.items()}, refresh=False)
            if overall is not None:
                overall.advance(name)
            if over_budget and step < stop:
                reason = "time_budget"
                break
    finally:
        bar.close()
        logs.close()
    finished = run.step >= cfg.total_steps
    if not finished and reason == "finished":
        reason = "max_steps_this_call"
    if main and finished:
        write_done(run, run.step, run.mgr.last_path)
    D.barrier()
    best = run.best or {}
    return FitResult(run.step, cfg.total_steps, finished, reason,  # type: ignore[arg-type]
                     run.mgr.last_path if run.mgr.last_path.exists() else run.last_ckpt,
                     run.mgr.best_path if run.mgr.best_path.exists() else None,
                     best.get("score"), losses, run.last_val)


def train_step(run: Run, ctx: StepContext, batch: Any, step: int, stop: int, logs: RunLogs, clock: _Clock,
               val_batches: ValBatches | None) -> tuple[dict[str, float], bool]:
    """Step ``step`` of ``run``, whole: the learning rate, the stage's maths on ``batch``, the losses averaged
    over processes and checked, the loss window logged every ``log_every`` steps, validation every
    ``val_every`` steps, and a checkpoint when one is due (every ``ckpt_every`` steps, ``ckpt_every_min``
    minutes, a new best, the last step of the call). Returns the losses and whether the time budget is spent
    (the call then ends after this step, checkpointed)."""
    cfg, main = run.cfg, run.info.is_main
    ctx.step = step
    if cfg.lr_decay is not None:
        run.set_lr(cfg.lr_decay[1] if step >= cfg.lr_decay[0] else 1.0)
    out = run.stage.train_step(to_device(batch, run.device), ctx)

    now = time.monotonic()  # rank 0's clock decides for every process (sent with the losses)
    flags = [float(cfg.time_budget_s is not None and now - clock.t0 > cfg.time_budget_s),
             float(cfg.ckpt_every_min is not None and now - clock.last_save > 60 * cfg.ckpt_every_min)]
    losses, over_budget, save_due = _reduce(out, flags if main else [0.0, 0.0], run.device, run.info)
    run.step = step
    _check_finite(run, losses)

    for k, v in losses.items():
        run.window[k] = run.window.get(k, 0.0) + v
    run.window_n += 1
    if step % cfg.log_every == 0:
        if main:
            logs.train(run, clock.t0)
        run.window, run.window_n = {}, 0

    is_best = False
    if val_batches is not None and cfg.val_every and (step % cfg.val_every == 0 or step == cfg.total_steps):
        metrics, is_best = run.validate(val_batches)
        if main:
            logs.val(run, metrics, is_best)

    periodic = step % cfg.ckpt_every == 0 or save_due or over_budget or step == stop
    if periodic or is_best:
        run.save(losses, periodic=periodic, is_best=is_best)
        clock.last_save = time.monotonic()
    return losses, over_budget


def _check_finite(run: Run, losses: Mapping[str, float]) -> None:
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLossError(
            f"stage {run.stage.name!r}: non-finite loss at step {run.step}: "
            + ", ".join(f"{k}={losses[k]}" for k in bad)
            + f" (all losses: {dict(losses)}); last good checkpoint: "
            + (shown_path(run.last_ckpt) if run.last_ckpt else "none (no checkpoint saved yet)")
        )


def _reduce(
    out: Mapping[str, torch.Tensor | float], flags: list[float], device: torch.device, info: D.DistInfo
) -> tuple[dict[str, float], bool, bool]:
    """Loss scalars averaged over ranks + rank 0's stop/save flags, with one device sync."""
    keys = sorted(out)
    vals = [out[k].detach().float().reshape(()).to(device) if isinstance(out[k], torch.Tensor)
            else torch.tensor(float(out[k]), device=device) for k in keys]
    vec = torch.stack(vals + [torch.tensor(f, device=device) for f in flags]).double()
    D.all_reduce_sum(vec)
    nums = vec.cpu().tolist()
    losses = {k: nums[i] / info.world_size for i, k in enumerate(keys)}
    return losses, nums[-2] > 0, nums[-1] > 0
