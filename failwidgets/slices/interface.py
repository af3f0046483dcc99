"""The one interface a slice-discovery method implements to be scored by the benchmark.

A method is fitted on the *validation* images of one class of a setting and then scores the *test* images
of that class (dcbench's protocol: fit on validation, evaluate on held-out test)::

    class MyMethod:
        name = "mine"

        def fit(self, val: ClassData) -> "MyMethod":
            self.centre_ = val.embeddings[val.errors].mean(axis=0)
            return self

        def score(self, data: ClassData) -> np.ndarray:
            return -np.linalg.norm(data.embeddings - self.centre_, axis=1)   # (N,): one slice

``score`` returns ``(N,)`` (one predicted slice) or ``(N, S)`` with ``S <= MAX_SLICES`` columns (several
predicted slices, e.g. mixture responsibilities); higher = more in the slice. The benchmark keeps the best
matching column (:func:`failwidgets.slices.metrics.best_slice`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from failwidgets._validation import check_array, check_labels, check_positive_int, check_same_length

__all__ = ["ClassData", "SliceMethod", "FunctionMethod", "MAX_SLICES", "check_memberships"]

#: predicted slices a method may return per setting (dcbench's default budget)
MAX_SLICES = 5


@dataclass(frozen=True, eq=False)
class ClassData:
    """What a method sees of one class of one split of a setting (no truth).

    Attributes
    ----------
    class_index : int
        The class (index into ``class_names``).
    class_names : tuple of str
        Names of the setting's classes.
    embeddings : ndarray (N, D) float32
        Images embedded by an encoder independent of the model (the demo vision-language encoder).
    features : ndarray (N, F) float32
        The model's own penultimate features.
    labels : ndarray (N,) int64
        True classes (all ``class_index``).
    preds : ndarray (N,) int64
        The model's predictions.
    probs : ndarray (N, C) float32
        The model's softmax probabilities.
    reference_embeddings : ndarray (M, D) float32
        Embeddings of a random subset of the setting's *training* images (all classes), e.g. for
        whitening statistics.
    """

    class_index: int
    class_names: tuple
    embeddings: np.ndarray = field(repr=False)
    features: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    preds: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    reference_embeddings: np.ndarray = field(repr=False)

    def __post_init__(self):
        n_classes = len(self.class_names)
        emb = check_array(self.embeddings, "embeddings", ndim=2, dtype="float")
        feats = check_array(self.features, "features", ndim=2, dtype="float")
        labels = check_labels(self.labels, "labels", n_classes=n_classes)
        preds = check_labels(self.preds, "preds", n_classes=n_classes)
        probs = check_array(self.probs, "probs", ndim=2, shape=(None, n_classes), dtype="float")
        ref = check_array(
            self.reference_embeddings, "reference_embeddings", ndim=2, shape=(None, emb.shape[1]), dtype="float"
        )
        check_same_length(embeddings=emb, features=feats, labels=labels, preds=preds, probs=probs)
        for name, value in (
            ("embeddings", emb),
            ("features", feats),
            ("labels", labels),
            ("preds", preds),
            ("probs", probs),
            ("reference_embeddings", ref),
        ):
            value = np.array(value)
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def errors(self) -> np.ndarray:
        """bool (N,): the model is wrong (``preds != labels``)."""
        return self.preds != self.labels

    @property
    def confidence(self) -> np.ndarray:
        """float32 (N,): the model's top softmax probability."""
        return self.probs.max(axis=1)

    @property
    def true_class_probability(self) -> np.ndarray:
        """float32 (N,): the softmax probability of the true class."""
        return self.probs[np.arange(len(self)), self.labels]


@runtime_checkable
class SliceMethod(Protocol):
    """A slice-discovery method: ``name``, ``fit(val) -> self``, ``score(data) -> (N,) or (N, S)``."""

    name: str

    def fit(self, val: ClassData) -> SliceMethod: ...

    def score(self, data: ClassData) -> np.ndarray: ...


class FunctionMethod:
    """A method from a plain function ``fn(val, data) -> scores (N,) or (N, S)``.

    Parameters
    ----------
    name : str
    fn : callable ``(val: ClassData, data: ClassData) -> ndarray``
        Called by ``score`` with the validation data given to ``fit`` and the data to score.
    """

    def __init__(self, name: str, fn: Callable[[ClassData, ClassData], np.ndarray]):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name: expected a non-empty str, got {name!r}")
        if not callable(fn):
            raise TypeError(f"fn: expected a callable (val, data) -> scores, got {type(fn).__name__}")
        self.name = name
        self.fn = fn
        self._val: ClassData | None = None

    def fit(self, val: ClassData) -> FunctionMethod:
        self._val = val
        return self

    def score(self, data: ClassData) -> np.ndarray:
        if self._val is None:
            raise RuntimeError(f"{self.name}: call fit(val) before score(data)")
        return self.fn(self._val, data)

    def __repr__(self) -> str:
        return f"FunctionMethod({self.name!r})"


def check_memberships(scores, n: int, name: str = "scores", max_slices: int = MAX_SLICES) -> np.ndarray:
    """A method's output as float64 ``(n, S)``, ``1 <= S <= max_slices`` (NaN allowed: ranks last)."""
    max_slices = check_positive_int(max_slices, "max_slices")
    m = check_array(scores, name, ndim=(1, 2), dtype="float", finite=False).astype(np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per image), got {m.shape[0]}")
    if not 1 <= m.shape[1] <= max_slices:
        raise ValueError(f"{name}: expected 1 to {max_slices} predicted slices (columns), got {m.shape[1]}")
    return m
