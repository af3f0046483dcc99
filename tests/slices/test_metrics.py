"""Precision-at-k of the best matching slice, checked on cases computed by hand and against dcbench's
ordinal-rank formula where there are no ties."""

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import precision_score

from failwidgets.slices import FunctionMethod, SliceMethod, best_slice, check_memberships, precision_at_k, summarize


def test_precision_at_k_by_hand():
    truth = np.array([1, 0, 1, 0, 0], bool)
    scores = np.array([5.0, 4, 3, 2, 1])
    assert precision_at_k(truth, scores, 1) == 1.0
    assert precision_at_k(truth, scores, 2) == 0.5
    assert precision_at_k(truth, scores, 3) == pytest.approx(2 / 3)
    assert precision_at_k(truth, -scores, 3) == pytest.approx(1 / 3)


def test_ties_count_in_expectation():
    # one sure hit above the tie, then 1 place among 3 tied images of which 1 is in the slice: (1 + 1/3) / 2
    truth = np.array([1, 0, 1, 0, 0], bool)
    assert precision_at_k(truth, np.array([3.0, 2, 2, 2, 1]), 2) == pytest.approx(2 / 3)
    # a method that cannot tell images apart scores the prevalence, whatever the order of the images
    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0], bool)
    assert precision_at_k(truth, np.zeros(8), 4) == pytest.approx(0.25)
    assert precision_at_k(truth[::-1], np.zeros(8), 4) == pytest.approx(0.25)


def test_nan_ranks_last_and_k_is_capped_at_n():
    assert precision_at_k(np.array([1, 0, 0], bool), np.array([np.nan, 1.0, 0.0]), 1) == 0.0
    assert precision_at_k(np.array([1, 0, 0], bool), np.array([np.nan, np.nan, np.nan]), 3) == pytest.approx(1 / 3)
    assert precision_at_k(np.array([1, 0], bool), np.array([1.0, 0.0]), 10) == 0.5


def test_agrees_with_dcbench_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = rng.random(200) < 0.1
        scores = rng.normal(size=200) + 2 * truth * rng.random()
        for k in (10, 25):
            dcbench = precision_score(truth, rankdata(-scores, method="ordinal") <= k, zero_division=0)
            assert precision_at_k(truth, scores, k) == pytest.approx(dcbench)


def test_best_slice_is_chosen_by_precision_at_10_and_reports_its_precision_at_25():
    n = 60
    truth = np.zeros(n, bool)
    truth[:20] = True
    a = np.zeros(n)
    a[:10] = 1.0  # top 10 all in the slice, then ties: P@10 = 1, P@25 = (10 + 15 * 10/50) / 25
    b = np.zeros(n)
    b[:20] = np.linspace(1, 2, 20)  # all 20 slice images first: P@10 = 1 too, P@25 = 20/25
    b[0] = -1  # ... but one slice image falls to the bottom: P@10 = 1, P@25 = 19/25
    c = np.where(truth, 0.0, 1.0)  # the slice last
    out = best_slice(truth, np.stack([c, a, b], axis=1))
    assert out["slice"] == 1  # first column with the best P@10 (a and b tie at 1.0)
    assert out["precision_at_10"] == 1.0
    assert out["precision_at_25"] == pytest.approx((10 + 15 * 10 / 50) / 25)


def test_summarize_by_hand():
    rows = [
        {"method": "m", "kind": "rare", "precision_at_10": 0.8, "precision_at_25": 0.4, "seconds": 1.0},
        {"method": "m", "kind": "rare", "precision_at_10": 0.7, "precision_at_25": 0.6, "seconds": 3.0},
        {"method": "m", "kind": "noisy", "precision_at_10": 1.0, "precision_at_25": 1.0, "seconds": 2.0},
    ]
    s = {(e["method"], e["group"]): e for e in summarize(rows)}
    assert s[("m", "rare")]["n"] == 2 and s[("m", "rare")]["n_found"] == 1 and s[("m", "rare")]["found"] == 0.5
    assert s[("m", "rare")]["mean_precision_at_10"] == pytest.approx(0.75)
    assert s[("m", "rare")]["mean_seconds"] == pytest.approx(2.0)
    assert s[("m", "all")]["n_found"] == 2 and s[("m", "all")]["found"] == pytest.approx(2 / 3)
    assert s[("m", "all")]["mean_precision_at_25"] == pytest.approx(2.0 / 3)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="scores"):
        precision_at_k(np.array([1, 0], bool), np.array([1.0, 0.0, 3.0]), 1)
    with pytest.raises(ValueError, match="truth"):
        precision_at_k(np.zeros(0, bool), np.zeros(0), 1)
    with pytest.raises(ValueError, match="predicted slices"):
        check_memberships(np.zeros((4, 6)), 4)
    with pytest.raises(ValueError, match="rows"):
        check_memberships(np.zeros((3, 2)), 4)


def test_function_method_satisfies_the_protocol():
    m = FunctionMethod("const", lambda val, data: np.zeros(len(data)))
    assert isinstance(m, SliceMethod)
    with pytest.raises(RuntimeError, match="fit"):
        m.score([1, 2])
