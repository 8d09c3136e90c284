"""Held-out metrics of a quality scorer: rank correlation, AUC, and the 0-5 confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd


def spearman(a, b) -> float:
    """Spearman's rho with average ranks for ties; nan when either side is constant."""
    ra = pd.Series(np.asarray(a, dtype=float)).rank().to_numpy()
    rb = pd.Series(np.asarray(b, dtype=float)).rank().to_numpy()
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def auc(scores, positive) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); nan without both classes."""
    s = np.asarray(scores, dtype=float)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = pd.Series(s).rank().to_numpy()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(true_int, pred_int, classes: int = 6) -> np.ndarray:
    """Rows: the label's class, columns: the predicted class (both clipped to 0..classes-1)."""
    t = np.clip(np.asarray(true_int, dtype=int), 0, classes - 1)
    p = np.clip(np.asarray(pred_int, dtype=int), 0, classes - 1)
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


def to_int(scores) -> np.ndarray:
    """FineWeb-Edu's integer score: the regression rounded and clipped to 0..5."""
    return np.clip(np.rint(np.asarray(scores, dtype=float)), 0, 5).astype(int)
