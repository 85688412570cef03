"""One training loop for every stage: logging, checkpoints, validation, exact resume, AMP, DDP.

A *stage* (see :class:`Stage`) owns its modules, optimizers and the maths of one
step; :func:`fit` owns everything else. Steps are numbered from 1; a checkpoint
``step_0000100.pt`` holds the state after 100 completed steps.

Data order is a pure function of ``(seed, step)`` (:class:`StepBatchSampler`), so a
resumed run draws exactly the batches an uninterrupted run would have drawn, and
the RNG states saved in the checkpoint make everything else identical too.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import shutil
import time
import warnings
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from isfr.training import distributed as D
from isfr.training.progress import active as active_progress
from isfr.training.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    check_checkpoint,
    config_diff,
    find_latest_checkpoint,
    make_checkpoint,
    restore_rng_state,
    to_plain,
)
from isfr.paths import portable, portable_text, shown_path
from isfr.utils import atomic_open, atomic_write_json, autocast, git_commit, hardware, resolve_amp, seed_everything

__all__ = [
    "AmpMode",
    "Stage",
    "StepContext",
    "TrainLoopConfig",
    "FitResult",
    "NonFiniteLossError",
    "StepBatchSampler",
    "fit",
    "is_finished",
]

AmpMode = Literal["auto", "none", "bf16", "fp16"]  # "auto": isfr.utils.resolve_amp decides per device
DataFactory = Callable[[int], Iterable[Any]]
ValBatches = Iterable[Any] | Callable[[], Iterable[Any]]


# --------------------------------------------------------------------------- config / results


@dataclass
class TrainLoopConfig:
    """Stage-independent loop settings (paper section 4.1: batch size 1; optimisers live in the stage)."""

    total_steps: int
    batch_size: int = 1  # per process; the global batch is batch_size * world_size
    seed: int = 0
    log_every: int = 50  # CSV/TensorBoard row = mean of the last log_every steps
    ckpt_every: int = 1000
    ckpt_every_min: float | None = None  # also checkpoint when this many minutes passed since the last save
    val_every: int | None = None  # validate every N steps and at the final step (needs val_batches)
    keep_last: int = 2  # step_*.pt files kept (last.pt / best.pt come on top)
    amp: AmpMode = "none"  # bf16: autocast on CPU or CUDA; fp16: CUDA autocast + GradScaler; auto: fp16 on CUDA,
    # bf16 on a CPU that runs it in hardware, else fp32 (isfr.utils.resolve_amp; config.json records which)
    device: str = "auto"  # "auto" = cuda:<local_rank> if available, else cpu
    num_workers: int = 0
    sample_seeds: bool = False  # dataset receives (index, seed) keys instead of index (see StepBatchSampler)
    max_steps_this_call: int | None = None  # train at most this many steps, checkpoint, return
    time_budget_s: float | None = None  # stop (with a checkpoint) after the step that exceeds this
    progress: bool = True  # tqdm bar (rank 0)
    tensorboard: bool = True  # also log to <run_dir>/tb when the tensorboard package is installed
    deterministic: bool = False  # torch.use_deterministic_algorithms
    find_unused_parameters: bool = True  # DDP option; True is safe for GAN steps that freeze D
    lr_decay: tuple[int, float] | None = None  # (step, factor): from that step on every optimiser runs at the
    # stage's lr x factor (a step decay; set again at every step, so a resumed run follows it too)

    def __post_init__(self) -> None:
        for name in ("total_steps", "batch_size", "log_every", "ckpt_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainLoopConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"TrainLoopConfig.seed must be >= 0, got {self.seed}")
        if self.amp not in ("auto", "none", "bf16", "fp16"):
            raise ValueError(f"TrainLoopConfig.amp must be 'auto', 'none', 'bf16' or 'fp16', got {self.amp!r}")
        if self.max_steps_this_call is not None and self.max_steps_this_call < 1:
            raise ValueError("TrainLoopConfig.max_steps_this_call must be >= 1 or None")
        if self.lr_decay is not None:
            at, factor = self.lr_decay
            if at < 1 or not factor > 0:
                raise ValueError(f"TrainLoopConfig.lr_decay must be (step >= 1, factor > 0), got {self.lr_decay!r}")


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


class RunBusyError(RuntimeError):
    """Another process holds the run folder's lock (:func:`fit` never trains one run from two processes)."""


class NonFiniteLossError(RuntimeError):
    """A loss became NaN/inf; the message names the step, the term and the last good checkpoint."""


# --------------------------------------------------------------------------- stage interface


class StepContext:
    """Handed to ``Stage.train_step`` / ``Stage.validate``: step number, nets, AMP and backward helpers."""

    def __init__(
        self,
        nets: Mapping[str, nn.Module],
        device: torch.device,
        amp: AmpMode = "none",
        scalers: Mapping[str, torch.amp.GradScaler] | None = None,
        optimizer_names: Mapping[int, str] | None = None,
        dist: D.DistInfo | None = None,
    ) -> None:
        self.step = 0  #: number of the step being run (1-based)
        self.nets = dict(nets)  #: call these (DDP-wrapped when trained under torchrun)
        self.device = device
        self.amp = resolve_amp(amp, device) if amp == "auto" else amp  # "auto" -> what this device runs fastest
        # (an explicit mode is checked, with its warning, once per run by fit)
        self.dist = dist or D.DistInfo()
        self._scalers = dict(scalers or {})
        self._opt_names = dict(optimizer_names or {})

    def autocast(self) -> AbstractContextManager:
        """Autocast context for forward passes (no-op when ``amp="none"``)."""
        return autocast(self.device, self.amp)

    def backward(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, *, max_grad_norm: float | None = None
    ) -> None:
        """Zero ``optimizer``'s grads, backprop ``loss`` (scaled under fp16), optionally clip, step."""
        optimizer.zero_grad(set_to_none=True)
        scaler = self._scalers.get(self._opt_names.get(id(optimizer), ""))
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if scaler is None:
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            return
        scaler.scale(loss).backward()
        if max_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        scaler.step(optimizer)
        scaler.update()


@runtime_checkable
class Stage(Protocol):
    """One training stage. Required members below; optional ones, used when present:

    * ``val_mode: Literal["min", "max"]`` (default ``"min"``): whether a lower or
      higher ``val_score`` is better;
    * ``validate(batches, ctx) -> dict[str, float]``: must contain ``"val_score"``;
      runs on rank 0 only, under ``torch.no_grad()`` with every module in eval mode
      (modes and RNG states are restored afterwards, so validation never changes
      the training sequence); ``ctx.nets`` are the raw modules here;
    * ``extra_state() -> Any`` / ``load_extra_state(state)``: anything else to
      checkpoint (LR schedulers, EMA, ...), as tensors and plain Python values.
    """

    name: str

    def modules(self) -> dict[str, nn.Module]:
        """Every module to checkpoint, trained and frozen (same objects on every call)."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name (same objects on every call)."""
        ...

    def train_step(self, batch: Any, ctx: StepContext) -> Mapping[str, torch.Tensor | float]:
        """One optimisation step (e.g. D then G) via ``ctx.nets`` / ``ctx.autocast()`` /
        ``ctx.backward(loss, opt)``; returns loss scalars (tensors are fine: one sync per step)."""
        ...


# --------------------------------------------------------------------------- data order


def _mix(*words: int) -> int:
    """A well-mixed 63-bit seed from non-negative integers."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0] >> np.uint64(1))


class StepBatchSampler(Sampler[list[Any]]):
    """Batch of step ``s`` (0-based) = a pure function of ``(seed, s, rank)``: resumable exactly.

    Epoch ``e`` is the permutation ``randperm(n)`` of a ``torch.Generator`` seeded
    from ``(seed, e)``; each step takes the next ``batch_size * world_size``
    indices (an incomplete tail is dropped) and rank ``r`` keeps every
    ``world_size``-th of them from position ``r``, so ranks draw disjoint samples.
    With ``with_seeds`` each item is ``(index, sample_seed)``, the seed mixing
    ``(seed, epoch, index)``: datasets draw per-sample randomness (mask choice,
    flips) from it instead of the worker's RNG, so it too survives a resume.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        stop_step: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        with_seeds: bool = False,
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.with_seeds = rank, world_size, with_seeds
        self.global_batch = batch_size * world_size
        self.steps_per_epoch = n // self.global_batch
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"dataset of {n} samples is smaller than one global batch "
                f"({batch_size} x {world_size} processes); lower batch_size"
            )
        self.start_step, self.stop_step = start_step, stop_step
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm

    def batch(self, step: int) -> list[Any]:
        """This rank's items for 0-based step ``step``."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        chunk = self._permutation(epoch)[pos * self.global_batch : (pos + 1) * self.global_batch]
        idx = chunk[self.rank :: self.world_size].tolist()
        return [(i, _mix(self.seed, epoch, i) & 0xFFFFFFFF) for i in idx] if self.with_seeds else idx

    def epoch_of(self, steps_done: int) -> float:
        """Fractional epochs after ``steps_done`` steps."""
        return steps_done / self.steps_per_epoch

    def __iter__(self) -> Iterator[list[Any]]:
        step = self.start_step
        while self.stop_step is None or step < self.stop_step:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:
        if self.stop_step is None:
            raise TypeError("StepBatchSampler without stop_step is infinite")
        return max(0, self.stop_step - self.start_step)

    def state_dict(self) -> dict[str, int]:
        """What must match on resume for the data sequence to continue identically."""
        return {"n": self.n, "batch_size": self.batch_size, "seed": self.seed,
                "world_size": self.world_size, "with_seeds": int(self.with_seeds)}


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


# --------------------------------------------------------------------------- logging


class _CsvLog:
    """Append-only CSV keyed by ``step``; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, keep_upto: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                fields = list(reader.fieldnames or [])
                rows = [r for r in reader if _valid_row(r, fields, keep_upto)]
            self.fields = fields or None
            self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        if not self.fields:
            self.path.unlink(missing_ok=True)
            return
        with atomic_open(self.path, "w", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None or not set(row) <= set(self.fields):
            old: list[dict[str, Any]] = []
            if self.fields is not None:
                with open(self.path, newline="", encoding="utf-8") as f:
                    old = list(csv.DictReader(f))
            self.fields = (self.fields or []) + [k for k in row if k not in (self.fields or [])]
            self._rewrite(old + [row])
            return
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, fieldnames=self.fields, lineterminator="\n").writerow(row)


def _valid_row(row: Mapping[str, Any], fields: list[str], keep_upto: int) -> bool:
    if any(row.get(k) is None for k in fields) or None in row:  # truncated / malformed line
        return False
    try:
        return int(row["step"]) <= keep_upto
    except (KeyError, TypeError, ValueError):
        return False


def _tensorboard(log_dir: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: optional
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


# --------------------------------------------------------------------------- run-dir helpers


def is_finished(run_dir: str | Path, total_steps: int | None = None) -> bool:
    """True if ``run_dir/done.json`` says the run completed (at least ``total_steps`` steps)."""
    done = read_done(Path(run_dir))
    return done is not None and (total_steps is None or int(done.get("total_steps", -1)) >= total_steps)


def read_done(run_dir: Path) -> dict[str, Any] | None:
    return _json_or_none(run_dir / "done.json")


def done_checkpoint(run_dir: str | Path, key: str = "best_checkpoint") -> Path | None:
    """The checkpoint ``done.json`` names under ``key`` ("best_checkpoint" | "last_checkpoint"), or None: a
    relative entry (what :func:`fit` writes) is relative to the run folder; an absolute one (written before
    2026-12-06) is taken as it is."""
    entry = (read_done(Path(run_dir)) or {}).get(key)
    if not entry:
        return None
    p = Path(entry)
    return p if p.is_absolute() else Path(run_dir) / p


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


_RUN_FILES = ("done.json", "config.json", "train_log.csv", "val_log.csv")
_RUN_DIRS = ("checkpoints", "tb")


def _clear_run(run_dir: Path) -> None:
    """Remove what fit() writes in ``run_dir`` (nothing else)."""
    for name in _RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in _RUN_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)


def _device(cfg: TrainLoopConfig, info: D.DistInfo) -> torch.device:
    device = D.default_device(info) if cfg.device == "auto" else torch.device(cfg.device)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs CUDA (GradScaler); use amp='bf16' on CPU")
    if cfg.amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bf16; use amp='fp16'")
    return device


def _set_modes(flags: Mapping[nn.Module, bool]) -> None:
    for m, training in flags.items():
        m.training = training


# --------------------------------------------------------------------------- fit


class _Run:
    """State of one fit() call (kept out of fit() to keep each piece small)."""

    def __init__(self, stage: Stage, cfg: TrainLoopConfig, run_dir: Path, config: Any, preset: str | None):
        self.stage, self.cfg, self.run_dir = stage, cfg, run_dir
        self.config, self.preset = config, preset
        self.info = D.dist_info()
        self.device = _device(cfg, self.info)
        self.amp = resolve_amp(cfg.amp, self.device)  # what the steps run at ("auto" resolved; config.json)
        self.modules = stage.modules()
        self.optimizers = stage.optimizers()
        self.base_lr = {k: [g["lr"] for g in o.param_groups] for k, o in self.optimizers.items()}  # before resume
        for m in self.modules.values():
            m.to(self.device)
        self.scalers = (
            {k: torch.amp.GradScaler("cuda") for k in self.optimizers} if self.amp == "fp16" else {}
        )
        self.mgr = CheckpointManager(run_dir / "checkpoints", cfg.keep_last)
        self.val_mode = getattr(stage, "val_mode", "min")
        if self.val_mode not in ("min", "max"):
            raise ValueError(f"stage {stage.name!r}: val_mode must be 'min' or 'max', got {self.val_mode!r}")
        self.step = 0
        self.best: dict[str, Any] | None = None
        self.window: dict[str, float] = {}
        self.window_n = 0
        self.last_ckpt: Path | None = None
        self.last_val: dict[str, float] = {}
        self.sampler: StepBatchSampler | None = None

    def set_lr(self, factor: float) -> None:
        """Every optimiser's lr = the stage's own lr (at construction) x ``factor``."""
        for k, o in self.optimizers.items():
            for g, lr in zip(o.param_groups, self.base_lr[k]):
                g["lr"] = lr * factor

    # -- checkpoint state
    def restore(self, ckpt: dict[str, Any]) -> None:
        check_checkpoint(ckpt, expected_stage=self.stage.name, expected_preset=self.preset,
                         modules=self.modules, config=self.config)
        where = ckpt["path"]
        if set(ckpt["optimizers"]) != set(self.optimizers):
            raise ValueError(f"{where}: optimizers {sorted(ckpt['optimizers'])} != stage's {sorted(self.optimizers)}")
        for k, m in self.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in self.scalers.items():
            if k in ckpt.get("scalers", {}):
                s.load_state_dict(ckpt["scalers"][k])
        if hasattr(self.stage, "load_extra_state"):
            self.stage.load_extra_state(ckpt.get("extra"))
        self.step = int(ckpt["step"])
        self.best = ckpt.get("best")
        self.last_val = dict((ckpt.get("metrics") or {}).get("val", {}))
        win = (ckpt.get("metrics") or {}).get("window", {})
        self.window, self.window_n = dict(win.get("sums", {})), int(win.get("n", 0))
        rngs = ckpt.get("rng") or []
        if len(rngs) == self.info.world_size:
            restore_rng_state(rngs[self.info.rank])
        else:
            warnings.warn(f"{shown_path(where)}: saved by {len(rngs)} process(es), resumed by "
                          f"{self.info.world_size}; RNG streams are reseeded", stacklevel=3)
            seed_everything(_mix(self.cfg.seed, self.info.rank, self.step) % 2**31)
        diffs = config_diff(ckpt.get("config"), self.config) if self.config is not None else []
        if diffs:
            warnings.warn(f"resuming {shown_path(where)} with a changed config:\n  "
                          + "\n  ".join(portable_text(d) for d in diffs), stacklevel=3)
        self.last_ckpt = Path(where)

    def state(self, losses: Mapping[str, float], rng: list[dict[str, Any]]) -> dict[str, Any]:
        return make_checkpoint(
            stage=self.stage.name, preset=self.preset, step=self.step, modules=self.modules,
            optimizers=self.optimizers, scalers=self.scalers,
            extra=self.stage.extra_state() if hasattr(self.stage, "extra_state") else None,
            rng=rng, data={"sampler": self.sampler.state_dict() if self.sampler else None, "step": self.step},
            config=self.config, loop_config=self.cfg, best=self.best,
            metrics={"losses": dict(losses), "val": self.last_val,
                     "window": {"sums": self.window, "n": self.window_n}},
        )

    def save(self, losses: Mapping[str, float], *, periodic: bool, is_best: bool) -> None:
        """Checkpoint on rank 0 (all ranks must call: RNG gather + barrier)."""
        self.check_replicas()
        rng = D.all_gather_objects(capture_rng_state())  # one RNG state per rank
        if self.info.is_main:
            state = self.state(losses, rng)
            if periodic:
                self.last_ckpt = self.mgr.save(state, best=is_best)
            elif is_best:
                self.mgr.save_best(state)
        D.barrier()

    def check_replicas(self) -> None:
        """Under DDP, fail loudly if trained parameters differ between ranks."""
        if not self.info.enabled:
            return
        sums = {k: float(sum(p.detach().double().sum() for p in m.parameters()))
                for k, m in self.modules.items() if D.has_trainable_params(m)}
        everyone = D.all_gather_objects(sums)
        for k, v in sums.items():
            if any(abs(o[k] - v) > 1e-6 * max(1.0, abs(v)) for o in everyone):
                raise RuntimeError(
                    f"stage {self.stage.name!r}: parameters of {k!r} differ across ranks; "
                    f"train_step must call ctx.nets[{k!r}] (the DDP wrapper), not the raw module"
                )

    # -- data
    def batches(self, data: Any, stop: int, collate_fn: Callable | None) -> Iterator[Any]:
        if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            self.sampler = StepBatchSampler(
                len(data), self.cfg.batch_size, self.cfg.seed, self.step, stop,
                self.info.rank, self.info.world_size, self.cfg.sample_seeds,
            )
            loader = DataLoader(
                data, batch_sampler=self.sampler, num_workers=self.cfg.num_workers, collate_fn=collate_fn,
                pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(self.cfg.seed),  # keeps global RNG untouched
            )
            return iter(loader)
        if callable(data):
            return iter(data(self.step))
        raise TypeError("data must be a map-style dataset (__getitem__ + __len__) or a callable "
                        "start_step -> iterable of batches")

    def check_data_position(self, ckpt: dict[str, Any] | None) -> None:
        stored = ((ckpt or {}).get("data") or {}).get("sampler")
        if stored and self.sampler and stored != self.sampler.state_dict():
            warnings.warn(f"data sampler changed since {shown_path(ckpt['path'])} ({stored} -> "
                          f"{self.sampler.state_dict()}): the data order differs from an "
                          f"uninterrupted run", stacklevel=3)

    # -- validation
    def validate(self, val_batches: ValBatches) -> tuple[dict[str, float], bool]:
        metrics: dict[str, float] = {}
        if self.info.is_main:
            flags = {m: m.training for mod in self.modules.values() for m in mod.modules()}
            for mod in self.modules.values():
                mod.eval()
            rng = capture_rng_state()
            ctx = StepContext(self.modules, self.device, self.amp, dist=self.info)
            ctx.step = self.step
            try:
                with torch.no_grad():
                    batches = val_batches() if callable(val_batches) else val_batches
                    metrics = {k: float(v) for k, v in
                               self.stage.validate((_to_device(b, self.device) for b in batches), ctx).items()}
            finally:
                _set_modes(flags)
                restore_rng_state(rng)
            if "val_score" not in metrics:
                raise ValueError(f"stage {self.stage.name!r}: validate() must return a 'val_score' key")
        is_best = False
        if self.info.is_main:
            score = metrics["val_score"]
            old = None if self.best is None else self.best["score"]
            is_best = math.isfinite(score) and (
                old is None or (score < old if self.val_mode == "min" else score > old))
            if is_best:
                self.best = {"score": score, "step": self.step}
        self.last_val = metrics
        is_best = bool(D.broadcast_object(is_best))
        return metrics, is_best


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
    with _run_lock(run_dir) if D.dist_info().is_main else nullcontext():
        return _fit(stage, data, cfg, run_dir, val_batches, config, preset, overwrite, collate_fn)


@contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` (``.<name>.lock`` beside it) while a process trains it:
    two processes on one run would interleave its log and overwrite each other's checkpoints."""
    import fcntl

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.lock"
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(f"{shown_path(run_dir)} is being trained by another process (lock {shown_path(path)}): "
                               "wait for it to "
                               "finish or stop it; never train one run from two processes") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fit(stage: Stage, data: Any, cfg: TrainLoopConfig, run_dir: Path, val_batches: ValBatches | None,
         config: Any, preset: str | None, overwrite: bool, collate_fn: Callable[[list[Any]], Any] | None) -> FitResult:
    run = _Run(stage, cfg, run_dir, config, preset)
    info = run.info
    if info.is_main:
        if overwrite:
            _clear_run(run_dir)
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
            _write_done(run, int(ckpt["step"]), Path(ckpt["path"]))
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
        _tidy_checkpoint_dir(run, ckpt)
        (run_dir / "done.json").unlink(missing_ok=True)
        _write_config(run_dir, stage.name, preset, config, cfg, info.world_size, None if ckpt is None else int(ckpt["step"]),
                      run.amp)
    if val_batches is not None and not hasattr(stage, "validate"):
        raise TypeError(f"stage {stage.name!r} has no validate() but val_batches were given")

    start = run.step
    stop = cfg.total_steps if cfg.max_steps_this_call is None else min(
        cfg.total_steps, start + cfg.max_steps_this_call)
    batches = run.batches(data, stop, collate_fn)
    run.check_data_position(ckpt)
    return _train(run, batches, start, stop, val_batches)


def _write_config(run_dir: Path, stage: str, preset: str | None, config: Any, cfg: TrainLoopConfig,
                  world_size: int, resumed_at: int | None, precision: str) -> None:
    """``config.json``: what the run trains with. A resumed run whose settings changed (an extended schedule,
    say, or the precision "auto" picks on another machine) gets the new ones, and ``history`` says from which
    step, at which commit, what changed."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    new = {"stage": stage, "preset": preset, "config": portable(to_plain(config)),
           "loop_config": portable(to_plain(asdict(cfg))),
           "precision": {"none": "fp32"}.get(precision, precision), "git_commit": git_commit(),
           "world_size": world_size, "hardware": hardware()}
    path = run_dir / "config.json"
    old = _json_or_none(path) if resumed_at is not None else None
    old = portable(old) if old is not None else None  # a record written with absolute paths compares alike
    if old is None:
        atomic_write_json({**new, "started": now}, path)
        return
    changed = [k.split(":")[0] for k in config_diff(old.get("config"), new["config"])]
    changed += ["loop_config." + k.split(":")[0] for k in config_diff(
        {k: v for k, v in (old.get("loop_config") or {}).items() if k not in _PER_CALL},
        {k: v for k, v in new["loop_config"].items() if k not in _PER_CALL})]
    changed += ["precision"] if old.get("precision", new["precision"]) != new["precision"] else []
    if changed:
        history = old.get("history", []) + [{"from_step": resumed_at, "git_commit": new["git_commit"],
                                             "time": now, "changed": changed}]
        atomic_write_json({**new, "started": old.get("started"), "history": history}, path)


#: loop settings that only steer one call (not what the run is): never recorded as a change
_PER_CALL = ("max_steps_this_call", "time_budget_s", "progress", "tensorboard")


def _tidy_checkpoint_dir(run: _Run, ckpt: dict[str, Any] | None) -> None:
    """Drop temp leftovers; set aside step files newer than the resumed one (they were unreadable)."""
    folder = run.mgr.folder
    if not folder.is_dir():
        return
    run.mgr.remove_temp_files()
    resumed = int(ckpt["step"]) if ckpt else 0
    for p in folder.glob("step_*.pt"):
        try:
            s = int(p.stem.split("_")[1])
        except (IndexError, ValueError):
            continue
        if s > resumed:
            p.replace(p.with_name(p.name + ".corrupt"))
            warnings.warn(f"renamed unreadable checkpoint {shown_path(p)} to {p.name}.corrupt", stacklevel=3)


def _in_run(run: _Run, path: Path) -> str:
    """``path`` relative to the run folder (``checkpoints/best.pt``) where it lies inside it (never absolute)."""
    try:
        return Path(path).relative_to(run.run_dir).as_posix()
    except ValueError:
        return shown_path(path)


def _write_done(run: _Run, step: int, last: Path | None) -> None:
    """``done.json``: the run finished; its checkpoints are named relative to the run folder (read them with
    :func:`done_checkpoint`)."""
    atomic_write_json({
        "stage": run.stage.name, "preset": run.preset, "step": step, "total_steps": run.cfg.total_steps,
        "last_checkpoint": _in_run(run, last) if last else None,
        "best_checkpoint": _in_run(run, run.mgr.best_path) if run.mgr.best_path.exists() else None,
        "best": run.best, "git_commit": git_commit(), "hardware": hardware(),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }, run.run_dir / "done.json")


def _train(run: _Run, batches: Iterator[Any], start: int, stop: int, val_batches: ValBatches | None) -> FitResult:
    cfg, info, stage = run.cfg, run.info, run.stage
    nets = D.wrap_ddp(run.modules, run.device, cfg.find_unused_parameters)
    ctx = StepContext(nets, run.device, run.amp, run.scalers,
                      {id(o): k for k, o in run.optimizers.items()}, info)
    main = info.is_main
    train_log = _CsvLog(run.run_dir / "train_log.csv", start) if main else None
    val_log = _CsvLog(run.run_dir / "val_log.csv", start) if main else None
    tb = _tensorboard(run.run_dir / "tb", start + 1 if start else None) if (main and cfg.tensorboard) else None
    overall = active_progress() if main else None  # the bar over every stage of `isfr train --main-only`
    if overall is not None:
        overall.begin(stage.name, start)
    bar = tqdm(total=cfg.total_steps, initial=start, desc=stage.name, disable=not (cfg.progress and main),
               dynamic_ncols=True, position=1 if overall is not None else None, leave=overall is None)
    t0 = last_save = time.monotonic()
    losses: dict[str, float] = {}
    reason: str = "finished"
    try:
        for step in range(start + 1, stop + 1):
            try:
                batch = next(batches)
            except StopIteration:
                raise RuntimeError(f"data ran out before step {step}") from None
            ctx.step = step
            if cfg.lr_decay is not None:
                run.set_lr(cfg.lr_decay[1] if step >= cfg.lr_decay[0] else 1.0)
            out = stage.train_step(_to_device(batch, run.device), ctx)
            now = time.monotonic()
            flags = [float(cfg.time_budget_s is not None and now - t0 > cfg.time_budget_s),
                     float(cfg.ckpt_every_min is not None and now - last_save > 60 * cfg.ckpt_every_min)]
            losses, over_budget, save_due = _reduce(out, flags if main else [0.0, 0.0], run.device, info)
            run.step = step
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteLossError(
                    f"stage {stage.name!r}: non-finite loss at step {step}: "
                    + ", ".join(f"{k}={losses[k]}" for k in bad)
                    + f" (all losses: {losses}); last good checkpoint: "
                    + (shown_path(run.last_ckpt) if run.last_ckpt else "none (no checkpoint saved yet)")
                )
            for k, v in losses.items():
                run.window[k] = run.window.get(k, 0.0) + v
            run.window_n += 1
            bar.update(1)
            if overall is not None:
                overall.advance(stage.name)
            bar.set_postfix({k: _fmt(v) for k, v in losses.items()}, refresh=False)
            if step % cfg.log_every == 0:
                if main:
                    _log_train(run, train_log, tb, t0)
                run.window, run.window_n = {}, 0
            is_best = False
            if val_batches is not None and cfg.val_every and (step % cfg.val_every == 0 or step == cfg.total_steps):
                metrics, is_best = run.validate(val_batches)
                if main:
                    _log_val(run, val_log, tb, metrics, is_best)
            if over_budget and step < stop:
                stop, reason = step, "time_budget"
            periodic = step % cfg.ckpt_every == 0 or bool(save_due) or step == stop
            if periodic or is_best:
                run.save(losses, periodic=periodic, is_best=is_best)
                last_save = time.monotonic()
            if step == stop:
                break
    finally:
        bar.close()
        if tb is not None:
            tb.close()
    finished = run.step >= cfg.total_steps
    if not finished and reason == "finished":
        reason = "max_steps_this_call"
    if main and finished:
        _write_done(run, run.step, run.mgr.last_path)
    D.barrier()
    best = run.best or {}
    return FitResult(run.step, cfg.total_steps, finished, reason,  # type: ignore[arg-type]
                     run.mgr.last_path if run.mgr.last_path.exists() else run.last_ckpt,
                     run.mgr.best_path if run.mgr.best_path.exists() else None,
                     best.get("score"), losses, run.last_val)


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


def _log_train(run: _Run, log: _CsvLog | None, tb: Any, t0: float) -> None:
    means = {k: v / max(1, run.window_n) for k, v in run.window.items()}
    row: dict[str, Any] = {"step": run.step}
    if run.sampler is not None:
        row["epoch"] = round(run.sampler.epoch_of(run.step), 4)
    row["time"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    row["elapsed_s"] = round(time.monotonic() - t0, 2)
    row.update({f"lr_{k}": o.param_groups[0]["lr"] for k, o in run.optimizers.items()})
    row.update(means)
    if log is not None:
        log.write(row)
    if tb is not None:
        for k, v in means.items():
            tb.add_scalar(f"train/{k}", v, run.step)


def _log_val(run: _Run, log: _CsvLog | None, tb: Any, metrics: Mapping[str, float], is_best: bool) -> None:
    row: dict[str, Any] = {"step": run.step, "is_best": int(is_best), **metrics}
    if log is not None:
        log.write(row)
    if tb is not None:
        for k, v in metrics.items():
            tb.add_scalar(f"val/{k}", v, run.step)
