"""The order of the training data, a pure function of ``(seed, step)`` (:class:`StepBatchSampler`): a
resumed run draws exactly the batches an uninterrupted run would have drawn, and the RNG states saved in
the checkpoint make everything else identical too.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Sampler


def mix_seed(*words: int) -> int:
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
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm

    def batch(self, step: int) -> list[Any]:
        """This rank's items for 0-based step ``step``."""
        epoch, pos = divmod(step, self.steps_per_epoch)
        chunk = self._permutation(epoch)[pos * self.global_batch : (pos + 1) * self.global_batch]
        idx = chunk[self.rank :: self.world_size].tolist()
        return [(i, mix_seed(self.seed, epoch, i) & 0xFFFFFFFF) for i in idx] if self.with_seeds else idx

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


def to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
