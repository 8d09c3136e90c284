"""Arm means with 95% intervals, and each arm's difference from the baseline paired by seed.

Every arm trains with the same seeds, so seed s of two arms shares its initialisation and data order
scheme; the per-seed difference removes that shared noise and its t interval is the honest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slm_curator.evaluate.stats import mean_interval


@dataclass(frozen=True)
class ArmStat:
    arm: str
    metric: str
    seeds: int
    mean: float
    low: float
    high: float
    diff: float | None  # arm minus baseline, mean over the seeds both ran
    diff_low: float | None
    diff_high: float | None

    @property
    def excludes_zero(self) -> bool:
        return self.diff_low is not None and (self.diff_high < 0 or self.diff_low > 0)


def summarise(
    values: dict[str, dict[int, float]], baseline: str, metric: str, order: Sequence[str] = ()
) -> list[ArmStat]:
    """values[arm][seed] -> one ArmStat per arm (in `order`, then the rest), differences against `baseline`."""
    base = values.get(baseline, {})
    out = []
    for arm in [*order, *(a for a in values if a not in order)]:
        if arm not in values or not values[arm]:
            continue
        by_seed = values[arm]
        mean, low, high = mean_interval(list(by_seed.values()))
        shared = sorted(set(by_seed) & set(base))
        diff = diff_low = diff_high = None
        if arm != baseline and shared:
            diff, diff_low, diff_high = mean_interval([by_seed[s] - base[s] for s in shared])
        out.append(ArmStat(arm, metric, len(by_seed), mean, low, high, diff, diff_low, diff_high))
    return out
