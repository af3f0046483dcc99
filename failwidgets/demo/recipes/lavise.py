"""The shipped LaViSE explainer head for the demo target's last conv layer, and how to reproduce it.

``python -m failwidgets.demo.training.lavise --out failwidgets/demo/weights`` trains the explainer head of
:class:`failwidgets.methods.lavise.LaViSE` on the demo world's training split (features of the frozen
``target-<variant>`` model's ``conv4``, the world's exact concept masks, 70 % of the concepts, GloVe
50-d) and writes

* ``lavise-<variant>.safetensors`` -- the head's state dict;
* ``lavise-<variant>.json`` -- the layer, the training and held-out concepts, the estimator
  parameters, the fingerprints of the target model, the world and the word space it was trained
  against, and what was measured (loss per epoch, training time).

:func:`load_explainer` rebuilds a fitted :class:`LaViSE` from these files without training; it refuses
files made for another target model or world (their fingerprints differ) so a retrained target never
reads a stale head.

This module holds what :meth:`FilterWordExplorer.from_demo` needs at run time (loading the shipped head);
:mod:`failwidgets.demo.training.lavise` trains and writes it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from failwidgets._validation import check_choice


__all__ = ['LAYER', 'explainer_params', 'word_space', 'feature_data_id', 'load_explainer']


#: The explained layer: the demo target's last conv map (N, 128, 8, 8).
LAYER = "conv4"


_PARAMS = dict(holdout_fraction=0.3, margin=1.0, lr=1e-3, epochs=30, batch_size=256, dropout=0.1,
               p=25, s=5, quantile=0.005, iou_threshold=0.04, random_state=0)


def explainer_params(**overrides: Any) -> dict:
    """The LaViSE parameters of the shipped head (``overrides`` replace entries)."""
    return {**_PARAMS, **overrides}


def word_space(world: Any):
    """GloVe 6B 50-d with the vocabulary restricted to the world's concept words.

    The space keeps all 400k words (held-out concepts are embedded like any other word); the
    vocabulary is the generalised zero-shot setting of the paper's Table 2: every concept, training or
    held out, is a candidate answer.
    """
    from failwidgets.compute.words import glove_space

    return glove_space().restrict(list(world.concepts))


def feature_data_id(demo: Any, split: str, n: int | None = None) -> str:
    """Cache id of the images of ``split`` (the first ``n``) of the demo world."""
    return f"{demo.world.fingerprint}/{split}" + ("" if n is None else f"[:{int(n)}]")


def _split_data(demo: Any, split: str, n: int | None):
    s = demo.world[split]
    n_all = len(s)
    idx = None if n is None or n >= n_all else np.arange(int(n))
    return s, idx


def _files(variant: str) -> tuple[str, str]:
    return f"lavise-{variant}.safetensors", f"lavise-{variant}.json"


def _shipped_dir():
    return resources.files("failwidgets.demo") / "weights"


def load_explainer(demo: Any, *, root: str | os.PathLike | None = None, progress: bool = True, **params: Any):
    """A fitted :class:`LaViSE` for ``demo.target``'s ``conv4`` from the shipped head (no training).

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    root : directory holding ``lavise-<variant>.{safetensors,json}`` (default: the package data)
    **params : inference parameters to override (``p``, ``s``, ``quantile``, ``iou_threshold``,
        ``attention_pooling``); the
        training parameters are the shipped ones.

    Raises
    ------
    FileNotFoundError
        No head shipped for this variant.
    ValueError
        The head was trained for another target model, world or word space (fingerprints differ).
    """
    from failwidgets.compute import fingerprint
    from failwidgets.methods.lavise.head import ExplainerHead
    from failwidgets.methods.lavise import LaViSE

    for k in params:
        check_choice(k, "params", ["p", "s", "quantile", "iou_threshold", "attention_pooling", "feature_batch_size",
                                   "device"])
    base = Path(root) if root is not None else None
    weights, meta = _files(demo.variant)
    meta_file = (base / meta) if base is not None else _shipped_dir() / meta
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"no shipped LaViSE explainer for variant {demo.variant!r} ({meta}); "
            f"run `python -m failwidgets.demo.training.lavise --variant {demo.variant} --out failwidgets/demo/weights`"
        )
    info = json.loads(meta_file.read_text())
    space = word_space(demo.world)
    found = {"target": fingerprint(demo.target), "world": demo.world.fingerprint, "word_space": space.fingerprint}
    stale = [k for k, v in found.items() if info["fingerprints"][k] != v]
    if stale:
        raise ValueError(
            f"demo: the shipped LaViSE explainer ({meta}) was trained for another {', '.join(stale)} "
            "(fingerprints differ); retrain it with " + info["reproduce"]
        )
    lav = LaViSE(demo.target, info["layer"], space, cache=demo.cache, progress=progress,
                 hidden_dim=info["hidden_dim"], **{**info["params"], **params})
    head = ExplainerHead(info["in_dim"], info["word_dim"], info["hidden_dim"], info["params"]["dropout"])
    wfile = (base / weights) if base is not None else _shipped_dir() / weights
    with resources.as_file(wfile) as path:
        head.load_state_dict(load_file(os.fspath(path)))
    head.eval()
    lav.head_ = head
    lav.concepts_ = list(info["concepts"])
    lav.train_concepts_ = list(info["train_concepts"])
    lav.heldout_concepts_ = list(info["heldout_concepts"])
    lav.n_filters_ = int(info["in_dim"])
    lav.feature_size_ = tuple(info["feature_size"])
    lav.n_pairs_ = int(info["n_pairs"])
    lav.loss_history_ = list(info["loss_history"])
    return lav
