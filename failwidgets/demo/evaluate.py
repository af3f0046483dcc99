"""Measurements of the demo models: accuracy, the planted bias gap, robustness, caption retrieval."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from failwidgets._validation import check_choice
from failwidgets.demo._inference import model_device, predict_batches
from failwidgets.demo.attacks import l2_pgd

__all__ = [
    "accuracy",
    "bias_gap",
    "adversarial_accuracy",
    "caption_retrieval_top1",
    "caption_ranking",
]


def accuracy(model, images, labels, *, batch_size: int = 256) -> float:
    """Share of images whose argmax class logit equals the label. images (N, 3, H, W), labels (N,)."""
    pred = predict_batches(model, images, batch_size=batch_size).argmax(1)
    return float(np.mean(pred == np.asarray(labels)))


def bias_gap(
    model, world, *, split: str = "test", factor_a: str = "shape", factor_b: str = "background", batch_size: int = 256
) -> dict:
    """Accuracy on the majority cells (``b == mapping[a]``) and minority cells (``b != mapping[a]``) of a
    planted correlation (cells from :meth:`World.minority_mask` / :meth:`World.majority_mask`), on a split.

    Returns
    -------
    dict with ``majority``, ``minority`` (accuracies in [0, 1]), ``gap`` (majority - minority, in
    points: x100), ``n_majority``, ``n_minority``, ``overall``.
    """
    s = world[split]
    plant = world.find_plant((factor_a, factor_b), kind="correlation")
    minority, majority = world.minority_mask(plant, split), world.majority_mask(plant, split)
    correct = predict_batches(model, s.images, batch_size=batch_size).argmax(1) == s.labels
    maj, mino = float(correct[majority].mean()), float(correct[minority].mean())
    return {
        "majority": maj,
        "minority": mino,
        "gap": 100.0 * (maj - mino),
        "n_majority": int(majority.sum()),
        "n_minority": int(minority.sum()),
        "overall": float(correct.mean()),
    }


def adversarial_accuracy(
    model, images, labels, *, eps: float, steps: int, batch_size: int = 128, seed: int = 0
) -> float:
    """Accuracy under an untargeted L2 PGD attack (:func:`~failwidgets.demo.attacks.l2_pgd`, no
    random start) of radius ``eps``. images (N, 3, H, W) in [0, 1] tensor or uint8 (N, H, W, 3)."""
    from failwidgets.compute import as_image_tensor, eval_on

    x = as_image_tensor(images)
    y = torch.as_tensor(np.asarray(labels))
    correct = 0
    with eval_on(model, model_device(model)) as dev:  # stays where it is; mode restored
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)
            adv = l2_pgd(model, xb, yb, eps=eps, steps=steps)
            with torch.no_grad():
                correct += int((model(adv).argmax(1) == yb).sum())
    return correct / max(len(x), 1)


def caption_retrieval_top1(vl, split, *, candidates: Sequence[str] | None = None) -> float:
    """Share of images whose own caption has the highest cosine among ``candidates`` (default: the
    distinct captions of ``split``). split : a world split with ``images`` and ``captions``."""
    captions = [str(c) for c in split.captions]
    candidates = sorted(set(captions)) if candidates is None else list(candidates)
    index = {c: i for i, c in enumerate(candidates)}
    truth = np.array([index.get(c, -1) for c in captions])
    img = vl.encode_images(split.images, progress=False)
    txt = vl.encode_texts(candidates)
    return float(np.mean((img @ txt.T).argmax(1) == truth))


def caption_ranking(vl, split, caption: str, factor: str, value: str) -> dict:
    """How a caption ranks images that have ``factor == value`` against those that do not.

    Returns
    -------
    dict with ``auc`` (probability that a matching image scores above a non-matching one),
    ``mean_matching``, ``mean_other`` (mean cosine) and ``top10_precision`` (share of the 10 best
    scored images that match).
    """
    from failwidgets.world.factors import FACTOR_VALUES

    check_choice(value, f"value (a value of factor {factor!r})", FACTOR_VALUES[factor])
    match = split.factors[factor] == FACTOR_VALUES[factor].index(value)
    scores = vl.encode_images(split.images, progress=False) @ vl.encode_texts([caption])[0]
    top = np.argsort(-scores)[:10]
    return {
        "caption": caption,
        "factor": factor,
        "value": value,
        "auc": float(roc_auc_score(match, scores)),
        "mean_matching": float(scores[match].mean()),
        "mean_other": float(scores[~match].mean()),
        "top10_precision": float(match[top].mean()),
    }
