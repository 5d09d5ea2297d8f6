"""Detection metrics in numpy: AUROC (Mann–Whitney, ties averaged), F1 and false-alarm rate at a threshold.

>>> auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
0.75
"""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative
    (ties count one half). NaN when either class is empty."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(labels, bool).reshape(-1)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    sorted_scores = s[order]
    # average rank of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(s)]
    run_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(run_rank, ends - starts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def f1_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """F1 of the decision ``score > threshold``."""
    pred = np.asarray(scores) > threshold
    y = np.asarray(labels, bool)
    tp = int((pred & y).sum())
    fp, fn = int((pred & ~y).sum()), int((~pred & y).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def false_alarm_rate(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Share of negatives (good samples) with ``score > threshold``."""
    y = np.asarray(labels, bool)
    neg = np.asarray(scores)[~y]
    return float((neg > threshold).mean()) if neg.size else float("nan")


__all__ = ["auroc", "f1_at", "false_alarm_rate"]
