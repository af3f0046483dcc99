"""``TreeBrowser``: Barlow failure trees (Singla et al. 2021) as a widget.

Class and grouping selectors, depth / k / delta / tau controls, the tree drawn with bqplot (node colour =
error rate, node size = error coverage, the responsible-ai-toolbox Error Analysis convention; valid failure
leaves ringed), a click on a node shows its rule, its metrics on the fit and held-out data and sample
failures and successes; the feature of the split is shown as top activating images with heat maps and
feature attacks; the failure rules export as text and as a DataFrame.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import bqplot as bq
import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets

from failwidgets._validation import (
    check_array,
    check_choice,
    check_index,
    check_labels,
    check_nonnegative_labels,
    check_positive_int,
    check_same_length,
)
from failwidgets.data import as_indexable
from failwidgets.methods import is_failure, slice_evidence
from failwidgets.methods.barlow import BarlowTree, ClassTree, fit_class_tree, named_rule
from failwidgets.methods.barlow.attack import feature_attack
from failwidgets.methods.barlow.visual import feature_heatmaps, top_activating
from failwidgets.widgets.parts import FailWidget, ImageGrid
from failwidgets.widgets.parts.keys import KeyBindings
from failwidgets.widgets.parts.sync import hold_all_sync, reject
from failwidgets.widgets.selections import TreeSelection

__all__ = ["TreeBrowser"]

_METRIC_COLUMNS = ["size", "errors", "ER", "EC", "IV", "valid"]


def _tree_layout(nodes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """x, y (n_nodes,) of a tidy drawing: leaves evenly spaced left to right, parents above the middle
    of their children, y = -depth. ``nodes`` is in sklearn pre-order (left child before right)."""
    n = len(nodes)
    parent = nodes["parent"].to_numpy()
    children: list[list[int]] = [[] for _ in range(n)]
    for node in range(1, n):
        children[parent[node]].append(node)
    x = np.zeros(n)
    next_leaf = [0.0]

    def place(node: int) -> float:
        if not children[node]:
            x[node] = next_leaf[0]
            next_leaf[0] += 1.0
        else:
            x[node] = float(np.mean([place(c) for c in children[node]]))
        return x[node]

    place(0)
    return x, -nodes["depth"].to_numpy().astype(float)


class TreeBrowser(TreeSelection, FailWidget):
    """Browse Barlow failure trees per class and grouping.

    The first argument is the method: a :class:`~failwidgets.methods.barlow.ClassTree` (a fitted tree
    of one class grouping, from :func:`~failwidgets.methods.barlow.fit_class_tree`; shown as it is) or
    a :class:`~failwidgets.methods.barlow.BarlowTree` (its parameters; the widget fits the tree of
    ``class_index`` / ``grouping``). Either way the widget refits, with the same parameters, when the
    user picks another class, grouping, depth or k. :meth:`from_arrays` builds one from raw arrays.

    Parameters
    ----------
    tree : ClassTree or BarlowTree
    features : array (N, D) — features of the fit split (e.g. robust penultimate features).
    labels, preds : int arrays (N,) — ground truth and the diagnosed model's predictions.
    images : optional images of the fit split, uint8 (N, H, W, 3) or float (N, 3, H, W) in [0, 1];
        needed for the sample grids and the feature views.
    heldout : optional ``(features (M, D), labels (M,), preds (M,))`` of a held-out split.
    class_names : optional list of class names.
    feature_model, feature_layer, conv_layer : optional; the model the features come from, the name of
        its feature layer and of its last conv map. With them the feature panel shows heat maps and
        feature attacks of the split's feature (else only top activating images).
    n_samples : failures and successes shown for a node; n_top : top activating images (paper 6).
    attack_steps : at most this many feature-attack steps (with early stopping).
    cache : optional ``EmbeddingCache`` for the feature attacks.
    feature_names : optional dict original feature index -> :class:`~failwidgets.methods.barlow.FeatureName`
        (from :func:`~failwidgets.methods.barlow.name_features`); rules then read
        ``feature[17] "snow, green" <= 0.36``.
    class_index, grouping : the group shown first when ``tree`` is a BarlowTree (a ClassTree has its own).

    Attributes
    ----------
    method : BarlowTree, the parameters of every refit (``max_depth``, ``k``, ``delta``, ``tau`` follow
        the traits).
    result : the current :class:`~failwidgets.methods.barlow.ClassTree`, or None when the group cannot
        be explained (see ``status``).
    class_index : Int trait (saved), in [0, n_classes).
    grouping : Enum trait (saved), ``"label"`` or ``"prediction"``.
    max_depth : Int trait (saved), 1 to 3.
    k : Int trait (saved), 1 to D features kept by mutual information.
    delta, tau : Float traits (saved), in [0, 0.5] and [0, 1]: validity thresholds (no refit).
    selected_node : Int trait (saved), a node id of the current tree or -1 (none).
    status : Unicode trait, the summary line or why there is no tree (shown in ``status_html``).
    """

    _state_traits = ("class_index", "grouping", "max_depth", "k", "delta", "tau", "selected_node")
    _heavy_attrs = ("result", "feature_model", "images", "heldout", "cache", "fit_data", "heldout_data")
    class_index = traitlets.Int(0, min=0)
    grouping = traitlets.Enum(("label", "prediction"), default_value="label")
    max_depth = traitlets.Int(1, min=1, max=3)
    k = traitlets.Int(20, min=1)
    delta = traitlets.Float(0.1, min=0.0, max=0.5)
    tau = traitlets.Float(0.2, min=0.0, max=1.0)
    selected_node = traitlets.Int(-1, min=-1)
    status = traitlets.Unicode("")

    def __init__(
        self,
        tree: ClassTree | BarlowTree,
        features,
        labels,
        preds,
        *,
        images: Any = None,
        heldout: tuple[Any, Any, Any] | None = None,
        class_names: Sequence[str] | None = None,
        feature_model: Any = None,
        feature_layer: str | None = None,
        conv_layer: str | None = None,
        n_samples: int = 8,
        n_top: int = 6,
        attack_steps: int = 200,
        cache: Any = None,
        feature_names: Any = None,
        class_index: int = 0,
        grouping: str = "label",
        **kwargs: Any,
    ):
        if isinstance(tree, ClassTree):
            result, estimator = tree, tree.tree
            class_index, grouping = tree.class_index, tree.grouping
        elif isinstance(tree, BarlowTree):
            result, estimator = None, tree
        else:
            raise TypeError(
                f"tree: expected a ClassTree (fit_class_tree) or a BarlowTree (its parameters), "
                f"got {type(tree).__name__}; TreeBrowser.from_arrays takes raw arrays"
            )
        features = check_array(features, "features", ndim=2, dtype="float")
        labels = check_labels(check_nonnegative_labels(np.asarray(labels), "labels"), "labels")
        preds = check_labels(check_nonnegative_labels(np.asarray(preds), "preds"), "preds")
        check_same_length(features=features, labels=labels, preds=preds)
        n_seen = int(max(labels.max(initial=0), preds.max(initial=0))) + 1
        if class_names is not None and len(class_names) < n_seen:
            raise ValueError(
                f"class_names: expected at least {n_seen} names (labels and preds go up to "
                f"{n_seen - 1}), got {len(class_names)}"
            )
        n_cls = len(class_names) if class_names is not None else n_seen
        check_index(class_index, "class_index", n_cls, what="a class index")
        check_choice(grouping, "grouping", ["label", "prediction"])
        for name, v in (("n_samples", n_samples), ("n_top", n_top), ("attack_steps", attack_steps)):
            check_positive_int(v, name)
        if heldout is not None:
            if not isinstance(heldout, (tuple, list)) or len(heldout) != 3:
                got = f"{len(heldout)} items" if isinstance(heldout, (tuple, list)) else type(heldout).__name__
                raise ValueError(f"heldout: expected a tuple (features, labels, preds) of a held-out split, got {got}")
            hx = check_array(heldout[0], "heldout features", ndim=2, dtype="float")
            if hx.shape[1] != features.shape[1]:
                raise ValueError(
                    f"heldout features: expected {features.shape[1]} columns (as features), got {hx.shape[1]}"
                )
        params = estimator.get_params()
        if isinstance(params["max_depth"], bool) or params["max_depth"] not in (1, 2, 3):
            raise ValueError(f"max_depth: expected 1, 2 or 3 (the depth slider's range), got {params['max_depth']!r}")
        check_positive_int(params["k"], "k")
        super().__init__(method=estimator, **kwargs)
        self.features, self.labels, self.preds = features, labels, preds
        images = as_indexable(images)  # a dataset / files / source: only the images shown are decoded
        if images is not None:
            check_same_length(features=self.features, images=images)
        self.images = images
        self.failed = is_failure(self.labels, self.preds)
        self.heldout = heldout
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_seen)]
        self.feature_model, self.feature_layer, self.conv_layer = feature_model, feature_layer, conv_layer
        self.n_samples, self.n_top, self.attack_steps = n_samples, n_top, attack_steps
        self.cache = cache
        self.mi_method, self.random_state = params["mi_method"], params["random_state"]
        self.result: ClassTree | None = None
        self.feature_names = dict(feature_names) if feature_names is not None else None
        n_features = self.features.shape[1]
        self.class_index, self.grouping = int(class_index), grouping
        self.max_depth, self.k = params["max_depth"], min(params["k"], n_features)
        self.delta, self.tau = params["delta"], params["tau"]

        # -- controls ----------------------------------------------------------------------------
        style = {"description_width": "initial"}
        self.class_dropdown = W.Dropdown(
            options=[(n, i) for i, n in enumerate(self.class_names)], description="class", style=style
        )
        self.grouping_buttons = W.ToggleButtons(
            options=[("by label (false negatives)", "label"), ("by prediction (false positives)", "prediction")],
            style={"button_width": "auto"},
        )
        self.depth_slider = W.IntSlider(min=1, max=3, description="depth", continuous_update=False, style=style)
        self.k_text = W.BoundedIntText(
            min=1, max=n_features, description="k (MI features)", style=style, layout=W.Layout(width="170px")
        )
        self.delta_slider = W.FloatSlider(
            min=0.0, max=0.5, step=0.01, description="delta", continuous_update=False, style=style
        )
        self.tau_slider = W.FloatSlider(
            min=0.0, max=1.0, step=0.01, description="tau", continuous_update=False, style=style
        )
        for trait, control in (
            ("class_index", self.class_dropdown),
            ("grouping", self.grouping_buttons),
            ("max_depth", self.depth_slider),
            ("k", self.k_text),
            ("delta", self.delta_slider),
            ("tau", self.tau_slider),
        ):
            self.link(trait, control)
        self.status_html = W.HTML()

        # -- tree figure -------------------------------------------------------------------------
        sx, sy = bq.LinearScale(), bq.LinearScale()
        self.color_scale = bq.ColorScale(min=0.0, max=1.0, colors=["#f7f7f7", "#b2182b"])
        self.size_scale = bq.LinearScale(min=0.0, max=1.0)
        self.edges = bq.Lines(x=[[0.0, 0.0]], y=[[0.0, 0.0]], scales={"x": sx, "y": sy}, colors=["#999999"])
        self.nodes_mark = bq.Scatter(
            x=[0.0],
            y=[0.0],
            color=[0.0],
            size=[0.0],
            scales={"x": sx, "y": sy, "color": self.color_scale, "size": self.size_scale},
            default_size=900,
            stroke="#333333",
            interactions={"click": "select"},
            selected_style={"stroke": "#1f77b4", "stroke-width": 4},
            tooltip=None,
        )
        self.valid_ring = bq.Scatter(
            x=[],
            y=[],
            scales={"x": sx, "y": sy},
            default_size=1800,
            fill=False,
            stroke="#2ca02c",
            stroke_width=3,
            colors=["#2ca02c"],
        )
        self.node_labels = bq.Label(
            x=[],
            y=[],
            text=[],
            scales={"x": sx, "y": sy},
            y_offset=30,
            align="middle",
            font_weight="normal",
            default_size=11,
        )
        self.figure = bq.Figure(
            marks=[self.edges, self.valid_ring, self.nodes_mark, self.node_labels],
            axes=[],
            fig_margin={"top": 30, "bottom": 40, "left": 40, "right": 40},
            layout=W.Layout(width="100%", height="320px"),
            padding_x=0.08,
            padding_y=0.25,
            title="colour = error rate, size = error coverage, green ring = valid failure mode",
        )

        # -- node panel --------------------------------------------------------------------------
        self.node_html = W.HTML("<i>click a node</i>")
        self.failures_grid = ImageGrid(columns=min(n_samples, 8), thumb_size=96)
        self.successes_grid = ImageGrid(columns=min(n_samples, 8), thumb_size=96)

        # -- feature panel -----------------------------------------------------------------------
        self.feature_html = W.HTML("")
        self.visualise_button = W.Button(description="visualise feature", icon="eye", disabled=True)
        self.top_grid = ImageGrid(columns=n_top, thumb_size=96)
        self.attack_grid = ImageGrid(columns=n_top, thumb_size=96)

        # -- export ------------------------------------------------------------------------------
        self.export_button = W.Button(description="export failure rules", icon="download")
        self.export_text = W.Textarea(layout=W.Layout(width="100%", height="120px", display="none"))

        self.observe_guarded(self._on_fit_params, names=["class_index", "grouping", "max_depth", "k"])
        self.observe_guarded(self._on_thresholds, names=["delta", "tau"])
        self.observe_guarded(self._on_selected_node, names="selected_node")
        self.observe_guarded(self._on_mark_selected, names="selected", widget=self.nodes_mark)
        self.on_click_guarded(self.visualise_button, self._on_visualise)
        self.on_click_guarded(self.export_button, self._on_export)

        # keys while the mouse is over the tree: arrows move between nodes, Escape deselects
        self.key_bindings = KeyBindings(
            {
                "arrowup": lambda: self.step_node("up"),
                "arrowdown": lambda: self.step_node("down"),
                "arrowleft": lambda: self.step_node("left"),
                "arrowright": lambda: self.step_node("right"),
                "escape": lambda: setattr(self, "selected_node", -1),
            },
            log=self.log,
        )
        self.key_events = self.key_bindings.attach(self.figure)
        self.children = [
            W.HBox([self.class_dropdown, self.grouping_buttons]),
            W.HBox([self.depth_slider, self.k_text, self.delta_slider, self.tau_slider]),
            self.status_html,
            self.figure,
            self.node_html,
            W.HTML("<b>failures in this node</b>"),
            self.failures_grid,
            W.HTML("<b>successes in this node</b>"),
            self.successes_grid,
            self.feature_html,
            self.visualise_button,
            W.HTML("<b>top activating images (heat maps)</b>"),
            self.top_grid,
            W.HTML("<b>feature attacks</b>"),
            self.attack_grid,
            W.HBox([self.export_button]),
            self.export_text,
            self.log,
        ]
        if result is None:
            self.run_guarded(self.refit)
        else:
            self.result = result
            self.status = self._summary()
            self.run_guarded(self._redraw)

    @classmethod
    def from_arrays(
        cls,
        features,
        labels,
        preds,
        *,
        max_depth: int = 1,
        k: int = 20,
        delta: float = 0.1,
        tau: float = 0.2,
        mi_method: str = "binned",
        random_state: int = 0,
        **kwargs: Any,
    ) -> TreeBrowser:
        """The browser on raw arrays: ``TreeBrowser(BarlowTree(max_depth, k, ...), features, labels, preds)``.

        Parameters
        ----------
        features : array (N, D); labels, preds : int arrays (N,).
        max_depth, k, delta, tau, mi_method, random_state : :class:`~failwidgets.methods.barlow.BarlowTree`
            parameters (paper: depth 1, k = 20, delta 0.1, tau 0.2).
        **kwargs : passed to the constructor (``images``, ``heldout``, ``class_names``, ``class_index``, ...).
        """
        tree = BarlowTree(
            max_depth=max_depth, k=k, delta=delta, tau=tau, mi_method=mi_method, random_state=random_state
        )
        return cls(tree, features, labels, preds, **kwargs)

    # ------------------------------------------------------------------------------ from the demo
    @classmethod
    def from_demo(
        cls,
        demo: Any = None,
        *,
        variant: str = "default",
        small: bool | None = None,
        features: str = "robust",
        fit_split: str = "val",
        heldout_split: str = "test",
        n_images: int | None = None,
        class_index: int | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> TreeBrowser:
        """The browser on the demo world with the paper's defaults (k = 20, depth 1, delta 0.1, tau 0.2).

        Features of ``demo.robust`` at its penultimate layer ``features`` (heat maps from its last conv
        map ``layer3``; feature attacks on it), the target model's predictions, trees fitted on
        ``fit_split`` and reported on ``heldout_split``; features, predictions and feature attacks go
        through the demo's :class:`~failwidgets.compute.EmbeddingCache`.

        Parameters
        ----------
        demo : failwidgets.demo.Demo, optional
            Default: ``failwidgets.demo.load(variant)``.
        variant : ``"default"`` or ``"control"`` (ignored when ``demo`` is given).
        small : bool, optional
            Fewer images per split (1,000) and at most 50 attack steps, so a notebook runs fast in CI.
            Default: True when the environment variable ``FAILWIDGETS_NOTEBOOK_TEST`` is set.
        features : ``"robust"`` (the paper's choice) or ``"target"`` (the diagnosed model's own pooled
            ``conv4`` features, for the paper's robust-versus-standard comparison).
        fit_split, heldout_split : world splits (default ``"val"`` and ``"test"``: the training split's
            shape -> background shortcut is broken in both).
        n_images : the first ``n_images`` of each split (default: all 2,000; small: 1,000).
        class_index : the class shown first (default: the class whose depth-1 tree has the largest
            held-out ALER - BER).
        progress : progress bars while computing.
        **kwargs : passed to the constructor (``max_depth``, ``k``, ``n_samples``, ``attack_steps``, ...).

        Returns
        -------
        TreeBrowser, with ``.demo`` and ``.fit_data`` / ``.heldout_data``
        (:class:`~failwidgets.demo.recipes.barlow.DemoSplit`).
        """
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes import barlow, build_widget

        demo, small = resolve(demo, variant, small, progress)
        if class_index is not None:
            check_index(class_index, "class_index", len(demo.world.class_names), what="a class index")
        tree = {k: kwargs[k] for k in ("grouping", "max_depth", "k") if k in kwargs}
        return build_widget(
            cls.from_arrays,
            barlow.widget_inputs(
                demo,
                small=small,
                features=features,
                fit_split=fit_split,
                heldout_split=heldout_split,
                n_images=n_images,
                class_index=class_index,
                progress=progress,
                **tree,
            ),
            **kwargs,
        )

    # ------------------------------------------------------------------------------------------ fit
    def refit(self) -> None:
        """Fit the tree of the current class / grouping / depth / k and redraw; bad groups set ``status``."""
        with self.log.busy("fitting failure tree..."):
            try:
                params = {
                    **self.method.get_params(),
                    "max_depth": self.max_depth,
                    "k": self.k,
                    "delta": self.delta,
                    "tau": self.tau,
                }
                self.result = fit_class_tree(
                    self.features,
                    self.labels,
                    self.preds,
                    self.class_index,
                    grouping=self.grouping,
                    heldout=self.heldout,
                    **params,
                )
            except ValueError as exc:  # an empty group, no failures, only failures: a status, not a crash
                self.result = None
                self.status = f"no tree for {self._group_name()}: {exc}"
            else:
                self.status = self._summary()
        self._redraw()

    def _group_name(self) -> str:
        return f"{self.grouping} = {self.class_names[self.class_index]}"

    def _summary(self) -> str:
        r = self.result
        parts = [
            f"{self._group_name()}: fit BER {r.fit.ber:.3f}, ALER {r.fit.aler:.3f} "
            f"(ALER - BER {r.fit.aler_minus_ber:+.3f}), {len(r.fit.valid_leaves)} valid failure mode(s)"
        ]
        if r.heldout is not None:
            parts.append(
                f"held-out BER {r.heldout.ber:.3f}, ALER {r.heldout.aler:.3f} "
                f"(ALER - BER {r.heldout.aler_minus_ber:+.3f}), {len(r.heldout.valid_leaves)} valid"
            )
        return "; ".join(parts)

    def _on_fit_params(self, change: dict) -> None:
        self.refit()

    def _on_thresholds(self, change: dict) -> None:
        if self.result is not None:
            self.result = self.result.with_thresholds(self.delta, self.tau)
            self.status = self._summary()
            self._redraw(keep_selection=True)

    # ------------------------------------------------------------------------------------- drawing
    def _redraw(self, keep_selection: bool = False) -> None:
        self.status_html.value = html.escape(self.status)
        r = self.result
        with hold_all_sync(self.nodes_mark, self.edges, self.valid_ring, self.node_labels):
            if r is None:
                self.nodes_mark.x, self.nodes_mark.y = [0.0], [0.0]
                self.nodes_mark.color, self.nodes_mark.size = [0.0], [0.0]
                self.edges.x, self.edges.y = [[0.0, 0.0]], [[0.0, 0.0]]
                self.valid_ring.x, self.valid_ring.y = [], []
                self.node_labels.x, self.node_labels.y, self.node_labels.text = [], [], []
            else:
                nodes = r.fit.nodes
                x, y = _tree_layout(nodes)
                parent = nodes["parent"].to_numpy()
                child = np.flatnonzero(parent >= 0)
                self.edges.x = [[x[parent[c]], x[c]] for c in child] or [[0.0, 0.0]]
                self.edges.y = [[y[parent[c]], y[c]] for c in child] or [[0.0, 0.0]]
                self.nodes_mark.x, self.nodes_mark.y = x, y
                self.nodes_mark.color = nodes["ER"].fillna(0.0).to_numpy()
                self.nodes_mark.size = nodes["EC"].fillna(0.0).to_numpy()
                valid = nodes["valid"].to_numpy()
                self.valid_ring.x, self.valid_ring.y = x[valid], y[valid]
                self.node_labels.x, self.node_labels.y = x, y
                self.node_labels.text = [f"ER {er:.2f} · EC {ec:.2f}" for er, ec in zip(nodes["ER"], nodes["EC"])]
        if keep_selection and r is not None and self.selected_node < len(r.fit.nodes):
            self._on_selected_node({"new": self.selected_node})  # same node, new metrics
        elif self.selected_node == -1:
            self._on_selected_node({"new": -1})  # the trait does not change: refresh the panels here
        else:
            self.selected_node = -1

    # ------------------------------------------------------------------------------------ selection
    @traitlets.validate("class_index")
    def _valid_class_index(self, proposal: dict) -> int:
        n = len(self.class_names)
        if not proposal["value"] < n:
            reject(self, f"class_index: expected a class index in [0, {n}), got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("k")
    def _valid_k(self, proposal: dict) -> int:
        d = self.features.shape[1]
        if not proposal["value"] <= d:
            reject(self, f"k: expected at most {d} (the number of features), got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("delta", "tau")
    def _valid_threshold(self, proposal: dict) -> float:
        if not np.isfinite(proposal["value"]):  # NaN passes the trait's min/max comparisons
            name = proposal["trait"].name
            reject(self, f"{name}: expected a finite value, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("selected_node")
    def _valid_selected_node(self, proposal: dict) -> int:
        node, r = proposal["value"], self.result
        n = 0 if r is None else len(r.fit.nodes)
        if node >= n:
            reject(self, f"selected_node: expected a node id in [-1, {n}), got {node}")
        return node

    def _on_mark_selected(self, change: dict) -> None:
        if self.quietly:
            return
        sel = change["new"]
        node = int(sel[0]) if sel is not None and len(sel) else -1
        if self.result is None or node >= len(self.result.fit.nodes):  # the placeholder dot of "no tree"
            node = -1
        self.selected_node = node

    def _on_selected_node(self, change: dict) -> None:
        node = change["new"]
        with self.quietly():
            self.nodes_mark.selected = None if node < 0 else [int(node)]
        r = self.result
        if r is None or node < 0:
            self.node_html.value = "<i>click a node</i>" if r is not None else ""
            if self.images is not None:
                self.failures_grid.set_images([])
                self.successes_grid.set_images([])
            self.feature_html.value = ""
            self.visualise_button.disabled = True
            return
        self.node_html.value = self._node_table(node)
        self._show_samples(node)
        feat = self.split_feature(node)
        self.feature_html.value = "" if feat < 0 else f"<b>feature of the split: {self._feature_label(feat)}</b>"
        self.visualise_button.disabled = feat < 0 or self.images is None
        self.visualise_button.description = "visualise feature" if feat < 0 else f"visualise feature[{feat}]"

    def step_node(self, direction: str) -> None:
        """Select the parent (``"up"``), first child (``"down"``) or the node left / right of the
        selected one on its level (``"left"`` / ``"right"``); the root when none is selected."""
        if direction not in ("up", "down", "left", "right"):
            raise ValueError(f"direction: expected 'up', 'down', 'left' or 'right', got {direction!r}")
        r = self.result
        if r is None or not len(r.fit.nodes):
            return
        cur = self.selected_node
        if cur < 0:
            self.selected_node = 0
            return
        parent, depth = r.fit.nodes["parent"].to_numpy(), r.fit.nodes["depth"].to_numpy()
        target = cur
        if direction == "up" and cur > 0:
            target = int(parent[cur])
        elif direction == "down":
            kids = [k for k in range(1, len(parent)) if parent[k] == cur]
            target = kids[0] if kids else cur
        elif direction in ("left", "right"):
            x, _ = _tree_layout(r.fit.nodes)
            level = sorted(np.flatnonzero(depth == depth[cur]), key=lambda k: x[k])
            k = level.index(cur) + (1 if direction == "right" else -1)
            target = int(level[k]) if 0 <= k < len(level) else cur
        self.selected_node = int(target)

    def _node_table(self, node: int) -> str:
        r = self.result
        rows = [("fit", r.fit)] + ([("held-out", r.heldout)] if r.heldout is not None else [])
        head = "".join(f"<th>{c}</th>" for c in ["data", "BER"] + _METRIC_COLUMNS)
        body = ""
        for name, rep in rows:
            m = rep.nodes.loc[node]
            cells = [name, f"{rep.ber:.3f}"] + [
                f"{m[c]:.3f}" if c in ("ER", "EC", "IV") else str(m[c]) for c in _METRIC_COLUMNS
            ]
            body += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        rule = html.escape(named_rule(r.fit.nodes.loc[node, "rule"], self.feature_names))
        kind = "leaf" if r.fit.nodes.loc[node, "is_leaf"] else "internal node"
        return (
            f"<b>node {node}</b> ({kind}): <code>{rule}</code><table>{head}{body}</table>"
            f"<div>{html.escape(self.node_evidence_text(node))}</div>"
        )

    def node_evidence(self, node: int):
        """:func:`~failwidgets.methods.slice_evidence` of ``node`` within the class group: images in the
        node vs the rest of the group, on the held-out split (on the fit split when none was given)."""
        r = self.result
        if r.heldout is not None and r.heldout_indices is not None:
            hx, hl, hp = self.heldout
            idx = r.heldout_indices
            x, failed = np.asarray(hx)[idx], is_failure(np.asarray(hl)[idx], np.asarray(hp)[idx])
        else:
            x, failed = self.features[r.fit_indices], self.failed[r.fit_indices]
        return slice_evidence(r.tree.node_membership(x)[:, node], failed)

    def node_evidence_text(self, node: int) -> str:
        """The node's coverage and its error inside vs outside with 95 % Wilson intervals, in words."""
        r = self.result
        n_fit = int(r.fit.nodes.loc[node, "size"])
        held = r.heldout is not None and r.heldout_indices is not None
        ev = self.node_evidence(node)
        where = "held-out" if held else "fit (no held-out data given)"
        return (
            f"covers {n_fit} of {len(r.fit_indices)} {self.class_names[self.class_index]} fit images; "
            f"{where}: {ev.summary('images')} (95% Wilson CIs)"
        )

    def _feature_label(self, feat: int) -> str:
        name = (self.feature_names or {}).get(int(feat))
        if name is None or not name.words:
            return f"feature[{feat}]"
        return f"feature[{feat}] {name.label} (confidence {name.confidence:.2f})"

    def node_samples(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (in the fit arrays) of up to ``n_samples`` failures and successes in ``node``."""
        r = self.result
        member = r.tree.node_membership(self.features[r.fit_indices])[:, node]
        idx = r.fit_indices[member]
        idx = idx[np.isin(idx, self.selection_filter)] if self.selection_filter is not None else idx
        rng = np.random.default_rng(self.random_state)
        return tuple(
            np.sort(rng.choice(a, size=min(self.n_samples, a.size), replace=False))
            for a in (idx[self.failed[idx]], idx[~self.failed[idx]])
        )

    def _caption(self, i: int) -> str:
        return (
            f"label {html.escape(self.class_names[self.labels[i]])}<br>"
            f"pred {html.escape(self.class_names[self.preds[i]])}"
        )

    def _show_samples(self, node: int) -> None:
        if self.images is None:
            return
        fails, oks = self.node_samples(node)
        for grid, idx in ((self.failures_grid, fails), (self.successes_grid, oks)):
            grid.set_images(
                [self._image(i) for i in idx], captions=[self._caption(i) for i in idx], keys=[int(i) for i in idx]
            )

    def _image(self, i: int) -> Any:
        return self.images[int(i)]

    def split_feature(self, node: int) -> int:
        """Original index of the feature split at ``node`` (a leaf: at its parent); -1 for a lone root."""
        nodes = self.result.fit.nodes
        if nodes.loc[node, "is_leaf"]:
            parent = int(nodes.loc[node, "parent"])
            return -1 if parent < 0 else int(nodes.loc[parent, "feature"])
        return int(nodes.loc[node, "feature"])

    # ----------------------------------------------------------------------------- feature panel
    def _on_visualise(self, _button: Any) -> None:
        if self.images is None:
            raise ValueError(
                "images: the feature views need the fit split's images; expected TreeBrowser(..., images=...), got None"
            )
        if self.result is None or self.selected_node < 0:
            raise ValueError("selected_node: expected a node of the current tree; click one first")
        feat = self.split_feature(self.selected_node)
        group = self.result.fit_indices
        top = top_activating(self.features, feat, k=self.n_top, among=group)
        imgs = [self._image(i) for i in top]
        captions = [f"feature[{feat}] = {self.features[i, feat]:.3g}" for i in top]
        batch = np.stack([np.asarray(im) for im in imgs])
        heat = None
        if self.feature_model is not None and self.conv_layer is not None:
            with self.log.busy(f"heat maps of feature[{feat}]..."):
                heat = feature_heatmaps(self.feature_model, batch, self.conv_layer, feat)
        self.top_grid.set_images(imgs, captions=captions, overlays=heat, keys=[int(i) for i in top])
        if self.feature_model is not None and self.feature_layer is not None:
            with self.log.busy(f"feature attacks on feature[{feat}]..."):
                att = feature_attack(
                    self.feature_model, batch, self.feature_layer, feat, steps=self.attack_steps, cache=self.cache
                )
            self.attack_grid.set_images(
                att.images,
                keys=[int(i) for i in top],
                captions=[
                    f"{a:.3g} → {b:.3g} ({s} steps)"
                    for a, b, s in zip(att.start_activation, att.final_activation, att.steps)
                ],
            )
        self.log.info(f"visualised feature[{feat}] on {len(top)} images")

    # ------------------------------------------------------------------------------------ export
    def rules_frame(self, valid_only: bool = True) -> pd.DataFrame:
        """Failure rules of the current tree (fit and held-out rows), with class name and grouping."""
        if self.result is None:
            return pd.DataFrame(
                columns=["class_index", "class_name", "grouping", "split", "node", "rule"] + _METRIC_COLUMNS
            )
        out = self.result.to_frame(valid_only)
        out["rule"] = [named_rule(rule, self.feature_names) for rule in out["rule"]]
        out.insert(1, "class_name", self.class_names[self.class_index])
        return out

    def rules_text(self, valid_only: bool = True) -> str:
        if self.result is None:
            return self.status
        return named_rule(
            f"{self.class_names[self.class_index]}: " + self.result.rules_text(valid_only), self.feature_names
        )

    def _on_export(self, _button: Any) -> None:
        self.export_text.value = self.rules_text()
        self.export_text.layout.display = ""
