"""The Domino mixture: with the label terms off it is exactly a diagonal Gaussian mixture (sklearn's EM);
with them on it isolates a planted error cluster that the embeddings alone do not separate best."""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from failwidgets.slices import DominoMixture, DominoSlicer, best_slice


def test_without_label_terms_em_equals_sklearn_diagonal_gmm():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (150, 4)), rng.normal(3, 1, (50, 4))])
    y, P = np.zeros(200, int), np.tile([0.9, 0.1], (200, 1))
    kw = dict(y_weight=0, y_hat_weight=0, tol=0, init_params="random", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = DominoMixture(3, max_iter=1, **kw).fit(X, y, P)  # the initial M-step and one EM iteration
        ours = DominoMixture(3, max_iter=6, **kw).fit(X, y, P)
        ref = GaussianMixture(
            3,
            covariance_type="diag",
            weights_init=start.weights_,
            means_init=start.means_,
            precisions_init=1 / start.variances_,
            max_iter=5,
            tol=0,
            reg_covar=1e-6,
        ).fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-10)
    np.testing.assert_allclose(ours.variances_, ref.covariances_, atol=1e-10)
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-12)


def _clusters(rng, n=130):
    """Three embedding clusters of one class; in cluster 0 a third of the images are errors (class 1
    predicted), indistinguishable from the rest of the cluster by their embeddings."""
    X = np.concatenate([rng.normal(4 * c, 1, (n, 5)) for c in range(3)])
    truth = np.zeros(3 * n, bool)
    truth[:40] = True
    p1 = np.where(truth, rng.uniform(0.6, 0.95, 3 * n), rng.uniform(0.02, 0.3, 3 * n))
    order = rng.permutation(3 * n)
    return X[order], np.stack([1 - p1, p1], axis=1)[order], truth[order]


@pytest.mark.parametrize("seed", [0, 1])
def test_error_aware_mixture_separates_errors_that_embeddings_alone_do_not(seed):
    rng = np.random.default_rng(seed)
    (Xv, Pv, _), (Xt, Pt, truth) = _clusters(rng), _clusters(rng)
    zeros = np.zeros(len(Xv), int)
    found = {}
    for gamma in (0.0, 10.0):
        sl = DominoSlicer(n_slices=5, n_components=8, y_weight=gamma, y_hat_weight=gamma, random_state=0)
        sl.fit(Xv, zeros, Pv)
        mem = sl.predict_proba(Xt, zeros, Pt)
        assert mem.shape == (len(Xt), 5)
        found[gamma] = best_slice(truth, mem)["precision_at_25"]
        # the chosen components are the ones whose predictions disagree most with their labels
        gap = np.abs((sl.mixture_.y_hat_probs_ - sl.mixture_.y_probs_).max(axis=1))
        assert gap[sl.slice_components_[0]] == pytest.approx(gap.max())
    assert found[10.0] >= 0.9
    assert found[0.0] <= 0.6


def test_confusion_init_uses_the_cells_present():
    # one label, three predicted classes: 3 cells, fewer than C^2 = 9 components is fine
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    P = rng.dirichlet(np.ones(3), 60)
    m = DominoMixture(4, random_state=0).fit(X, np.zeros(60, int), P)
    assert np.all(np.isfinite(m.means_)) and m.weights_.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_components"):
        DominoMixture(100).fit(X, np.zeros(60, int), P)
