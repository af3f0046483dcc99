"""Evidence under a name: how many images a slice covers and its error rate inside versus outside.

A method names a slice of the data (a failure caption, a tree leaf, a filter's words); whether to believe
the name depends on numbers the name does not show. :func:`slice_evidence` gives them for any boolean
slice of a held-out set: the count of images inside, the error rate inside and outside with a 95 %
confidence interval each, and Fisher's exact test of "the error rate is the same inside and outside".

Intervals: Wilson score intervals by default (``scipy.stats.binomtest(...).proportion_ci(method=
"wilson")``): close to nominal coverage at small counts and never outside [0, 1], where the normal
(Wald) interval collapses to a point at 0 or n errors; ``method="exact"`` gives Clopper-Pearson (exact,
conservative). The p-value is two-sided Fisher exact (``scipy.stats.fisher_exact``) on the 2 x 2 table
(inside / outside x error / correct).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from failwidgets._validation import check_array, check_choice, check_same_length

__all__ = ["SliceEvidence", "slice_evidence", "CI_METHODS"]

#: Confidence-interval methods of :func:`slice_evidence`.
CI_METHODS = ("wilson", "exact")


@dataclass(frozen=True)
class SliceEvidence:
    """The numbers under a slice's name (see :func:`slice_evidence`).

    Attributes
    ----------
    n_in, n_out : int, images inside / outside the slice
    errors_in, errors_out : int, errors among them
    err_in, err_out : float, error rates (NaN for an empty side)
    ci_in, ci_out : (low, high), the ``confidence`` interval of each rate ((NaN, NaN) for an empty side)
    p_value : float, two-sided Fisher exact test of equal error rates (NaN when a side is empty)
    confidence : float
    method : ``"wilson"`` or ``"exact"`` (Clopper-Pearson)
    """

    n_in: int
    n_out: int
    errors_in: int
    errors_out: int
    err_in: float
    err_out: float
    ci_in: tuple
    ci_out: tuple
    p_value: float
    confidence: float = 0.95
    method: str = "wilson"

    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (intervals as lists)."""
        d = asdict(self)
        d["ci_in"], d["ci_out"] = list(self.ci_in), list(self.ci_out)
        return d

    def summary(self, what: str = "images") -> str:
        """One line, e.g. ``"42 images; error 31% [22-42%] inside vs 8% [7-10%] outside, Fisher p = 2e-05"``."""
        def rate(e, ci):
            return "n/a" if not np.isfinite(e) else f"{e:.0%} [{ci[0]:.0%}-{ci[1]:.0%}]"

        p = "n/a" if not np.isfinite(self.p_value) else f"{self.p_value:.2g}"
        return (f"{self.n_in} {what}; error {rate(self.err_in, self.ci_in)} inside vs "
                f"{rate(self.err_out, self.ci_out)} outside, Fisher p = {p}")


def _rate_ci(k: int, n: int, confidence: float, method: str) -> tuple[float, tuple]:
    if n == 0:
        return float("nan"), (float("nan"), float("nan"))
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method=method)
    return k / n, (float(ci.low), float(ci.high))


def slice_evidence(inside_mask, errors, *, confidence: float = 0.95, method: str = "wilson") -> SliceEvidence:
    """Count, error inside vs outside with confidence intervals, and Fisher's exact test of one slice.

    Parameters
    ----------
    inside_mask : bool array (N,), the images the slice covers (of a held-out set)
    errors : bool array (N,), True where the model fails on the image (``pred != label``)
    confidence : float in (0, 1), the interval level (0.95)
    method : ``"wilson"`` (default) or ``"exact"`` (Clopper-Pearson)

    Returns
    -------
    SliceEvidence
    """
    inside = check_array(inside_mask, "inside_mask", ndim=1, dtype="bool")
    err = check_array(errors, "errors", ndim=1, dtype="bool")
    check_same_length(inside_mask=inside, errors=err)
    check_choice(method, "method", CI_METHODS)
    if not (0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence: expected a level in (0, 1), got {confidence!r}")
    n_in, n_out = int(inside.sum()), int((~inside).sum())
    k_in, k_out = int(err[inside].sum()), int(err[~inside].sum())
    e_in, ci_in = _rate_ci(k_in, n_in, confidence, method)
    e_out, ci_out = _rate_ci(k_out, n_out, confidence, method)
    if n_in and n_out:
        from scipy.stats import fisher_exact

        p = float(fisher_exact([[k_in, n_in - k_in], [k_out, n_out - k_out]]).pvalue)
    else:
        p = float("nan")
    return SliceEvidence(n_in, n_out, k_in, k_out, e_in, e_out, ci_in, ci_out, p, float(confidence), method)
