"""Filter attention (Yang et al. 2022, Sec. 3.2) and the masked feature poolings LaViSE feeds its explainer.

Notation: a feature map ``F`` of one image has ``d`` filters of size ``h x w``. For a target filter ``u``,
the paper reweights every filter ``k`` by the cosine similarity of the two spatial maps,
``F_k^att = a(F_u, F_k) * F_k`` with ``a(x, y) = <x, y> / (|x| |y|)`` over the ``h*w`` positions, and the
explainer reads the spatial mean of its input (the reference head sits after the model's global average
pool). Two poolings are offered (``pooling``):

* ``"reweight"`` -- the paper's equation: ``mean_hw(a(F_u, F_k) * F_k) = a(F_u, F_k) * mean_hw(F_k)``.
  No spatial focus: large-area concepts (backgrounds) stay visible, as in the explainer's training
  inputs for concepts whose masks cover most of the image.
* ``"spatial"`` -- the authors' released ``infer_filter.py`` (method ``projection``): the L2-normalised map
  of ``u`` is a spatial attention, ``mean_hw(F_k * F_u / |F_u|) = a(F_u, F_k) * |F_k| / (h w)``; the
  explainer sees the features where ``u`` fires, like its training inputs ``mean_hw(F * M)`` for small
  masks (colours, shapes).

Both are computed here for many ``(image, filter)`` pairs at once; how the two compare in recall and in
the group comparison on the demo world is checked by the LaViSE demo tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from failwidgets.compute.maps import upsample_maps

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


POOLINGS = ("reweight", "spatial")


def filter_attention(features: torch.Tensor, u: int, pooling: str = "reweight") -> torch.Tensor:
    """Attended feature maps for target filter ``u``.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    u : int, the target filter
    pooling : ``"reweight"``: ``F_k^att = a(F_u, F_k) * F_k`` (the paper's equation);
        ``"spatial"``: ``F_k^att = F_k * F_u / |F_u|`` (the authors' code; an all-zero ``F_u`` gives zeros)

    Returns
    -------
    Tensor (N, d, h, w)
    """
    if pooling == "spatial":
        target = features[:, u : u + 1]  # (N, 1, h, w)
        norm = target.flatten(2).norm(dim=2).clamp_min(_EPS)  # (N, 1)
        return features * (target / norm[:, :, None, None])
    flat = features.flatten(2)
    unit = flat / flat.norm(dim=2, keepdim=True).clamp_min(_EPS)
    a = (unit * unit[:, u : u + 1]).sum(-1)  # (N, d)
    return features * a[:, :, None, None]


def attended_pooled(
    features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor, chunk: int = 4096, pooling: str = "reweight"
) -> torch.Tensor:
    """Explainer inputs under filter attention for many (image, filter) pairs, batched.

    Parameters
    ----------
    features : Tensor (N, d, h, w)
    images : LongTensor (P,), image index of each pair
    filters : LongTensor (P,), target filter of each pair
    pooling : ``"reweight"`` or ``"spatial"`` (see the module docstring)

    Returns
    -------
    Tensor (P, d): ``"reweight"``: ``a(F_iu, F_ik) * mean_hw(F_ik)``; ``"spatial"``:
    ``mean_hw(F_ik * F_iu / |F_iu|) = a(F_iu, F_ik) * |F_ik| / (h w)``, for k = 1..d.
    """
    out = []
    for start in range(0, len(images), chunk):
        img = images[start : start + chunk]
        flt = filters[start : start + chunk]
        f = features[img].flatten(2)  # (p, d, hw)
        if pooling == "spatial":
            target = f[torch.arange(len(img)), flt]  # (p, hw)
            target = target / target.norm(dim=1, keepdim=True).clamp_min(_EPS)
            out.append(torch.einsum("pkh,ph->pk", f, target) / f.shape[-1])
            continue
        unit = f / f.norm(dim=2, keepdim=True).clamp_min(_EPS)
        target = unit[torch.arange(len(img)), flt]  # (p, hw)
        a = torch.einsum("pkh,ph->pk", unit, target)
        out.append(a * f.mean(-1))
    return torch.cat(out) if out else features.new_zeros((0, features.shape[1]))


def _naive_attended_pooled(
    features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor, pooling: str = "reweight"
) -> torch.Tensor:
    """Reference implementation: one :func:`filter_attention` call per pair (the issue-9 baseline)."""
    rows = [filter_attention(features[i : i + 1], int(u), pooling).mean(dim=(2, 3))[0] for i, u in zip(images, filters)]
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


def activation_masked_pooled(
    features: torch.Tensor, images: torch.Tensor, filters: torch.Tensor, thresholds: torch.Tensor
) -> torch.Tensor:
    """Activation-masking baseline: features of image i where filter u exceeds T_u, pooled -> (P, d)."""
    f = features[images]  # (P, d, h, w)
    m = (f[torch.arange(len(images)), filters] > thresholds[filters][:, None, None]).float()
    return masked_pooled(f, m)


def upsampled_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Activation maps (M, h, w) -> (M, H, W) by bilinear upsampling (NetDissect convention)."""
    return upsample_maps(maps, size)
