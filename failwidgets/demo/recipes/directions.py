"""Failure directions (Jain et al. 2023) on the demo world: the shipped whitening statistics and helpers.

The method whitens embeddings with the per-dimension mean and standard deviation of the *training*
split. On the demo that means rendering and encoding 6,000 training images just for 2 x 50 numbers, the
slowest part of :meth:`failwidgets.widgets.DirectionSlider.from_demo` on a cold cache. They are
deterministic for the shipped VL encoder and world, so they ship as package data:

``python -m failwidgets.demo.training.directions --out failwidgets/demo/weights`` writes
``directions-<variant>.json`` for both variants: the statistics, the fingerprints of the VL encoder and
the world they were computed for, and the command that reproduces them.

:func:`whitening` uses the shipped file when its fingerprints match ``demo`` and otherwise computes the
statistics through the demo's :class:`~failwidgets.compute.EmbeddingCache` (keyed by the encoder
identity, the world fingerprint and the split), so a retrained encoder never reads stale numbers.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["whitening", "demo_captions", "demo_vocabulary", "widget_inputs"]


_REPRODUCE = "python -m failwidgets.demo.training.directions --out failwidgets/demo/weights"


def _file(variant: str) -> str:
    return f"directions-{variant}.json"


def _fingerprints(demo: Any) -> dict:
    from failwidgets.compute import fingerprint

    return {"vl": fingerprint(demo.vl), "world": demo.world.fingerprint}


def _computed(demo: Any, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from failwidgets.compute import cached
    from failwidgets.methods.directions import whitening_stats

    def compute() -> np.ndarray:
        return np.stack(whitening_stats(demo.embeddings("train", progress=progress)))

    stats = cached(
        demo.cache,
        compute,
        what="directions_whitening",
        encoder=demo.vl.identity(),
        world=demo.world.fingerprint,
        split="train",
    )
    return stats[0].astype(np.float64), stats[1].astype(np.float64)


def whitening(demo: Any, *, root: str | os.PathLike | None = None, progress: bool = False):
    """``(mean (D,), std (D,))`` of the VL embeddings of ``demo``'s training split.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    root : directory holding ``directions-<variant>.json`` (default: the package data)
    progress : progress bar if the training split has to be encoded

    Returns
    -------
    mean, std : ndarray (D,) float64, as :func:`failwidgets.methods.directions.whitening_stats`.
    """
    name = _file(demo.variant)
    f = Path(root) / name if root is not None else resources.files("failwidgets.demo") / "weights" / name
    if f.is_file():
        info = json.loads(f.read_text())
        if info.get("fingerprints") == _fingerprints(demo):
            return np.asarray(info["mean"], np.float64), np.asarray(info["std"], np.float64)
    return _computed(demo, progress)


def demo_captions(demo: Any) -> tuple[list[list[str]], list[np.ndarray], np.ndarray]:
    """Caption candidates of every class of the demo world and their VL text embeddings.

    Candidates: ``generate_captions(class_name, **demo_vocabulary())`` (the world's colours, sizes and
    textures as adjectives, backgrounds and positions as phrases); reference: ``"a photo of a <class>"``.

    Returns
    -------
    captions : list (n_classes,) of list of str (M_c,)
    caption_embeddings : list (n_classes,) of ndarray (M_c, D)
    reference_embeddings : ndarray (n_classes, D)
    """
    from failwidgets.methods.directions import generate_captions, reference_caption

    names = demo.world.class_names
    caps = [generate_captions(n, **demo_vocabulary()) for n in names]
    embs = [demo.text_embeddings(c) for c in caps]
    refs = demo.text_embeddings([reference_caption(n) for n in names])
    return caps, embs, refs


def demo_vocabulary() -> dict:
    """Default caption parts for the demo world (``failwidgets.world``): its colours, sizes and textures
    as adjectives, its backgrounds and positions as phrases (each list starts with ``None`` = absent).

    Use as ``generate_captions(class_name, **demo_vocabulary())``.
    """
    from failwidgets.world import FACTOR_VALUES

    adjectives = [None, *FACTOR_VALUES["colour"], *FACTOR_VALUES["size"], *FACTOR_VALUES["texture"]]
    phrases = [
        None,
        *(f"on {b}" for b in FACTOR_VALUES["background"]),
        *(f"on the {p}" for p in FACTOR_VALUES["position"]),
    ]
    return {"adjectives": adjectives, "phrases": phrases}


def widget_inputs(
    demo: Any,
    *,
    small: bool,
    reference: str = "caption",
    max_modes: int | None = None,
    n_permutations: int | None = None,
    progress: bool = False,
) -> dict:
    """Keyword arguments of :class:`~failwidgets.widgets.DirectionSlider` on the demo world.

    Fits :class:`~failwidgets.methods.directions.FailureDirections` with the paper's defaults on the
    validation split's cached VL embeddings and the target's cached predictions (whitening: :func:`whitening`),
    scores the demo vocabulary's captions per class, and offers two decoders: retrieval (the pool split's
    images, or the validation split's when ``small``) and the demo's generator.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    small : retrieve from the validation split and one failure mode per class (fast in CI)
    reference : ``"caption"`` (slerp from ``"a photo of a <class>"``) or ``"mean"`` (the class's mean image embedding)
    max_modes : failure modes per class (default 3, small: 1)
    n_permutations : permuted-target refits per mode (default 30, small: 20)
    progress : progress bars while loading, encoding and fitting

    Returns
    -------
    dict of constructor arguments and ``extras`` (``demo``, ``caption_data``).
    """
    from failwidgets._validation import check_choice
    from failwidgets.methods.directions import FailureDirections, GeneratorDecoder, RetrievalDecoder

    check_choice(reference, "reference", ["caption", "mean"])
    val = demo.world["val"]
    emb = demo.embeddings("val", progress=progress)
    preds = demo.predictions("val", progress=progress)
    names = demo.world.class_names
    fd = FailureDirections(
        max_modes=(1 if small else 3) if max_modes is None else max_modes,
        n_permutations=(20 if small else 30) if n_permutations is None else n_permutations,
        progress=progress,
    )
    fd.fit(emb, val.labels, preds, n_classes=len(names), whitening=whitening(demo, progress=progress))
    caps, cap_emb, refs = demo_captions(demo)

    def captions(c, m):
        return fd.top_captions(c, caps[c], cap_emb[c], refs[c], k=5, mode=m)

    bank = val if small else demo.world["pool"]
    bank_emb = emb if small else demo.embeddings("pool", progress=progress)
    decoders = {
        "retrieval": RetrievalDecoder(bank_emb, bank.images, labels=bank.labels),
        "generator": GeneratorDecoder(demo.decoder, embed_dim=demo.decoder.embed_dim, jitter=0.05),
    }
    return {
        "method": fd,
        "images": val.images,
        "embeddings": emb,
        "labels": val.labels,
        "preds": preds,
        "class_names": names,
        "captions": captions,
        "reference_embeddings": refs if reference == "caption" else None,
        "decoders": decoders,
        # caption evidence: the VL text side and the test split (held out)
        "caption_embedder": demo.text_embeddings,
        "heldout": (
            demo.embeddings("test", progress=progress),
            demo.world["test"].labels,
            demo.predictions("test", progress=progress),
        ),
        "extras": {
            "demo": demo,
            "caption_data": {"captions": caps, "caption_embeddings": cap_emb, "reference_embeddings": refs},
        },
    }
