"""The trained part of a quality model: a linear head over [embedding, features], in numpy.

Linear on purpose: a frozen encoder's embedding already separates what matters (FineWeb-Edu's own
classifier is a linear head), a closed-form ridge fit takes a second on thousands of labels and is
deterministic, and the weights are a few kilobytes of JSON that ship inside the package and apply the
same on any backend (numpy here, a SQL expression elsewhere). Inputs are standardised with the
training set's mean and scale, which the head carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

HeadKind = Literal["ridge", "logistic"]
SCORE_MAX = 5.0  # every head answers on the FineWeb-Edu 0-5 scale


@dataclass
class LinearHead:
    kind: HeadKind
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def raw(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores in [0, 5]: the regression clipped, or 5 x the logistic probability."""
        z = self.raw(np.asarray(x, dtype=np.float64))
        if self.kind == "logistic":
            return SCORE_MAX / (1.0 + np.exp(-np.clip(z, -40, 40)))
        return np.clip(z, 0.0, SCORE_MAX)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": float(self.intercept),
        }

    @classmethod
    def from_dict(cls, d: dict) -> LinearHead:
        arr = lambda k: np.asarray(d[k], dtype=np.float64)  # noqa: E731
        head = cls(d["kind"], arr("mean"), arr("scale"), arr("coef"), float(d["intercept"]))
        if not (head.mean.shape == head.scale.shape == head.coef.shape):
            raise ValueError("quality head: mean, scale and coef differ in length")
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
