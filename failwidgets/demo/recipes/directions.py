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

import argparse
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np


__all__ = ['whitening', 'demo_captions', 'demo_vocabulary']


_REPRODUCE = "python -m failwidgets.demo.training.directions --out failwidgets/demo/weights"


def _file(variant: str) -> str:
    return f"directions-{variant}.json"


def _fingerprints(demo: Any) -> dict:
    from failwidgets.compute import fingerprint

    return {"vl": fingerprint(demo.vl), "world": demo.world.fingerprint}


def _computed(demo: Any, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from failwidgets.methods.directions import whitening_stats

    parts = {"what": "directions_whitening", "encoder": demo.vl.identity(), "world": demo.world.fingerprint,
             "split": "train"}

    def compute() -> np.ndarray:
        return np.stack(whitening_stats(demo.embeddings("train", progress=progress)))

    stats = demo.cache.get_or_compute(parts, compute)
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
    phrases = [None, *(f"on {b}" for b in FACTOR_VALUES["background"]),
               *(f"on the {p}" for p in FACTOR_VALUES["position"])]
    return {"adjectives": adjectives, "phrases": phrases}
