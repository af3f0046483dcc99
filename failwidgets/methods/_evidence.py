"""Evidence under a name: how many images a slice covers and its error rate inside versus outside.

A method names a slice of the data (a failure caption, a tree leaf, a filter's words, a lasso on the map,
a typed hypothesis); whether to believe the name depends on numbers the name does not show.
:func:`slice_evidence` gives them for any slice of a held-out set: the count of images inside, the error
rate inside and outside with a 95 % confidence interval each, and Fisher's exact test of "the error rate
is the same inside and outside". It is the one statistics path of the library: the tree browser's leaves,
the slider's captions, the failure map's selections and :func:`~failwidgets.methods.hypotheses.test_hypothesis`
all report a :class:`SliceEvidence`.

Intervals: Wilson score intervals by default (``scipy.stats.binomtest(...).proportion_ci(method=
"wilson")``): close to nominal coverage at small counts and never outside [0, 1], where the normal
(Wald) interval collapses to a point at 0 or n errors; ``method="exact"`` gives Clopper-Pearson (exact,
conservative). The p-value is two-sided Fisher exact (``scipy.stats.fisher_exact``) on the 2 x 2 table
``[[errors inside, correct inside], [errors outside, correct outside]]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from failwidgets._validation import check_choice, check_in_range, to_numpy

__all__ = ["SliceEvidence", "slice_evidence", "wilson_interval", "CI_METHODS"]

#: Confidence-interval methods of :func:`slice_evidence`.
CI_METHODS = ("wilson", "exact")


def _interval(errors: int, n: int, confidence: float, method: str) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(errors), int(n)).proportion_ci(confidence_level=confidence, method=method)
    return float(ci.low), float(ci.high)


def wilson_interval(errors: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``errors / n`` (``(nan, nan)`` when ``n == 0``).

    Parameters
    ----------
    errors : int, number of errors (successes of the binomial)
    n : int, number of trials
    confidence : float in (0, 1)

    Returns
    -------
    (low, high) : tuple of float
    """
    check_in_range(confidence, "confidence", 0.0, 1.0, inclusive=False)
    errors, n = int(errors), int(n)
    if n < 0 or not 0 <= errors <= max(n, 0):
        raise ValueError(f"errors, n: expected 0 <= errors <= n, got errors={errors}, n={n}")
    return _interval(errors, n, confidence, "wilson")


@dataclass(frozen=True)
class SliceEvidence:
    """The numbers under a slice's name (see :func:`slice_evidence`).

    Attributes
    ----------
    n_inside, errors_inside, n_outside, errors_outside : int, images and errors inside / outside the slice
    rate_inside, rate_outside : float, error rates (NaN for an empty side)
    ci_inside, ci_outside : (low, high), the ``confidence`` interval of each rate ((NaN, NaN) for an empty side)
    p_value : float, two-sided Fisher exact test of equal error rates (NaN when a side is empty)
    odds_ratio : float, sample odds ratio of an error inside versus outside (NaN when a side is empty)
    confidence : float
    method : ``"wilson"`` or ``"exact"`` (Clopper-Pearson)
    """

    n_inside: int
    errors_inside: int
    rate_inside: float
    ci_inside: tuple
    n_outside: int
    errors_outside: int
    rate_outside: float
    ci_outside: tuple
    p_value: float
    odds_ratio: float
    confidence: float = 0.95
    method: str = "wilson"

    @property
    def difference(self) -> float:
        """``rate_inside - rate_outside``."""
        return self.rate_inside - self.rate_outside

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the p-value is below ``alpha``."""
        return bool(np.isfinite(self.p_value) and self.p_value < alpha)

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (intervals as lists)."""
        d = asdict(self)
        d["ci_inside"], d["ci_outside"] = list(self.ci_inside), list(self.ci_outside)
        return d

    def summary(self, what: str = "images") -> str:
        """One line, e.g. ``"42 images; error 31% [22%-42%] inside vs 8% [7%-10%] outside, Fisher p = 2e-05"``."""

        def rate(e, ci):
            return "n/a" if not np.isfinite(e) else f"{e:.0%} [{ci[0]:.0%}-{ci[1]:.0%}]"

        p = "n/a" if not np.isfinite(self.p_value) else f"{self.p_value:.2g}"
        return (
            f"{self.n_inside} {what}; error {rate(self.rate_inside, self.ci_inside)} inside vs "
            f"{rate(self.rate_outside, self.ci_outside)} outside, Fisher p = {p}"
        )


def _as_mask(x: Any, n: int | None, name: str) -> np.ndarray:
    """bool (n,) from a boolean mask (n,) or integer indices in [0, n)."""
    arr = to_numpy(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a boolean mask (N,) or 1-D integer indices, got shape {arr.shape}")
    if arr.dtype == bool:
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"{name}: expected a boolean mask of length {n}, got length {arr.shape[0]}")
        return arr
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected a boolean mask or integer indices, got dtype {arr.dtype}")
    mask = np.zeros(int(n or 0), bool)
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= len(mask):
            raise ValueError(f"{name}: expected indices in [0, {len(mask)}), got values in [{lo}, {hi}]")
        mask[arr] = True
    return mask


def slice_evidence(
    inside: Any, errors: Any, *, among: Any = None, confidence: float = 0.95, method: str = "wilson"
) -> SliceEvidence:
    """Count, error inside vs outside with confidence intervals, and Fisher's exact test of one slice.

    Parameters
    ----------
    inside : bool array (N,) or int indices (K,) into ``errors``: the images the slice covers
    errors : bool array (N,), True where the model fails on the image (``pred != label``)
    among : bool array (N,) or int indices, optional; the population compared (default: all N), so
        "outside" is ``among`` minus the slice
    confidence : float in (0, 1), the interval level (0.95)
    method : ``"wilson"`` (default) or ``"exact"`` (Clopper-Pearson)

    Returns
    -------
    SliceEvidence
    """
    err = to_numpy(errors, "errors")
    if err.ndim != 1:
        raise ValueError(f"errors: expected a 1-D boolean array (N,), got shape {err.shape}")
    if err.dtype != bool and not (np.issubdtype(err.dtype, np.integer) and np.isin(err, (0, 1)).all()):
        raise TypeError(f"errors: expected a boolean array (True = the model fails), got dtype {err.dtype}")
    err = err.astype(bool, copy=False)
    n = err.shape[0]
    ins = _as_mask(inside, n, "inside")
    check_choice(method, "method", CI_METHODS)
    check_in_range(confidence, "confidence", 0.0, 1.0, inclusive=False)
    pop = np.ones(n, bool) if among is None else _as_mask(among, n, "among")
    ins = ins & pop
    out = pop & ~ins
    n_in, n_out = int(ins.sum()), int(out.sum())
    k_in, k_out = int(np.count_nonzero(err & ins)), int(np.count_nonzero(err & out))
    if n_in and n_out:
        from scipy.stats import fisher_exact

        res = fisher_exact([[k_in, n_in - k_in], [k_out, n_out - k_out]], alternative="two-sided")
        p, odds = float(res.pvalue), float(res.statistic)
    else:
        p = odds = float("nan")
    return SliceEvidence(
        n_inside=n_in,
        errors_inside=k_in,
        rate_inside=k_in / n_in if n_in else float("nan"),
        ci_inside=_interval(k_in, n_in, confidence, method),
        n_outside=n_out,
        errors_outside=k_out,
        rate_outside=k_out / n_out if n_out else float("nan"),
        ci_outside=_interval(k_out, n_out, confidence, method),
        p_value=p,
        odds_ratio=odds,
        confidence=float(confidence),
        method=method,
    )
