"""Barlow on the demo world (``failwidgets.demo.load()``): the data of a split and trees for every class.

The demo's models and cached per-split outputs supply everything Barlow needs:

- features: the robust model's penultimate layer ``features`` (global average of its last conv map
  ``layer3``), or, for the paper's robust-versus-standard comparison, the target model's ``pool``
  (global average of ``conv4``), both read through the demo's ``EmbeddingCache``;
- labels: the world's shape classes; predictions: the target model's (cached) predictions.

Trees are fitted on the validation split (its backgrounds no longer follow the shapes, so a model that
learned the training split's shape -> background shortcut fails there) and reported on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from failwidgets._validation import check_choice, check_positive_int
from failwidgets.methods.barlow import ClassTree, fit_class_tree

__all__ = ["FEATURE_MODELS", "DemoSplit", "demo_split", "demo_class_trees", "background_plant", "widget_inputs"]

#: feature set -> (Demo attribute of the model, penultimate layer, last conv map before pooling)
FEATURE_MODELS = {"robust": ("robust", "features", "layer3"), "target": ("target", "pool", "conv4")}


@dataclass(frozen=True)
class DemoSplit:
    """The first ``n`` images of one demo split, ready for Barlow.

    Attributes
    ----------
    name : split name; features : ndarray float32 (n, D); labels, preds : ndarray int64 (n,);
    images : uint8 (n, 64, 64, 3); minority : bool (n,), the images whose background breaks the
    planted shape -> background correlation of the training split.
    """

    name: str
    features: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    images: np.ndarray
    minority: np.ndarray

    @property
    def heldout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(features, labels, preds)``, the ``heldout=`` argument of :func:`fit_class_tree`."""
        return self.features, self.labels, self.preds


def background_plant(demo) -> dict:
    """The world's planted shape -> background correlation (an entry of ``demo.world.planted``)."""
    return demo.world.find_plant(("shape", "background"), kind="correlation")


def demo_split(
    demo, split: str = "val", *, features: str = "robust", n_images: int | None = None, progress: bool = False
) -> DemoSplit:
    """Features, labels, target predictions, images and the planted-minority mask of a demo split.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    split : ``"train" | "val" | "test" | "pool"``
    features : ``"robust"`` (``demo.robust`` at ``features``, 64-d) or ``"target"`` (``demo.target``
        at ``pool``, 128-d); both cached by the demo.
    n_images : keep the first ``n_images`` (default: the whole split).
    """
    check_choice(features, "features", list(FEATURE_MODELS))
    data = demo.world[split]
    n = len(data.labels) if n_images is None else min(check_positive_int(n_images, "n_images"), len(data.labels))
    feats = demo.embeddings(split, features, progress=progress)[:n]
    preds = demo.predictions(split, progress=progress)[:n]
    minority = demo.world.minority_mask(background_plant(demo), split)[:n]
    return DemoSplit(
        split,
        np.asarray(feats, dtype=np.float32),
        np.asarray(data.labels[:n]),
        np.asarray(preds),
        data.images[:n],
        minority,
    )


def demo_class_trees(
    fit: DemoSplit, heldout: DemoSplit | None = None, *, grouping: str = "label", **tree_params: Any
) -> dict[int, ClassTree | str]:
    """A :class:`ClassTree` for every class of the world, or the reason there is none.

    Parameters
    ----------
    fit, heldout : :class:`DemoSplit` (same feature set).
    grouping : ``"label"`` or ``"prediction"``.
    **tree_params : :class:`~failwidgets.methods.barlow.BarlowTree` parameters (max_depth, k, ...).

    Returns
    -------
    dict class index -> ClassTree, or -> str (the ``ValueError`` message: an empty group, a group with
    no failures or only failures).
    """
    out: dict[int, ClassTree | str] = {}
    for c in np.unique(np.concatenate([fit.labels, fit.preds])):
        try:
            out[int(c)] = fit_class_tree(
                fit.features,
                fit.labels,
                fit.preds,
                int(c),
                grouping=grouping,
                heldout=None if heldout is None else heldout.heldout,
                **tree_params,
            )
        except ValueError as exc:
            out[int(c)] = str(exc)
    return out


def widget_inputs(
    demo,
    *,
    small: bool,
    features: str = "robust",
    fit_split: str = "val",
    heldout_split: str = "test",
    n_images: int | None = None,
    class_index: int | None = None,
    grouping: str = "label",
    max_depth: int = 1,
    k: int = 20,
    progress: bool = False,
) -> dict:
    """Keyword arguments of :class:`~failwidgets.widgets.TreeBrowser` on the demo world.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    small : 1,000 images per split and at most 50 attack steps, so a notebook runs fast in CI
    features : ``"robust"`` or ``"target"`` (see :data:`FEATURE_MODELS`)
    fit_split, heldout_split : world splits the trees are fitted and reported on
    n_images : the first ``n_images`` of each split (default: all; small: 1,000)
    class_index : the class shown first (default: the class whose tree with ``grouping``, ``max_depth``
        and ``k`` has the largest held-out ALER - BER)
    progress : progress bars while computing

    Returns
    -------
    dict of constructor arguments and ``extras`` (``demo``, ``fit_data``, ``heldout_data``: :class:`DemoSplit`).
    """
    if n_images is None:
        n_images = 1000 if small else None
    fit = demo_split(demo, fit_split, features=features, n_images=n_images, progress=progress)
    held = demo_split(demo, heldout_split, features=features, n_images=n_images, progress=progress)
    if class_index is None:
        trees = demo_class_trees(fit, held, grouping=grouping, max_depth=max_depth, k=k)
        scores = {c: t.heldout.aler_minus_ber for c, t in trees.items() if not isinstance(t, str)}
        scores = {c: s for c, s in scores.items() if np.isfinite(s)}
        class_index = max(scores, key=scores.get) if scores else 0
    model_attr, layer, conv = FEATURE_MODELS[features]
    # the features in words: the demo's vision-language encoder on the fit images
    from failwidgets.methods.barlow import name_features_with_encoder

    vl = demo.embeddings(fit_split, "vl", progress=progress)[: len(fit.labels)]
    names = name_features_with_encoder(fit.features, vl, demo.vl, demo.world.concepts)
    return {
        "features": fit.features,
        "labels": fit.labels,
        "preds": fit.preds,
        "images": fit.images,
        "heldout": held.heldout,
        "class_names": demo.world.class_names,
        "feature_model": getattr(demo, model_attr),
        "feature_layer": layer,
        "conv_layer": conv,
        "class_index": int(class_index),
        "grouping": grouping,
        "max_depth": max_depth,
        "k": k,
        "attack_steps": 50 if small else 200,
        "cache": demo.cache,
        "feature_names": names,
        "extras": {"demo": demo, "fit_data": fit, "heldout_data": held},
    }
