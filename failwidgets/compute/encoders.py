"""Image (and text) encoders behind one small interface, with cached embeddings.

Every encoder has ``name``, ``embed_dim``, ``identity()`` (a JSON-able dict that, with the data identity,
keys the embedding cache), ``encode_images(images) -> ndarray (N, D)`` and ``encode_texts(texts) ->
ndarray (N, D)`` (``NotImplementedError`` for image-only encoders).
"""

from __future__ import annotations

import os
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from failwidgets.compute.cache import EmbeddingCache
from failwidgets.compute.device import autocast, get_device
from failwidgets.compute.hashing import fingerprint
from failwidgets.compute.hooks import get_module
from failwidgets.compute.images import as_image_tensor, iter_batches

__all__ = [
    "Encoder",
    "OpenClipEncoder",
    "TorchvisionFeatureEncoder",
    "encode_with_cache",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class Encoder(Protocol):
    """What the methods need from an encoder."""

    name: str
    embed_dim: int

    def identity(self) -> dict: ...

    def encode_images(self, images: Any, *, batch_size: int = 64, progress: bool = True) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def _check_image_size(size: Any) -> int | tuple[int, int] | None:
    """None, an int >= 1 or a pair of ints >= 1."""
    from failwidgets._validation import check_positive_int

    if size is None:
        return None
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"image_size: expected an int or a pair (H, W) of ints >= 1, got {size!r}")
        return tuple(check_positive_int(v, "image_size") for v in size)
    return check_positive_int(size, "image_size")


def _check_channels(values: Any, name: str, positive: bool = False) -> tuple[float, ...]:
    """Three finite per-channel numbers (``std``: all > 0)."""
    arr = np.asarray(values, dtype=float) if not isinstance(values, str) else np.array([np.nan])
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected 3 finite numbers (one per RGB channel), got {values!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name}: expected 3 positive numbers (one per RGB channel), got {values!r}")
    return tuple(float(v) for v in arr)


def _resize_normalize(x: torch.Tensor, size: int | tuple[int, int] | None, mean, std) -> torch.Tensor:
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(x.shape[-2:]) != hw:
            x = F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class OpenClipEncoder:
    """An open_clip model as an encoder.

    Parameters
    ----------
    model_name : open_clip architecture, e.g. ``"ViT-B-32"``.
    pretrained : ``None`` (random weights; works offline), a pretrained tag such as ``"openai"`` or
        ``"laion2b_s34b_b79k"`` (downloads through open_clip's own loader — needs the network), or a path
        to a local checkpoint file.
    model : optionally an already built open_clip model (then ``model_name`` only names it).
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        model: nn.Module | None = None,
        device: str | torch.device | None = None,
    ):
        import open_clip

        self.name = f"open_clip:{model_name}"
        self.model_name = model_name
        self.pretrained = pretrained
        self.device = get_device(device)
        if model is None:
            if model_name not in open_clip.list_models():
                raise ValueError(
                    f"model_name: unknown open_clip architecture {model_name!r}; see open_clip.list_models()"
                )
            model = open_clip.create_model(model_name, pretrained=pretrained, device=self.device)
        self.model = model.eval().to(self.device)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        visual = self.model.visual
        size = getattr(visual, "image_size", 224)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        self.mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
        self.std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
        self.embed_dim = int(self.encode_texts(["a photo"]).shape[1])
        self._identity: dict | None = None

    def identity(self) -> dict:
        if self._identity is None:
            self._identity = {
                "encoder": self.name,
                "pretrained": None if self.pretrained is None else str(self.pretrained),
                "weights": fingerprint(self.model),
                "image_size": list(self.image_size),
                "mean": list(self.mean),
                "std": list(self.std),
            }
        return self._identity

    @torch.no_grad()
    def encode_images(self, images: Any, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Image embeddings (N, D) float32 (not normalised)."""
        x = as_image_tensor(images)
        out = []
        for sl in iter_batches(len(x), batch_size, progress=progress, desc="encode images"):
            xb = _resize_normalize(x[sl].to(self.device), self.image_size, self.mean, self.std)
            with autocast(self.device):
                out.append(self.model.encode_image(xb).float().cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings (N, D) float32 (not normalised)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts: expected a list of strings")
        if not len(texts):
            raise ValueError("texts: expected at least one string")
        tokens = self.tokenizer(list(texts)).to(self.device)
        with autocast(self.device):
            return self.model.encode_text(tokens).float().cpu().numpy()


class TorchvisionFeatureEncoder:
    """Features of any layer of a torchvision/timm-style classifier as an image encoder.

    Parameters
    ----------
    model : the classifier. It receives normalised inputs: images in [0, 1] are resized to
        ``image_size`` (if given) and normalised with ``mean`` / ``std`` (ImageNet by default; pass
        ``mean=(0, 0, 0), std=(1, 1, 1)`` for a model that normalises itself).
    layer : module name; ``None`` = the penultimate features, i.e. the input of the last ``nn.Linear``.
    reduce : how a spatial map (N, C, h, w) becomes a vector: ``"mean"`` (global average pool),
        ``"max"`` or ``"flatten"``.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        *,
        name: str | None = None,
        image_size: int | tuple[int, int] | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        reduce: str = "mean",
        device: str | torch.device | None = None,
    ):
        if reduce not in ("mean", "max", "flatten"):
            raise ValueError(f"reduce: expected 'mean', 'max' or 'flatten', got {reduce!r}")
        image_size = _check_image_size(image_size)
        mean, std = _check_channels(mean, "mean"), _check_channels(std, "std", positive=True)
        self.device = get_device(device)
        self.model = model.eval().to(self.device)
        if layer is None:
            linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError("layer: model has no nn.Linear head; name the feature layer explicitly")
            self._hook_name, self._hook_input = linears[-1], True
        else:
            get_module(model, layer)
            self._hook_name, self._hook_input = layer, False
        self.layer = layer
        self.name = name or f"{type(model).__name__}:{self._hook_name}{':input' if self._hook_input else ''}"
        self.image_size = image_size
        self.mean, self.std, self.reduce = mean, std, reduce
        self._identity: dict | None = None
        self.embed_dim = int(self.encode_images(torch.zeros(1, 3, 32, 32) + 0.5, progress=False).shape[1])

    def identity(self) -> dict:
        if self._identity is None:
            self._identity = {
                "encoder": self.name,
                "weights": fingerprint(self.model),
                "layer": self._hook_name,
                "input_of_layer": self._hook_input,
                "image_size": self.image_size,
                "mean": list(self.mean),
                "std": list(self.std),
                "reduce": self.reduce,
            }
        return self._identity

    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        if t.ndim <= 2:
            return t
        if self.reduce == "mean":
            return t.flatten(2).mean(-1)
        if self.reduce == "max":
            return t.flatten(2).amax(-1)
        return t.flatten(1)

    @torch.no_grad()
    def encode_images(self, images: Any, *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Features (N, D) float32."""
        x = as_image_tensor(images)
        module = get_module(self.model, self._hook_name)
        store: list[torch.Tensor] = []
        if self._hook_input:
            handle = module.register_forward_pre_hook(lambda m, inp: store.append(inp[0]))
        else:
            handle = module.register_forward_hook(lambda m, inp, out: store.append(out))
        out = []
        try:
            for sl in iter_batches(len(x), batch_size, progress=progress, desc="encode images"):
                xb = _resize_normalize(x[sl].to(self.device), self.image_size, self.mean, self.std)
                store.clear()
                with autocast(self.device):
                    self.model(xb)
                out.append(self._reduce(store[-1].float()).cpu())
        finally:
            handle.remove()
        return torch.cat(out).numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is an image-only encoder: it has no text side")


def encode_with_cache(
    encoder: Encoder,
    images: Any,
    *,
    cache: Any = None,
    data_id: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Image embeddings through the embedding cache, in memory (for small data; see ``embed``).

    The same path as :func:`failwidgets.compute.embed` (which returns a memory map of the store and
    streams sources of any size); this returns a writable in-memory copy. The key combines
    ``encoder.identity()`` with ``data_id`` (a dataset identity such as the world's fingerprint plus
    the split name) or, when not given, the source's identity (a hash of in-memory image bytes). A
    second identical request loads from disk and computes nothing.
    """
    if cache is None:
        cache = EmbeddingCache()
    elif not isinstance(cache, EmbeddingCache):
        raise TypeError(
            f"cache: expected an EmbeddingCache or None, got {type(cache).__name__}"
            + (" (wrap a folder as EmbeddingCache(path))" if isinstance(cache, (str, os.PathLike)) else "")
        )
    from failwidgets.compute.streaming import embed
    from failwidgets.data import as_source, is_source

    src = images if is_source(images) else as_source(images, identity=data_id)
    return np.array(embed(src, encoder, cache=cache, batch_size=batch_size, progress=progress))
