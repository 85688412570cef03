"""What a stage sees of the loop: its settings (:class:`TrainLoopConfig`), the :class:`Stage` protocol (modules, optimizers, one step's maths,
optional validation) and the :class:`StepContext` each step gets (the DDP-wrapped networks, the device,
autocast, and a ``backward`` that handles gradient scaling and accumulation).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

from isfr.core.utils import autocast, resolve_amp
from isfr.training import distributed as D

AmpMode = Literal["auto", "none", "bf16", "fp16"]  # "auto": isfr.core.utils.resolve_amp decides per device


DataFactory = Callable[[int], Iterable[Any]]


ValBatches = Iterable[Any] | Callable[[], Iterable[Any]]


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
    # bf16 on a CPU that runs it in hardware, else fp32 (isfr.core.utils.resolve_amp; config.json records which)
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
