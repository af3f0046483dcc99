"""Encoded thumbnails and heat-map overlays (pure functions, no widgets).

Everything shown in an ``ipywidgets.Image`` must be encoded bytes (PNG/JPEG). Large images are slow to
send, so every image goes through :func:`thumbnail_bytes`, which resizes to a maximum side, encodes
(JPEG for photos, low-compression PNG for heat maps) and keeps the bytes in an LRU cache keyed by a hash
of the pixels + size + format + overlay, so redisplaying the same image costs nothing.

Accepted image inputs (one image or a batch):
- float tensor / array ``(N, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]``;
- ``uint8`` array ``(N, H, W, 3)`` or ``(H, W, 3)`` (also ``(H, W)`` grey);
- ``PIL.Image.Image``; a file path (``str`` / ``pathlib.Path``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image as PILImage

from failwidgets._validation import check_array, check_choice, check_positive_int, to_numpy
from failwidgets.compute.maps import colorize_map, normalize_map, overlay, resize_map, to_uint8

__all__ = [
    "DEFAULT_THUMB_SIZE",
    "to_uint8_images",
    "to_uint8_image",
    "resize_map",
    "normalize_map",
    "colorize_map",
    "overlay_heatmap",
    "encode_image",
    "thumbnail_bytes",
    "data_uri",
    "image_format",
    "ThumbnailCache",
    "default_cache",
]

DEFAULT_THUMB_SIZE = 128


# ----------------------------------------------------------------------------------------------------
# conversion to uint8 (H, W, 3)
# ----------------------------------------------------------------------------------------------------
def _array_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """One image as an array -> uint8 (H, W, 3)."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected one image of shape (3, H, W) or (H, W, 3), got {arr.shape}")
    if arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):  # channels first
        arr = np.moveaxis(arr, 0, -1)
    elif arr.shape[0] in (1, 3) and arr.shape[-1] in (1, 3) and arr.dtype != np.uint8:
        # ambiguous tiny image (e.g. 3x3x3); float inputs follow the library convention (C, H, W)
        arr = np.moveaxis(arr, 0, -1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected 1 or 3 colour channels, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool:
        return np.ascontiguousarray(arr.astype(np.uint8) * 255)
    arr = check_array(arr, name, dtype="float")
    lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name}: expected float pixel values in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return np.ascontiguousarray(to_uint8(np.clip(arr, 0.0, 1.0) * 255.0))


def to_uint8_image(image: Any, name: str = "image") -> np.ndarray:
    """Convert one image (tensor, array, PIL image or path) to ``uint8`` ``(H, W, 3)``."""
    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise FileNotFoundError(f"{name}: expected an existing image file, got {str(image)!r}")
        with PILImage.open(image) as im:
            return np.asarray(im.convert("RGB"))
    if isinstance(image, PILImage.Image):
        return np.asarray(image.convert("RGB"))
    return _array_to_uint8(to_numpy(image, name), name)


def to_uint8_images(images: Any, name: str = "images") -> list[np.ndarray]:
    """Convert a batch of images to a list of ``uint8`` ``(H, W, 3)`` arrays.

    Parameters
    ----------
    images : Tensor/ndarray (N, 3, H, W) float in [0, 1], ndarray uint8 (N, H, W, 3), or a sequence of
        single images (arrays, PIL images, file paths).
    """
    if isinstance(images, (str, os.PathLike, PILImage.Image)):
        return [to_uint8_image(images, name)]
    if isinstance(images, (list, tuple)):
        return [to_uint8_image(im, f"{name}[{i}]") for i, im in enumerate(images)]
    arr = to_numpy(images, name)
    if arr.ndim == 3:
        return [_array_to_uint8(arr, name)]
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected (N, 3, H, W) floats or (N, H, W, 3) uint8, got shape {arr.shape}")
    return [_array_to_uint8(a, f"{name}[{i}]") for i, a in enumerate(arr)]


# ----------------------------------------------------------------------------------------------------
# heat maps
# ----------------------------------------------------------------------------------------------------
def overlay_heatmap(image: Any, heatmap: Any, *, signed: bool = False, alpha: float = 0.5) -> np.ndarray:
    """Alpha-blend a heat map on an image.

    Parameters
    ----------
    image : one image (see module docstring), converted to uint8 (H, W, 3).
    heatmap : ndarray (h, w), any size; resized bilinearly to (H, W) and normalised
        (``[0, 1]`` or, if ``signed``, ``[-1, 1]``).
    signed : diverging colours for signed maps (positive red, negative blue). The blend weight is
        ``alpha * |value|`` so that zero leaves the image untouched.
    alpha : float in [0, 1], blend weight of the colour map (unsigned: constant).

    Returns
    -------
    ndarray uint8 (H, W, 3)
    """
    return overlay(to_uint8_image(image), heatmap, signed=signed, alpha=alpha)


# ----------------------------------------------------------------------------------------------------
# encoding + cache
# ----------------------------------------------------------------------------------------------------
def encode_image(
    image: np.ndarray, *, max_side: int = DEFAULT_THUMB_SIZE, fmt: str = "jpeg", quality: int = 85
) -> bytes:
    """Resize ``uint8 (H, W, 3)`` so its longer side is at most ``max_side`` and encode it.

    ``fmt`` is ``"jpeg"`` (photos) or ``"png"`` (heat maps; compress_level 1, fast).
    """
    fmt = check_choice(fmt, "fmt", ("jpeg", "png"))
    max_side = check_positive_int(max_side, "max_side")
    im = PILImage.fromarray(to_uint8_image(image))
    w, h = im.size
    scale = max_side / max(w, h)
    if scale < 1:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), PILImage.BILINEAR)
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, format="JPEG", quality=quality)
    else:
        im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _digest(arr: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str((arr.shape, arr.dtype.str)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


class ThumbnailCache:
    """LRU cache of encoded thumbnails.

    Keys are ``(hash of pixels, max_side, fmt, hash of overlay, signed, alpha)``. ``hits`` and
    ``misses`` count lookups (useful in tests and to check that redisplay is free).
    """

    def __init__(self, maxsize: int = 4096):
        self.maxsize = check_positive_int(maxsize, "maxsize")
        self._data: OrderedDict[tuple, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self.hits = self.misses = 0

    def get_or_encode(self, key: tuple, encode) -> bytes:
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key]
        self.misses += 1
        value = encode()
        self._data[key] = value
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)
        return value


default_cache = ThumbnailCache()


def thumbnail_bytes(
    image: Any,
    *,
    max_side: int = DEFAULT_THUMB_SIZE,
    fmt: str | None = None,
    overlay: Any = None,
    signed: bool = False,
    alpha: float = 0.5,
    cache: ThumbnailCache | None = None,
) -> bytes:
    """Encoded thumbnail of one image, optionally with a heat-map overlay; cached.

    Parameters
    ----------
    image : one image (tensor (3, H, W) in [0, 1], uint8 (H, W, 3), PIL image or path).
    max_side : longest side of the thumbnail in pixels.
    fmt : ``"jpeg"``/``"png"``; default JPEG without overlay, PNG with one.
    overlay : optional ndarray (h, w) heat map, see :func:`overlay_heatmap`.
    cache : a :class:`ThumbnailCache` (default: the module-wide ``default_cache``).
    """
    cache = default_cache if cache is None else cache
    img = to_uint8_image(image)
    ov = None if overlay is None else check_array(overlay, "overlay", ndim=2, dtype="float")
    if fmt is None:
        fmt = "jpeg" if ov is None else "png"
    key = (_digest(img), int(max_side), fmt, None if ov is None else _digest(ov), bool(signed), float(alpha))

    def _encode() -> bytes:
        if ov is None:
            return encode_image(img, max_side=max_side, fmt=fmt)
        # shrink first, then blend at thumbnail resolution (the map is resized to the thumbnail)
        small = _shrink(img, max_side)
        return encode_image(overlay_heatmap(small, ov, signed=signed, alpha=alpha), max_side=max_side, fmt=fmt)

    return cache.get_or_encode(key, _encode)


def _shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return img
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(PILImage.fromarray(img).resize(size, PILImage.BILINEAR))


def image_format(data: bytes) -> str:
    """``"png"`` or ``"jpeg"`` from the magic bytes of encoded data (``"png"`` if unknown)."""
    return "jpeg" if data[:3] == b"\xff\xd8\xff" else "png"


def data_uri(data: bytes, fmt: str | None = None) -> str:
    """``data:image/...;base64,...`` URI for encoded image bytes (self-contained HTML)."""
    fmt = fmt or image_format(data)
    return f"data:image/{fmt};base64," + base64.b64encode(data).decode("ascii")
