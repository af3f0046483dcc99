"""Barlow failure trees (Singla, Nushi, Shah, Kamar, Horvitz; CVPR 2021).

Workflow, per class and grouping:

1. Features of every image from a (robust) model's penultimate layer: :func:`extract_features`.
2. The group: images whose label is the class (``grouping="label"``, false negatives) or whose
   prediction is the class (``grouping="prediction"``, false positives): :func:`group_mask`.
3. Mutual information between each feature and the failure label inside the group, top-k features
   (paper: k = 20), then a decision tree of depth <= 3 (entropy criterion, balanced class weight):
   :class:`BarlowTree`.
4. Every node's size, errors, ER, EC, IV and rule (with *original* feature indices), the tree's BER and
   ALER, and the valid failure modes (leaves with ER > BER + delta and EC > tau) on the data the tree was
   fitted on and on held-out data: :class:`TreeReport`. :func:`fit_class_tree` runs 2-4 for one class.

Differences from the reference notebooks (on purpose): feature indices in rules are indices of the
original feature vector (not of the MI-selected subset); internal nodes report their own true ER (not an
average of their children); every metric is available on held-out data; any model, layer and data set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.tree import DecisionTreeClassifier

from failwidgets._validation import (
    check_array,
    check_choice,
    check_in_range,
    check_labels,
    check_positive_int,
    check_same_length,
)
from failwidgets.methods._base import CORRECT, ERROR, check_fitted, is_failure
from failwidgets.methods.barlow.metrics import aler, error_coverage, error_rate, importance_value, is_valid_failure_mode
from failwidgets.methods.barlow.selection import MI_METHODS, mutual_info, select_top_k
from failwidgets.methods.results import Result

__all__ = ["GROUPINGS", "BarlowTree", "TreeReport", "ClassTree", "group_mask", "fit_class_tree", "extract_features"]

GROUPINGS = ("label", "prediction")
_NODE_COLUMNS = [
    "node",
    "parent",
    "depth",
    "is_leaf",
    "feature",
    "threshold",
    "rule",
    "size",
    "errors",
    "ER",
    "EC",
    "IV",
    "valid",
]


def group_mask(labels, preds, class_index: int, grouping: str = "label") -> np.ndarray:
    """Boolean (N,): the samples of one class grouping.

    ``grouping="label"``: ``labels == class_index`` (its failures are false negatives);
    ``grouping="prediction"``: ``preds == class_index`` (its failures are false positives).
    """
    labels = check_labels(labels, "labels")
    preds = check_labels(preds, "preds")
    check_same_length(labels=labels, preds=preds)
    check_choice(grouping, "grouping", GROUPINGS)
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise TypeError(f"class_index: expected an integer class index, got {class_index!r}")
    return (labels if grouping == "label" else preds) == int(class_index)


def _check_failures(failures, n: int | None = None, *, name: str = "failures", require_both: bool) -> np.ndarray:
    f = check_array(failures, name, ndim=1, dtype="bool")
    if n is not None and f.shape[0] != n:
        raise ValueError(f"{name}: expected length {n} (same as features), got {f.shape[0]}")
    if require_both:
        n_err = int(f.sum())
        if n_err == 0:
            raise ValueError(
                f"{name}: the group has no failures (all {f.size} samples correct); a failure tree needs "
                "both failures and successes"
            )
        if n_err == f.size:
            raise ValueError(
                f"{name}: the group has only failures ({f.size} samples, none correct); a failure tree "
                "needs both failures and successes"
            )
    return f


@dataclass(frozen=True)
class TreeReport(Result):
    """Metrics of a fitted Barlow tree on one set of samples (fit or held-out).

    Attributes
    ----------
    nodes : DataFrame, one row per tree node (sklearn node ids, pre-order; node 0 is the root) with
        columns ``node, parent, depth, is_leaf, feature`` (original index, -1 for leaves), ``threshold``,
        ``rule`` (conjunction from the root), ``size, errors, ER, EC, IV, valid`` (valid: leaf with
        ER > BER + delta and EC > tau).
    ber : base error rate of the samples (ER of the root).
    aler : average leaf error rate (nan when there are no errors).
    n_samples, n_errors : int.
    delta, tau : thresholds used for ``valid``.
    split : name of the sample set ("fit", "held-out", ...).
    """

    nodes: pd.DataFrame
    ber: float
    aler: float
    n_samples: int
    n_errors: int
    delta: float
    tau: float
    split: str = "fit"

    @property
    def aler_minus_ber(self) -> float:
        """ALER - BER, the paper's score of a tree."""
        return self.aler - self.ber

    @property
    def leaves(self) -> pd.DataFrame:
        return self.nodes[self.nodes["is_leaf"]]

    @property
    def valid_leaves(self) -> pd.DataFrame:
        """Leaves that are valid failure modes, highest IV first."""
        return self.leaves[self.leaves["valid"]].sort_values("IV", ascending=False, kind="stable")

    def top_leaf(self) -> int:
        """Node id of the leaf with the highest IV (ties: lowest id); -1 if no leaf has errors."""
        iv = self.leaves["IV"].fillna(-1.0)
        return int(self.leaves["node"].iloc[int(np.argmax(iv.to_numpy()))]) if (iv >= 0).any() else -1

    def with_thresholds(self, delta: float, tau: float) -> TreeReport:
        """Same metrics with ``valid`` recomputed for new delta / tau (no refit)."""
        delta = check_in_range(delta, "delta", 0.0, 1.0)
        tau = check_in_range(tau, "tau", 0.0, 1.0)
        nodes = self.nodes.copy()
        nodes["valid"] = nodes["is_leaf"].to_numpy() & is_valid_failure_mode(
            nodes["ER"].to_numpy(), nodes["EC"].to_numpy(), self.ber, delta, tau
        )
        return replace(self, nodes=nodes, delta=delta, tau=tau)

    def to_frame(self, valid_only: bool = True) -> pd.DataFrame:
        """Failure rules as a DataFrame (valid leaves by default, else every leaf), highest IV first."""
        rows = self.valid_leaves if valid_only else self.leaves.sort_values("IV", ascending=False, kind="stable")
        out = rows[["node", "rule", "size", "errors", "ER", "EC", "IV", "valid"]].reset_index(drop=True)
        out.insert(0, "split", self.split)
        return out

    def rules_text(self, valid_only: bool = True) -> str:
        """Readable failure rules, one per line, in the paper's wording."""
        head = (
            f"[{self.split}] BER = {self.ber:.4f}, ALER = {self.aler:.4f}, ALER - BER = {self.aler_minus_ber:+.4f}"
            f" ({self.n_errors} errors in {self.n_samples} samples)"
        )
        lines = [head]
        for r in self.to_frame(valid_only).itertuples():
            lines.append(
                f"When {r.rule}: error rate {r.ER:.4f} ({r.ER - self.ber:+.2%} over BER), "
                f"{r.EC:.4f} of all failures, IV {r.IV:.4f}"
            )
        if len(lines) == 1:
            lines.append("no valid failure mode" if valid_only else "no leaves")
        return "\n".join(lines)


class BarlowTree(BaseEstimator):
    """Mutual-information feature selection + a shallow decision tree predicting failure in one group.

    Parameters
    ----------
    max_depth : tree depth, 1 to 3 (paper: depth 1 for examples, 1 and 3 for the study).
    k : number of features kept by mutual information (paper 20; reference ImageNet notebook 50).
    mi_method : ``"binned"`` (fast quantile-binned MI, default) or ``"sklearn"``
        (``mutual_info_classif``, k-NN estimator, ~50x slower).
    n_bins : bins per feature for the binned estimator.
    delta, tau : a leaf is a valid failure mode when ER > BER + delta and EC > tau (paper 0.1, 0.2).
    min_samples_leaf : passed to the decision tree.
    batch_size : images per forward pass in :meth:`fit_model`.
    device : str or torch.device, optional; where :meth:`fit_model` runs the model.
    progress : bool, progress bar while :meth:`fit_model` extracts features.
    random_state : seed of the tree (ties between equal splits) and of the sklearn MI estimator.

    Attributes
    ----------
    mi_ : ndarray (D,), MI of every original feature with the failure label.
    selected_features_ : ndarray (k,), original indices of the selected features, highest MI first.
    tree_model_ : the fitted ``DecisionTreeClassifier`` (on the selected columns; target 1 = correct,
        0 = error, the convention of ``methods._failures``).
    n_features_in_ : D.
    fit_report_ : :class:`TreeReport` on the fit data.
    """

    def __init__(
        self,
        max_depth: int = 1,
        k: int = 20,
        mi_method: str = "binned",
        n_bins: int = 10,
        delta: float = 0.1,
        tau: float = 0.2,
        min_samples_leaf: int = 1,
        batch_size: int = 64,
        device=None,
        progress: bool = True,
        random_state: int | None = 0,
    ):
        self.max_depth = max_depth
        self.k = k
        self.mi_method = mi_method
        self.n_bins = n_bins
        self.delta = delta
        self.tau = tau
        self.min_samples_leaf = min_samples_leaf
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.random_state = random_state

    def _check_params(self) -> None:
        depth = check_positive_int(self.max_depth, "max_depth")
        if depth > 3:
            raise ValueError(f"max_depth: expected an integer from 1 to 3 (Barlow keeps trees shallow), got {depth}")
        check_positive_int(self.k, "k")
        check_choice(self.mi_method, "mi_method", MI_METHODS)
        check_positive_int(self.n_bins, "n_bins", minimum=2)
        check_in_range(self.delta, "delta", 0.0, 1.0)
        check_in_range(self.tau, "tau", 0.0, 1.0)
        check_positive_int(self.min_samples_leaf, "min_samples_leaf")

    def fit_model(self, model, images, layer: str, failures, *, cache=None, data_id: str | None = None) -> BarlowTree:
        """Fit on one group's images: features of ``model`` at ``layer`` (:func:`extract_features`), then :meth:`fit`.

        Parameters
        ----------
        model : torch.nn.Module, the (robust) feature model taking images in [0, 1].
        images : float tensor (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3), the group's images.
        layer : exact module name of the penultimate layer (4-D outputs are globally averaged).
        failures : bool array (N,), True where the diagnosed model failed.
        cache : EmbeddingCache, optional, for the features; data_id : its identity of ``images``.

        Returns
        -------
        self
        """
        check_positive_int(self.batch_size, "batch_size")
        feats = extract_features(
            model,
            images,
            layer,
            batch_size=self.batch_size,
            device=self.device,
            cache=cache,
            data_id=data_id,
            progress=self.progress,
        )
        return self.fit(feats, failures)

    def fit(self, features, failures) -> BarlowTree:
        """Fit on one group.

        Parameters
        ----------
        features : array (N, D) — e.g. robust penultimate-layer features of the group's images.
        failures : bool array (N,) — True where the model failed (``pred != label``); both values must occur.

        Returns
        -------
        self
        """
        self._check_params()
        x = check_array(features, "features", ndim=2, dtype="float", min_len=2)
        f = _check_failures(failures, x.shape[0], require_both=True)
        if self.k > x.shape[1]:
            raise ValueError(f"k: expected at most {x.shape[1]} (the number of features), got {self.k}")
        self.n_features_in_ = x.shape[1]
        self.mi_ = mutual_info(x, f, self.mi_method, n_bins=self.n_bins, random_state=self.random_state)
        self.selected_features_ = select_top_k(self.mi_, self.k)
        target = np.where(f, ERROR, CORRECT)  # the convention of methods._failures
        self.tree_model_ = DecisionTreeClassifier(
            criterion="entropy",
            max_depth=self.max_depth,
            class_weight="balanced",
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.random_state,
        ).fit(x[:, self.selected_features_], target)
        self.fit_report_ = self.report(x, f, split="fit")
        return self

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` unless :meth:`fit` or :meth:`fit_model` has run."""
        check_fitted(self, "tree_model_")

    def _check_features(self, features) -> np.ndarray:
        x = check_array(features, "features", ndim=2, dtype="float")
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"features: expected {self.n_features_in_} columns (as in fit), got {x.shape[1]}")
        return x

    def apply(self, features) -> np.ndarray:
        """Leaf node id (N,) of every sample."""
        self.check_fitted()
        x = self._check_features(features)
        return self.tree_model_.apply(x[:, self.selected_features_])

    def node_membership(self, features) -> np.ndarray:
        """Bool (N, n_nodes): sample i passes through node j."""
        self.check_fitted()
        x = self._check_features(features)
        return self.tree_model_.decision_path(x[:, self.selected_features_]).toarray().astype(bool)

    def predict_failure(self, features) -> np.ndarray:
        """Bool (N,): the tree predicts a failure (its leaf's weighted majority is 'error')."""
        self.check_fitted()
        x = self._check_features(features)
        return self.tree_model_.predict(x[:, self.selected_features_]) == ERROR

    def node_structure(self) -> pd.DataFrame:
        """Per node: parent, depth, is_leaf, original feature index (-1 for leaves), threshold, rule.

        A sample goes left when ``feature[i] <= threshold`` (scikit-learn's split rule).
        """
        self.check_fitted()
        t = self.tree_model_.tree_
        n = t.node_count
        parent = np.full(n, -1)
        depth = np.zeros(n, dtype=int)
        conds: list[list[str]] = [[] for _ in range(n)]
        feat = np.full(n, -1)
        for node in range(n):  # sklearn numbers nodes in pre-order: a parent precedes its children
            left, right = t.children_left[node], t.children_right[node]
            if left == -1:
                continue
            orig = int(self.selected_features_[t.feature[node]])
            feat[node] = orig
            thr = float(t.threshold[node])
            for child, op in ((left, "<="), (right, ">")):
                parent[child] = node
                depth[child] = depth[node] + 1
                conds[child] = conds[node] + [f"feature[{orig}] {op} {thr:.4g}"]
        return pd.DataFrame(
            {
                "node": np.arange(n),
                "parent": parent,
                "depth": depth,
                "is_leaf": t.children_left == -1,
                "feature": feat,
                "threshold": np.where(t.children_left == -1, np.nan, t.threshold),
                "rule": [" and ".join(c) if c else "all samples" for c in conds],
            }
        )

    def report(self, features, failures, *, split: str = "held-out") -> TreeReport:
        """Size, errors, ER, EC, IV of every node (internal nodes: their own true ER), BER and ALER.

        Parameters
        ----------
        features : array (M, D) — any samples of the same group (fit or held-out); M may be 0.
        failures : bool array (M,).
        """
        self.check_fitted()
        x = self._check_features(features)
        f = _check_failures(failures, x.shape[0], require_both=False)
        nodes = self.node_structure()
        if x.shape[0]:
            member = self.node_membership(x)
        else:
            member = np.zeros((0, len(nodes)), dtype=bool)
        size = member.sum(axis=0)
        errors = member[f].sum(axis=0)
        total_err = int(f.sum())
        ber = error_rate(total_err, x.shape[0])
        is_leaf = nodes["is_leaf"].to_numpy()
        nodes = nodes.assign(
            size=size,
            errors=errors,
            ER=error_rate(errors, size),
            EC=error_coverage(errors, total_err),
            IV=importance_value(errors, size, total_err),
        )
        nodes["valid"] = is_leaf & is_valid_failure_mode(
            nodes["ER"].to_numpy(), nodes["EC"].to_numpy(), ber, self.delta, self.tau
        )
        return TreeReport(
            nodes=nodes[_NODE_COLUMNS],
            ber=float(ber),
            aler=aler(errors[is_leaf], size[is_leaf]),
            n_samples=int(x.shape[0]),
            n_errors=total_err,
            delta=float(self.delta),
            tau=float(self.tau),
            split=split,
        )


@dataclass(frozen=True)
class ClassTree(Result):
    """A Barlow tree for one class grouping with its reports (``tree`` is left out of :meth:`to_dict`).

    Attributes
    ----------
    class_index, grouping : which group.
    tree : the fitted :class:`BarlowTree`.
    fit : :class:`TreeReport` on the fit samples of the group.
    heldout : :class:`TreeReport` on the held-out samples of the group, or None.
    fit_indices, heldout_indices : int arrays, positions of the group's samples in the given arrays.
    """

    _transient = ("tree",)

    class_index: int
    grouping: str
    fit: TreeReport
    heldout: TreeReport | None = None
    fit_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    heldout_indices: np.ndarray | None = None
    tree: BarlowTree | None = field(default=None, compare=False, repr=False)

    def with_thresholds(self, delta: float, tau: float) -> ClassTree:
        """Valid failure modes recomputed for new delta / tau on both reports (no refit)."""
        return replace(
            self,
            fit=self.fit.with_thresholds(delta, tau),
            heldout=None if self.heldout is None else self.heldout.with_thresholds(delta, tau),
        )

    def to_frame(self, valid_only: bool = True) -> pd.DataFrame:
        """Failure rules on the fit data and (if any) held-out data, with class and grouping columns."""
        frames = [self.fit.to_frame(valid_only)]
        if self.heldout is not None:
            frames.append(self.heldout.to_frame(valid_only))
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "grouping", self.grouping)
        out.insert(0, "class_index", self.class_index)
        return out

    def rules_text(self, valid_only: bool = True) -> str:
        parts = [f"class {self.class_index}, grouping by {self.grouping}", self.fit.rules_text(valid_only)]
        if self.heldout is not None:
            parts.append(self.heldout.rules_text(valid_only))
        return "\n".join(parts)


def fit_class_tree(
    features,
    labels,
    preds,
    class_index: int,
    *,
    grouping: str = "label",
    heldout: tuple[Any, Any, Any] | None = None,
    **tree_params: Any,
) -> ClassTree:
    """Fit a :class:`BarlowTree` on one class grouping and report it on fit and held-out data.

    Parameters
    ----------
    features : array (N, D); labels, preds : int arrays (N,).
    class_index : the class; grouping : ``"label"`` or ``"prediction"``.
    heldout : optional ``(features (M, D), labels (M,), preds (M,))`` of a held-out split.
    **tree_params : :class:`BarlowTree` parameters (max_depth, k, mi_method, delta, tau, ...).

    Raises ``ValueError`` with a clear message when the group is empty, has no failures or only failures.
    """
    x = check_array(features, "features", ndim=2, dtype="float")
    if heldout is not None and (not isinstance(heldout, (tuple, list)) or len(heldout) != 3):
        got = f"{len(heldout)} items" if isinstance(heldout, (tuple, list)) else type(heldout).__name__
        raise ValueError(f"heldout: expected a tuple (features, labels, preds) of a held-out split, got {got}")
    mask = group_mask(labels, preds, class_index, grouping)
    check_same_length(features=x, labels=mask)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise ValueError(f"class_index: no samples with {grouping} == {class_index}; the group is empty")
    fail = is_failure(labels, preds)
    tree = BarlowTree(**tree_params).fit(x[idx], fail[idx])
    held_report, hidx = None, None
    if heldout is not None:
        hx, hl, hp = heldout
        hx = check_array(hx, "heldout features", ndim=2, dtype="float")
        if hx.shape[1] != x.shape[1]:
            raise ValueError(f"heldout features: expected {x.shape[1]} columns (as features), got {hx.shape[1]}")
        hmask = group_mask(hl, hp, class_index, grouping)
        check_same_length(heldout_features=hx, heldout_labels=hmask)
        hidx = np.flatnonzero(hmask)
        held_report = tree.report(hx[hidx], is_failure(hl, hp)[hidx], split="held-out")
    return ClassTree(int(class_index), grouping, tree.fit_report_, held_report, idx, hidx, tree=tree)


def extract_features(
    model,
    images,
    layer: str,
    *,
    batch_size: int = 64,
    device=None,
    cache=None,
    data_id: str | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Penultimate-layer features (N, D) float32 of ``images`` at ``layer``, spatially mean-pooled.

    Parameters
    ----------
    model : any torch model taking images in [0, 1] (wrap with ``compute.Normalized`` otherwise).
    images : float tensor (N, 3, H, W) in [0, 1] or uint8 (N, H, W, 3).
    layer : exact module name (ResNet-50: ``"avgpool"``, or ``"model.avgpool"`` inside ``Normalized``).
        A 4-D output (N, C, h, w) is averaged over (h, w), i.e. global average pooling.
    cache : optional ``EmbeddingCache``; the key holds the model fingerprint, the layer and ``data_id``
        (default: a fingerprint of the images).
    """
    from failwidgets.compute import get_module, layer_activations
    from failwidgets.compute.cache import cached

    get_module(model, layer)  # a wrong layer name fails before any work, with close matches

    def compute() -> np.ndarray:
        acts = layer_activations(
            model, images, layer, batch_size=batch_size, device=device, reduce="mean", progress=progress
        )
        return acts.reshape(acts.shape[0], -1).numpy().astype(np.float32)

    return np.asarray(
        cached(
            cache,
            compute,
            what="barlow_features",
            model=model,
            layer=layer,
            data=data_id if data_id is not None else images,
        ),
        dtype=np.float32,
    )
