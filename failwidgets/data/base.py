"""The :class:`ImageSource` interface: a length, a uint8 image by index, labels, metadata, an identity.

A source never holds every image in memory unless it was given them in memory (an array or a tensor):
file-backed sources decode one image per :meth:`ImageSource.image` call, so a source over a million
files costs the list of paths, not the pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["ImageSource", "SourceReadError", "is_source", "to_uint8_hwc"]


class SourceReadError(ValueError):
    """An image of a source could not be read or decoded.

    Attributes
    ----------
    index : int, the index of the image in the source.
    item : str, what the image is (its file path, tar member, dataset row, ...).
    """

    def __init__(self, index: int, item: str, reason: str):
        self.index, self.item, self.reason = int(index), str(item), str(reason)
        super().__init__(f"images[{self.index}] ({self.item}): cannot read the image: {self.reason}")

    def __reduce__(self):  # picklable, so that it crosses DataLoader worker processes intact
        return (SourceReadError, (self.index, self.item, self.reason))


def to_uint8_hwc(img: Any, name: str = "image") -> np.ndarray:
    """One image (PIL image, uint8 / float array or tensor, HWC or CHW) -> uint8 ndarray (H, W, 3).

    Float pixels must be in [0, 1]; they are rounded to the nearest of the 256 levels.
    """
    try:
        from PIL import Image as PILImage
    except ImportError:  # pragma: no cover - pillow is a core dependency
        PILImage = None
    if PILImage is not None and isinstance(img, PILImage.Image):
        return np.array(img.convert("RGB"))
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().numpy()
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a PIL image, an ndarray or a tensor, got {type(img).__name__}")
    arr = img
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected one image (H, W, 3) or (3, H, W), got shape {arr.shape}")
    if arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    elif arr.shape[0] in (1, 3) and arr.shape[-1] in (1, 3) and arr.dtype != np.uint8:
        arr = np.moveaxis(arr, 0, -1)  # ambiguous tiny float image: the library convention is (3, H, W)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected 1, 3 or 4 colour channels, got shape {img.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":
        if arr.size and (not np.isfinite(arr).all() or arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise ValueError(f"{name}: float pixels must be finite and in [0, 1]")
        return np.ascontiguousarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8))
    raise TypeError(f"{name}: expected uint8 or float pixels, got dtype {arr.dtype}")


class ImageSource:
    """Images by index, with optional labels and metadata, and a stable identity for cache keys.

    Subclasses implement ``__len__``, :meth:`image`, :meth:`_identity` and, where they know it,
    :meth:`describe` (the file or record an index refers to, named in error messages).

    Attributes
    ----------
    labels : int64 ndarray (N,) or None
    """

    labels: np.ndarray | None = None
    #: whether reading an image decodes a file (then DataLoader workers help); in-memory sources: False
    decodes = False

    def __init__(self, *, identity: str | dict | None = None, hash_contents: bool = False, metadata=None):
        self._identity_override = identity
        self.hash_contents = bool(hash_contents)
        self._metadata_override = metadata
        self._identity_cache: dict | None = None

    # -- what every source has ------------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 ndarray (H, W, 3).

        Raises
        ------
        IndexError for ``i`` outside ``[-N, N)``; :class:`SourceReadError` (naming the index and the file
        or record) when the image cannot be read.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def tensor(self, i: int) -> torch.Tensor:
        """Image ``i`` as float32 Tensor (3, H, W) in [0, 1] (what the models receive)."""
        return torch.from_numpy(self.image(i)).permute(2, 0, 1).float().div_(255.0)

    def images(self, indices: Sequence[int] | None = None) -> np.ndarray:
        """Several images stacked, uint8 ndarray (n, H, W, 3); they must have one size.

        Meant for the few images a widget shows or a small source; a large source is streamed with
        ``failwidgets.compute.embed`` instead.
        """
        idx = range(len(self)) if indices is None else [int(i) for i in np.asarray(indices).reshape(-1)]
        imgs = [self.image(i) for i in idx]
        if not imgs:
            return np.zeros((0, 0, 0, 3), np.uint8)
        shapes = {im.shape for im in imgs}
        if len(shapes) > 1:
            raise ValueError(
                f"images: the selected images have different sizes {sorted(shapes)[:4]}; "
                "stream them with failwidgets.compute.embed(..., image_size=...)"
            )
        return np.stack(imgs)

    def describe(self, i: int) -> str:
        """What index ``i`` refers to, in words (a file path, a tar member, ``row 12``)."""
        return f"item {int(i)}"

    @property
    def metadata(self):
        """pandas DataFrame with one row per image (file path, class name, dataset columns, ...)."""
        import pandas as pd

        if self._metadata_override is not None:
            return pd.DataFrame(self._metadata_override)
        frame = self._metadata()
        if frame is None:
            frame = pd.DataFrame(index=pd.RangeIndex(len(self)))
        if self.labels is not None and "label" not in frame.columns:
            frame = frame.assign(label=self.labels)
        return frame

    def _metadata(self):
        return None

    def identity(self) -> dict:
        """A JSON-able dict that changes when the images change, for cache keys.

        Built without reading every pixel (paths + sizes + modification times, dataset fingerprints,
        ...) unless ``hash_contents=True`` was asked for, which hashes every decoded image instead.
        An ``identity=`` given to :func:`~failwidgets.data.as_source` replaces both.
        """
        if self._identity_cache is None:
            if self._identity_override is not None:
                ident = {"kind": "user", "id": self._identity_override}
            elif self.hash_contents:
                ident = {"kind": type(self).__name__, "n": len(self), "contents": self._content_hash()}
            else:
                ident = self._identity()
            self._identity_cache = json.loads(json.dumps(ident, sort_keys=True, default=str))
        return self._identity_cache

    @property
    def fingerprint(self) -> str:
        """sha256 hex of :meth:`identity` (so ``failwidgets.compute.fingerprint(source)`` works)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def _identity(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        for i in range(len(self)):
            img = self.image(i)
            h.update(np.asarray(img.shape, np.int64).tobytes())
            h.update(memoryview(np.ascontiguousarray(img)).cast("B"))
        return h.hexdigest()

    def _check_index(self, i: Any) -> int:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(i).__name__}")
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"index: expected an int in [-{n}, {n}), got {i}")
        return i % n if n else i

    # -- conveniences ---------------------------------------------------------------------------------
    def __getitem__(self, i: Any):
        """``source[i]``: image ``i`` (uint8 (H, W, 3)); ``source[indices]`` (a list / int array / slice):
        those images, stacked uint8 (n, H, W, 3) when they share a size, else a list.

        What widgets call for the few images they show; the last 128 images read are kept decoded.
        """
        if isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)):
            return self._cached_image(int(i))
        if isinstance(i, slice):
            i = range(*i.indices(len(self)))
        if isinstance(i, torch.Tensor):
            i = i.detach().cpu().numpy()
        idx = np.asarray(i)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"index: a boolean mask must have length {len(self)}, got shape {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"index: expected an int, a slice or integer indices, got {type(i).__name__}")
        imgs = [self._cached_image(int(k)) for k in idx.reshape(-1)]
        if imgs and len({im.shape for im in imgs}) == 1:
            return np.stack(imgs)
        return imgs if imgs else np.zeros((0, 1, 1, 3), np.uint8)

    def _cached_image(self, i: int) -> np.ndarray:
        from collections import OrderedDict

        lru = self.__dict__.setdefault("_lru", OrderedDict())
        i = self._check_index(i)
        if i in lru:
            lru.move_to_end(i)
            return lru[i]
        img = self.image(i)
        img.flags.writeable = False  # shared between callers
        lru[i] = img
        if len(lru) > 128:
            lru.popitem(last=False)
        return img

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lru", None)  # decoded images stay in the process that read them
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"


def is_source(obj: Any) -> bool:
    """Whether ``obj`` is an :class:`ImageSource`."""
    return isinstance(obj, ImageSource)


def _sample_indices(n: int, k: int = 16) -> list[int]:
    """Up to ``k`` evenly spread indices of ``range(n)`` (first and last included)."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})
