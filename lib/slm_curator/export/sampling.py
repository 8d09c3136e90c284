"""Pure selection arithmetic: QuRating-style Gumbel keys and the per-source token plan of a mixture.

Sampling without replacement with P ∝ exp(score / τ) is the Gumbel-top-k trick (Kool et al. 2019):
give each document the key score/τ + Gumbel noise and keep the largest keys. The noise comes from a
hash of (seed, doc_id), so a document's key never depends on which partition or run sees it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TWO_POW_52 = float(2**52)


def uniform_from_hash(h: np.ndarray) -> np.ndarray:
    """Signed 64-bit hashes -> floats strictly inside (0, 1) from the top 52 bits (53 would round to 1.0)."""
    top = np.asarray(h, dtype=np.int64).view(np.uint64) >> np.uint64(12)
    return (top.astype(np.float64) + 0.5) / TWO_POW_52


def gumbel_keys(scores: np.ndarray, u: np.ndarray, temperature: float) -> np.ndarray:
    """Keys whose top-k is a sample without replacement with P ∝ exp(score / temperature)."""
    return np.asarray(scores, dtype=np.float64) / temperature - np.log(-np.log(u))


@dataclass(frozen=True)
class SourcePlan:
    """How much of one source goes into the budget: whole passes, then a key-ordered partial pass."""

    source: str
    available_tokens: int
    target_tokens: int
    full_passes: int
    remainder_tokens: int

    @property
    def epochs(self) -> float:
        return self.target_tokens / self.available_tokens if self.available_tokens else 0.0


def source_weights(sources: list[str], mixture: dict[str, float]) -> dict[str, float]:
    """Mixture weights per source: named ones, "*" for the rest; unnamed sources without "*" get 0."""
    rest = mixture.get("*", 0.0)
    return {s: float(mixture.get(s, rest)) for s in sources}


def plan_mixture(
    available: dict[str, int], mixture: dict[str, float], budget: int, max_epochs: float
) -> list[SourcePlan]:
    """Split `budget` tokens over sources by weight, repeating none more than `max_epochs` times.

    A source capped at `max_epochs` hands its shortfall to the uncapped sources in proportion to
    their weights, so a small high-weight source cannot silently shrink the budget. With no budget
    every source is taken once; with no mixture the weights are the natural proportions.
    """
    sources = sorted(s for s, n in available.items() if n > 0)
    if budget <= 0:
        targets = {s: float(available[s]) for s in sources}
    else:
        weights = source_weights(sources, mixture) if mixture else {s: float(available[s]) for s in sources}
        caps = {s: available[s] * max_epochs for s in sources}
        targets = {s: 0.0 for s in sources}
        open_ = {s for s in sources if weights[s] > 0}
        left = float(budget)
        while left > 0.5 and open_:
            total_w = sum(weights[s] for s in open_)
            share = {s: left * weights[s] / total_w for s in open_}
            capped = {s for s in open_ if targets[s] + share[s] >= caps[s]}
            if not capped:
                for s in open_:
                    targets[s] += share[s]
                break
            for s in capped:
                left -= caps[s] - targets[s]
                targets[s] = caps[s]
            open_ -= capped
    plans = []
    for s in sources:
        target = int(math.floor(targets[s] + 1e-9))
        full = target // available[s]
        plans.append(SourcePlan(s, available[s], target, full, target - full * available[s]))
    return plans


def quality_bucket(score: float | None, edges: list[float]) -> str:
    """A label such as "2-3" for a score between edges 2 and 3; "unscored" without a score."""
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "unscored"
    i = int(np.searchsorted(edges, score, side="right"))
    lo = f"{edges[i - 1]:g}" if i > 0 else "-inf"
    hi = f"{edges[i]:g}" if i < len(edges) else "inf"
    return f"{lo}-{hi}"
