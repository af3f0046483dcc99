"""slice_evidence: counts, Wilson / Clopper-Pearson intervals and Fisher's exact test, hand-computed."""

import math

import numpy as np
import pytest

from failwidgets.methods import SliceEvidence, slice_evidence


def _wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_slice_evidence_hand_computed():
    # inside: 10 images, 3 errors; outside: 20 images, 1 error
    inside = np.array([True] * 10 + [False] * 20)
    errors = np.array([1, 1, 1] + [0] * 7 + [1] + [0] * 19, dtype=bool)
    ev = slice_evidence(inside, errors)
    assert isinstance(ev, SliceEvidence)
    assert (ev.n_inside, ev.n_outside, ev.errors_inside, ev.errors_outside) == (10, 20, 3, 1)
    assert ev.rate_inside == pytest.approx(0.3) and ev.rate_outside == pytest.approx(0.05)
    np.testing.assert_allclose(ev.ci_inside, _wilson(3, 10), rtol=1e-9)
    np.testing.assert_allclose(ev.ci_outside, _wilson(1, 20), rtol=1e-9)
    np.testing.assert_allclose(ev.ci_inside, (0.10779, 0.60322), atol=1e-5)

    # Fisher exact, two-sided, table [[3, 7], [1, 19]]: sum of the hypergeometric probabilities of the
    # tables (a = errors inside, 4 errors in all, 10 of 30 inside) no more likely than the observed one
    def prob(a):
        return math.comb(10, a) * math.comb(20, 4 - a) / math.comb(30, 4)

    observed = prob(3)
    want = sum(prob(a) for a in range(5) if prob(a) <= observed * (1 + 1e-7))
    assert ev.p_value == pytest.approx(want, rel=1e-9)
    assert ev.p_value == pytest.approx(0.0952381, abs=1e-6)  # = prob(3) + prob(4) = 0.0867 + 0.0085
    assert "10 images; error 30% [11%-60%] inside vs 5% [1%-24%] outside" in ev.summary()
    assert ev.to_dict()["ci_inside"] == list(ev.ci_inside)


def test_clopper_pearson_and_edges():
    inside = np.array([True, True, False, False])
    errors = np.array([False, False, True, False])
    ev = slice_evidence(inside, errors, method="exact")
    # 0 of 2: Clopper-Pearson upper bound 1 - (alpha/2)^(1/n) = 1 - 0.025^(1/2)
    assert ev.ci_inside[0] == 0.0 and ev.ci_inside[1] == pytest.approx(1 - 0.025**0.5, rel=1e-9)
    assert ev.p_value == pytest.approx(1.0)
    empty = slice_evidence(np.zeros(3, bool), np.array([True, False, False]))
    assert empty.n_inside == 0 and math.isnan(empty.rate_inside) and math.isnan(empty.p_value)
    assert empty.rate_outside == pytest.approx(1 / 3)
    assert "n/a" in empty.summary()
    with pytest.raises(ValueError, match="inside: expected a boolean mask of length 2, got length 3"):
        slice_evidence(np.ones(3, bool), np.ones(2, bool))
    with pytest.raises(ValueError, match="method"):
        slice_evidence(inside, errors, method="wald")
    with pytest.raises(ValueError, match="confidence"):
        slice_evidence(inside, errors, confidence=95)
