"""Batched no-grad inference for the demo models (on whatever device the model sits on)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from failwidgets.compute import as_image_tensor, autocast, eval_on, iter_batches


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    images: Any,
    *,
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 256,
    progress: bool = False,
    desc: str | None = None,
) -> np.ndarray:
    """Apply ``fn`` (default ``model``) to images in eval mode, batch by batch.

    Parameters
    ----------
    images : float (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3)
    fn : callable Tensor (B, 3, H, W) -> Tensor (B, *S); e.g. ``model.attributes``

    Returns
    -------
    ndarray float32 (N, *S)
    """
    x = as_image_tensor(images)
    fn = model if fn is None else fn
    chunks = []
    with eval_on(model, model_device(model)) as dev:  # stays where it is; mode restored
        for sl in iter_batches(len(x), batch_size, progress=progress, desc=desc):
            with autocast(dev):
                chunks.append(fn(x[sl].to(dev)).float().cpu())
    if not chunks:
        raise ValueError("images: expected at least one image")
    return torch.cat(chunks).numpy()
