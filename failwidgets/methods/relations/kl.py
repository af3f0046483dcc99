"""Formulas of Zhang et al. 2018 (AAAI): the class-relation statistics (Eqs. 1-5: densities, KL, relation matrices).

Pure functions on arrays: the per-image relation matrices r_ij^I (cosine of the masked gradients,
computed as a batched Gram matrix of normalised vectors), the smoothed histogram estimate of
Q(r_ij), the Gaussian ground-truth distribution P(r_ij | level) and KL(P || Q) integrated numerically
over [-1, 1] (paper Eq. 4), and the per-attribute KL (paper Eq. 5).
"""

from __future__ import annotations

import numpy as np
import torch

from failwidgets._validation import check_array, check_positive_int

__all__ = [
    "relation_matrices",
    "histogram_density",
    "gaussian_density",
    "kl_gaussian_histogram",
    "attribute_kl",
]


def relation_matrices(vectors, eps: float = 1e-12) -> np.ndarray:
    """Cosine relation r_ij^I = cos(v_i^I, v_j^I) of every attribute pair on every image.

    Parameters
    ----------
    vectors : ndarray or Tensor (M, n, D)
        The masked inference patterns v_i^I of n attributes on M images (flattened units).
    eps : float
        Vectors with a norm below ``eps`` have no direction; their relations are NaN.

    Returns
    -------
    ndarray (M, n, n), float32
        Batched Gram matrix of the L2-normalised vectors; the diagonal is 1 where defined.
    """
    v = torch.as_tensor(check_array(vectors, "vectors", ndim=3, dtype="float"))
    norms = v.norm(dim=2, keepdim=True)
    ok = norms > eps
    unit = torch.where(ok, v / norms.clamp_min(eps), torch.zeros_like(v))
    gram = torch.bmm(unit, unit.transpose(1, 2)).clamp_(-1.0, 1.0)
    defined = ok & ok.transpose(1, 2)  # (M, n, 1) & (M, 1, n) -> (M, n, n)
    gram = torch.where(defined, gram, torch.full_like(gram, float("nan")))
    return gram.numpy().astype(np.float32, copy=False)


def histogram_density(values, bins: int = 40, smoothing: float = 1.0) -> np.ndarray:
    """Smoothed histogram density of relation values on [-1, 1].

    q_b = (count_b + smoothing) / (M + bins * smoothing) / width, width = 2 / bins, so every bin has a
    positive density (the KL stays finite) and the density integrates to 1 over [-1, 1].

    Parameters
    ----------
    values : ndarray (M,) or histogram counts
        Relation values in [-1, 1] (NaN values are ignored).
    bins : int
        Number of equal-width bins on [-1, 1].
    smoothing : float
        Pseudo-count added to each bin (additive smoothing), > 0.

    Returns
    -------
    ndarray (bins,), float64 density per bin.
    """
    counts = histogram_counts(values, bins)
    return density_from_counts(counts, smoothing)


def histogram_counts(values, bins: int = 40) -> np.ndarray:
    """Counts (bins,) of the finite values in equal-width bins over [-1, 1] (values clipped)."""
    bins = check_positive_int(bins, "bins", minimum=2)
    vals = check_array(values, "values", ndim=1, dtype="float", finite=False).astype(np.float64)
    vals = np.clip(vals[np.isfinite(vals)], -1.0, 1.0)
    counts, _ = np.histogram(vals, bins=bins, range=(-1.0, 1.0))
    return counts.astype(np.float64)


def density_from_counts(counts, smoothing: float = 1.0) -> np.ndarray:
    """Smoothed density (..., bins) on [-1, 1] from histogram counts (..., bins)."""
    counts = np.asarray(counts, dtype=np.float64)
    if not smoothing > 0:
        raise ValueError(f"smoothing: expected a pseudo-count > 0 (keeps KL finite), got {smoothing!r}")
    bins = counts.shape[-1]
    width = 2.0 / bins
    total = counts.sum(axis=-1, keepdims=True)
    return (counts + smoothing) / (total + bins * smoothing) / width


def gaussian_density(r, mu: float, sigma: float) -> np.ndarray:
    """Normal(mu, sigma^2) density at ``r`` (any shape)."""
    if not sigma > 0:
        raise ValueError(f"sigma: expected a standard deviation > 0, got {sigma!r}")
    r = np.asarray(r, dtype=np.float64)
    return np.exp(-0.5 * ((r - mu) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def kl_gaussian_histogram(mu: float, sigma: float, q_density, grid_size: int = 2000) -> float:
    """KL(P || Q) of P = Normal(mu, sigma^2) restricted to [-1, 1] against a histogram density Q.

    Paper Eq. (4) with Omega = [-1, 1]. The integral is a midpoint rule on ``grid_size`` points;
    P is renormalised to integrate to 1 over [-1, 1] (so KL >= 0 even when mu is near +-1), and Q is the
    piecewise-constant density of its bins.

    Parameters
    ----------
    mu, sigma : float
        Mean and standard deviation of P (the level's fitted Gaussian).
    q_density : ndarray (bins,)
        Density of Q per equal-width bin on [-1, 1], all > 0 (see :func:`histogram_density`).
    grid_size : int
        Number of integration points.

    Returns
    -------
    float, KL in nats.
    """
    q = np.asarray(q_density, dtype=np.float64)
    if q.ndim != 1 or q.size < 2:
        raise ValueError(f"q_density: expected a 1-D array of bin densities, got shape {q.shape}")
    if not np.all(q > 0):
        raise ValueError("q_density: expected strictly positive densities (smooth the histogram)")
    grid_size = check_positive_int(grid_size, "grid_size", minimum=10)
    h = 2.0 / grid_size
    r = -1.0 + (np.arange(grid_size) + 0.5) * h
    p = gaussian_density(r, mu, sigma)
    mass = p.sum() * h
    if mass <= 0:
        raise ValueError(f"P = Normal({mu}, {sigma}^2) has no mass on [-1, 1]")
    p = p / mass
    bins = q.size
    idx = np.minimum(((r + 1.0) / 2.0 * bins).astype(int), bins - 1)
    qr = q[idx]
    pos = p > 0
    return float(np.sum(p[pos] * np.log(p[pos] / qr[pos])) * h)


def attribute_kl(kl_pairs, labelled) -> np.ndarray:
    """KL per attribute (paper Eq. 5): KL_i = sum over labelled neighbours j of KL_ij / deg(i).

    Parameters
    ----------
    kl_pairs : ndarray (n, n)
        Symmetric KL of each pair (values of unlabelled pairs are ignored).
    labelled : bool ndarray (n, n)
        Symmetric mask of labelled pairs (the edges of the ground-truth graph). Pairs whose KL is NaN
        (no images in Q) are left out of the degree.

    Returns
    -------
    ndarray (n,), NaN for attributes with no labelled neighbour.
    """
    kl = check_array(kl_pairs, "kl_pairs", ndim=2, dtype="float", finite=False).astype(np.float64)
    lab = check_array(labelled, "labelled", shape=kl.shape, dtype="bool")
    lab = lab & ~np.eye(kl.shape[0], dtype=bool) & np.isfinite(kl)  # pairs without a defined KL don't count
    deg = lab.sum(axis=1)
    total = np.where(lab, kl, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(deg > 0, total / np.maximum(deg, 1), np.nan)
