"""Selection of the sparse masks rho_i of Zhang et al. 2018 (paper Eqs. 1-3).

Per image I and attribute i the output is linearised at the chosen layer,
Y_i^I = (nu_i^I)^T x^I + beta_i^I with nu_i^I = dY_i/dx, so that the per-unit *contributions*
c_ik^I = nu_ik^I * x_k^I add up to Y_i^I - beta_i^I. A mask rho_i in {0, 1}^N keeps some units:
the masked model is (rho_i o nu_i^I)^T x^I + beta_i^I and its error on image I is the sum of the
contributions of the dropped units. The paper's objective (Eq. 3) is

    rho_i = argmin_rho  mean_I [ sum_k (1 - rho_k) c_ik^I ]^2  +  lambda * ||rho||_1 .

Two selections are offered:

``"lars"`` (default)
    scikit-learn's ``lars_path(C, t, method="lasso", positive=True)``: the Lasso path of the
    regression of t^I = sum_k c_ik^I on the contributions with non-negative weights (at w = 1 the fit
    is exact, so the path heads towards the full mask); rho_k = 1 for the units active when
    ``max_units`` units have entered or the path reaches alpha = ``l1_penalty * mean_I (t^I)^2 / 2``
    (lars_path's alpha is the penalty of (1 / 2M) ||t - C w||^2 + alpha ||w||_1). This is the paper's
    "Lasso selection" as a continuous relaxation (weights in [0, inf) instead of {0, 1}).
``"greedy"``
    Forward selection on the exact binary objective. Start with an empty mask (the residual of image
    I is t^I). At each step add the unit k whose inclusion lowers the mean squared residual the most,
    gain_k = mean_I [2 r^I c_ik^I - (c_ik^I)^2]; stop when the best gain is not larger than the L1
    price of one unit, ``l1_penalty * mean_I (t^I)^2`` (lambda relative to the empty mask's error, so it
    does not depend on the scale of Y), or when ``max_units`` units are selected. Written here because
    scikit-learn has no selection of binary (0/1-weighted) units. Known weakness: once the residual is
    cancelled, units whose contributions have the opposite sign (patterns that *lower* the score) are
    never added, so it can miss negative evidence; "lars" does not have this problem (tested on a
    planted case), hence the default.
"""

from __future__ import annotations

import warnings

import numpy as np

from failwidgets._validation import check_array, check_choice, check_in_range, check_positive_int

__all__ = ["contributions", "select_mask", "SELECTIONS"]

SELECTIONS = ("lars", "greedy")


def contributions(activations, gradients) -> np.ndarray:
    """Per-unit contributions c^I = nu^I * x^I.

    Parameters
    ----------
    activations : ndarray (M, N)
        Layer activations x^I (flattened).
    gradients : ndarray (M, N)
        Gradients nu_i^I = dY_i/dx of one attribute (flattened).

    Returns
    -------
    ndarray (M, N) float32.
    """
    x = check_array(activations, "activations", ndim=2, dtype="float")
    g = check_array(gradients, "gradients", shape=x.shape, dtype="float")
    return (x * g).astype(np.float32, copy=False)


def select_mask(
    contrib,
    *,
    selection: str = "lars",
    l1_penalty: float = 1e-3,
    max_units: int | None = 256,
) -> np.ndarray:
    """Select the mask rho_i for one attribute (see the module docstring for the exact procedure).

    Parameters
    ----------
    contrib : ndarray (M, N)
        Per-unit contributions c_ik^I over the training images.
    selection : {"lars", "greedy"}
    l1_penalty : float >= 0
        lambda relative to the mean squared error of the empty mask.
    max_units : int or None
        Budget on ||rho||_1 (None: no budget other than the penalty).

    Returns
    -------
    bool ndarray (N,), the mask rho_i.
    """
    c = check_array(contrib, "contrib", ndim=2, dtype="float")
    check_choice(selection, "selection", SELECTIONS)
    lam = check_in_range(l1_penalty, "l1_penalty", 0.0, np.inf)
    n_units = c.shape[1]
    budget = n_units if max_units is None else min(check_positive_int(max_units, "max_units"), n_units)
    target = c.sum(axis=1, dtype=np.float64)
    base = float(np.mean(target**2))
    if base == 0.0:
        return np.zeros(n_units, dtype=bool)
    if selection == "greedy":
        return _greedy(c, target, lam * base, budget)
    return _lars(c, target, lam * base, budget)


def _greedy(c: np.ndarray, target: np.ndarray, price: float, budget: int) -> np.ndarray:
    m = c.shape[0]
    c64 = c.astype(np.float64, copy=False)
    sq = np.einsum("mk,mk->k", c64, c64) / m  # mean_I (c_k^I)^2
    resid = target.copy()
    mask = np.zeros(c.shape[1], dtype=bool)
    for _ in range(budget):
        gain = 2.0 * (resid @ c64) / m - sq
        gain[mask] = -np.inf
        k = int(np.argmax(gain))
        if not gain[k] > price:
            break
        mask[k] = True
        resid -= c64[:, k]
    return mask


def _lars(c: np.ndarray, target: np.ndarray, alpha_min: float, budget: int) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lars_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # lars_path's alpha is the penalty of (1 / (2 M)) ||t - C w||^2 + alpha ||w||_1
        _, _, coefs = lars_path(
            c.astype(np.float64),
            target,
            method="lasso",
            positive=True,
            alpha_min=alpha_min / 2.0,
            max_iter=budget,
        )
    mask = coefs[:, -1] > 0
    if mask.sum() > budget:  # a lasso step can add a unit after the last drop; keep the largest weights
        keep = np.argsort(-coefs[:, -1])[:budget]
        mask = np.zeros_like(mask)
        mask[keep] = True
    return mask
