"""Thresholds, activation masks, IoU with concept masks, recall@k and group shares (LaViSE Sec. 4)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ._lavise_attention import upsampled_maps


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


def filter_concept_iou(features: torch.Tensor, thresholds: np.ndarray, concept_masks: torch.Tensor,
                       chunk: int = 8) -> np.ndarray:
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
    cm = concept_masks.reshape(c, -1).float()  # (C, N*H*W)
    c_area = cm.sum(1)  # (C,)
    out = np.zeros((d, c), dtype=np.float32)
    thr = torch.as_tensor(thresholds, dtype=torch.float32)
    for start in range(0, d, chunk):
        sl = slice(start, min(start + chunk, d))
        maps = features[:, sl].transpose(0, 1).reshape(-1, h, w)  # (u*N, h, w)
        act = upsampled_maps(maps, size).reshape(sl.stop - start, n, *size) > thr[sl, None, None, None]
        a = act.reshape(sl.stop - start, -1).float()  # (u, N*H*W)
        inter = a @ cm.T  # (u, C)
        union = a.sum(1, keepdim=True) + c_area[None] - inter
        out[sl] = (inter / union.clamp_min(1.0)).numpy()
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


def qualified_share(max_activations: np.ndarray, thresholds: np.ndarray, groups: np.ndarray,
                    group_values: Sequence) -> np.ndarray:
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
