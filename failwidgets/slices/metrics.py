"""The slice-discovery metrics of dcbench (Eyuboglu et al., ICLR 2022): precision-at-k of the best
matching predicted slice, and the share of settings a method solves.

A method returns, for the images of one class, either one score per image (one predicted slice) or a
membership matrix ``(N, S)`` (``S`` predicted slices); higher means "more in the slice". For each predicted
slice the ``k`` highest-scored images are taken and the share of them in the true slice is its
precision-at-k. As in dcbench, the *best matching* slice is the one with the highest precision-at-10, and
its precision-at-25 is reported with it. A setting counts as *found* when that precision-at-10 is at least
0.8 (dcbench's and Domino's criterion).

One difference from dcbench on purpose: dcbench ranks with ``rankdata(method="ordinal")``, so tied scores
are broken by the order of the images. Here ties are broken uniformly at random *in expectation*: of ``t``
tied images competing for ``r`` remaining places, each counts ``r / t``. A method that cannot tell images
apart (all scores equal, or all NaN) therefore scores exactly the slice's prevalence, whatever the image
order. NaN scores rank below every number.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from failwidgets._validation import check_array, check_positive_int

__all__ = [
    "FOUND_THRESHOLD",
    "precision_at_k",
    "slice_precisions",
    "best_slice",
    "summarize",
]

#: precision-at-10 at which a setting counts as found (dcbench / Domino)
FOUND_THRESHOLD = 0.8


def _as_truth(truth, name: str = "truth") -> np.ndarray:
    return check_array(truth, name, ndim=1, dtype="bool")


def precision_at_k(truth, scores, k: int = 10) -> float:
    """Share of the ``k`` highest-scored images that are in the true slice (ties in expectation).

    Parameters
    ----------
    truth : bool ndarray (N,)
        The true slice.
    scores : ndarray (N,)
        Higher = more in the predicted slice; NaN ranks below every number.
    k : int
        Number of top images; ``min(k, N)`` when fewer images are given.

    Returns
    -------
    float in [0, 1]
    """
    t = _as_truth(truth)
    s = check_array(scores, "scores", ndim=1, dtype="float", finite=False).astype(np.float64)
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"scores: expected {t.shape[0]} values (one per image of truth), got {s.shape[0]}")
    k = check_positive_int(k, "k")
    n = t.shape[0]
    if n == 0:
        raise ValueError("truth: expected at least one image, got an empty array")
    k = min(k, n)
    s = np.where(np.isnan(s), -np.inf, s)
    kth = np.partition(s, n - k)[n - k]  # the k-th largest score
    above = s > kth
    tied = s == kth
    n_above = int(above.sum())
    hits = float(t[above].sum())
    remaining = k - n_above
    if remaining > 0:
        hits += remaining * float(t[tied].sum()) / float(tied.sum())
    return hits / k


def slice_precisions(truth, memberships, ks: Sequence[int] = (10, 25)) -> np.ndarray:
    """Precision-at-k of every predicted slice.

    Parameters
    ----------
    truth : bool ndarray (N,)
    memberships : ndarray (N,) or (N, S)
        Scores of one or ``S`` predicted slices.
    ks : sequence of int

    Returns
    -------
    ndarray (S, len(ks))
    """
    m = check_array(memberships, "memberships", ndim=(1, 2), dtype="float", finite=False)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[1] == 0:
        raise ValueError("memberships: expected at least one predicted slice (column), got 0")
    return np.array([[precision_at_k(truth, m[:, j], k) for k in ks] for j in range(m.shape[1])])


def best_slice(truth, memberships, ks: Sequence[int] = (10, 25)) -> dict[str, float]:
    """The best matching predicted slice (highest precision at ``ks[0]``; ties: the first) and its precisions.

    Returns
    -------
    dict with ``slice`` (column index) and ``precision_at_<k>`` for each k.
    """
    p = slice_precisions(truth, memberships, ks)
    j = int(np.argmax(p[:, 0]))
    out: dict[str, float] = {"slice": j}
    for i, k in enumerate(ks):
        out[f"precision_at_{k}"] = float(p[j, i])
    return out


def summarize(
    rows: Iterable[Mapping], *, by: str = "kind", threshold: float = FOUND_THRESHOLD, ks: Sequence[int] = (10, 25)
) -> list[dict]:
    """Per method and group (and ``"all"``): settings, mean precisions, share found, mean seconds.

    Parameters
    ----------
    rows : iterable of dict
        One per (setting, method) with ``method``, the ``by`` key, ``precision_at_<k>`` and ``seconds``.
    by : str
        The grouping key (``"kind"``).
    threshold : float
        A setting is found when its best precision at ``ks[0]`` is ``>= threshold``.

    Returns
    -------
    list of dict, ordered by method (first appearance) then group (first appearance, ``"all"`` last), with
    ``method, group, n, mean_precision_at_<k>, found`` (share in [0, 1]), ``n_found``, ``mean_seconds``.
    """
    rows = list(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    groups = list(dict.fromkeys(r[by] for r in rows))
    out = []
    for m in methods:
        for g in groups + ["all"]:
            sel = [r for r in rows if r["method"] == m and (g == "all" or r[by] == g)]
            if not sel:
                continue
            first = np.array([r[f"precision_at_{ks[0]}"] for r in sel], dtype=np.float64)
            entry = {"method": m, "group": g, "n": len(sel)}
            for k in ks:
                entry[f"mean_precision_at_{k}"] = float(np.mean([r[f"precision_at_{k}"] for r in sel]))
            n_found = int(np.sum(first >= threshold))
            entry["n_found"] = n_found
            entry["found"] = n_found / len(sel)
            entry["mean_seconds"] = float(np.mean([r["seconds"] for r in sel]))
            out.append(entry)
    return out
