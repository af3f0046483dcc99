"""Barlow's failure metrics (Singla et al. 2021, section 5.1) as pure functions.

For a cluster ``C`` of a benchmark ``S`` (here: one class grouping):

- ``ER(C) = errors in C / |C|``                      (Definition 1, error rate)
- ``EC(C) = errors in C / errors in S``               (Definition 2, error coverage)
- ``BER = ER(S)``                                     (Definition 3, base error rate)
- ``ALER(T) = sum over leaves l of ER(C_l) x EC(C_l)`` (Definition 4)
- ``IV(C) = ER(C) x EC(C)``                           (Definition 5, importance value)

A leaf is a *valid* failure mode when ``ER > BER + delta`` and ``EC > tau``.

Every function takes plain counts so that the same code serves the data a tree was fitted on and a
held-out split. Undefined ratios (empty cluster, no errors in the benchmark) are ``nan``, never 0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "error_rate",
    "error_coverage",
    "importance_value",
    "aler",
    "is_valid_failure_mode",
]


def _ratio(num, den) -> np.ndarray | float:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def error_rate(n_errors, n_samples):
    """ER = errors / samples; ``nan`` where a cluster is empty. Scalars or arrays (broadcast)."""
    return _ratio(n_errors, n_samples)


def error_coverage(n_errors, total_errors):
    """EC = errors in the cluster / errors in the whole benchmark; ``nan`` when the benchmark has none."""
    return _ratio(n_errors, total_errors)


def importance_value(n_errors, n_samples, total_errors):
    """IV = ER x EC (Definition 5)."""
    return np.asarray(error_rate(n_errors, n_samples)) * np.asarray(error_coverage(n_errors, total_errors)) + 0.0


def aler(leaf_errors, leaf_sizes) -> float:
    """Average leaf error rate: sum over leaves of ER x EC, with EC relative to all leaves' errors.

    Parameters
    ----------
    leaf_errors, leaf_sizes : array (L,) — errors and samples per leaf; the leaves partition the benchmark.
        Empty leaves (size 0, possible on held-out data) contribute nothing.

    Returns ``nan`` when there are no errors at all (EC undefined).
    """
    e = np.asarray(leaf_errors, dtype=np.float64)
    n = np.asarray(leaf_sizes, dtype=np.float64)
    total = e.sum()
    if total <= 0:
        return float("nan")
    er = np.where(n > 0, e / np.where(n > 0, n, 1.0), 0.0)
    return float(np.sum(er * e / total))


def is_valid_failure_mode(er, ec, ber, delta: float = 0.1, tau: float = 0.2):
    """``ER > BER + delta and EC > tau`` (nan metrics are never valid)."""
    er = np.asarray(er, dtype=np.float64)
    ec = np.asarray(ec, dtype=np.float64)
    out = (er > ber + delta) & (ec > tau)
    return bool(out) if out.ndim == 0 else out
