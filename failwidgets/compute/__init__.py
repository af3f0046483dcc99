"""The compute layer: devices, batching, hooks, per-image gradients, encoders and the embedding cache.

Imports nothing from ``failwidgets.methods`` or ``failwidgets.widgets``.
"""

from failwidgets.compute.cache import EmbeddingCache, as_cache, cached, default_cache_dir
from failwidgets.compute.device import autocast, eval_on, get_device, set_default_device
from failwidgets.compute.encoders import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Encoder,
    OpenClipEncoder,
    TorchvisionFeatureEncoder,
    encode_with_cache,
)
from failwidgets.compute.gradients import output_gradients
from failwidgets.compute.hashing import fingerprint
from failwidgets.compute.hooks import capture, get_module, layer_activations, module_names
from failwidgets.compute.images import Normalized, as_image_tensor, iter_batches
from failwidgets.compute.store import ShardedStore
from failwidgets.compute.streaming import SkippedImagesWarning, embed, image_batches

_LAZY = {"attribution_maps": ".attribution"}


def __getattr__(name):  # keep `import failwidgets.compute` light: captum loads on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "get_device",
    "set_default_device",
    "autocast",
    "eval_on",
    "as_image_tensor",
    "iter_batches",
    "Normalized",
    "get_module",
    "module_names",
    "capture",
    "layer_activations",
    "output_gradients",
    "Encoder",
    "OpenClipEncoder",
    "TorchvisionFeatureEncoder",
    "encode_with_cache",
    "embed",
    "image_batches",
    "ShardedStore",
    "SkippedImagesWarning",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "EmbeddingCache",
    "cached",
    "as_cache",
    "default_cache_dir",
    "fingerprint",
    *_LAZY,
]
