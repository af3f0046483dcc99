"""The methods the benchmark scores, each behind :class:`~failwidgets.slices.interface.SliceMethod`.

failwidgets' own methods:

* :class:`DirectionsMethod` -- Jain et al.'s failure direction of the class (a linear SVM separating the
  class's errors from its correct predictions in whitened embedding space); test images are scored by
  ``-decision value`` (hardest first), i.e. the ranking of ``FailureDirections.hardest``. With
  ``max_modes > 1`` every further failure mode is one more predicted slice.
* :class:`BarlowLeafMethod` -- Singla et al.'s failure tree (depth 3, as in the paper's study) on the
  class's validation images; the predicted slice is membership of the leaf with the highest importance
  value (ties within the leaf count in expectation, see :mod:`failwidgets.slices.metrics`).

Baselines: :class:`RandomMethod` (random scores within the class), :class:`ConfidenceMethod` (lowest top
softmax probability first), :class:`LossMethod` (lowest probability of the true class first) and
:class:`DominoMethod` (the error-aware mixture model, :mod:`failwidgets.slices.domino`).

``space`` chooses what a method clusters or separates: ``"embeddings"`` (the demo vision-language
encoder, independent of the model, as CLIP in dcbench and Jain et al.) or ``"features"`` (the model's own
penultimate features, as Barlow's robust features).
"""

from __future__ import annotations

import warnings

import numpy as np

from failwidgets._validation import check_choice, check_positive_int
from failwidgets.methods import BarlowTree, FailureDirections
from failwidgets.slices.domino import DominoSlicer
from failwidgets.slices.interface import MAX_SLICES, ClassData

__all__ = [
    "SPACES",
    "RandomMethod",
    "ConfidenceMethod",
    "LossMethod",
    "DominoMethod",
    "DirectionsMethod",
    "BarlowLeafMethod",
    "default_methods",
]

SPACES = ("embeddings", "features")


def _space(data: ClassData, space: str) -> np.ndarray:
    return data.embeddings if space == "embeddings" else data.features


class RandomMethod:
    """Uniform random scores (seeded by ``random_state`` and the number of images)."""

    def __init__(self, random_state: int = 0, name: str = "random"):
        self.random_state = random_state
        self.name = name

    def fit(self, val: ClassData) -> RandomMethod:
        return self

    def score(self, data: ClassData) -> np.ndarray:
        return np.random.default_rng([self.random_state, len(data)]).random(len(data))


class ConfidenceMethod:
    """Lowest confidence first: score ``= 1 - max softmax probability`` (needs no label)."""

    name = "low confidence"

    def fit(self, val: ClassData) -> ConfidenceMethod:
        return self

    def score(self, data: ClassData) -> np.ndarray:
        return 1.0 - data.confidence


class LossMethod:
    """Highest loss first: score ``= 1 - softmax probability of the true class``."""

    name = "high loss"

    def fit(self, val: ClassData) -> LossMethod:
        return self

    def score(self, data: ClassData) -> np.ndarray:
        return 1.0 - data.true_class_probability


class DominoMethod:
    """Domino's error-aware mixture (:class:`~failwidgets.slices.domino.DominoSlicer`) fitted on the
    class's validation images; returns the responsibilities of its ``n_slices`` slice components.

    Parameters
    ----------
    space : {"embeddings", "features"}
    n_slices, n_components : int
    random_state : int
    """

    def __init__(
        self,
        space: str = "embeddings",
        n_slices: int = MAX_SLICES,
        n_components: int = 25,
        random_state: int = 0,
        name: str | None = None,
    ):
        self.space = check_choice(space, "space", SPACES)
        self.n_slices = n_slices
        self.n_components = n_components
        self.random_state = random_state
        self.name = name or ("domino" if space == "embeddings" else f"domino ({space})")

    def fit(self, val: ClassData) -> DominoMethod:
        k = min(check_positive_int(self.n_components, "n_components"), len(val))
        self.slicer_ = DominoSlicer(n_slices=min(self.n_slices, k), n_components=k, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # non-convergence in 100 steps is reported in n_iter_
            self.slicer_.fit(_space(val, self.space), val.labels, val.probs)
        return self

    def score(self, data: ClassData) -> np.ndarray:
        return self.slicer_.predict_proba(_space(data, self.space), data.labels, data.probs)


class DirectionsMethod:
    """Failure directions of the class (:class:`~failwidgets.methods.FailureDirections`).

    Parameters
    ----------
    space : {"embeddings", "features"}
        Whitening uses ``reference_embeddings`` (training images) in embedding space and the validation
        images themselves in feature space.
    max_modes : int
        1: the paper's direction; more: every further mode is one more predicted slice.
    """

    def __init__(self, space: str = "embeddings", max_modes: int = 1, name: str | None = None):
        self.space = check_choice(space, "space", SPACES)
        self.max_modes = max_modes
        base = "directions" if max_modes == 1 else "directions + modes"
        self.name = name or (base if space == "embeddings" else f"{base} ({space})")

    def fit(self, val: ClassData) -> DirectionsMethod:
        X = _space(val, self.space)
        ref = val.reference_embeddings if self.space == "embeddings" else X
        self.fd_ = FailureDirections(
            max_modes=min(check_positive_int(self.max_modes, "max_modes"), MAX_SLICES), progress=False
        )
        self.fd_.fit(X, val.labels, val.preds, ref, n_classes=val.n_classes)
        self.class_index_ = val.class_index
        return self

    def score(self, data: ClassData) -> np.ndarray:
        modes = self.fd_.modes_[self.class_index_]
        if not modes:  # no direction (e.g. no errors in validation): every image ties
            return np.full(len(data), np.nan)
        X = _space(data, self.space)
        cols: list[np.ndarray] = [-self.fd_.decision_function(X, data.labels, mode=m) for m in range(len(modes))]
        return np.stack(cols, axis=1)


class BarlowLeafMethod:
    """Barlow's failure tree on the class's validation images; the slice is the top-importance leaf.

    Parameters
    ----------
    space : {"embeddings", "features"}
    max_depth : int (1 to 3)
    k : int
        Features kept by mutual information (paper: 20; capped at the dimension).
    """

    def __init__(self, space: str = "embeddings", max_depth: int = 3, k: int = 20, name: str | None = None):
        self.space = check_choice(space, "space", SPACES)
        self.max_depth = max_depth
        self.k = k
        self.name = name or ("barlow" if space == "embeddings" else f"barlow ({space})")

    def fit(self, val: ClassData) -> BarlowLeafMethod:
        X = _space(val, self.space)
        fail = val.errors
        self.leaf_ = -1
        if 0 < int(fail.sum()) < len(fail):
            self.tree_ = BarlowTree(max_depth=self.max_depth, k=min(self.k, X.shape[1])).fit(X, fail)
            self.leaf_ = self.tree_.fit_report_.top_leaf()
        return self

    def score(self, data: ClassData) -> np.ndarray:
        if self.leaf_ < 0:  # no tree (no errors or no correct predictions): every image ties
            return np.full(len(data), np.nan)
        return (self.tree_.apply(_space(data, self.space)) == self.leaf_).astype(np.float64)


def default_methods(random_state: int = 0) -> list:
    """The methods the benchmark command scores, baselines first."""
    return [
        RandomMethod(random_state),
        ConfidenceMethod(),
        LossMethod(),
        DominoMethod(random_state=random_state),
        DirectionsMethod(),
        DirectionsMethod(max_modes=MAX_SLICES),
        BarlowLeafMethod(),
        DominoMethod(space="features", random_state=random_state),
        DirectionsMethod(space="features"),
        BarlowLeafMethod(space="features"),
    ]
