"""Item 2: per-image gradients of n outputs w.r.t. a layer, batched versus a loop of single-output passes.

ours: ``failwidgets.compute.output_gradients`` (one vmapped backward for all n outputs per batch).
baseline: the same batches, one forward, then n single-output backward passes over the retained graph
(``torch.autograd.grad(y[:, i].sum(), act)`` for i = 1..n) -- what one writes without batching.
Model: the demo ``TargetCNN`` attribute view (random weights), layer ``conv2``, 64 px images.
Target: the same numbers (max |diff| <= 1e-5 x max |grad|); the ratio is reported (no speed target in
the issue). n = 12 and 40, on the CPU and, when one is present, on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import Row, not_available, pick, timed

ITEM = "gradients"
LAYER = "conv2"


def _model(n_outputs: int):
    from failwidgets.demo import TargetCNN

    torch.manual_seed(0)
    return TargetCNN(n_classes=10, n_attributes=n_outputs).attribute_model().eval()


def loop_gradients(
    model, images: torch.Tensor, layer: str, batch_size: int, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Baseline: per batch one forward and n single-output backward passes. Returns (acts, grads (N, n, *S))."""
    from failwidgets.compute import capture

    model = model.to(device)
    acts, grads = [], []
    with capture(model, layer, keep_graph=True) as store:
        for start in range(0, len(images), batch_size):
            with torch.enable_grad():
                y = model(images[start : start + batch_size].to(device))
                act = store[layer]
                g = [torch.autograd.grad(y[:, i].sum(), act, retain_graph=True)[0] for i in range(y.shape[1])]
            acts.append(act.detach().cpu())
            grads.append(torch.stack(g, 1).detach().cpu())
            store.clear()
    model.cpu()
    return torch.cat(acts), torch.cat(grads)


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.compute import output_gradients
        from failwidgets.demo import TargetCNN  # noqa: F401
    except ImportError as exc:
        return [not_available(ITEM, "batched vs loop", "same numbers", "-", f"missing code ({exc})")]
    n_images = pick(profile, 4, 16, 64)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((n_images, 3, 64, 64), dtype=np.float32))
    rows = []
    for n_out in pick(profile, (3, 5), (12, 40), (12, 40)):  # toy: code paths only
        model = _model(n_out)
        for dev in devices:
            repeats = 1  # the machine is shared: a second run costs minutes and the ratio is in one process
            loop_gradients(model, images[:2], LAYER, 32, dev)  # warm-up: first backward, thread pools
            output_gradients(model, images[:2], LAYER, device=dev, progress=False)
            base_s, (a0, g0) = timed(lambda: loop_gradients(model, images, LAYER, 32, dev), repeats)
            ours_s, (a1, g1) = timed(
                lambda: output_gradients(model, images, LAYER, batch_size=32, device=dev, progress=False), repeats
            )
            diff = float((g0 - g1).abs().max())
            scale = float(g0.abs().max())
            row = Row(
                ITEM,
                f"dY_i/dx at {LAYER}, n={n_out}",
                "same numbers (max|diff| <= 1e-5 max|grad|)",
                f"{n_images} images 64px, {n_out} outputs, layer {tuple(a1.shape[1:])}",
                dev,
                f"{n_out} backward passes",
                "output_gradients",
                base_s,
                ours_s,
            ).finish()
            row.agreement = {"max_abs_diff": diff, "max_abs_grad": scale}
            row.met = diff <= 1e-5 * max(scale, 1e-12) and bool(torch.equal(a0, a1))
            rows.append(row)
        if "cuda" not in devices:
            rows.append(
                not_available(
                    ITEM,
                    f"dY_i/dx at {LAYER}, n={n_out}",
                    "same numbers",
                    f"{n_images} images",
                    "no GPU on this machine",
                    device="cuda",
                )
            )
    return rows
