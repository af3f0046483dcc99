"""Training of the demo models on the planted-bias world (deterministic given the seeds).

``python -m failwidgets.demo.training.targets --out failwidgets/demo/weights`` reproduces the shipped weights and
writes ``metadata.json`` with the configurations, world fingerprints, measured accuracies and timings.

What is trained on what:

* target CNN "default": train split of ``WorldConfig.demo()`` (shape -> background at tau 0.95,
  texture -> size at tau 1.0);
* target CNN "control": train split of ``WorldConfig.control()`` (same world, every tau 0);
* robust model, vision-language encoder and decoder: once, on the *control* world's train split
  (balanced: no planted correlation), so they describe the images without inheriting the bias.

Budgets are set in optimisation steps (batch 64): the whole run must fit in minutes on a shared 2-core
CPU. Target CNNs: 60 steps (under one epoch: the background shortcut is learned first, the shape only
partly, which is what makes the planted bias visible); robust: 40 steps of 2-step L2 PGD (eps 0.75,
random start) -- too few: its loss stays near chance, see the measured numbers; VL: 120 steps;
decoder: 60 steps.
"""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from failwidgets._io import atomic_write
from failwidgets._validation import check_positive_int
from failwidgets.compute import get_device
from failwidgets.demo.attacks import l2_pgd
from failwidgets.demo.models import DemoVisionLanguageEncoder, EmbeddingDecoder, RobustNet, TargetCNN

__all__ = ["train_target", "train_robust", "train_vl", "train_decoder", "ROBUST_EPS", "main"]

#: L2 radius of adversarial training. ImageNet's eps 3 over 3x224x224 pixels scales by
#: sqrt(3*64*64 / (3*224*224)) to ~0.86; CIFAR's common 0.5 over 3x32x32 scales to 1.0. 0.75 sits between.
ROBUST_EPS = 0.75


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        yield perm[i : i + batch_size]


def _loop(
    model: nn.Module,
    n: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    step,
    progress: bool,
    desc: str,
    max_steps: int | None,
    weight_decay: float = 5e-4,
):
    """Shared Adam + one-cycle training loop; ``step(idx, generator) -> loss`` does the model's work.

    Returns the number of optimisation steps taken.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if n == 0:
        raise ValueError("world: expected a non-empty training split")
    g = torch.Generator().manual_seed(int(seed))
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(epochs * steps_per_epoch, max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total, 1), pct_start=0.2)
    model.train()
    done = 0
    bar = tqdm(total=total, desc=desc, disable=not progress)
    try:
        for _ in range(epochs):
            for idx in _batches(n, batch_size, g):
                if done >= total:
                    break
                loss = step(idx, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                done += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    finally:
        bar.close()
    model.eval()
    return done


def _start(world, split: str, device, seed: int):
    """What every trainer does first: pick the device, seed torch, load the split's images.

    Returns ``(device, split, images (N, 3, H, W) float tensor on device)``.
    """
    dev = get_device(device)
    torch.manual_seed(seed)
    s = world[split]
    return dev, s, s.as_tensor().to(dev)


def train_target(
    world,
    *,
    split: str = "train",
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 3e-3,
    attribute_weight: float = 1.0,
    widths=(16, 32, 64, 128),
    seed: int = 0,
    max_steps: int | None = None,
    device=None,
    progress: bool = True,
) -> TargetCNN:
    """Train a :class:`TargetCNN` on a world split: cross-entropy on the class (shape) plus binary
    cross-entropy on the attributes. No augmentation (the planted shortcut must stay usable).

    Parameters
    ----------
    world : failwidgets.world.World
    split : str
    epochs, batch_size, lr : training schedule (AdamW, one-cycle learning rate)
    attribute_weight : weight of the attribute loss
    seed : int, seeds the initialisation and the batch order
    max_steps : int, optional, stop after this many optimisation steps (tests)

    Returns
    -------
    TargetCNN in eval mode, on ``get_device(device)``.
    """
    dev, s, x = _start(world, split, device, seed)
    y = torch.from_numpy(np.array(s.labels)).to(dev)
    a = torch.from_numpy(np.array(s.attributes)).to(dev)
    model = TargetCNN(len(world.class_names), len(world.attribute_names), widths).to(dev)
    model.normalize.fit(x)

    def step(idx, g):
        logits, attr = model.both(x[idx])
        return F.cross_entropy(logits, y[idx]) + attribute_weight * F.binary_cross_entropy_with_logits(attr, a[idx])

    _loop(
        model,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        step=step,
        progress=progress,
        desc="train target",
        max_steps=max_steps,
    )
    return model


def train_robust(
    world,
    *,
    split: str = "train",
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 3e-3,
    eps: float = ROBUST_EPS,
    attack_steps: int = 2,
    widths=(16, 32, 64),
    seed: int = 0,
    max_steps: int | None = None,
    device=None,
    progress: bool = True,
) -> RobustNet:
    """Adversarial training (Madry et al.) of a :class:`RobustNet`: each batch is replaced by its
    L2 PGD adversarial examples (radius ``eps``, ``attack_steps`` steps, random start), generated with
    the model in eval mode, and the model is trained on them with cross-entropy.

    Returns
    -------
    RobustNet in eval mode.
    """
    dev, s, x = _start(world, split, device, seed)
    y = torch.from_numpy(np.array(s.labels)).to(dev)
    model = RobustNet(len(world.class_names), widths).to(dev)
    model.normalize.fit(x)

    def step(idx, g):
        model.eval()
        x_adv = l2_pgd(model, x[idx], y[idx], eps=eps, steps=attack_steps, random_start=True, generator=g)
        model.train()
        return F.cross_entropy(model(x_adv), y[idx])

    _loop(
        model,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        step=step,
        progress=progress,
        desc="train robust (L2 PGD)",
        max_steps=max_steps,
    )
    return model


def train_vl(
    world,
    *,
    split: str = "train",
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    widths=(16, 32, 64, 128),
    text=None,
    seed: int = 0,
    max_steps: int | None = None,
    device=None,
    progress: bool = True,
) -> DemoVisionLanguageEncoder:
    """Train the image side of a :class:`DemoVisionLanguageEncoder` against its locked text side.

    Loss: InfoNCE (CLIP's image-to-text cross-entropy with a learned temperature) where the negatives
    of an image are *all* distinct captions of the split, not only those in the batch: with a locked
    text tower the caption embeddings are constants, so the full set is cheap, and duplicate captions
    in a batch cannot become false negatives.

    Returns
    -------
    DemoVisionLanguageEncoder in eval mode.
    """
    dev, s, x = _start(world, split, device, seed)
    model = DemoVisionLanguageEncoder(widths=widths, text=text).to(dev)
    model.image_tower.normalize.fit(x)
    distinct, target = np.unique(np.asarray(s.captions, dtype=object).astype(str), return_inverse=True)
    text_emb = torch.from_numpy(model.encode_texts(list(distinct))).to(dev)
    target = torch.as_tensor(target, device=dev)

    def step(idx, g):
        logits = model.logit_scale.exp().clamp(max=100) * model(x[idx]) @ text_emb.T
        return F.cross_entropy(logits, target[idx])

    _loop(
        model,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        step=step,
        progress=progress,
        desc="train VL image side",
        max_steps=max_steps,
        weight_decay=1e-4,
    )
    return model


def train_decoder(
    world,
    vl: DemoVisionLanguageEncoder,
    *,
    split: str = "train",
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    max_steps: int | None = None,
    device=None,
    progress: bool = True,
) -> EmbeddingDecoder:
    """Train an :class:`EmbeddingDecoder` to invert the (frozen) VL image embeddings: L1 loss between
    the decoded and the original images.

    Returns
    -------
    EmbeddingDecoder in eval mode.
    """
    dev, s, x = _start(world, split, device, seed)
    z = torch.from_numpy(vl.encode_images(x, progress=progress)).to(dev)
    model = EmbeddingDecoder(vl.embed_dim).to(dev)

    def step(idx, g):
        return F.l1_loss(model(z[idx]), x[idx])

    _loop(
        model,
        len(x),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        step=step,
        progress=progress,
        desc="train decoder",
        max_steps=max_steps,
        weight_decay=0.0,
    )
    return model


# ---------------------------------------------------------------------------------------------------
# Reproducing the shipped weights
# ---------------------------------------------------------------------------------------------------
#: captions never seen in training (synonyms) and the factor value each should find
SYNONYM_PROBES = (
    ("a crimson shape", "colour", "red"),
    ("a scarlet shape", "colour", "red"),
    ("a shape in the ocean", "background", "water"),
    ("a shape on a beach", "background", "sand"),
    ("a stripy shape", "texture", "striped"),
    ("a big shape", "size", "large"),
)
#: the L2 attack under which the robust and target models are compared
EVAL_ATTACK = {"eps": 0.5, "steps": 10}


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 1)


def measure(worlds: dict, models: dict, *, n_attack: int = 500) -> dict:
    """Every number recorded in ``metadata.json`` (test splits; the attack on the first ``n_attack``
    test images of the default world)."""
    from failwidgets.demo import evaluate as ev

    out: dict = {"target": {}, "robustness": {}, "vl": {}}
    for variant, world in worlds.items():
        t = models[f"target-{variant}"]
        out["target"][variant] = {
            "test_accuracy": ev.accuracy(t, world["test"].images, world["test"].labels),
            "shape_background": ev.bias_gap(t, world),
            "texture_size": ev.bias_gap(t, world, factor_a="texture", factor_b="size"),
        }
    test = worlds["default"]["test"]
    x, y = test.images[:n_attack], test.labels[:n_attack]
    for name in ("target-default", "robust"):
        out["robustness"][name] = {
            "clean": ev.accuracy(models[name], x, y),
            "attacked": ev.adversarial_accuracy(models[name], x, y, **EVAL_ATTACK),
        }
    out["robustness"]["attack"] = dict(EVAL_ATTACK, norm="L2", n_images=int(len(x)), split="default/test")
    vl = models["vl"]
    out["vl"]["caption_top1"] = ev.caption_retrieval_top1(vl, test)
    out["vl"]["n_distinct_captions"] = len(set(test.captions))
    out["vl"]["synonyms"] = [ev.caption_ranking(vl, test, c, f, v) for c, f, v in SYNONYM_PROBES]
    z = vl.encode_images(test.images[:500], progress=False)
    rec = models["decoder"].decode(z)
    from failwidgets.compute import as_image_tensor

    out["decoder_l1"] = float(np.abs(rec - as_image_tensor(test.images[:500]).numpy()).mean())
    return out


def demo_worlds() -> dict:
    """The two worlds the demo is trained on: ``{"default": World, "control": World}`` (splits are
    generated on first use)."""
    from failwidgets.world import WorldConfig, make_world

    return {"default": make_world(WorldConfig.demo()), "control": make_world(WorldConfig.control())}


def train_models(
    worlds: dict,
    names=("target-default", "target-control", "robust", "vl", "decoder"),
    *,
    seed: int = 0,
    progress: bool = True,
    vl=None,
    **overrides,
) -> tuple[dict, dict]:
    """Train the named demo models with their default settings (``overrides``, e.g. ``max_steps``,
    go to every training function); returns ``(models, info)``.

    The decoder needs the VL encoder: trained here when ``"vl"`` is among the names, else pass ``vl``.
    """
    balanced = worlds["control"]
    recipes = {
        "target-default": (lambda **kw: train_target(worlds["default"], **kw), "default/train"),
        "target-control": (lambda **kw: train_target(worlds["control"], **kw), "control/train"),
        "robust": (lambda **kw: train_robust(balanced, **kw), "control/train"),
        "vl": (lambda **kw: train_vl(balanced, **kw), "control/train"),
        "decoder": (
            lambda **kw: train_decoder(balanced, models.get("vl", vl), **kw),
            "control/train (VL image embeddings -> images)",
        ),
    }
    models, info = {}, {}
    for name in names:
        fn, data = recipes[name]
        models[name], secs = _timed(fn, seed=seed, progress=progress, **overrides)
        info[name] = {"trained_on": data, "seed": seed, "train_seconds": secs}
    return models, info


_KWARGS = {
    TargetCNN: lambda m: {"n_classes": m.n_classes, "n_attributes": m.n_attributes},
    RobustNet: lambda m: {"n_classes": m.n_classes},
    DemoVisionLanguageEncoder: lambda m: {"embed_dim": m.embed_dim},
    EmbeddingDecoder: lambda m: {"embed_dim": m.embed_dim},
}


def save_weights(
    out: str,
    worlds: dict,
    models: dict,
    info: dict,
    *,
    quick: bool = False,
    n_attack: int = 500,
    extra: dict | None = None,
) -> dict:
    """Write ``<name>.safetensors`` for every model, measure them, and write ``metadata.json``."""
    import json
    import os
    import platform

    from safetensors.torch import save as to_safetensors_bytes

    os.makedirs(out, exist_ok=True)
    entries = {}
    for name, model in models.items():
        model.cpu()
        atomic_write(
            os.path.join(out, f"{name}.safetensors"),
            to_safetensors_bytes({k: v.contiguous() for k, v in model.state_dict().items()}),
        )
        entries[name] = {
            "class": type(model).__name__,
            "kwargs": _KWARGS[type(model)](model),
            "file": f"{name}.safetensors",
            "parameters": int(sum(p.numel() for p in model.parameters())),
            **info[name],
        }
    measurements, measure_seconds = _timed(measure, worlds, models, n_attack=n_attack)
    metadata = {
        "format": 1,
        "worlds": {v: {"config": worlds[v].config.to_dict(), "fingerprint": worlds[v].fingerprint} for v in worlds},
        "models": entries,
        "robust_training": {"norm": "L2", "eps": ROBUST_EPS, "attack_steps": 2, "random_start": True},
        "quick": bool(quick),
        "measurements": measurements,
        "measure_seconds": measure_seconds,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "device": str(get_device()),
        },
        **(extra or {}),
    }
    atomic_write(os.path.join(out, "metadata.json"), json.dumps(metadata, indent=1, sort_keys=True, default=str))
    return metadata


def main(argv=None) -> dict:
    """Train every demo model, measure them and write the weights + ``metadata.json`` to ``--out``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for *.safetensors and metadata.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test of the pipeline: 2 optimisation steps per model (useless weights)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    worlds = demo_worlds()
    quick = {"max_steps": 2} if args.quick else {}
    models, info = train_models(worlds, seed=args.seed, progress=not args.no_progress, **quick)
    return save_weights(
        args.out,
        worlds,
        models,
        info,
        quick=args.quick,
        n_attack=32 if args.quick else 500,
        extra={"total_seconds": round(time.perf_counter() - t0, 1)},
    )


if __name__ == "__main__":
    main()
