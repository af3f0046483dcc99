"""Feature attacks for Barlow (Singla et al. 2021, Appendix C; Engstrom et al. 2019).

Gradient ascent on one penultimate feature's activation, starting from an image:
``x_{t+1} = clamp_[0,1]( x_t + step_size * g_t / ||g_t||_2 )`` with ``g_t = d feature(x_t) / d x_t``,
per image and batched over images. The reference runs 1000 steps of size 1; we stop an image early when
its activation has not risen by more than ``tol`` (relative) for ``patience`` steps, and return for each
image the iterate with the highest activation.

Written here rather than with captum: captum's ``NeuronGradient`` gives the gradient but not the
activation it comes from, so the plateau test would need a second forward pass per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from failwidgets._validation import check_in_range, check_positive_int
from failwidgets.compute import as_image_tensor, cached, capture, eval_on, get_module, iter_batches

__all__ = ["FeatureAttack", "feature_attack"]


@dataclass(frozen=True)
class FeatureAttack:
    """Result of :func:`feature_attack`.

    Attributes
    ----------
    images : ndarray float32 (N, 3, H, W) in [0, 1] — the attacked images (highest-activation iterate).
    start_activation, final_activation : ndarray float32 (N,).
    steps : ndarray int64 (N,) — gradient steps taken per image before it stopped.
    """

    images: np.ndarray
    start_activation: np.ndarray
    final_activation: np.ndarray
    steps: np.ndarray


def _readout(act: torch.Tensor, feature: int, layer: str) -> torch.Tensor:
    """(B,) value of one feature: a column of (B, D), or the spatial mean of a channel of (B, C, h, w)."""
    if act.ndim < 2 or not 0 <= feature < act.shape[1]:
        raise ValueError(
            f"feature: expected an index in [0, {act.shape[1] if act.ndim > 1 else 0}) of "
            f"layer {layer!r} with output shape {tuple(act.shape)}, got {feature}"
        )
    col = act[:, feature]
    return col.flatten(1).mean(1) if col.ndim > 1 else col


def _attack_batch(model, x0, layer, feature, steps, step_size, patience, tol):
    x = x0.clone()
    best_x = x0.clone()
    best = torch.full((len(x0),), -float("inf"), device=x0.device)
    start = None
    since = torch.zeros(len(x0), dtype=torch.long, device=x0.device)
    active = torch.ones(len(x0), dtype=torch.bool, device=x0.device)
    taken = torch.zeros(len(x0), dtype=torch.long, device=x0.device)
    with capture(model, layer, keep_graph=True) as store:
        for _ in range(steps + 1):  # steps updates, with a read-out after the last one
            x.requires_grad_(True)
            with torch.enable_grad():
                model(x)
                a = _readout(store[layer], feature, layer)
                (g,) = torch.autograd.grad(a.sum(), x)
            with torch.no_grad():
                a = a.detach().float()
                if start is None:
                    start = a.clone()
                improved = a > best + tol * best.abs().clamp_min(1.0)
                better = a > best
                best_x[better] = x.detach()[better]
                best = torch.maximum(best, a)
                since = torch.where(improved, torch.zeros_like(since), since + 1)
                active &= since < patience
                if not active.any() or bool((taken >= steps).all()):
                    break
                norm = g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                move = (active & (taken < steps)).view(-1, 1, 1, 1).to(x.dtype)
                x = (x.detach() + move * step_size * g / norm).clamp_(0.0, 1.0)
                taken += (active & (taken < steps)).long()
    return best_x.detach(), start, best, taken


def feature_attack(
    model: torch.nn.Module,
    images,
    layer: str,
    feature: int,
    *,
    steps: int = 200,
    step_size: float = 1.0,
    patience: int = 10,
    tol: float = 1e-3,
    batch_size: int = 32,
    device=None,
    cache=None,
    progress: bool = False,
) -> FeatureAttack:
    """Maximise one feature's activation from each image (batched), with early stopping and caching.

    Parameters
    ----------
    model : takes images in [0, 1] (wrap with ``compute.Normalized`` otherwise).
    images : float (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3).
    layer : exact module name of the feature layer (penultimate; a 4-D output is spatially averaged).
    feature : original feature index.
    steps : at most this many gradient steps (reference 1000); step_size : L2 length of a step (reference 1).
    patience, tol : stop an image once its activation has not risen by more than ``tol`` x max(|best|, 1)
        for ``patience`` consecutive steps.
    cache : optional ``EmbeddingCache``; the key holds the model fingerprint, layer, feature, the images'
        fingerprint and every attack parameter.
    """
    steps = check_positive_int(steps, "steps")
    step_size = check_in_range(step_size, "step_size", 0.0, float("inf"), inclusive=False)
    patience = check_positive_int(patience, "patience")
    tol = check_in_range(tol, "tol", 0.0, float("inf"))
    feature = check_positive_int(feature, "feature", minimum=0)
    x = as_image_tensor(images)
    get_module(model, layer)

    def compute() -> dict[str, np.ndarray]:
        outs = []
        with eval_on(model, device) as dev:
            for sl in iter_batches(len(x), batch_size, progress=progress, desc=f"feature attack {feature}"):
                outs.append(
                    [
                        t.cpu()
                        for t in _attack_batch(model, x[sl].to(dev), layer, feature, steps, step_size, patience, tol)
                    ]
                )
        cat = [torch.cat(parts) for parts in zip(*outs)]
        return {
            "images": cat[0].numpy().astype(np.float32),
            "start_activation": cat[1].numpy().astype(np.float32),
            "final_activation": cat[2].numpy().astype(np.float32),
            "steps": cat[3].numpy().astype(np.int64),
        }

    out = cached(
        cache,
        compute,
        what="barlow_feature_attack",
        model=model,
        layer=layer,
        feature=feature,
        images=x,
        steps=steps,
        step_size=step_size,
        patience=patience,
        tol=tol,
    )
    return FeatureAttack(**{k: np.asarray(v) for k, v in out.items()})
