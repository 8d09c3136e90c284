"""The trained part of a quality model: a linear head over [embedding, features], in numpy.

Linear on purpose: a frozen encoder's embedding already separates what matters (FineWeb-Edu's own
classifier is a linear head), a closed-form ridge fit takes a second on thousands of labels and is
deterministic, and the weights are a few kilobytes of JSON that ship inside the package and apply the
same on any backend (numpy here, a SQL expression elsewhere). Inputs are standardised with the
training set's mean and scale, which the head carries.

The `ordinal` head (the default) is one logistic model per step of the 0-5 scale, P(target >= t) for
t = 1..5, and scores their sum: the expected label. A regression spends its fit on the middle of the
scale, where most annotations are; the cumulative fit also separates pages with no value at all
(label 0: spam, menus, listings, the bulk of what people call bad web pages) from the rest, and it
ranked better than ridge at every cut of the held-out annotations (README, "Quality-model accuracy").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

HeadKind = Literal["ridge", "logistic", "ordinal"]
SCORE_MAX = 5.0  # every head answers on the FineWeb-Edu 0-5 scale


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class LinearHead:
    kind: HeadKind
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (d,); ordinal: (steps, d), one row per fitted step of the scale
    intercept: float | np.ndarray  # ordinal: one per fitted step
    base: float = 0.0  # ordinal: steps every training label reached (they count 1 each, unfitted)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The linear part: (n,), or (n, steps) for an ordinal head."""
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores in [0, 5]: the regression clipped, 5 x the logistic probability, or the ordinal
        head's expected label (the sum of P(label >= t) over the steps)."""
        z = self.raw(np.asarray(x, dtype=np.float64))
        if self.kind == "ordinal":
            return np.clip(self.base + _sigmoid(z.reshape(len(z), -1)).sum(axis=1), 0.0, SCORE_MAX)
        if self.kind == "logistic":
            return SCORE_MAX * _sigmoid(z)
        return np.clip(z, 0.0, SCORE_MAX)

    def to_dict(self) -> dict:
        out = {
            "kind": self.kind,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": np.asarray(self.intercept).tolist(),
        }
        if self.kind == "ordinal":
            out["base"] = float(self.base)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> LinearHead:
        arr = lambda k: np.asarray(d[k], dtype=np.float64)  # noqa: E731
        intercept = arr("intercept") if d["kind"] == "ordinal" else float(d["intercept"])
        head = cls(d["kind"], arr("mean"), arr("scale"), arr("coef"), intercept, float(d.get("base", 0.0)))
        width = head.coef.shape[-1] if head.coef.ndim else -1
        if not (head.mean.shape == head.scale.shape == (width,)):
            raise ValueError("quality head: mean, scale and coef differ in length")
        if d["kind"] == "ordinal" and (head.coef.ndim != 2 or head.coef.shape[0] != np.size(intercept)):
            raise ValueError("quality head: an ordinal head needs one coef row and one intercept per step")
        return head


def _standardise(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None) -> LinearHead:
    """Weighted ridge on standardised inputs (intercept not penalised); closed form."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean, scale = _standardise(x, w)
    z = (x - mean) / scale
    y_mean = np.average(y, weights=w)
    zw = z * w[:, None]
    gram = z.T @ zw + alpha * np.sum(w) / len(w) * np.eye(z.shape[1])
    coef = np.linalg.solve(gram, zw.T @ (y - y_mean))
    return LinearHead("ridge", mean, scale, coef, float(y_mean))


def fit_logistic(
    x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None, iterations: int = 50
) -> LinearHead:
    """Weighted L2 logistic regression (y in {0, 1}) by Newton's method on standardised inputs."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean, scale = _standardise(x, w)
    z = np.hstack([(x - mean) / scale, np.ones((len(y), 1))])
    beta = np.zeros(z.shape[1])
    penalty = alpha * np.sum(w) / len(w) * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40, 40)))
        grad = z.T @ (w * (p - y)) + penalty @ beta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z + penalty + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return LinearHead("logistic", mean, scale, beta[:-1], float(beta[-1]))


def fit_ordinal(
    x: np.ndarray, y: np.ndarray, alpha: float, weights: np.ndarray | None = None, min_class: int = 5
) -> LinearHead:
    """One weighted L2 logistic fit per step t = 1..5 of P(y >= t), on shared standardised inputs.

    A step that fewer than `min_class` labels reach (or fail to reach) is not fitted: it counts 0
    (or 1, in `base`) for every text, which is what the training labels say of it.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rows, intercepts, base = [], [], 0.0
    for t in range(1, int(SCORE_MAX) + 1):
        above = y >= t - 1e-9
        if above.sum() < min_class:
            continue
        if (~above).sum() < min_class:
            base += 1.0
            continue
        step = fit_logistic(x, above.astype(float), alpha, weights)
        rows.append(step.coef)
        intercepts.append(step.intercept)
        mean, scale = step.mean, step.scale
    if not rows:
        raise ValueError("ordinal head: no step of the 0-5 scale has both classes among the labels")
    return LinearHead("ordinal", mean, scale, np.vstack(rows), np.asarray(intercepts), base)
