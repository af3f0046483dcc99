"""L2 projected gradient descent (Madry et al. 2018) for adversarial training and evaluation.

Written here rather than taken from ``captum.robust.PGD``: captum's PGD always takes FGSM (sign of the
gradient, an L-infinity step) steps and only projects onto the L2 ball afterwards, which is not the L2
attack robust models are trained and evaluated with (steps along the L2-normalised gradient, as in the
MadryLab ``robustness`` library that Barlow's features come from).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from failwidgets._validation import check_in_range, check_positive_int

__all__ = ["l2_pgd"]


def _flat_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))


def l2_pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float = 0.5,
    steps: int = 5,
    step_size: float | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted L2 PGD: maximise the cross-entropy of ``model`` within an L2 ball.

    ``x_{t+1} = clip_[0,1]( P_eps( x_t + alpha * g / ||g||_2 ) )`` with ``g`` the gradient of the loss
    and ``P_eps`` the projection onto ``{x' : ||x' - x||_2 <= eps}``.

    Parameters
    ----------
    model : nn.Module, images (N, 3, H, W) in [0, 1] -> logits (N, C). Its mode (train/eval) is used
        as is; the caller decides.
    images : Tensor (N, 3, H, W) in [0, 1]
    labels : Tensor (N,) int64
    eps : float
        Radius of the L2 ball (per image, over all pixels and channels).
    steps : int
    step_size : float, optional
        Default ``2.5 * eps / steps`` (Madry et al.).
    random_start : bool
        Start from a uniformly random point of the ball.
    generator : torch.Generator, optional
        Source of randomness for the random start (determinism).

    Returns
    -------
    Tensor (N, 3, H, W) in [0, 1], detached: the adversarial images.
    """
    eps = check_in_range(eps, "eps", 0.0, float("inf"))
    steps = check_positive_int(steps, "steps")
    alpha = 2.5 * eps / steps if step_size is None else check_in_range(step_size, "step_size", 0.0, float("inf"))
    x0 = images.detach()
    delta = torch.zeros_like(x0)
    if random_start and eps > 0:
        u = torch.randn(x0.shape, generator=generator, device="cpu").to(x0.device)
        r = torch.rand(x0.shape[0], generator=generator, device="cpu").to(x0.device) ** (1.0 / x0[0].numel())
        delta = u / _flat_norm(u) * (eps * r).view(-1, *([1] * (x0.dim() - 1)))
        delta = (x0 + delta).clamp(0, 1) - x0
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x0 + delta), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + alpha * grad / _flat_norm(grad)
            delta = delta * (eps / _flat_norm(delta)).clamp(max=1.0)
            delta = (x0 + delta).clamp(0, 1) - x0
    return (x0 + delta).detach()
