"""Image sources: one adapter from whatever holds your images to what every layer of failwidgets reads.

``as_source(obj)`` returns an :class:`ImageSource`: ``len(source)``, ``source.image(i)`` (uint8
``(H, W, 3)``), ``source.labels`` (int64 ``(N,)`` or ``None``), ``source.metadata`` (a DataFrame) and
``source.identity()`` (a JSON-able dict for cache keys that does not need every pixel).

This package sits beside ``failwidgets.compute`` (which imports it) and imports only
``failwidgets._validation`` and third-party libraries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from failwidgets.data.adapters import (
    IMAGE_SUFFIXES,
    ArraySource,
    FileSource,
    FolderDatasetSource,
    GeneratedSource,
    HFDatasetSource,
    TarShardSource,
    TorchDatasetSource,
    WorldSplitSource,
    expand_braces,
    folder_paths,
)
from failwidgets.data.base import ImageSource, SourceReadError, is_source, to_uint8_hwc

__all__ = [
    "IMAGE_SUFFIXES",
    "ArraySource",
    "FileSource",
    "FolderDatasetSource",
    "GeneratedSource",
    "HFDatasetSource",
    "ImageSource",
    "SourceReadError",
    "TarShardSource",
    "TorchDatasetSource",
    "WorldSplitSource",
    "as_indexable",
    "as_source",
    "is_source",
    "to_uint8_hwc",
]


def as_indexable(images: Any) -> Any:
    """What a widget keeps to show images by index: an ndarray / tensor (or None) as is, anything else
    (a dataset, an ImageFolder, file paths, ...) as an :class:`ImageSource`, so ``images[indices]``
    decodes only the images shown."""
    if images is None or isinstance(images, (np.ndarray, torch.Tensor, ImageSource)):
        return images
    return as_source(images)


def _is_world_split(obj: Any) -> bool:
    """Duck-typed check for ``failwidgets.world`` splits (so this package does not import the world)."""
    return all(hasattr(obj, a) for a in ("images", "labels", "factors", "attributes", "concept_masks")) and isinstance(
        getattr(obj, "images", None), np.ndarray
    )


def _is_hf_dataset(obj: Any) -> bool:
    return (
        type(obj).__module__.split(".")[0] == "datasets" and hasattr(obj, "features") and hasattr(obj, "_fingerprint")
    )


def _is_folder_dataset(obj: Any) -> bool:
    samples = getattr(obj, "samples", None)
    return (
        isinstance(samples, list)
        and hasattr(obj, "targets")
        and hasattr(obj, "loader")
        and (not samples or (isinstance(samples[0], tuple) and len(samples[0]) == 2))
    )


def _is_tar(p: str) -> bool:
    return p.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"))


def as_source(
    obj: Any,
    *,
    labels: Any = None,
    metadata: Any = None,
    identity: str | dict | None = None,
    hash_contents: bool = False,
    image_column: str | None = None,
    label_column: str | None = None,
) -> ImageSource:
    """Wrap images of any supported kind as an :class:`ImageSource` (an ImageSource is returned as is).

    Parameters
    ----------
    obj : one of
        - ``uint8`` ndarray / ``np.memmap`` ``(N, H, W, 3)`` or ``(N, 3, H, W)``; float tensor / array
          ``(N, 3, H, W)`` in [0, 1] (:class:`ArraySource`);
        - a split of the procedural world, ``world["val"]``, or its ``.dataset()``
          (:class:`WorldSplitSource`);
        - a torchvision ``ImageFolder`` / ``DatasetFolder`` (:class:`FolderDatasetSource`);
        - a Hugging Face ``datasets.Dataset`` with an image column (:class:`HFDatasetSource`);
        - any map-style ``torch.utils.data.Dataset`` returning an image or a tuple starting with one
          (:class:`TorchDatasetSource`);
        - a list / array of image file paths (:class:`FileSource`);
        - a directory: with class sub-folders it is read as an ``ImageFolder``, otherwise its image
          files are listed;
        - tar shards: a ``.tar`` path, a list of them, or a brace pattern ``"shards-{000..099}.tar"``
          (:class:`TarShardSource`).
    labels : int array (N,), optional; replaces the labels the source finds itself.
    metadata : DataFrame or dict of columns, optional; replaces the source's own metadata.
    identity : str or dict, optional; replaces the computed identity (e.g. ``"celeba-v2"``).
    hash_contents : identity from a hash of every decoded image (reads all of them once).
    image_column, label_column : Hugging Face datasets only.

    Returns
    -------
    ImageSource

    Raises
    ------
    TypeError for anything else, naming the type.
    """
    kw = {"identity": identity, "hash_contents": hash_contents, "metadata": metadata}
    if isinstance(obj, ImageSource):
        if labels is not None or metadata is not None or identity is not None or hash_contents:
            raise ValueError(
                "images: an ImageSource is used as is; build it again to change its labels, metadata or identity"
            )
        return obj
    if _is_world_split(obj):
        return WorldSplitSource(obj, **kw) if labels is None else ArraySource(obj.images, labels=labels, **kw)
    inner = getattr(obj, "split", None)
    if (
        isinstance(obj, torch.utils.data.Dataset)
        and inner is not None
        and _is_world_split(inner)
        and getattr(obj, "transform", None) is None
    ):
        return WorldSplitSource(inner, **kw)
    if isinstance(obj, (np.ndarray, torch.Tensor)) and (not isinstance(obj, np.ndarray) or obj.dtype.kind not in "USO"):
        return ArraySource(obj, labels=labels, **kw)
    if _is_hf_dataset(obj):
        return HFDatasetSource(obj, image_column=image_column, label_column=label_column, labels=labels, **kw)
    if _is_folder_dataset(obj):
        return FolderDatasetSource(obj, labels=labels, **kw)
    if isinstance(obj, torch.utils.data.Dataset) and hasattr(obj, "__len__"):
        return TorchDatasetSource(obj, labels=labels, **kw)
    if isinstance(obj, (str, os.PathLike)):
        p = os.fspath(obj)
        if "{" in p and _is_tar(p):
            return TarShardSource(expand_braces(p), labels=labels, **kw)
        if _is_tar(p):
            return TarShardSource([p], labels=labels, **kw)
        if os.path.isdir(p):
            subdirs = [d for d in Path(p).iterdir() if d.is_dir() and not d.name.startswith(".")]
            if subdirs:
                import torchvision

                return as_source(
                    torchvision.datasets.ImageFolder(p),
                    labels=labels,
                    metadata=metadata,
                    identity=identity,
                    hash_contents=hash_contents,
                )
            return FileSource(folder_paths(p), labels=labels, **kw)
        if os.path.isfile(p):
            return FileSource([p], labels=labels, **kw)
        raise ValueError(f"images: {p!r} is neither an image file, a directory nor a tar shard")
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "US":
        obj = obj.reshape(-1).tolist()
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(p, (str, os.PathLike)) for p in obj):
        paths = [os.fspath(p) for p in obj]
        if all(_is_tar(p) for p in paths):
            return TarShardSource(paths, labels=labels, **kw)
        return FileSource(paths, labels=labels, **kw)
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, (np.ndarray, torch.Tensor)) for x in obj):
        return ArraySource(np.stack([to_uint8_hwc(x, f"images[{i}]") for i, x in enumerate(obj)]), labels=labels, **kw)
    raise TypeError(
        f"images: cannot make an image source from {type(obj).__module__}.{type(obj).__qualname__}; expected an "
        "array or tensor of images, a world split, a torch / torchvision / Hugging Face dataset, image file "
        "paths, a directory, or tar shards"
    )
