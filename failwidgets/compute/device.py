"""Device choice, in one place.

Nothing else in failwidgets calls ``.cuda()``: every function that runs a model takes ``device=None`` and
resolves it here.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

__all__ = ["get_device", "set_default_device", "autocast", "eval_on", "ENV_DEVICE"]

ENV_DEVICE = "FAILWIDGETS_DEVICE"
_default: torch.device | None = None


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve the device to run on.

    Order: the ``device`` argument > :func:`set_default_device` > env ``FAILWIDGETS_DEVICE`` >
    ``cuda`` when available > ``cpu``. Asking for CUDA on a machine without it raises a clear error.
    """
    if device is None:
        device = _default if _default is not None else os.environ.get(ENV_DEVICE) or None
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda", "meta"):
        try:
            torch.empty(0, device=dev)
        except (RuntimeError, TypeError, NotImplementedError, AssertionError) as exc:
            raise ValueError(
                f"device: {device!r} is not available on this machine ({str(exc).splitlines()[0]}); "
                "expected 'cpu' or an available accelerator"
            ) from exc
    return dev


def set_default_device(device: str | torch.device | None) -> None:
    """Set (or with ``None`` reset) the device used when no ``device`` argument is given."""
    global _default
    _default = None if device is None else get_device(device)


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Mixed precision where it is safe: bfloat16/float16 autocast on CUDA, a no-op on CPU.

    Only used for inference-style forward passes (embeddings, activations); gradient code paths that are
    compared against exact references run in float32.
    """
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        with torch.autocast(device_type="cuda", dtype=dtype):
            yield
    else:
        yield


@contextlib.contextmanager
def eval_on(model: torch.nn.Module, device: str | torch.device | None = None) -> Iterator[torch.device]:
    """Run ``model`` in eval mode on ``get_device(device)`` inside the block; yields that device.

    The caller's train/eval mode and the model's original device are restored on exit, also when the
    block raises.
    """
    dev = get_device(device)
    was_training = model.training
    original = next(model.parameters(), torch.empty(0)).device
    model.eval().to(dev)
    try:
        yield dev
    finally:
        model.train(was_training)
        model.to(original)
