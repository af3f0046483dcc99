"""Per-image gradients of many scalar outputs with respect to one layer, in one batched backward.

Zhang et al. (2018) need ``nu_i^I = dY_i / dx`` at ``x = x^I`` for every attribute ``i`` and image ``I``.
Because images in a batch do not interact in eval mode, ``d(sum_I Y_i^I) / dx^I = dY_i^I / dx^I``, so one
vector-Jacobian product per output gives the gradients of all images at once; the ``n`` products are
batched into a single call with ``torch.autograd.grad(..., is_grads_batched=True)`` (vmap over the
backward pass). Models whose backward does not support vmap fall back to ``n`` backward passes over a
retained graph, which gives the same numbers.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
from torch import nn

from failwidgets.compute.device import eval_on
from failwidgets.compute.hooks import capture, get_module
from failwidgets.compute.streaming import image_batches

__all__ = ["output_gradients"]


def _batched_vjp(outputs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Gradients (n, B, *S) of each of the n columns of ``outputs`` (B, n) w.r.t. ``act``."""
    b, n = outputs.shape
    basis = torch.eye(n, dtype=outputs.dtype, device=outputs.device).unsqueeze(1).expand(n, b, n)
    try:
        (g,) = torch.autograd.grad(outputs, act, grad_outputs=basis, is_grads_batched=True, retain_graph=True)
        return g
    except RuntimeError as exc:  # vmap not supported by some op: same numbers with n backward passes
        warnings.warn(f"batched backward unavailable ({exc.__class__.__name__}); using {n} backward passes")
        grads = [torch.autograd.grad(outputs[:, i].sum(), act, retain_graph=True)[0] for i in range(n)]
        return torch.stack(grads)


def output_gradients(
    model: nn.Module,
    images: Any,
    layer: str,
    outputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations at ``layer`` and the gradients of all n scalar outputs w.r.t. them, per image.

    Parameters
    ----------
    model : network, run in eval mode (restored afterwards).
    images : float (N, 3, H, W) in [0, 1], uint8 (N, H, W, 3), or an image source
        (``failwidgets.data.as_source``), streamed batch by batch.
    layer : exact module name of the layer x.
    outputs : maps the model's output to the (B, n) scalar outputs Y_1..Y_n; default: the model output,
        which must then be 2-D.

    Returns
    -------
    acts : Tensor (N, *S) — x^I.
    grads : Tensor (N, n, *S) — dY_i/dx at x^I, float32, on the CPU.
    """
    get_module(model, layer)
    acts_out: list[torch.Tensor] = []
    grads_out: list[torch.Tensor] = []
    with eval_on(model, device) as dev, capture(model, layer, keep_graph=True) as store:
        for _, xb in image_batches(images, batch_size, device=dev, progress=progress, desc=f"gradients {layer}"):
            with torch.enable_grad():
                # the input requires grad so the graph reaches the layer even when every
                # parameter is frozen (requires_grad=False)
                y = model(xb.requires_grad_(True))
                y = outputs(y) if outputs is not None else y
                if not isinstance(y, torch.Tensor) or y.ndim != 2:
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise ValueError(f"outputs: expected (batch, n) scalar outputs, got {got}")
                act = store[layer]
                g = _batched_vjp(y, act)  # (n, B, *S)
            acts_out.append(act.detach().float().cpu())
            grads_out.append(g.detach().float().transpose(0, 1).cpu())
            store.clear()
    if not acts_out:
        raise ValueError("images: expected at least one image")
    return torch.cat(acts_out), torch.cat(grads_out)
