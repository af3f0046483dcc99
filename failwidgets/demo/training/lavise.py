"""Train and write the demo's LaViSE explainer head: ``python -m failwidgets.demo.training.lavise --out
failwidgets/demo/weights``. The runtime loader is :func:`failwidgets.demo.recipes.lavise.load_explainer`.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from failwidgets.demo.recipes.lavise import LAYER, _files, _split_data, explainer_params, feature_data_id, word_space

__all__ = ["train_explainer", "save_explainer", "main"]


def train_explainer(
    demo: Any,
    *,
    n_images: int | None = None,
    concepts: Sequence[str] | None = None,
    progress: bool = True,
    **params: Any,
):
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
    lav = LaViSE(word_space(demo.world), progress=progress, **explainer_params(**params))
    images = split.as_tensor(idx)
    masks = {c: split.concept_masks(c, idx) for c in concepts}
    t = time.perf_counter()
    lav.fit_model(
        demo.target,
        images,
        LAYER,
        masks,
        cache=demo.cache,
        data_id=feature_data_id(demo, "train", None if idx is None else len(idx)),
    )
    lav.fit_seconds_ = time.perf_counter() - t
    return lav


def save_explainer(lav: Any, demo: Any, out: str | os.PathLike) -> Path:
    """Write the head and its metadata for ``demo.variant`` into ``out`` (:meth:`LaViSE.save`); returns the json path."""
    from failwidgets.compute import fingerprint

    _, meta = _files(demo.variant)
    return lav.save(
        Path(out) / meta,
        metadata={
            "variant": demo.variant,
            "fit_seconds": float(getattr(lav, "fit_seconds_", float("nan"))),
            "fingerprints": {"target": fingerprint(demo.target), "world": demo.world.fingerprint},
            "reproduce": f"python -m failwidgets.demo.training.lavise --variant {demo.variant} --out failwidgets/demo/weights",
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train and write the explainer head(s)."""
    from failwidgets.demo import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="failwidgets/demo/weights")
    ap.add_argument("--variant", action="append", choices=["default", "control"])
    ap.add_argument("--n-images", type=int, default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the head's small steps ran 15x slower with 2 threads than "
        "with 1 on the shared 2-core machine)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)  # a command-line entry point, not library code
    for variant in args.variant or ["default"]:
        demo = load(variant)
        lav = train_explainer(demo, n_images=args.n_images)
        path = save_explainer(lav, demo, args.out)
        print(
            f"{variant}: {lav.n_pairs_} pairs, loss {lav.loss_history_[0]:.3f} -> {lav.loss_history_[-1]:.3f}, "
            f"{lav.fit_seconds_:.1f} s; held out {lav.heldout_concepts_} -> {path}"
        )


if __name__ == "__main__":
    main()
