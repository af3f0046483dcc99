"""Failure modes of attribute pairs and their evaluation (Zhang et al. 2018, steps 7-8).

A *mode* of a pair (u, v) is a cell (Y*_u = a, Y*_v = b) with a, b in {-1, +1}. The paper evaluates a
failure mode on test images by the decrease from the accuracy on ordinary images,
[Acc(Y_u | Y*_u = a) + Acc(Y_v | Y*_v = b)] / 2, to the accuracy inside the mode,
[Acc(Y_u | mode) + Acc(Y_v | mode)] / 2. The competing *entropy* method picks for each pair the
rarest of its four modes in the training data and ranks pairs by the entropy of the joint label
distribution, ignoring samples with both labels -1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from failwidgets._validation import check_array, check_positive_int

__all__ = [
    "to_signs",
    "mode_counts",
    "failure_mode_cell",
    "mode_accuracy_drop",
    "entropy_baseline",
    "evaluate_modes",
]


def to_signs(labels, name: str = "attributes") -> np.ndarray:
    """Map binary attribute labels (M, n) in {0, 1} or {-1, +1} to int8 signs in {-1, +1}."""
    arr = check_array(labels, name, ndim=2, dtype="float")
    uniq = np.unique(arr)
    if np.all(np.isin(uniq, [0.0, 1.0])):
        return np.where(arr > 0, 1, -1).astype(np.int8)
    if np.all(np.isin(uniq, [-1.0, 1.0])):
        return arr.astype(np.int8)
    raise ValueError(f"{name}: expected binary labels in {{0, 1}} or {{-1, +1}}, got values {uniq[:6]}")


def mode_counts(signs) -> np.ndarray:
    """Counts of the four modes of every pair.

    Parameters
    ----------
    signs : ndarray (M, n) in {-1, +1}

    Returns
    -------
    int64 ndarray (n, n, 2, 2); ``[i, j, a, b]`` counts images with Y*_i = (-1, +1)[a] and
    Y*_j = (-1, +1)[b].
    """
    s = np.asarray(signs)
    pos = (s > 0).astype(np.int64)
    neg = 1 - pos
    out = np.empty((s.shape[1], s.shape[1], 2, 2), dtype=np.int64)
    out[:, :, 0, 0] = neg.T @ neg
    out[:, :, 0, 1] = neg.T @ pos
    out[:, :, 1, 0] = pos.T @ neg
    out[:, :, 1, 1] = pos.T @ pos
    return out


def failure_mode_cell(mean_relation: float, counts) -> tuple[int, int]:
    """The failure mode (a, b) of a pair from its mined relation and its 2x2 training counts.

    Positive mined relation: the rarer of (+1, -1) and (-1, +1); negative: the rarer of (+1, +1) and
    (-1, -1) (paper, "Blind spots & failure modes"). Ties go to the first candidate.
    """
    c = np.asarray(counts)
    if mean_relation >= 0:
        return (1, -1) if c[1, 0] <= c[0, 1] else (-1, 1)
    return (1, 1) if c[1, 1] <= c[0, 0] else (-1, -1)


def mode_accuracy_drop(pred_signs, true_signs, u: int, v: int, a: int, b: int) -> dict:
    """Accuracy on ordinary images, inside the mode (Y*_u = a, Y*_v = b), and the decrease.

    Parameters
    ----------
    pred_signs, true_signs : ndarray (M, n) in {-1, +1}
        Predicted and true attributes of the test images.
    u, v : attribute indices; a, b : -1 or +1.

    Returns
    -------
    dict with ``ordinary``, ``in_mode``, ``decrease`` (fractions; NaN when the mode or a conditioning
    set has no test image) and ``n_mode``.
    """
    pred = np.asarray(pred_signs)
    true = np.asarray(true_signs)
    correct = pred == true

    def acc(attr, where):
        return float(correct[where, attr].mean()) if where.any() else float("nan")

    in_u = true[:, u] == a
    in_v = true[:, v] == b
    mode = in_u & in_v
    ordinary = (acc(u, in_u) + acc(v, in_v)) / 2.0
    in_mode = (acc(u, mode) + acc(v, mode)) / 2.0
    return {"ordinary": ordinary, "in_mode": in_mode, "decrease": ordinary - in_mode, "n_mode": int(mode.sum())}


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) if p.size else 0.0


def entropy_baseline(train_attributes, attribute_names=None) -> pd.DataFrame:
    """The paper's entropy method: one failure mode per pair, ranked by joint-label entropy.

    Parameters
    ----------
    train_attributes : ndarray (M, n)
        Binary training labels ({0, 1} or {-1, +1}).
    attribute_names : list of str, optional

    Returns
    -------
    DataFrame sorted by decreasing ``entropy`` with columns ``i``, ``j``, ``a``, ``b`` (indices and
    the mode: the rarest of the four cells), ``attr_i``, ``attr_j``, ``entropy`` (nats, of the joint
    distribution over the cells (+,+), (+,-), (-,+)), ``mode_count``.
    """
    signs = to_signs(train_attributes, "train_attributes")
    n = signs.shape[1]
    names = list(attribute_names) if attribute_names is not None else [str(k) for k in range(n)]
    counts = mode_counts(signs)
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            c = counts[i, j]
            flat = c.reshape(-1)  # order (-,-), (-,+), (+,-), (+,+)
            k = int(np.argmin(flat))
            a, b = (-1, 1)[k // 2], (-1, 1)[k % 2]
            kept = np.array([c[1, 1], c[1, 0], c[0, 1]], dtype=np.float64)
            ent = _entropy(kept / kept.sum()) if kept.sum() > 0 else 0.0
            rows.append(
                {
                    "i": i,
                    "j": j,
                    "a": a,
                    "b": b,
                    "attr_i": names[i],
                    "attr_j": names[j],
                    "entropy": ent,
                    "mode_count": int(flat[k]),
                }
            )
    table = pd.DataFrame(rows)
    return table.sort_values("entropy", ascending=False, kind="stable").reset_index(drop=True)


def evaluate_modes(modes: pd.DataFrame, pred_attributes, true_attributes, top: int | None = None) -> pd.DataFrame:
    """Accuracy decrease on test images of the given failure modes.

    Parameters
    ----------
    modes : DataFrame with columns ``i``, ``j``, ``a``, ``b`` (in ranking order)
    pred_attributes, true_attributes : ndarray (M, n)
        Predicted and true binary attributes ({0, 1} or {-1, +1}) of the test images.
    top : int, optional
        Evaluate only the first ``top`` modes.

    Returns
    -------
    A copy of ``modes`` (first ``top`` rows) with ``ordinary``, ``in_mode``, ``decrease`` and
    ``n_mode`` columns added; ``table["decrease"].mean()`` is the paper's top-N score.
    """
    pred = to_signs(pred_attributes, "pred_attributes")
    true = to_signs(true_attributes, "true_attributes")
    if pred.shape != true.shape:
        raise ValueError(f"pred_attributes: expected shape {true.shape} (same as true_attributes), got {pred.shape}")
    rows = modes if top is None else modes.head(check_positive_int(top, "top"))
    out = rows.copy().reset_index(drop=True)
    results = [mode_accuracy_drop(pred, true, int(r.i), int(r.j), int(r.a), int(r.b)) for r in out.itertuples()]
    for key in ("ordinary", "in_mode", "decrease", "n_mode"):
        out[key] = [res[key] for res in results]
    return out
