"""Geometry of failure directions: whitening, L2 normalisation, spherical interpolation.

Jain et al. 2023, appendix A.2: embeddings are whitened with the per-dimension mean and standard deviation
of the *training* split, then L2-normalised. Section 2.3: with ``r`` the normalised reference embedding and
``w`` the normalised SVM direction, ``slerp(r, -w, alpha)`` gives harder and ``slerp(r, +w, alpha)`` easier
embeddings.
"""

from __future__ import annotations

import numpy as np

from failwidgets._validation import check_array, check_in_range

_EPS = 1e-12
_ROWS = 8192  # row block of the whole-array passes


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x / ||x||`` along ``axis`` (zero vectors stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, _EPS)


def whitening_stats(train_embeddings) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of the training embeddings.

    Parameters
    ----------
    train_embeddings : ndarray (N, D)

    Returns
    -------
    mean, std : ndarray (D,) float64; a constant dimension gets std 1 so it is centred, not divided by 0.
    """
    X = check_array(train_embeddings, "train_embeddings", ndim=2, dtype="float", min_len=2)
    # two passes over row blocks in float64 (as numpy's mean / std), never a float64 copy of all rows
    blocks = [slice(i, i + _ROWS) for i in range(0, len(X), _ROWS)]
    mean = sum(X[b].sum(axis=0, dtype=np.float64) for b in blocks) / len(X)
    var = sum(np.square(X[b].astype(np.float64) - mean).sum(axis=0) for b in blocks) / len(X)
    std = np.sqrt(var)
    return mean, np.where(std > _EPS, std, 1.0)


def normalized_rows(x, dtype=np.float32) -> np.ndarray:
    """``l2_normalize(x)`` as a new ``dtype`` array, computed in row blocks (no full-size temporaries).

    Parameters
    ----------
    x : ndarray (N, D), e.g. a memory-mapped embedding store.

    Returns
    -------
    ndarray (N, D) of ``dtype``.
    """
    out = np.empty(x.shape, dtype=dtype)
    for i in range(0, len(x), _ROWS):
        out[i : i + _ROWS] = l2_normalize(np.asarray(x[i : i + _ROWS], dtype=dtype))
    return out


def preprocess(embeddings: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Whiten with the training statistics, then L2-normalise: ``normalize((x - mean) / std)``.

    Parameters
    ----------
    embeddings : ndarray (N, D) or (D,)

    Returns
    -------
    ndarray, same shape, float64
    """
    return l2_normalize((np.asarray(embeddings, dtype=np.float64) - mean) / std)


def slerp(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical linear interpolation between the directions of ``a`` and ``b``.

    ``slerp(a, b, t) = sin((1 - t) theta) / sin(theta) * a_hat + sin(t theta) / sin(theta) * b_hat`` with
    ``theta`` the angle between the unit vectors ``a_hat`` and ``b_hat``. Returns a unit vector (D,).
    ``t = 0`` gives ``a_hat``, ``t = 1`` gives ``b_hat``; (anti)parallel inputs fall back to normalised lerp.
    """
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0)
    a = l2_normalize(np.asarray(a, dtype=np.float64))
    b = l2_normalize(np.asarray(b, dtype=np.float64))
    cos = float(np.clip(a @ b, -1.0, 1.0))
    theta = np.arccos(cos)
    if np.sin(theta) < 1e-6:
        return l2_normalize((1 - alpha) * a + alpha * b)
    return (np.sin((1 - alpha) * theta) * a + np.sin(alpha * theta) * b) / np.sin(theta)


def rotate(reference: np.ndarray, direction: np.ndarray, alpha: float) -> np.ndarray:
    """Rotate ``reference`` along a failure direction: the slider's mapping.

    Parameters
    ----------
    reference : ndarray (D,)
    direction : ndarray (D,)
        SVM weight vector (positive = easier).
    alpha : float in [-1, 1]
        ``alpha > 0``: ``slerp(r, -w, alpha)`` (harder); ``alpha < 0``: ``slerp(r, +w, -alpha)`` (easier).
    """
    alpha = check_in_range(alpha, "alpha", -1.0, 1.0)
    sign = -1.0 if alpha >= 0 else 1.0
    return slerp(reference, sign * np.asarray(direction, dtype=np.float64), abs(alpha))


def raw_direction(coef: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The SVM direction mapped back to the encoder's raw embedding space, normalised (D,).

    ``d(x) = w . normalize((x - mean) / std) + b`` grows fastest (before normalisation) along ``w / std``;
    decoders and the cache live in the raw space, so rotations use this vector.
    """
    return l2_normalize(np.asarray(coef, dtype=np.float64) / std)
