"""Heat maps: resize, normalise, colour and overlay, in one place for methods and widgets alike.

Two resize paths with the same upsampling values (bilinear, ``align_corners=False``, the convention of
``torch.nn.functional.interpolate`` and captum's ``LayerAttribution.interpolate``):

- :func:`upsample_maps` for a batch of maps as a tensor ``(N, h, w)`` (the methods' path);
- :func:`resize_map` for one map as an array ``(h, w)``: PIL's float images, because on a busy CPU a tiny
  torch call costs ~15 ms of thread start-up per map and PIL well under 1 ms (the widgets' path, one
  thumbnail at a time); downsampling there is antialiased (area-weighted).

Colours: :func:`colorize_map` (a sequential ramp, or red = positive / blue = negative for signed maps) and
:func:`overlay` (alpha blend over an image, its grey version, or white).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from failwidgets._validation import check_array, check_in_range

__all__ = ["upsample_maps", "resize_map", "normalize_map", "colorize_map", "overlay", "to_uint8"]


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of maps ``(N, h, w)`` (or ``(N, 1, h, w)``) to ``(N, H, W)`` float32."""
    m = torch.as_tensor(maps)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ValueError(f"maps: expected shape (N, h, w), got {tuple(m.shape)}")
    size = tuple(int(s) for s in size)
    if tuple(m.shape[-2:]) == size:
        return m.float()
    return F.interpolate(m[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def resize_map(heatmap: Any, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one map ``(h, w)`` to ``size = (H, W)``; float32 ``(H, W)`` (see module docstring)."""
    m = check_array(heatmap, "heatmap", ndim=2, dtype="float")
    H, W = (int(x) for x in size)
    if m.shape == (H, W):
        return m.astype(np.float32, copy=False)
    im = PILImage.fromarray(np.ascontiguousarray(m, dtype=np.float32), mode="F")
    return np.asarray(im.resize((W, H), PILImage.BILINEAR), dtype=np.float32)


def normalize_map(heatmap: Any, signed: bool = False) -> np.ndarray:
    """Normalise one map ``(h, w)``.

    ``signed=False``: min-max to ``[0, 1]`` (a constant map becomes all zeros).
    ``signed=True``: divide by the maximum absolute value, giving ``[-1, 1]`` with 0 kept at 0.
    """
    m = check_array(heatmap, "heatmap", ndim=2, dtype="float").astype(np.float32)
    if signed:
        peak = float(np.abs(m).max(initial=0.0))
        return m / peak if peak > 0 else np.zeros_like(m)
    if m.size == 0:
        return m
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


# A small "turbo-like" ramp (dark blue -> cyan -> yellow -> red). Written out here instead of
# importing matplotlib, which is not a dependency of failwidgets.
_RAMP = np.array(
    [[48, 18, 59], [40, 110, 235], [26, 200, 200], [110, 245, 90], [245, 200, 40], [230, 90, 20], [122, 4, 3]],
    dtype=np.float32,
)


def colorize_map(values: np.ndarray, signed: bool = False) -> np.ndarray:
    """Map normalised values to RGB float32 ``(H, W, 3)`` in ``[0, 255]``.

    ``signed=False``: values in ``[0, 1]`` through a sequential ramp.
    ``signed=True``: values in ``[-1, 1]``; positive -> red, negative -> blue (diverging).
    """
    v = np.asarray(values, dtype=np.float32)
    if signed:
        rgb = np.zeros(v.shape + (3,), dtype=np.float32)
        rgb[..., 0] = np.where(v > 0, 255.0, 0.0)
        rgb[..., 2] = np.where(v < 0, 255.0, 0.0)
        return rgb
    pos = np.clip(v, 0.0, 1.0) * (len(_RAMP) - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, len(_RAMP) - 1)
    frac = (pos - i0)[..., None]
    return _RAMP[i0] * (1 - frac) + _RAMP[i1] * frac


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float pixels in ``[0, 255]`` (any shape) to uint8, rounded and clipped."""
    return np.clip(np.asarray(values, dtype=np.float32) + 0.5, 0, 255).astype(np.uint8)


def overlay(
    image: np.ndarray | None,
    heatmap: Any,
    *,
    signed: bool = False,
    alpha: float = 0.5,
    base: str = "image",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Alpha-blend a heat map on an image; uint8 ``(H, W, 3)``.

    Parameters
    ----------
    image : uint8 ndarray (H, W, 3), or None (then ``size`` or the map's size, on white)
    heatmap : ndarray (h, w), any size; resized bilinearly to (H, W) and normalised
        (``[0, 1]`` or, if ``signed``, ``[-1, 1]``).
    signed : diverging colours (positive red, negative blue); the blend weight is ``alpha * |value|``, so
        zero leaves the image untouched. Unsigned maps blend with the constant weight ``alpha``.
    alpha : float in [0, 1], blend weight of the colour map.
    base : ``"image"`` (the image as it is) or ``"grey"`` (its grey version, so the colours stand out).
    """
    alpha = check_in_range(alpha, "alpha", 0.0, 1.0)
    if base not in ("image", "grey"):
        raise ValueError(f"base: expected 'image' or 'grey', got {base!r}")
    if image is None:
        hw = tuple(size) if size is not None else check_array(heatmap, "heatmap", ndim=2, dtype="float").shape
        img = np.full((*hw, 3), 255.0, dtype=np.float32)
    else:
        img = check_array(image, "image", ndim=3, finite=False)
        if img.shape[2] != 3:
            raise ValueError(f"image: expected shape (H, W, 3), got {img.shape}")
        img = img.astype(np.float32)
        if base == "grey":
            img = img.mean(axis=2, keepdims=True).repeat(3, axis=2)
    m = normalize_map(resize_map(heatmap, img.shape[:2]), signed=signed)
    w = (alpha * np.abs(m))[..., None] if signed else alpha
    return to_uint8(img * (1 - w) + colorize_map(m, signed=signed) * w)
