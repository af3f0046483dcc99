"""Activations at named modules through forward hooks that are always removed.

Layer names are matched by equality against ``model.named_modules()`` (the LaViSE reference compared
names with ``is``, which silently matched nothing).
"""

from __future__ import annotations

import contextlib
import difflib
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from failwidgets.compute.device import autocast, eval_on
from failwidgets.compute.streaming import image_batches

__all__ = ["get_module", "capture", "layer_activations", "module_names"]


def module_names(model: nn.Module) -> list[str]:
    """All hookable module names of ``model`` (the root, named ``""``, excluded)."""
    return [n for n, _ in model.named_modules() if n]


def get_module(model: nn.Module, name: str) -> nn.Module:
    """Return the sub-module called exactly ``name``.

    Raises ``ValueError`` naming the closest existing names when there is no such module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"layer: expected a module name (str), got {type(name).__name__}")
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f"; closest names: {close}" if close else f"; available: {names[:20]}{' ...' if len(names) > 20 else ''}"
    raise ValueError(f"layer: no module named {name!r} in {type(model).__name__}{hint}")


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: str | Sequence[str], *, keep_graph: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named modules during forward passes inside the ``with`` block.

    Yields a dict ``name -> tensor`` filled by each forward pass (the last pass wins). With
    ``keep_graph=True`` the recorded tensors stay in the autograd graph so gradients with respect to
    them can be taken; the module's output is then passed on as a clone, so that a following in-place
    op (``ReLU(inplace=True)``) cannot overwrite what was recorded.

    The hooks are removed when the block exits, also when the forward pass raises.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("layers: expected at least one module name")
    mods = [(n, get_module(model, n)) for n in names]
    store: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(n: str) -> Callable[..., Any]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {n!r}: its output is a {type(output).__name__}, expected a tensor")
            if keep_graph:
                store[n] = output
                return output.clone()
            store[n] = output.detach()
            return None

        return hook

    try:
        for n, m in mods:
            handles.append(m.register_forward_hook(make_hook(n)))
        yield store
    finally:
        for h in handles:
            h.remove()


_REDUCERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda t: t.flatten(2).mean(-1) if t.ndim > 2 else t,
    "max": lambda t: t.flatten(2).amax(-1) if t.ndim > 2 else t,
}


def layer_activations(
    model: nn.Module,
    images: Any,
    layer: str,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    reduce: str | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Activations of ``layer`` for every image, on the CPU.

    Parameters
    ----------
    model : the network (put in eval mode for the call, restored afterwards).
    images : float tensor (N, 3, H, W) in [0, 1], uint8 (N, H, W, 3), or an image source
        (``failwidgets.data.as_source``), which is streamed through a DataLoader batch by batch.
    layer : exact module name.
    reduce : ``None`` keeps the full map (N, C, h, w); ``"mean"`` / ``"max"`` pool spatial dims -> (N, C).

    Returns
    -------
    Tensor (N, *S) float32.
    """
    if reduce is not None and reduce not in _REDUCERS:
        raise ValueError(f"reduce: expected None, 'mean' or 'max', got {reduce!r}")
    get_module(model, layer)  # validate before any work
    chunks: list[torch.Tensor] = []
    with eval_on(model, device) as dev, torch.no_grad(), capture(model, layer) as store:
        for _, xb in image_batches(images, batch_size, device=dev, progress=progress, desc=f"activations {layer}"):
            with autocast(dev):
                try:
                    model(xb)
                except RuntimeError as exc:
                    raise _size_error(exc, xb) from exc
            act = store[layer].float()
            if reduce is not None:
                act = _REDUCERS[reduce](act)
            chunks.append(act.cpu())
    if not chunks:
        raise ValueError("images: expected at least one image")
    return torch.cat(chunks)


def _size_error(exc: RuntimeError, x: torch.Tensor) -> Exception:
    """A model that cannot run on images this small says so in terms of ``images``; other errors stay."""
    msg = str(exc)
    low = msg.lower()
    if "kernel size" in low or "input size" in low or "output size is too small" in low:
        return ValueError(
            f"images: expected images large enough for the model, got {x.shape[-2]}x{x.shape[-1]} "
            f"pixels ({msg.splitlines()[0]})"
        )
    return exc
