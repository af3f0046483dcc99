"""The shipped LaViSE explainer head for the demo target's last conv layer, and how to reproduce it.

``python -m failwidgets.demo.train_lavise --out failwidgets/demo/weights`` trains the explainer head of
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

__all__ = ["LAYER", "explainer_params", "word_space", "train_explainer", "save_explainer", "load_explainer",
           "feature_data_id", "main"]

#: The explained layer: the demo target's last conv map (N, 128, 8, 8).
LAYER = "conv4"

#: Training settings of the shipped head. The paper's head, loss, margin 1 and 30 % held-out concepts;
#: Adam at 1e-3 instead of the paper's 1e-4 because the demo trains for a few epochs on CPU (at 1e-4 the
#: loss is still falling after 30 epochs).
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


def train_explainer(demo: Any, *, n_images: int | None = None, concepts: Sequence[str] | None = None,
                    progress: bool = True, **params: Any):
    """Fit the LaViSE explainer on the demo world's training split.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    n_images : int, optional
        Use the first ``n_images`` training images (default all).
    concepts : sequence of str, optional
        Concepts to train on (default: all of ``demo.world.concepts``).
    **params : override :func:`explainer_params`.

    Returns
    -------
    LaViSE, fitted (``head_`` etc.)
    """
    from failwidgets.methods.lavise import LaViSE

    split, idx = _split_data(demo, "train", n_images)
    concepts = list(demo.world.concepts if concepts is None else concepts)
    lav = LaViSE(demo.target, LAYER, word_space(demo.world), cache=demo.cache, progress=progress,
                 **explainer_params(**params))
    images = split.as_tensor(idx)
    feats = lav.features(images, data_id=feature_data_id(demo, "train", None if idx is None else len(idx)))
    masks = {c: split.concept_masks(c, idx) for c in concepts}
    t = time.perf_counter()
    lav.fit(images, masks, features=feats)
    lav.fit_seconds_ = time.perf_counter() - t
    return lav


def _files(variant: str) -> tuple[str, str]:
    return f"lavise-{variant}.safetensors", f"lavise-{variant}.json"


def save_explainer(lav: Any, demo: Any, out: str | os.PathLike) -> Path:
    """Write the head and its metadata for ``demo.variant`` into ``out``; returns the json path."""
    from failwidgets.compute import fingerprint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights, meta = _files(demo.variant)
    save_file({k: v.detach().cpu().contiguous() for k, v in lav.head_.state_dict().items()}, str(out / weights))
    params = {k: getattr(lav, k) for k in _PARAMS}
    info = {
        "layer": lav.layer,
        "variant": demo.variant,
        "file": weights,
        "params": params,
        "hidden_dim": lav.hidden_dim,
        "in_dim": lav.n_filters_,
        "word_dim": lav.head_.net[-1].out_features,
        "feature_size": list(lav.feature_size_),
        "concepts": lav.concepts_,
        "train_concepts": lav.train_concepts_,
        "heldout_concepts": lav.heldout_concepts_,
        "n_pairs": lav.n_pairs_,
        "loss_history": [float(x) for x in lav.loss_history_],
        "fit_seconds": float(getattr(lav, "fit_seconds_", float("nan"))),
        "fingerprints": {
            "target": fingerprint(demo.target),
            "world": demo.world.fingerprint,
            "word_space": lav.word_space.fingerprint,
        },
        "reproduce": f"python -m failwidgets.demo.train_lavise --variant {demo.variant} --out failwidgets/demo/weights",
    }
    path = out / meta
    path.write_text(json.dumps(info, indent=1) + "\n")
    return path


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
    from failwidgets.methods._lavise_head import ExplainerHead
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
            f"run `python -m failwidgets.demo.train_lavise --variant {demo.variant} --out failwidgets/demo/weights`"
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


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train and write the explainer head(s)."""
    from failwidgets.demo import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="failwidgets/demo/weights")
    ap.add_argument("--variant", action="append", choices=["default", "control"])
    ap.add_argument("--n-images", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the head's small steps ran 15x slower with 2 threads than "
                         "with 1 on the shared 2-core machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)  # a command-line entry point, not library code
    for variant in args.variant or ["default"]:
        demo = load(variant)
        lav = train_explainer(demo, n_images=args.n_images)
        path = save_explainer(lav, demo, args.out)
        print(f"{variant}: {lav.n_pairs_} pairs, loss {lav.loss_history_[0]:.3f} -> {lav.loss_history_[-1]:.3f}, "
              f"{lav.fit_seconds_:.1f} s; held out {lav.heldout_concepts_} -> {path}")


if __name__ == "__main__":
    main()
