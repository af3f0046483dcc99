"""Thresholds, activation masks, IoU with concept masks, recall@k and group shares (LaViSE Sec. 4)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from failwidgets.methods.lavise.attention import upsampled_maps


def activation_thresholds(features: torch.Tensor, quantile: float = 0.005) -> np.ndarray:
    """T_u with ``P(a_u > T_u) = quantile`` over all positions of all images (NetDissect convention).

    Parameters
    ----------
    features : Tensor (N, d, h, w)

    Returns
    -------
    ndarray (d,) float32, the ``1 - quantile`` quantile of each filter's activations (linear
    interpolation, as ``numpy.quantile``).
    """
    flat = features.transpose(0, 1).reshape(features.shape[1], -1).numpy()
    return np.quantile(flat, 1.0 - quantile, axis=1).astype(np.float32)


def activation_masks(features: torch.Tensor, thresholds: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Binary masks of every filter: bilinearly upsampled activation > T_u.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    thresholds : ndarray (d,)
    size : (H, W), the image size

    Returns
    -------
    BoolTensor (N, d, H, W)
    """
    n, d, h, w = features.shape
    up = upsampled_maps(features.reshape(n * d, h, w), size).reshape(n, d, *size)
    return up > torch.as_tensor(thresholds, dtype=up.dtype)[None, :, None, None]


def filter_concept_iou(
    features: torch.Tensor, thresholds: np.ndarray, concept_masks: torch.Tensor, chunk: int = 8
) -> np.ndarray:
    """Dataset-level IoU of each filter's activation masks with each concept's masks.

    ``IoU(u, c) = sum_i |A_iu & M_ic| / sum_i |A_iu | M_ic|`` (NetDissect), where ``A_iu`` is the
    upsampled activation mask of filter u on image i.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    thresholds : ndarray (d,)
    concept_masks : BoolTensor (C, N, H, W)

    Returns
    -------
    ndarray (d, C) float32
    """
    n, d, h, w = features.shape
    c = concept_masks.shape[0]
    size = tuple(concept_masks.shape[2:])
    c_area = torch.count_nonzero(concept_masks.reshape(c, -1), dim=1).float()  # (C,)
    out = np.zeros((d, c), dtype=np.float32)
    thr = torch.as_tensor(thresholds, dtype=torch.float32)
    # Only images whose maximum activation exceeds T_u can have mask pixels: bilinear upsampling
    # (align_corners=False) gives convex combinations of the grid values, so it never exceeds their max.
    # With T_u at the top 0.5 %, the masks are sparse, so the intersections are read off the concept masks
    # at the mask's pixels (a gather) instead of multiplying dense (N, H, W) masks: exact and much faster.
    qualified = features.amax(dim=(2, 3)) > thr[None]  # (N, d)
    step = max(1, chunk) * 64
    for u in range(d):
        q = torch.nonzero(qualified[:, u]).flatten()
        inter = torch.zeros(c)
        a_area = 0
        for start in range(0, len(q), step):
            sub = q[start : start + step]
            act = upsampled_maps(features[sub, u], size) > thr[u]  # (q, H, W)
            ii, yy, xx = torch.nonzero(act, as_tuple=True)
            inter += concept_masks[:, sub[ii], yy, xx].sum(1).float()
            a_area += len(ii)
        out[u] = (inter / (a_area + c_area - inter).clamp_min(1.0)).numpy()
    return out


def recall_at_k(words: Sequence[Sequence[str]], matches: Sequence[set], k: int) -> float:
    """Mean over filters with at least one matching concept of ``|top-k words & matches| / |matches|``.

    Parameters
    ----------
    words : per filter, its explanation words, best first
    matches : per filter, the set of concepts that match it (IoU above the threshold)
    k : int

    Returns
    -------
    float (NaN when no filter has a match)
    """
    vals = [len(set(w[:k]) & m) / len(m) for w, m in zip(words, matches) if m]
    return float(np.mean(vals)) if vals else float("nan")


def qualified_share(
    max_activations: np.ndarray, thresholds: np.ndarray, groups: np.ndarray, group_values: Sequence
) -> np.ndarray:
    """Share of images per group whose maximum activation exceeds T_u.

    Parameters
    ----------
    max_activations : ndarray (N, d)
    thresholds : ndarray (d,)
    groups : ndarray (N,)
    group_values : the G group values, in output order

    Returns
    -------
    ndarray (G, d) float32
    """
    qualified = max_activations > thresholds[None]
    return np.stack([qualified[groups == g].mean(0) for g in group_values]).astype(np.float32)
