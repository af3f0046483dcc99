"""The one place that owns the failure sign convention.

A *failure* is ``pred != label``. Models of failure (the failure-direction SVM, Barlow trees) predict the
target ``1 = correct, 0 = error``, so a **negative decision value means failure-aligned ("hard")** and a
positive one means "easy".
"""
from __future__ import annotations

import numpy as np

from failwidgets._validation import check_labels, check_same_length

CORRECT = 1
ERROR = 0


def is_failure(labels, preds) -> np.ndarray:
    """Boolean array (N,): True where the model got the sample wrong (``pred != label``)."""
    labels = check_labels(labels, "labels")
    preds = check_labels(preds, "preds")
    check_same_length(labels=labels, preds=preds)
    return labels != preds


def failure_target(labels, preds) -> np.ndarray:
    """Integer target (N,) for failure models: 1 = correct, 0 = error."""
    return np.where(is_failure(labels, preds), ERROR, CORRECT).astype(np.int64)


def hardness_order(decision_values) -> np.ndarray:
    """Indices from hardest (most negative decision value) to easiest."""
    return np.argsort(np.asarray(decision_values), kind="stable")
