"""Filter attention (Yang et al. 2022, Sec. 3.2) and the masked feature poolings LaViSE feeds its explainer.

Notation: a feature map ``F`` of one image has ``d`` filters of size ``h x w``. For a target filter ``u``,
the paper reweights every filter ``k`` by the cosine similarity of the two spatial maps,
``a(x, y) = <x, y> / (|x| |y|)`` over the ``h*w`` positions, and says the target filter's map "serves as a
spatial attention". The explainer reads the spatial mean of its input (the reference head sits after the
model's global average pool), so how the attended maps are pooled matters:

* the authors' released ``infer_filter.py`` (method ``projection``) multiplies every filter map by the
  L2-normalised map of ``u`` and takes the spatial mean: ``mean_hw(F_k * F_u / |F_u|)``. This equals
  ``a(F_u, F_k) * |F_k| / (h w)`` -- the paper's cosine weight -- *and* it is spatially focused on where
  ``u`` fires, the inference analogue of the ``mean_hw(F * M)`` the explainer is trained on.
* reweighting whole maps, ``mean_hw(a(F_u, F_k) * F_k) = a(F_u, F_k) * sum_hw(F_k) / (h w)``, keeps no
  spatial focus: diffuse (background) filters dominate every filter's input. This library did that before
  the demo targets were retrained; on the retrained demo it gives recall@5 0.446 vs 0.480 for the
  authors' pooling (see the LaViSE demo tests).

Here ``F_k^att = F_k * F_u / |F_u|`` (the authors' pooling), computed for many ``(i, u)`` pairs at once.
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
    """Attended feature maps for target filter ``u``: ``F_k^att = F_k * F_u / |F_u|`` for all k.

    The L2-normalised map of ``u`` is the spatial attention (the authors' released code); the spatial
    mean of ``F_k^att`` is ``a(F_u, F_k) * |F_k| / (h w)``, the paper's cosine weight. An all-zero
    ``F_u`` gives all-zero maps.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    u : int, the target filter

    Returns
    -------
    Tensor (N, d, h, w)
    """
    target = features[:, u : u + 1]  # (N, 1, h, w)
    norm = target.flatten(2).norm(dim=2).clamp_min(_EPS)  # (N, 1)
    return features * (target / norm[:, :, None, None])


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
    Tensor (P, d): ``mean_hw(F_ik * F_iu / |F_iu|) = a(F_iu, F_ik) * |F_ik| / (h w)`` for k = 1..d.
    """
    out = []
    for start in range(0, len(images), chunk):
        img = images[start:start + chunk]
        flt = filters[start:start + chunk]
        f = features[img].flatten(2)  # (p, d, hw)
        target = f[torch.arange(len(img)), flt]  # (p, hw)
        target = target / target.norm(dim=1, keepdim=True).clamp_min(_EPS)
        out.append(torch.einsum("pkh,ph->pk", f, target) / f.shape[-1])
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
