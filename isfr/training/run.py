"""The state of one :func:`~isfr.training.loop.fit` call (:class:`Run`): the stage's modules on their device,
optimizers, scalers and checkpoint manager, the step, the best validation score and the loss window; how it is
restored from a checkpoint, saved (every rank), fed and validated.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from isfr.core.paths import portable_text, shown_path
from isfr.core.utils import resolve_amp, seed_everything
from isfr.training import distributed as D
from isfr.training.checkpoint import (
    CheckpointManager,
    capture_rng_state,
    check_checkpoint,
    config_diff,
    make_checkpoint,
    restore_rng_state,
)
from isfr.training.context import Stage, StepContext, TrainLoopConfig, ValBatches
from isfr.training.sampler import StepBatchSampler, mix_seed, to_device


def pick_device(cfg: TrainLoopConfig, info: D.DistInfo) -> torch.device:
    device = D.default_device(info) if cfg.device == "auto" else torch.device(cfg.device)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs CUDA (GradScaler); use amp='bf16' on CPU")
    if cfg.amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bf16; use amp='fp16'")
    return device


def set_modes(flags: Mapping[nn.Module, bool]) -> None:
    for m, training in flags.items():
        m.training = training


class Run:
    """State of one fit() call (kept out of fit() to keep each piece small)."""

    def __init__(self, stage: Stage, cfg: TrainLoopConfig, run_dir: Path, config: Any, preset: str | None):
        self.stage, self.cfg, self.run_dir = stage, cfg, run_dir
        self.config, self.preset = config, preset
        self.info = D.dist_info()
        self.device = pick_device(cfg, self.info)
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
            seed_everything(mix_seed(self.cfg.seed, self.info.rank, self.step) % 2**31)
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
                               self.stage.validate((to_device(b, self.device) for b in batches), ctx).items()}
            finally:
                set_modes(flags)
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
