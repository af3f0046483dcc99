"""Feature visualisation for Barlow (Singla et al. 2021, section 4): top activating images and heat maps.

The heat map of feature ``j`` is channel ``j`` of the last convolutional map before global pooling,
normalised to [0, 1] per image and resized to the image (CAM-style, the paper's Appendix B). This
matches the penultimate feature ``j`` only when that feature is the global average of that channel, as
in ResNets (``layer4`` -> ``avgpool``). Drawing the maps over the images is the widgets' job
(``widgets._parts.ImageGrid`` overlays).
"""

from __future__ import annotations

import numpy as np
import torch

from failwidgets._validation import check_array, check_positive_int
from failwidgets.compute import as_image_tensor, get_module, iter_batches, layer_activations
from failwidgets.compute.maps import upsample_maps

__all__ = ["top_activating", "feature_heatmaps"]


def top_activating(features, feature: int, k: int = 6, among=None) -> np.ndarray:
    """Indices of the ``k`` samples with the largest value of one feature, largest first.

    Parameters
    ----------
    features : array (N, D); feature : original feature index; among : optional int indices (or bool
        mask) restricting the candidates (e.g. one class's images).
    """
    x = check_array(features, "features", ndim=2, dtype="float")
    k = check_positive_int(k, "k")
    if not 0 <= int(feature) < x.shape[1]:
        raise ValueError(f"feature: expected an index in [0, {x.shape[1]}), got {feature}")
    cand = np.arange(x.shape[0])
    if among is not None:
        among = np.asarray(among)
        cand = np.flatnonzero(among) if among.dtype == bool else among.astype(np.int64)
    order = np.argsort(-x[cand, int(feature)], kind="stable")
    return cand[order[:k]]


def feature_heatmaps(
    model: torch.nn.Module,
    images,
    conv_layer: str,
    feature: int,
    *,
    batch_size: int = 32,
    device=None,
    progress: bool = False,
) -> np.ndarray:
    """Heat maps (N, H, W) float32 in [0, 1]: channel ``feature`` of ``conv_layer``, min-max normalised
    per image, bilinearly resized to the image size.

    Parameters
    ----------
    model : takes images in [0, 1]; conv_layer : exact name of the last conv block (ResNet: ``"layer4"``).
    images : float (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3).
    """
    x = as_image_tensor(images)
    get_module(model, conv_layer)  # validate the name before any work
    out = []
    for sl in iter_batches(len(x), batch_size, progress=progress, desc="heat maps"):
        act = layer_activations(model, x[sl], conv_layer, batch_size=batch_size, device=device, progress=False)
        if act.ndim != 4:
            raise ValueError(f"conv_layer: expected a (N, C, h, w) map at {conv_layer!r}, got shape {tuple(act.shape)}")
        if not 0 <= int(feature) < act.shape[1]:
            raise ValueError(f"feature: expected a channel index in [0, {act.shape[1]}), got {feature}")
        m = act[:, int(feature)].float()
        lo = m.amin(dim=(1, 2), keepdim=True)
        hi = m.amax(dim=(1, 2), keepdim=True)
        m = (m - lo) / (hi - lo).clamp_min(1e-12)
        out.append(upsample_maps(m, tuple(x.shape[-2:])).clamp(0, 1))
    return torch.cat(out).numpy().astype(np.float32)
