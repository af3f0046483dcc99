"""Per-pixel attribution maps through captum (widget-free).

One entry point, :func:`attribution_maps`, with three methods that share one contract: images
``(N, 3, H, W)`` in [0, 1] and a target class per image in, a float32 ``(N, H, W)`` map out.

- ``"saliency"``: ``captum.attr.Saliency`` (absolute input gradient), max over colour channels
  (Simonyan et al. 2014). Non-negative.
- ``"integrated_gradients"``: ``captum.attr.IntegratedGradients`` from a black baseline, summed over
  colour channels. Signed.
- ``"grad_cam"``: ``captum.attr.LayerGradCam`` at ``layer`` (ReLU applied), upsampled to the image
  with ``compute.maps.upsample_maps`` (bilinear, as captum's ``LayerAttribution.interpolate``). Non-negative.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerGradCam, Saliency
from torch import nn

from failwidgets._validation import check_choice, check_labels, check_positive_int
from failwidgets.compute.device import eval_on
from failwidgets.compute.hooks import get_module
from failwidgets.compute.images import as_image_tensor, iter_batches
from failwidgets.compute.maps import upsample_maps

__all__ = ["ATTRIBUTION_METHODS", "attribution_maps"]

ATTRIBUTION_METHODS = ("saliency", "integrated_gradients", "grad_cam")


def _targets(target: Any, n: int) -> torch.Tensor:
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if target < 0:
            raise ValueError(f"target: expected a class index >= 0, got {target}")
        return torch.full((n,), int(target), dtype=torch.long)
    t = check_labels(target, "target", length=n)
    if t.size and t.min() < 0:
        raise ValueError(f"target: expected class indices >= 0, got {int(t.min())}")
    return torch.from_numpy(t)


def attribution_maps(
    model: nn.Module,
    images: Any,
    target: int | Sequence[int] | np.ndarray,
    method: str = "saliency",
    layer: str | None = None,
    *,
    batch_size: int = 32,
    n_steps: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Attribution map of ``model``'s ``target`` output for each image.

    Parameters
    ----------
    model : nn.Module mapping images (N, 3, H, W) in [0, 1] to logits (N, K) (put in eval mode for the
        call, restored afterwards).
    images : float tensor (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3).
    target : int (same class for every image) or int array (N,), the output explained per image.
    method : ``"saliency"``, ``"integrated_gradients"`` or ``"grad_cam"``.
    layer : exact module name (``model.named_modules()``), required for ``"grad_cam"``.
    batch_size : images per forward/backward pass.
    n_steps : integration steps for ``"integrated_gradients"``.
    device : passed to :func:`failwidgets.compute.get_device`.
    progress : show a tqdm bar over batches.

    Returns
    -------
    ndarray float32 (N, H, W). Saliency and Grad-CAM are >= 0; integrated gradients are signed.
    """
    method = check_choice(method, "method", ATTRIBUTION_METHODS)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_steps = check_positive_int(n_steps, "n_steps")
    x = as_image_tensor(images)
    n, _, H, W = x.shape
    if n == 0:
        raise ValueError("images: expected at least one image")
    targets = _targets(target, n)
    if method == "grad_cam":
        if layer is None:
            raise ValueError("layer: expected a module name for method='grad_cam', got None")
        module = get_module(model, layer)
    elif layer is not None:
        raise ValueError(f"layer: only used by method='grad_cam', got layer={layer!r} with method={method!r}")
    out = np.empty((n, H, W), dtype=np.float32)
    with eval_on(model, device) as dev:
        if method == "saliency":
            explainer: Any = Saliency(model)
        elif method == "integrated_gradients":
            explainer = IntegratedGradients(model)
        else:
            explainer = LayerGradCam(model, module)
        for sl in iter_batches(n, batch_size, progress=progress, desc=f"attribution ({method})"):
            xb = x[sl].to(dev).requires_grad_(True)
            tb = targets[sl].to(dev)
            if method == "saliency":
                a = explainer.attribute(xb, target=tb, abs=True).amax(dim=1)
            elif method == "integrated_gradients":
                a = explainer.attribute(
                    xb, baselines=torch.zeros_like(xb), target=tb, n_steps=n_steps, internal_batch_size=batch_size
                ).sum(dim=1)
            else:
                cam = explainer.attribute(xb, target=tb, relu_attributions=True)
                if cam.ndim != 4:
                    raise ValueError(
                        f"layer: Grad-CAM needs a convolutional layer with output (N, C, h, w); {layer!r} "
                        f"gives shape {tuple(cam.shape)}"
                    )
                a = upsample_maps(cam[:, :1], (H, W))
            out[sl] = a.detach().float().cpu().numpy()
    return out
