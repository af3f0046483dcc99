"""Image inputs: one conversion to the library's convention and one batched loop.

Convention: images are float32 tensors ``(N, 3, H, W)`` in ``[0, 1]``. ``uint8`` arrays ``(N, H, W, 3)``
(what the demo world and most image files give) and ``(N, 3, H, W)`` arrays are converted.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from failwidgets._validation import check_positive_int

__all__ = ["as_image_tensor", "iter_batches", "Normalized"]


def as_image_tensor(images: Any, name: str = "images") -> torch.Tensor:
    """Convert images to a float32 tensor ``(N, 3, H, W)`` in ``[0, 1]``.

    Accepts a tensor/array ``(N, 3, H, W)`` of floats in [0, 1], a ``uint8`` array/tensor ``(N, H, W, 3)``
    or ``(N, 3, H, W)``, a single image (3-D), which becomes a batch of one, or a small image source
    (``failwidgets.data.ImageSource``, all images of one size), whose images are all loaded: stream a
    large source with ``failwidgets.compute.embed`` / ``image_batches`` instead.
    """
    from failwidgets.data import is_source

    if is_source(images):
        if not len(images):
            raise ValueError(f"{name}: expected at least one image, got an empty source")
        ts = [images.tensor(i) for i in range(len(images))]
        if len({tuple(t.shape) for t in ts}) > 1:
            raise ValueError(
                f"{name}: the source's images have different sizes; resize them (e.g. "
                "failwidgets.compute.image_batches(..., image_size=...)) first"
            )
        return torch.stack(ts).contiguous()
    if isinstance(images, torch.Tensor):
        if images.device.type == "meta":
            raise ValueError(f"{name}: expected a tensor holding pixel data, got a tensor on the 'meta' device")
        t = images.detach()
    elif isinstance(images, np.ndarray):
        arr = np.ascontiguousarray(images)
        # torch cannot share a read-only buffer (the world's arrays are read-only): copy those
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    elif isinstance(images, Sequence) and len(images) and isinstance(images[0], (np.ndarray, torch.Tensor)):
        return torch.cat([as_image_tensor(im, name) for im in images])
    else:
        raise TypeError(f"{name}: expected a tensor or array of images, got {type(images).__name__}")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"{name}: expected images of shape (N, 3, H, W) or (N, H, W, 3), got {tuple(t.shape)}")
    if t.shape[1] != 3 and t.shape[-1] == 3:
        t = t.permute(0, 3, 1, 2)
    elif t.shape[1] == 3 and t.shape[-1] == 3 and t.dtype == torch.uint8 and isinstance(images, np.ndarray):
        t = t.permute(0, 3, 1, 2)  # (N, 3, W, 3) is ambiguous: uint8 arrays are (N, H, W, 3) by convention
    if t.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected 1 or 3 colour channels, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        t = t.float().div_(255.0)
    elif t.is_floating_point():
        t = t.float()
        if t.numel():
            if not torch.isfinite(t).all():
                raise ValueError(f"{name}: contains NaN/inf values; expected finite pixel values in [0, 1]")
            lo, hi = float(t.min()), float(t.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise ValueError(
                    f"{name}: float images must be in [0, 1] (models normalise themselves), got range "
                    f"[{lo:.3g}, {hi:.3g}]"
                )
    else:
        raise TypeError(f"{name}: expected uint8 or float pixels, got dtype {t.dtype}")
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous()


def iter_batches(n: int, batch_size: int, *, progress: bool = True, desc: str | None = None) -> Iterator[slice]:
    """Yield slices ``[i, i + batch_size)`` covering ``range(n)``, with a tqdm progress bar."""
    check_positive_int(batch_size, "batch_size")
    starts = range(0, n, batch_size)
    bar = tqdm(starts, desc=desc, disable=not progress or len(starts) <= 1, leave=False)
    try:
        for i in bar:
            yield slice(i, min(i + batch_size, n))
    finally:
        bar.close()


class Normalized(nn.Module):
    """Wrap a model that expects normalised inputs so that it takes images in [0, 1].

    ``Normalized(model, mean, std)(x) == model((x - mean) / std)``. Module names inside ``model`` keep
    their names with the prefix ``model.``.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)
