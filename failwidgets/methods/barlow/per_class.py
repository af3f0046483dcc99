"""Barlow trees for many classes at once: :func:`fit_class_trees`, locally or as Ray tasks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from failwidgets._validation import check_array, check_choice
from failwidgets.compute.ray_engine import ENGINES, map_items
from failwidgets.methods.barlow.tree import GROUPINGS, ClassTree, fit_class_tree

__all__ = ["fit_class_trees"]


def fit_class_trees(
    features,
    labels,
    preds,
    class_indices: Iterable[int] | None = None,
    *,
    grouping: str = "label",
    heldout: tuple[Any, Any, Any] | None = None,
    errors: str = "raise",
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool = False,
    **tree_params: Any,
) -> dict[int, ClassTree]:
    """:func:`~failwidgets.methods.barlow.fit_class_tree` for every class in ``class_indices``.

    Parameters
    ----------
    features : array (N, D); labels, preds : int arrays (N,).
    class_indices : the classes (default: every label in ``labels``).
    grouping : ``"label"`` or ``"prediction"``.
    heldout : optional ``(features (M, D), labels (M,), preds (M,))`` of a held-out split.
    errors : ``"raise"``: a class that cannot be fitted (an empty group, no failures or only
        failures) raises its ``ValueError``; ``"skip"``: it is left out of the result.
    engine : ``"local"`` (this process) or ``"ray"`` (Ray tasks, ``pip install 'failwidgets[ray]'``);
        the arrays are sent to the cluster once, the classes in chunks. The trees are the same.
    ray_address : with ``engine="ray"``, the cluster to connect to when Ray is not initialised yet.
    progress : a ``tqdm`` bar over classes.
    **tree_params : :class:`~failwidgets.methods.barlow.BarlowTree` parameters.

    Returns
    -------
    dict class index -> :class:`~failwidgets.methods.barlow.ClassTree`, in the order of ``class_indices``.
    """
    check_choice(grouping, "grouping", GROUPINGS)
    check_choice(errors, "errors", ("raise", "skip"))
    check_choice(engine, "engine", ENGINES)
    x = check_array(features, "features", ndim=2, dtype="float")
    labels, preds = np.asarray(labels), np.asarray(preds)
    classes = np.unique(labels) if class_indices is None else class_indices
    classes = [int(c) for c in classes]
    out = map_items(
        _fit_one,
        classes,
        shared=(x, labels, preds, grouping, heldout, tree_params),
        engine=engine,
        ray_address=ray_address,
        progress=progress,
        desc="Barlow trees",
    )
    trees = {}
    for c, got in zip(classes, out):
        if isinstance(got, ValueError):
            if errors == "raise":
                raise got
            continue
        trees[c] = got
    return trees


def _fit_one(x, labels, preds, grouping, heldout, tree_params, c):
    try:
        return fit_class_tree(x, labels, preds, c, grouping=grouping, heldout=heldout, **tree_params)
    except ValueError as exc:  # returned, so that one bad class does not lose the other classes' trees
        return exc
