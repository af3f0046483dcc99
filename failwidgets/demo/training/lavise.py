"""Train and write the demo's LaViSE explainer head: ``python -m failwidgets.demo.training.lavise --out
failwidgets/demo/weights``. The runtime loader is :func:`failwidgets.demo.recipes.lavise.load_explainer`.
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
from safetensors.torch import load_file, save as to_safetensors_bytes

from failwidgets._io import atomic_write
from failwidgets._validation import check_choice


from failwidgets.demo.recipes.lavise import LAYER, _PARAMS, _files, _split_data, explainer_params, feature_data_id, word_space

__all__ = ['train_explainer', 'save_explainer', 'main']


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


def save_explainer(lav: Any, demo: Any, out: str | os.PathLike) -> Path:
    """Write the head and its metadata for ``demo.variant`` into ``out``; returns the json path."""
    from failwidgets.compute import fingerprint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights, meta = _files(demo.variant)
    atomic_write(out / weights, to_safetensors_bytes({k: v.detach().cpu().contiguous()
                                                      for k, v in lav.head_.state_dict().items()}))
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
        "reproduce": f"python -m failwidgets.demo.training.lavise --variant {demo.variant} --out failwidgets/demo/weights",
    }
    path = out / meta
    atomic_write(path, json.dumps(info, indent=1) + "\n")
    return path


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
