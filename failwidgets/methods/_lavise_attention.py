"""Filter attention (Yang et al. 2022, Sec. 3.2) and the masked feature poolings LaViSE feeds its explainer.

Notation: a feature map ``F`` of one image has ``d`` filters of size ``h x w``. For a target filter ``u``,
filter attention reweights every filter ``k`` by the cosine similarity of the two spatial maps,
``F_k^att = a(F_u, F_k) * F_k`` with ``a(x, y) = <x, y> / (|x| |y|)`` over the ``h*w`` positions.
The explainer reads the spatial mean of its input, so the explainer input for ``(image i, filter u)`` is
``a(F_iu, F_ik) * mean_hw(F_ik)`` for every ``k`` -- computed here for many ``(i, u)`` pairs at once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def spatial_cosine(features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between the spatial maps of every pair of filters.

    Parameters
    ----------
    features : Tensor (N, d, h, w)

    Returns
    -------
    Tensor (N, d, d); entry ``[n, u, k] = a(F_nu, F_nk)``. An all-zero map has similarity 0 with
    everything.
    """
    flat = features.flatten(2)
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(_EPS)
    return unit @ unit.transpose(1, 2)


def filter_attention(features: torch.Tensor, u: int) -> torch.Tensor:
    """Attended feature maps for target filter ``u``: ``F_k^att = a(F_u, F_k) * F_k`` for all k.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    u : int, the target filter

    Returns
    -------
    Tensor (N, d, h, w)
    """
    flat = features.flatten(2)
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(_EPS)
    a = (unit * unit[:, u : u + 1]).sum(-1)  # (N, d)
    return features * a[:, :, None, None]


def attended_pooled(features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor,
                    chunk: int = 4096) -> torch.Tensor:
    """Explainer inputs under filter attention for many (image, filter) pairs, batched.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    images : LongTensor (P,), image index of each pair
    filters : LongTensor (P,), target filter of each pair

    Returns
    -------
    Tensor (P, d): ``a(F_iu, F_ik) * mean_hw(F_ik)`` for k = 1..d.
    """
    out = []
    for start in range(0, len(images), chunk):
        img = images[start:start + chunk]
        flt = filters[start:start + chunk]
        f = features[img].flatten(2)  # (p, d, hw)
        unit = f / f.norm(dim=2, keepdim=True).clamp_min(_EPS)
        target = unit[torch.arange(len(img)), flt]  # (p, hw)
        a = torch.einsum("pkh,ph->pk", unit, target)
        out.append(a * f.mean(-1))
    return torch.cat(out) if out else features.new_zeros((0, features.shape[1]))


def _naive_attended_pooled(features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """Reference implementation: one :func:`filter_attention` call per pair (the issue-9 baseline)."""
    rows = [filter_attention(features[i : i + 1], int(u)).mean(dim=(2, 3))[0] for i, u in zip(images, filters)]
    return torch.stack(rows) if rows else features.new_zeros((0, features.shape[1]))


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Masks (N, H, W) -> (N, h, w) fraction of each feature cell covered (area interpolation).

    Keeps (height, width) order, so non-square inputs are not transposed.
    """
    return F.interpolate(masks[:, None].float(), size=size, mode="area")[:, 0]


def masked_pooled(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Spatial mean of features times a mask already at feature resolution.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    masks : Tensor (N, h, w)

    Returns
    -------
    Tensor (N, d)
    """
    return (features * masks[:, None]).mean(dim=(2, 3))


def activation_masked_pooled(features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor,
                             thresholds: torch.Tensor) -> torch.Tensor:
    """Activation-masking baseline: features of image i where filter u exceeds T_u, pooled -> (P, d)."""
    f = features[images]  # (P, d, h, w)
    m = (f[torch.arange(len(images)), filters] > thresholds[filters][:, None, None]).float()
    return masked_pooled(f, m)


def upsampled_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Activation maps (M, h, w) -> (M, H, W) by bilinear upsampling (NetDissect convention)."""
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
