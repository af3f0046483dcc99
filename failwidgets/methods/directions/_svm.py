"""Per-class linear SVMs for failure directions (Jain et al. 2023, section 2.1 and appendix A.2).

The reference recipe: ``SVC(kernel="linear", class_weight="balanced")``, ``C`` in ``logspace(-6, 0, 7)``
chosen by 2-fold stratified cross-validation on balanced accuracy, refit on all of the class's data; the
mean CV balanced accuracy at the chosen ``C`` is the failure mode's *strength*.

:func:`_reference_cv_svm` runs that recipe literally with ``GridSearchCV``. :func:`cv_linear_svm` gives the
same numbers (same solver, same folds, same tie-breaking) an order of magnitude faster: a class has few
points (tens to hundreds) in a high-dimensional space, so it computes the class's Gram matrix once and
hands sub-blocks of it to libsvm as a precomputed kernel for every (C, fold) fit. Most of the reference's
time is estimator cloning and input validation around tiny libsvm calls, which is why we call scikit-learn's
libsvm binding directly (falling back to the public ``SVC(kernel="precomputed")`` if that binding changes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

DEFAULT_CS = np.logspace(-6, 0, 7)

try:  # scikit-learn's own libsvm binding, the solver behind SVC
    from sklearn.svm import _libsvm
except ImportError:  # pragma: no cover - depends on the scikit-learn version
    _libsvm = None


@dataclass
class SVMFit:
    """Result of a cross-validated linear SVM.

    Attributes
    ----------
    coef : ndarray (D,)
        Weight vector ``w``; ``d(x) = w . x + intercept``, positive = correct (easy).
    intercept : float
    best_C : float
    cv_scores : ndarray (n_Cs,)
        Mean CV balanced accuracy per candidate ``C``.
    strength : float
        ``cv_scores`` at ``best_C``.
    """

    coef: np.ndarray
    intercept: float
    best_C: float
    cv_scores: np.ndarray
    strength: float


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (as ``sklearn.metrics.balanced_accuracy_score``).

    Written out because it runs inside the inner CV loop, where the scikit-learn scorer's validation costs
    more than the computation.
    """
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def _balanced_class_weight(y: np.ndarray) -> np.ndarray:
    """``n / (2 * bincount(y))`` for labels {0, 1}, as ``class_weight="balanced"``."""
    counts = np.bincount(y, minlength=2).astype(np.float64)
    return y.size / (2.0 * counts)


def _fit_precomputed(gram: np.ndarray, y: np.ndarray, C: float):
    """Fit a binary C-SVC on a precomputed Gram block; returns (support, dual_coef, intercept).

    Signs follow scikit-learn's public ``SVC``: ``d = dual_coef @ K[support] + intercept`` > 0 means class 1.
    """
    if _libsvm is not None:
        try:
            _libsvm.set_verbosity_wrap(0)  # libsvm's print switch is global; SVC sets it before every fit
            support, _, _, dual, intercept, *_ = _libsvm.fit(
                np.ascontiguousarray(gram, dtype=np.float64),
                y.astype(np.float64),
                svm_type=0,
                kernel="precomputed",
                C=float(C),
                class_weight=_balanced_class_weight(y),
                tol=1e-3,
                cache_size=200,
            )
            # libsvm orders the binary problem with the first class positive; SVC flips both signs.
            return support, -dual[0], -float(intercept[0])
        except TypeError:  # pragma: no cover - private signature changed; use the public estimator
            pass
    svc = SVC(kernel="precomputed", C=float(C), class_weight="balanced").fit(gram, y)
    return svc.support_, svc.dual_coef_[0], float(svc.intercept_[0])


def cv_linear_svm(X: np.ndarray, y: np.ndarray, Cs=DEFAULT_CS, n_splits: int = 2, random_state=None) -> SVMFit:
    """Cross-validated linear SVM, numerically the reference recipe, computed fast.

    Parameters
    ----------
    X : ndarray (n, D)
        Preprocessed embeddings of one class.
    y : ndarray (n,)
        1 = correct, 0 = error; each value must occur at least ``n_splits`` times.
    Cs : sequence of float
    n_splits : int
        Stratified folds (unshuffled when ``random_state`` is None, as ``GridSearchCV(cv=2)``).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    gram = X @ X.T
    scores = _cv_scores(gram, y, Cs, n_splits, random_state)
    best = int(np.argmax(scores))  # first maximum, as GridSearchCV's rank-based choice
    support, dual, intercept = _fit_precomputed(gram, y, Cs[best])
    coef = dual @ X[support]
    return SVMFit(coef, intercept, float(Cs[best]), scores, float(scores[best]))


def _cv_scores(gram: np.ndarray, y: np.ndarray, Cs, n_splits: int, random_state) -> np.ndarray:
    """Mean CV balanced accuracy (n_Cs,) of the linear SVM for each ``C``, from the class's Gram matrix."""
    folds = list(_folds(n_splits, random_state).split(np.zeros(len(y)), y))
    fold_scores = np.empty((len(Cs), len(folds)))
    for j, (train, test) in enumerate(folds):
        block, cross = gram[np.ix_(train, train)], gram[np.ix_(train, test)]  # shared by every C
        for i, C in enumerate(Cs):
            support, dual, intercept = _fit_precomputed(block, y[train], C)
            decision = dual @ cross[support] + intercept
            fold_scores[i, j] = balanced_accuracy(y[test], (decision > 0).astype(np.int64))
    return fold_scores.mean(axis=1)


def permutation_strengths(
    X: np.ndarray,
    y: np.ndarray,
    Cs=DEFAULT_CS,
    n_splits: int = 2,
    random_state=None,
    n_permutations: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Strengths (n_permutations,) of the same recipe on randomly permuted correct / error targets.

    This is the chance level of :attr:`SVMFit.strength` for this class: with few errors the best of
    ``len(Cs)`` noisy 2-fold scores is well above 0.5 (e.g. a mean of about 0.6 with 5 errors), so a fixed
    line such as 0.6 does not separate a real failure mode from noise. Written here rather than with
    ``sklearn.model_selection.permutation_test_score`` because that scores one fixed estimator, while the
    strength includes the choice of ``C``; the permuted runs must repeat that choice to be comparable, and
    they share the class's Gram matrix.

    Parameters
    ----------
    X : ndarray (n, D), preprocessed embeddings of one class.
    y : ndarray (n,), 1 = correct, 0 = error.
    seed : int, seed of the permutations.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    gram = X @ X.T
    rng = np.random.default_rng(seed)
    return np.array(
        [np.max(_cv_scores(gram, rng.permutation(y), Cs, n_splits, random_state)) for _ in range(int(n_permutations))]
    )


def _folds(n_splits: int, random_state) -> StratifiedKFold:
    shuffle = random_state is not None
    return StratifiedKFold(n_splits, shuffle=shuffle, random_state=random_state if shuffle else None)


def _reference_cv_svm(X: np.ndarray, y: np.ndarray, Cs=DEFAULT_CS, n_splits: int = 2, random_state=None) -> SVMFit:
    """The reference recipe, literally: ``GridSearchCV(SVC(kernel="linear", class_weight="balanced"))``.

    Kept for the benchmark (benchmarks/bench_svm.py) and the test that :func:`cv_linear_svm` reproduces it.
    """
    search = GridSearchCV(
        SVC(kernel="linear", class_weight="balanced"),
        {"C": list(Cs)},
        cv=_folds(n_splits, random_state),
        scoring="balanced_accuracy",
        refit=True,
    ).fit(np.asarray(X, dtype=np.float64), np.asarray(y))
    est = search.best_estimator_
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=np.float64)
    return SVMFit(
        est.coef_[0].copy(),
        float(est.intercept_[0]),
        float(search.best_params_["C"]),
        scores,
        float(search.best_score_),
    )


__all__ = ["SVMFit", "cv_linear_svm", "permutation_strengths", "balanced_accuracy", "DEFAULT_CS"]
