"""Interventions from failure directions (Jain et al. 2023, section 2.4 and appendix B.1.2).

Both return plain indices / weights that users feed to their own training loop.
"""

from __future__ import annotations

import numpy as np

from failwidgets._validation import check_array, check_labels, check_number, check_positive_int, check_same_length


def filter_pool(decision_values, classes, k: int = 75) -> np.ndarray:
    """Filtering: per class, the ``k`` pool images with the most negative decision values.

    Parameters
    ----------
    decision_values : ndarray (N,)
        Each pool image scored by the SVM of its class (NaN where the class has no SVM: never chosen).
    classes : ndarray (N,) int
        Class of each pool image (its label, or the model's prediction when the pool is unlabelled).
    k : int
        Images per class (reference 75); fewer where a class has fewer scored images.

    Returns
    -------
    ndarray (<= k * n_classes,) int64: pool indices, grouped by class, hardest first.
    """
    d = check_array(decision_values, "decision_values", ndim=1, dtype="float", finite=False)
    classes = check_labels(classes, "classes")
    check_same_length(decision_values=d, classes=classes)
    k = check_positive_int(k, "k")
    chosen = []
    for c in np.unique(classes):
        idx = np.flatnonzero((classes == c) & np.isfinite(d))
        chosen.append(idx[np.argsort(d[idx], kind="stable")[:k]])
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)


def upweight(decision_values, factor: float = 2.0, threshold: float = 0.0) -> np.ndarray:
    """Upweighting: weight ``factor`` for training images with decision value <= ``threshold``, else 1.

    Parameters
    ----------
    decision_values : ndarray (N,)
        Training images scored by their class's SVM (NaN = no SVM: weight 1).

    Returns
    -------
    ndarray (N,) float32 per-example weights (reference: factor 2, threshold 0).
    """
    d = check_array(decision_values, "decision_values", ndim=1, dtype="float", finite=False)
    factor = check_number(factor, "factor")
    if not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor: expected a positive number, got {factor!r}")
    flagged = np.isfinite(d) & (d <= threshold)
    return np.where(flagged, factor, 1.0).astype(np.float32)
