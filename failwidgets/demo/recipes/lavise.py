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

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from failwidgets._validation import check_choice

__all__ = [
    "LAYER",
    "explainer_params",
    "word_space",
    "feature_data_id",
    "load_explainer",
    "demo_features",
    "widget_inputs",
    "group_labels",
]


#: The explained layer: the demo target's last conv map (N, 128, 8, 8).
LAYER = "conv4"


_PARAMS = dict(
    holdout_fraction=0.3,
    margin=1.0,
    lr=1e-3,
    epochs=30,
    batch_size=256,
    dropout=0.1,
    p=25,
    s=5,
    quantile=0.005,
    iou_threshold=0.04,
    random_state=0,
)


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

    The files are :meth:`LaViSE.save`'s format; this adds the demo's own check that they were trained for
    this target model and world.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    root : directory holding ``lavise-<variant>.{safetensors,json}`` (default: the package data)
    **params : inference parameters to override (``p``, ``s``, ``quantile``, ``iou_threshold``,
        ``attention_pooling``, ``feature_batch_size``, ``device``, ``word_scoring``, ``prior_pairs``); the
        training parameters are the shipped ones.

    Raises
    ------
    FileNotFoundError
        No head shipped for this variant.
    ValueError
        The head was trained for another target model, world or word space (fingerprints differ).
    """
    from failwidgets.compute import fingerprint
    from failwidgets.methods.lavise import LaViSE

    for k in params:
        check_choice(
            k,
            "params",
            [
                "p",
                "s",
                "quantile",
                "iou_threshold",
                "attention_pooling",
                "feature_batch_size",
                "device",
                "word_scoring",
                "prior_pairs",
            ],
        )
    _, meta = _files(demo.variant)
    folder = Path(root) if root is not None else _shipped_dir()
    if not (folder / meta).is_file():
        raise FileNotFoundError(
            f"no shipped LaViSE explainer for variant {demo.variant!r} ({meta}); "
            f"run `python -m failwidgets.demo.training.lavise --variant {demo.variant} --out failwidgets/demo/weights`"
        )
    info = json.loads((folder / meta).read_text())
    space = word_space(demo.world)
    found = {"target": fingerprint(demo.target), "world": demo.world.fingerprint, "word_space": space.fingerprint}
    stale = [k for k, v in found.items() if info["fingerprints"][k] != v]
    if stale:
        raise ValueError(
            f"demo: the shipped LaViSE explainer ({meta}) was trained for another {', '.join(stale)} "
            "(fingerprints differ); retrain it with " + info["reproduce"]
        )
    with resources.as_file(folder) as path:
        return LaViSE.load(Path(path) / meta, model=demo.target, word_space=space, progress=progress, **params)


def demo_features(demo: Any, lav: Any, split: str, n: int | None = None, *, progress: bool = False):
    """Features (N, 128, 8, 8) of the first ``n`` images of ``split`` at the explainer's layer, via the demo's cache."""
    s, idx = _split_data(demo, split, n)
    images = s.as_tensor(idx)
    return images, lav.features(images, cache=demo.cache, data_id=feature_data_id(demo, split, n))


def widget_inputs(
    demo: Any,
    *,
    small: bool,
    split: str = "train",
    n_images: int | None = None,
    groups: str | tuple | None = ("shape", "circle", "square"),
    methods: Sequence[str] | None = None,
    progress: bool = False,
) -> dict:
    """Keyword arguments of :class:`~failwidgets.widgets.FilterWordExplorer` on the demo world.

    Loads the shipped explainer head (:func:`load_explainer`; it is trained here only when the shipped
    one does not fit the target, with a warning), computes the layer's features through the demo's
    cache, explains every filter, scores the words against the world's exact concept masks and builds
    the groups.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    small : fewer images (600) and only the cheap methods (attention and original image)
    split : the world split to explain
    n_images : the first ``n_images`` of the split (default 2000, small: 600)
    groups : ``(factor, value_a, value_b)`` -- images with one of the two values, the others left out --
        or a factor name (one group per value), or None (no group view)
    methods : inference methods (default: all four; small: attention and original)
    progress : progress bars while computing

    Returns
    -------
    dict: ``explanations`` (with IoU), ``images``, ``groups``, ``method`` and ``extras`` (``demo`` and
    ``evaluation``, the :class:`~failwidgets.methods.lavise.FilterEvaluation`).
    """
    import warnings

    from failwidgets.demo.training.lavise import train_explainer
    from failwidgets.methods.lavise import METHODS

    try:
        lav = load_explainer(demo, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        warnings.warn(f"{exc}; training an explainer now (slower)", RuntimeWarning, stacklevel=3)
        lav = train_explainer(demo, n_images=1000 if small else None, progress=progress)
    data = demo.world[split]
    n = min(len(data), n_images if n_images is not None else (600 if small else 2000))
    idx = np.arange(n)
    images, feats = demo_features(demo, lav, split, n, progress=progress)
    if methods is None:
        methods = ("attention", "original") if small else METHODS
    ex = lav.explain(images, features=feats, methods=methods)
    masks = {c: data.concept_masks(c, idx) for c in demo.world.concepts}
    evaluation = lav.evaluate(ex, masks, ks=(5, 10))
    del masks
    return {
        "explanations": evaluation.explanations,
        "images": np.asarray(data.images[:n]),
        "groups": None if groups is None else group_labels(data, groups, n),
        "method": lav,
        "extras": {"demo": demo, "evaluation": evaluation},
    }


def group_labels(data: Any, groups: str | tuple, n: int) -> np.ndarray:
    """Group of each of the first ``n`` images of a split: a factor's value names (object array, None = no group).

    ``groups`` is a factor name (one group per value) or ``(factor, value_a, value_b, ...)`` (the images
    with another value belong to no group).
    """
    from failwidgets.world.factors import FACTOR_NAMES, FACTOR_VALUES

    factor, wanted = (groups, None) if isinstance(groups, str) else (groups[0], list(groups[1:]))
    if factor not in FACTOR_NAMES:
        raise ValueError(f"groups: expected a factor name among {FACTOR_NAMES}, got {factor!r}")
    names = np.asarray(FACTOR_VALUES[factor], dtype=object)[data.factors[factor][:n]]
    if wanted is not None:
        for v in wanted:
            if v not in FACTOR_VALUES[factor]:
                raise ValueError(f"groups: {v!r} is not a value of {factor!r} {FACTOR_VALUES[factor]}")
        names = np.where(np.isin(names, wanted), names, None)
    return names
