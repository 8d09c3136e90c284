"""Statistics for judged comparisons: proportions, win rates and Bradley-Terry ratings with intervals.

A handful of prompts per model is the norm here, so every number comes with a 95% interval: Wilson for
proportions (sane at 0/n and n/n, unlike the normal approximation), Student's t for mean grades, and a
bootstrap over verdicts for ratings (as the LMSYS Chatbot Arena does), since ratings have no closed form.
A verdict is (model_a, model_b, outcome) with outcome "a", "b" or "tie".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

OUTCOMES = ("a", "b", "tie")
# Ratings on the Elo scale: a 400-point gap means 10:1 odds of winning.
ELO_SCALE = 400.0
ELO_MEAN = 1000.0
# Bootstrap replicates fitted together; bounds the (replicates x verdicts) index array to ~16 MB.
_BOOT_CELLS = 2_000_000
# MM converges linearly; these bound the work and stop well below any rating difference that matters.
MAX_ITERS = 10_000
TOL = 1e-10

Verdict = tuple[str, str, str]


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when n is 0. `successes` may count ties as halves."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) with a Student's t 95% interval; a single value is its own interval."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    from scipy import stats as scipy_stats  # 1.5 s to import: only when an interval is asked for

    half = float(scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def win_rates(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """One row per ordered pair that met (both directions): wins, losses, ties, games, win_rate.

    Columns model_a, model_b, wins, losses, ties, games, win_rate; counts are model_a's against model_b,
    and win_rate counts a tie as half a win.
    """
    columns = ["model_a", "model_b", "wins", "losses", "ties", "games", "win_rate"]
    counts: dict[tuple[str, str], list[int]] = {}
    for a, b, outcome in _checked(verdicts):
        for me, other, result in ((a, b, outcome), (b, a, {"a": "b", "b": "a", "tie": "tie"}[outcome])):
            row = counts.setdefault((me, other), [0, 0, 0])
            row[("a", "b", "tie").index(result)] += 1
    rows = [
        (a, b, won, lost, tied, won + lost + tied, (won + 0.5 * tied) / (won + lost + tied))
        for (a, b), (won, lost, tied) in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=columns)


def bradley_terry(
    verdicts: Sequence[Verdict], models: Sequence[str] | None = None, iters: int = MAX_ITERS, tol: float = TOL
) -> dict[str, float]:
    """Bradley-Terry ratings on the Elo scale, fitted by Hunter's (2004) MM algorithm.

    A tie counts as half a win for each side. Every pair of models also gets one virtual tie: a weak
    prior that keeps a model that won (or lost) everything finite, links models that never met, and
    shrinks ratings from few verdicts towards the middle. Ratings are 1000 + 400 log10(strength) with
    strengths normalised so that the ratings average 1000: only differences mean anything, and
    P(i beats j) = 1 / (1 + 10 ** ((R_j - R_i) / 400)). `models` fixes the set and order of models
    (ones without verdicts get the prior's rating); by default it is every model named in `verdicts`.
    """
    names, first, second = _encode(verdicts, models)
    if not names:
        return {}
    wins = _win_matrix(first[None, :], second[None, :], len(names))[0]
    ratings = _fit(wins[None], iters, tol)[0]
    return dict(zip(names, ratings.tolist(), strict=True))


def bootstrap_ratings(
    verdicts: Sequence[Verdict], n_boot: int = 1000, seed: int = 0, models: Sequence[str] | None = None
) -> pd.DataFrame:
    """Bradley-Terry ratings with 95% percentile intervals from `n_boot` resamples of the verdicts.

    Columns model, rating (fitted on all verdicts), low, high; best first. Resampling draws verdicts with
    replacement, so the interval reflects which prompts happened to be judged; the same seed gives the
    same intervals.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    names, first, second = _encode(verdicts, models)
    columns = ["model", "rating", "low", "high"]
    if not names:
        return pd.DataFrame(columns=columns)
    m, n = len(names), len(first)
    point = _fit(_win_matrix(first[None, :], second[None, :], m), MAX_ITERS, TOL)[0]
    if n == 0:
        low = high = point
    else:
        rng = np.random.default_rng(seed)
        chunk = max(1, _BOOT_CELLS // n)
        fits = []
        for start in range(0, n_boot, chunk):
            index = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
            fits.append(_fit(_win_matrix(first[index], second[index], m), MAX_ITERS, TOL))
        low, high = np.percentile(np.concatenate(fits), [2.5, 97.5], axis=0)
    frame = pd.DataFrame({"model": names, "rating": point, "low": low, "high": high})
    return frame.sort_values(["rating", "model"], ascending=[False, True], ignore_index=True)


def _checked(verdicts: Sequence[Verdict]) -> Sequence[Verdict]:
    for a, b, outcome in verdicts:
        if outcome not in OUTCOMES:
            raise ValueError(f"verdict outcome must be one of {OUTCOMES}, got {outcome!r}")
        if a == b:
            raise ValueError(f"a verdict compares two different models, got {a!r} against itself")
    return verdicts


def _encode(
    verdicts: Sequence[Verdict], models: Sequence[str] | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(model names, two half-win cells per verdict): a win puts both halves on winner*m + loser."""
    names = list(models) if models is not None else sorted({x for a, b, _ in verdicts for x in (a, b)})
    index = {name: i for i, name in enumerate(names)}
    if len(index) != len(names):
        raise ValueError("models must not repeat")
    m = len(names)
    first, second = [], []
    for a, b, outcome in _checked(verdicts):
        if a not in index or b not in index:
            raise ValueError(f"verdict ({a!r}, {b!r}) names a model not in {names}")
        ab, ba = index[a] * m + index[b], index[b] * m + index[a]
        first.append(ba if outcome == "b" else ab)
        second.append(ab if outcome == "a" else ba)
    return names, np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)


def _win_matrix(first: np.ndarray, second: np.ndarray, m: int) -> np.ndarray:
    """(replicates, m, m) wins of row over column, from (replicates, verdicts) half-win cells."""
    replicates = first.shape[0]
    offset = (np.arange(replicates, dtype=np.int64) * m * m)[:, None]
    size = replicates * m * m
    halves = np.bincount((first + offset).ravel(), minlength=size) + np.bincount(
        (second + offset).ravel(), minlength=size
    )
    return 0.5 * halves.reshape(replicates, m, m)


def _fit(wins: np.ndarray, iters: int, tol: float) -> np.ndarray:
    """Elo-scale ratings for each (m, m) win matrix in `wins`, with one virtual tie per pair.

    MM update (Hunter 2004): p_i <- W_i / sum_j n_ij / (p_i + p_j), with W_i the wins of i and n_ij
    the games between i and j; the prior makes every n_ij positive, so it converges from any start.
    """
    m = wins.shape[-1]
    if m == 1:
        return np.full(wins.shape[:-1], ELO_MEAN)
    wins = wins + 0.5 * (1.0 - np.eye(m))
    games = wins + np.swapaxes(wins, -1, -2)
    total_wins = wins.sum(axis=-1)
    log_p = np.zeros(wins.shape[:-1])
    for _ in range(iters):
        p = np.exp(log_p)
        denominator = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = np.log(total_wins / denominator)
        new -= new.mean(axis=-1, keepdims=True)
        done = np.max(np.abs(new - log_p), initial=0.0) < tol
        log_p = new
        if done:
            break
    return ELO_MEAN + ELO_SCALE * log_p / math.log(10)
