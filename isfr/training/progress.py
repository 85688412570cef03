"""One progress bar over a chain of training runs (``isfr train --main-only``: StyleGAN2, pSp, IFR, SFR), whose
estimate of the time left covers every stage still to come, not only the current one.

The bar counts work in estimated seconds: each stage's steps weighed by :data:`STEP_COST`, so that tqdm's
rate (measured as it runs) turns the work left into a time left. The loop reports to the bar that is
active (:func:`active`), set with ``with OverallProgress(...)``.
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from tqdm.auto import tqdm

#: seconds per step of each stage of the ``small`` preset, fp32 on a 2-core AMD EPYC with AVX2, one thread
#: (``figures/small/training_record.md``): only their ratios matter, the bar measures the speed itself.
STEP_COST: dict[str, float] = {"stylegan": 3.12, "psp": 1.06, "ifr": 1.70, "sfr": 2.16}

_ACTIVE: ContextVar["OverallProgress | None"] = ContextVar("isfr_overall_progress", default=None)


def active() -> "OverallProgress | None":
    """The bar of the enclosing ``with OverallProgress(...)``, if any (the training loop reports to it)."""
    return _ACTIVE.get()


class OverallProgress:
    """``plan``: ``(stage, steps already done, total steps)`` per stage, in training order."""

    def __init__(self, plan: list[tuple[str, int, int]], desc: str = "all stages", enabled: bool = True, **tqdm_kw: Any):
        self.cost = {name: round(100 * STEP_COST.get(name, 1.0)) for name, _, _ in plan}  # integer units: no drift
        self.done = {name: min(done, total) for name, done, total in plan}
        self.total_steps = {name: total for name, _, total in plan}
        work = sum(self.cost[n] * t for n, t in self.total_steps.items())
        self.bar = tqdm(total=work, initial=self.work_done(), desc=desc, disable=not enabled, position=0,
                        bar_format="{desc}: {percentage:3.0f}% |{bar}| {elapsed} so far, about {remaining} left",
                        **tqdm_kw)
        self._token = None

    def work_done(self) -> float:
        return sum(self.cost[n] * d for n, d in self.done.items())

    def begin(self, stage: str, start: int) -> None:
        """A stage (re)starts at step ``start``: the steps before it count as done."""
        if stage in self.done and start > self.done[stage]:
            self.bar.update(self.cost[stage] * (start - self.done[stage]))
            self.done[stage] = start
        if stage in self.done:
            self.bar.set_description_str(f"all stages (now {stage})")

    def advance(self, stage: str) -> None:
        if stage in self.done and self.done[stage] < self.total_steps[stage]:
            self.done[stage] += 1
            self.bar.update(self.cost[stage])

    def __enter__(self) -> "OverallProgress":
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.reset(self._token)
        self.bar.close()
