"""Domino's error-aware mixture model (Eyuboglu et al., "Domino: Discovering Systematic Errors with
Cross-Modal Embeddings", ICLR 2022), written from the paper and its reference ``DominoMixture``.

The ``domino`` package (0.1.5) cannot be installed next to this project: it pins ``scikit-learn==0.24.2``,
which does not build on Python 3.11. This module implements the same model with numpy.

Generative model (paper, section 4): each image belongs to one of ``k`` components ``S ~ Cat(p_S)``;
given ``S = s`` its embedding is Gaussian ``Z ~ N(mu_s, diag(sigma_s^2))``, its label categorical
``Y ~ Cat(p_s)`` and the model's prediction categorical ``Y_hat ~ Cat(p_hat_s)``. EM maximises

    sum_i log sum_s P(S=s) N(z_i; mu_s, Sigma_s) P(Y=y_i | s)^gamma P(Y_hat=y_hat_i | s)^gamma_hat

with soft predictions plugged into the categorical (``P(Y_hat | s) = sum_j probs_ij p_hat_sj``) and soft
M-step updates, as in the reference. Initialisation ``"confusion"``: components are assigned round-robin
to cells ``(y, y_hat)`` of the confusion matrix and each image's initial responsibility is spread over the
components of its cell (plus uniform noise in ``(0, confusion_noise]``). The reference enumerates all
``C^2`` cells and refuses ``n_components < C^2``; here only the cells that occur in the data are
enumerated (the same assignment when every cell occurs), so a class's data (one label, C predictions)
needs only ``C`` components. The slices returned are the ``n_slices`` components with the largest
``|max_j (p_hat_sj - p_sj)|`` (the reference's rule); embeddings are reduced by PCA first (128 components
by default, fewer when the data has fewer dimensions or rows).

Hyperparameters follow the reference defaults (25 components, 5 slices, diagonal covariance,
``reg_covar = 1e-6``, ``tol = 1e-3``, 100 EM iterations) except ``gamma = gamma_hat = 10``, the value
Domino's own dcbench runs use (the package default is 1).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logsumexp
from sklearn.decomposition import PCA

from failwidgets._validation import check_array, check_in_range, check_labels, check_positive_int, check_same_length

__all__ = ["DominoMixture", "DominoSlicer"]

_EPS = np.finfo(np.float64).eps


class DominoMixture:
    """Gaussian mixture (diagonal covariances) over embeddings jointly with labels and predictions.

    Parameters
    ----------
    n_components : int
    y_weight, y_hat_weight : float >= 0
        ``gamma`` and ``gamma_hat``: weights of the label and prediction log-likelihoods in the E-step.
    max_iter : int
    tol : float
        EM stops when the mean log-likelihood changes by less than this.
    reg_covar : float
        Added to every variance.
    init_params : {"confusion", "random"}
    confusion_noise : float
    random_state : int or None

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_, variances_ : ndarray (K, D)
    y_probs_, y_hat_probs_ : ndarray (K, C)
        Per component, the label and (soft) prediction distributions.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    """

    def __init__(
        self,
        n_components: int = 25,
        *,
        y_weight: float = 10.0,
        y_hat_weight: float = 10.0,
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        init_params: str = "confusion",
        confusion_noise: float = 1e-3,
        random_state=None,
    ):
        self.n_components = n_components
        self.y_weight = y_weight
        self.y_hat_weight = y_hat_weight
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.confusion_noise = confusion_noise
        self.random_state = random_state

    # ----------------------------------------------------------------------------------------------
    @staticmethod
    def _inputs(X, y, y_hat, n_classes):
        X = check_array(X, "X", ndim=2, dtype="float", min_len=2).astype(np.float64)
        y = check_labels(y, "y", n_classes=n_classes)
        P = check_array(y_hat, "y_hat", ndim=2, shape=(None, n_classes), dtype="float").astype(np.float64)
        check_same_length(X=X, y=y, y_hat=P)
        Y = np.zeros((len(y), n_classes))
        Y[np.arange(len(y)), y] = 1.0
        return X, Y, P

    def _init_resp(self, Y, P, rng):
        n, k = Y.shape[0], self.n_components
        if self.init_params == "random":
            resp = rng.random((n, k))
        elif self.init_params == "confusion":
            cells = (Y[:, :, None] * P[:, None, :]).reshape(n, -1)  # (n, C*C): y one-hot x soft y_hat
            present = np.flatnonzero(cells.sum(axis=0) > 0)
            cells = cells[:, present]
            reps = -(-k // cells.shape[1])
            resp = np.concatenate([cells] * reps, axis=1)[:, :k]
            resp = resp / np.maximum(resp.sum(axis=1, keepdims=True), _EPS)
            resp = resp + rng.random((n, k)) * self.confusion_noise
        else:
            raise ValueError(f"init_params: expected 'confusion' or 'random', got {self.init_params!r}")
        return resp / resp.sum(axis=1, keepdims=True)

    def _m_step(self, X, Y, P, resp):
        nk = resp.sum(axis=0) + 10 * _EPS
        means = resp.T @ X / nk[:, None]
        # sklearn's diagonal estimate: E[x^2] - 2 E[x] mu + mu^2, plus the regulariser
        avg_x2 = resp.T @ (X * X) / nk[:, None]
        var = avg_x2 - 2 * means * (resp.T @ X) / nk[:, None] + means**2 + self.reg_covar
        self.weights_ = nk / X.shape[0]
        self.means_ = means
        self.variances_ = np.maximum(var, self.reg_covar)
        self.y_probs_ = resp.T @ Y / nk[:, None]
        self.y_hat_probs_ = resp.T @ P / nk[:, None]

    def _weighted_log_prob(self, X, Y, P):
        prec = 1.0 / self.variances_  # (K, D)
        log_det = np.sum(np.log(prec), axis=1)  # log |Sigma^-1|
        maha = (X * X) @ prec.T - 2 * X @ (self.means_ * prec).T + np.sum(self.means_**2 * prec, axis=1)
        log_gauss = -0.5 * (X.shape[1] * np.log(2 * np.pi) + maha) + 0.5 * log_det
        out = log_gauss + np.log(self.weights_)
        if Y is not None:
            out = out + self.y_weight * np.log(Y @ self.y_probs_.T + _EPS)
        if P is not None:
            out = out + self.y_hat_weight * np.log(P @ self.y_hat_probs_.T + _EPS)
        return out

    def _e_step(self, X, Y, P):
        wlp = self._weighted_log_prob(X, Y, P)
        norm = logsumexp(wlp, axis=1)
        return norm, wlp - norm[:, None]

    def fit(self, X, y, y_hat) -> DominoMixture:
        """Fit by EM.

        Parameters
        ----------
        X : ndarray (N, D)
            Embeddings (already reduced, e.g. by PCA).
        y : ndarray (N,) int
            Labels in ``[0, C)``.
        y_hat : ndarray (N, C)
            The model's probabilities (soft predictions; one-hot rows for hard ones).
        """
        k = check_positive_int(self.n_components, "n_components")
        check_positive_int(self.max_iter, "max_iter")
        for name in ("y_weight", "y_hat_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)!r}")
        check_in_range(self.confusion_noise, "confusion_noise", 0.0, 1.0)
        n_classes = check_array(y_hat, "y_hat", ndim=2).shape[1]
        X, Y, P = self._inputs(X, y, y_hat, n_classes)
        if X.shape[0] < k:
            raise ValueError(f"X: expected at least n_components={k} rows, got {X.shape[0]}")
        rng = np.random.default_rng(self.random_state)
        self._m_step(X, Y, P, self._init_resp(Y, P, rng))
        lower = -np.inf
        self.converged_ = False
        for it in range(1, int(self.max_iter) + 1):  # noqa: B007  (the last value is n_iter_)
            prev = lower
            norm, log_resp = self._e_step(X, Y, P)
            self._m_step(X, Y, P, np.exp(log_resp))
            lower = float(np.mean(norm))
            if abs(lower - prev) < self.tol:
                self.converged_ = True
                break
        if not self.converged_:
            warnings.warn(
                f"DominoMixture: EM did not converge in {self.max_iter} iterations", RuntimeWarning, stacklevel=2
            )
        self.n_iter_ = it
        self.lower_bound_ = lower
        self.n_classes_ = n_classes
        return self

    def predict_proba(self, X, y=None, y_hat=None) -> np.ndarray:
        """Responsibilities ``(N, K)`` given embeddings and, if known, labels and predictions."""
        if not hasattr(self, "means_"):
            raise RuntimeError("DominoMixture: call fit(X, y, y_hat) first")
        X = check_array(X, "X", ndim=2, shape=(None, self.means_.shape[1]), dtype="float").astype(np.float64)
        Y = P = None
        if y is not None:
            y = check_labels(y, "y", n_classes=self.n_classes_, length=len(X))
            Y = np.zeros((len(y), self.n_classes_))
            Y[np.arange(len(y)), y] = 1.0
        if y_hat is not None:
            P = check_array(y_hat, "y_hat", shape=(len(X), self.n_classes_), dtype="float").astype(np.float64)
        return np.exp(self._e_step(X, Y, P)[1])


class DominoSlicer:
    """PCA + :class:`DominoMixture`; the ``n_slices`` most error-aligned components are the slices.

    Parameters
    ----------
    n_slices : int
    n_pca_components : int or None
        Upper bound on the PCA components (``min`` with the data's dimensions and rows - 1); None: no PCA.
    **mixture : parameters of :class:`DominoMixture`.

    Attributes
    ----------
    pca_ : PCA or None
    mixture_ : DominoMixture
    slice_components_ : ndarray (n_slices,) int
    """

    def __init__(self, n_slices: int = 5, n_pca_components: int | None = 128, **mixture):
        self.n_slices = n_slices
        self.n_pca_components = n_pca_components
        self.mixture = mixture

    def _reduce(self, X):
        return X if self.pca_ is None else self.pca_.transform(X)

    def fit(self, embeddings, labels, probs) -> DominoSlicer:
        """embeddings : (N, D); labels : (N,) int; probs : (N, C) softmax outputs."""
        n_slices = check_positive_int(self.n_slices, "n_slices")
        X = check_array(embeddings, "embeddings", ndim=2, dtype="float", min_len=2).astype(np.float64)
        self.pca_ = None
        if self.n_pca_components is not None:
            n = min(check_positive_int(self.n_pca_components, "n_pca_components"), X.shape[1], X.shape[0] - 1)
            self.pca_ = PCA(n_components=n, random_state=0).fit(X)
        rs = self.mixture.get("random_state", 0)
        self.mixture_ = DominoMixture(**{**self.mixture, "random_state": rs}).fit(self._reduce(X), labels, probs)
        gap = np.abs((self.mixture_.y_hat_probs_ - self.mixture_.y_probs_).max(axis=1))
        self.slice_components_ = np.argsort(-gap, kind="stable")[:n_slices]
        return self

    def predict_proba(self, embeddings, labels=None, probs=None) -> np.ndarray:
        """Slice memberships ``(N, n_slices)``: responsibilities of the slice components."""
        if not hasattr(self, "mixture_"):
            raise RuntimeError("DominoSlicer: call fit(embeddings, labels, probs) first")
        X = check_array(embeddings, "embeddings", ndim=2, dtype="float").astype(np.float64)
        resp = self.mixture_.predict_proba(self._reduce(X), labels, probs)
        return resp[:, self.slice_components_]
