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

from failwidgets._validation import check_array, check_labels, check_same_length
from failwidgets.methods.barlow.attack import feature_attack
from failwidgets.methods.barlow.visual import feature_heatmaps, top_activating
from failwidgets.methods import is_failure
from failwidgets.methods.barlow import ClassTree, fit_class_tree
from failwidgets.widgets.parts import FailWidget, ImageGrid
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

    Parameters
    ----------
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
    mi_method, random_state : passed to :class:`~failwidgets.methods.barlow.BarlowTree`.
    cache : optional ``EmbeddingCache`` for the feature attacks.

    Traits (saved by ``to_dict``)
    -----------------------------
    class_index : int, grouping : "label" | "prediction", max_depth : 1-3, k : int, delta, tau : float,
    selected_node : int (-1 = none).

    Attributes
    ----------
    result : the current :class:`~failwidgets.methods.barlow.ClassTree`, or None when the group cannot
        be explained (see ``status``).
    status : str trait, the summary line or why there is no tree.
    """

    _state_traits = ("class_index", "grouping", "max_depth", "k", "delta", "tau", "selected_node")
    class_index = traitlets.Int(0)
    grouping = traitlets.Unicode("label")
    max_depth = traitlets.Int(1)
    k = traitlets.Int(20)
    delta = traitlets.Float(0.1)
    tau = traitlets.Float(0.2)
    selected_node = traitlets.Int(-1)
    status = traitlets.Unicode("")

    def __init__(
        self,
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
        mi_method: str = "binned",
        random_state: int = 0,
        cache: Any = None,
        class_index: int = 0,
        grouping: str = "label",
        max_depth: int = 1,
        k: int = 20,
        **kwargs: Any,
    ):
        super().__init__(method=None, **kwargs)
        self.features = check_array(features, "features", ndim=2, dtype="float")
        self.labels = check_labels(labels, "labels")
        self.preds = check_labels(preds, "preds")
        check_same_length(features=self.features, labels=self.labels, preds=self.preds)
        if images is not None:
            check_same_length(features=self.features, images=images)
        self.images = images
        self.failed = is_failure(self.labels, self.preds)
        self.heldout = heldout
        n_classes = int(max(self.labels.max(), self.preds.max())) + 1
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        self.feature_model, self.feature_layer, self.conv_layer = feature_model, feature_layer, conv_layer
        self.n_samples, self.n_top, self.attack_steps = n_samples, n_top, attack_steps
        self.mi_method, self.random_state, self.cache = mi_method, random_state, cache
        self.result: ClassTree | None = None
        self._syncing = False

        # -- controls ----------------------------------------------------------------------------
        style = {"description_width": "initial"}
        self.class_dropdown = W.Dropdown(options=[(n, i) for i, n in enumerate(self.class_names)],
                                         value=class_index, description="class", style=style)
        self.grouping_buttons = W.ToggleButtons(options=[("by label (false negatives)", "label"),
                                                         ("by prediction (false positives)", "prediction")],
                                                value=grouping, style={"button_width": "auto"})
        self.depth_slider = W.IntSlider(value=max_depth, min=1, max=3, description="depth",
                                        continuous_update=False, style=style)
        self.k_text = W.BoundedIntText(value=min(k, self.features.shape[1]), min=1, max=self.features.shape[1],
                                       description="k (MI features)", style=style, layout=W.Layout(width="170px"))
        self.delta_slider = W.FloatSlider(value=0.1, min=0.0, max=0.5, step=0.01, description="delta",
                                          continuous_update=False, style=style)
        self.tau_slider = W.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.01, description="tau",
                                        continuous_update=False, style=style)
        self._links = [
            traitlets.link((self.class_dropdown, "value"), (self, "class_index")),
            traitlets.link((self.grouping_buttons, "value"), (self, "grouping")),
            traitlets.link((self.depth_slider, "value"), (self, "max_depth")),
            traitlets.link((self.k_text, "value"), (self, "k")),
            traitlets.link((self.delta_slider, "value"), (self, "delta")),
            traitlets.link((self.tau_slider, "value"), (self, "tau")),
        ]
        self.status_html = W.HTML()

        # -- tree figure -------------------------------------------------------------------------
        sx, sy = bq.LinearScale(), bq.LinearScale()
        self.color_scale = bq.ColorScale(min=0.0, max=1.0, colors=["#f7f7f7", "#b2182b"])
        self.size_scale = bq.LinearScale(min=0.0, max=1.0)
        self.edges = bq.Lines(x=[[0.0, 0.0]], y=[[0.0, 0.0]], scales={"x": sx, "y": sy}, colors=["#999999"])
        self.nodes_mark = bq.Scatter(
            x=[0.0], y=[0.0], color=[0.0], size=[0.0],
            scales={"x": sx, "y": sy, "color": self.color_scale, "size": self.size_scale},
            default_size=900, stroke="#333333", interactions={"click": "select"},
            selected_style={"stroke": "#1f77b4", "stroke-width": 4}, tooltip=None,
        )
        self.valid_ring = bq.Scatter(x=[], y=[], scales={"x": sx, "y": sy}, default_size=1800, fill=False,
                                     stroke="#2ca02c", stroke_width=3, colors=["#2ca02c"])
        self.node_labels = bq.Label(x=[], y=[], text=[], scales={"x": sx, "y": sy}, y_offset=30,
                                    align="middle", font_weight="normal", default_size=11)
        self.figure = bq.Figure(marks=[self.edges, self.valid_ring, self.nodes_mark, self.node_labels],
                                axes=[], fig_margin={"top": 30, "bottom": 40, "left": 40, "right": 40},
                                layout=W.Layout(width="100%", height="320px"), padding_x=0.08, padding_y=0.25,
                                title="colour = error rate, size = error coverage, green ring = valid failure mode")

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

        self.children = [
            W.HBox([self.class_dropdown, self.grouping_buttons]),
            W.HBox([self.depth_slider, self.k_text, self.delta_slider, self.tau_slider]),
            self.status_html,
            self.figure,
            self.node_html,
            W.HTML("<b>failures in this node</b>"), self.failures_grid,
            W.HTML("<b>successes in this node</b>"), self.successes_grid,
            self.feature_html, self.visualise_button,
            W.HTML("<b>top activating images (heat maps)</b>"), self.top_grid,
            W.HTML("<b>feature attacks</b>"), self.attack_grid,
            W.HBox([self.export_button]), self.export_text,
            self.log,
        ]
        self.run_guarded(self.refit)

    # ------------------------------------------------------------------------------ from the demo
    @classmethod
    def from_demo(cls, demo: Any = None, *, variant: str = "default", small: bool | None = None,
                  features: str = "robust", fit_split: str = "val", heldout_split: str = "test",
                  n_images: int | None = None, class_index: int | None = None, progress: bool = False,
                  **kwargs: Any) -> "TreeBrowser":
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
        from failwidgets.demo.recipes.barlow import FEATURE_MODELS, demo_class_trees, demo_split

        demo, small = resolve(demo, variant, small, progress)
        if n_images is None:
            n_images = 1000 if small else None
        fit = demo_split(demo, fit_split, features=features, n_images=n_images, progress=progress)
        held = demo_split(demo, heldout_split, features=features, n_images=n_images, progress=progress)
        if class_index is None:
            trees = demo_class_trees(fit, held, grouping=kwargs.get("grouping", "label"),
                                     max_depth=kwargs.get("max_depth", 1), k=kwargs.get("k", 20))
            scores = {c: t.heldout.aler_minus_ber for c, t in trees.items() if not isinstance(t, str)}
            scores = {c: s for c, s in scores.items() if np.isfinite(s)}
            class_index = max(scores, key=scores.get) if scores else 0
        model_attr, layer, conv = FEATURE_MODELS[features]
        kwargs.setdefault("attack_steps", 50 if small else 200)
        kwargs.setdefault("cache", demo.cache)
        widget = cls(fit.features, fit.labels, fit.preds, images=fit.images, heldout=held.heldout,
                     class_names=demo.world.class_names, feature_model=getattr(demo, model_attr),
                     feature_layer=layer, conv_layer=conv, class_index=int(class_index), **kwargs)
        widget.demo, widget.fit_data, widget.heldout_data = demo, fit, held
        return widget

    # ------------------------------------------------------------------------------------------ fit
    def refit(self) -> None:
        """Fit the tree of the current class / grouping / depth / k and redraw; bad groups set ``status``."""
        with self.log.busy("fitting failure tree..."):
            try:
                self.result = fit_class_tree(
                    self.features, self.labels, self.preds, self.class_index, grouping=self.grouping,
                    heldout=self.heldout, max_depth=self.max_depth, k=self.k, delta=self.delta, tau=self.tau,
                    mi_method=self.mi_method, random_state=self.random_state,
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
        parts = [f"{self._group_name()}: fit BER {r.fit.ber:.3f}, ALER {r.fit.aler:.3f} "
                 f"(ALER - BER {r.fit.aler_minus_ber:+.3f}), {len(r.fit.valid_leaves)} valid failure mode(s)"]
        if r.heldout is not None:
            parts.append(f"held-out BER {r.heldout.ber:.3f}, ALER {r.heldout.aler:.3f} "
                         f"(ALER - BER {r.heldout.aler_minus_ber:+.3f}), {len(r.heldout.valid_leaves)} valid")
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
        with self.figure.hold_sync():
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
    def _on_mark_selected(self, change: dict) -> None:
        if self._syncing:
            return
        sel = change["new"]
        self.selected_node = int(sel[0]) if sel is not None and len(sel) else -1

    def _on_selected_node(self, change: dict) -> None:
        node = change["new"]
        self._syncing = True
        try:
            self.nodes_mark.selected = None if node < 0 else [int(node)]
        finally:
            self._syncing = False
        r = self.result
        if r is None or node < 0:
            self.node_html.value = "<i>click a node</i>" if r is not None else ""
            if self.images is not None:
                self.failures_grid.set_images([])
                self.successes_grid.set_images([])
            self.feature_html.value = ""
            self.visualise_button.disabled = True
            return
        if node >= len(r.fit.nodes):
            raise ValueError(f"selected_node: expected a node id in [-1, {len(r.fit.nodes)}), got {node}")
        self.node_html.value = self._node_table(node)
        self._show_samples(node)
        feat = self.split_feature(node)
        self.feature_html.value = "" if feat < 0 else f"<b>feature of the split: feature[{feat}]</b>"
        self.visualise_button.disabled = feat < 0 or self.images is None
        self.visualise_button.description = "visualise feature" if feat < 0 else f"visualise feature[{feat}]"

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
        rule = html.escape(r.fit.nodes.loc[node, "rule"])
        kind = "leaf" if r.fit.nodes.loc[node, "is_leaf"] else "internal node"
        return f"<b>node {node}</b> ({kind}): <code>{rule}</code><table>{head}{body}</table>"

    def node_samples(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions (in the fit arrays) of up to ``n_samples`` failures and successes in ``node``."""
        r = self.result
        member = r.tree.node_membership(self.features[r.fit_indices])[:, node]
        idx = r.fit_indices[member]
        idx = idx[np.isin(idx, self.selection_filter)] if self.selection_filter is not None else idx
        rng = np.random.default_rng(self.random_state)
        return tuple(np.sort(rng.choice(a, size=min(self.n_samples, a.size), replace=False))
                     for a in (idx[self.failed[idx]], idx[~self.failed[idx]]))

    def _caption(self, i: int) -> str:
        return (f"label {html.escape(self.class_names[self.labels[i]])}<br>"
                f"pred {html.escape(self.class_names[self.preds[i]])}")

    def _show_samples(self, node: int) -> None:
        if self.images is None:
            return
        fails, oks = self.node_samples(node)
        for grid, idx in ((self.failures_grid, fails), (self.successes_grid, oks)):
            grid.set_images([self._image(i) for i in idx], captions=[self._caption(i) for i in idx],
                            keys=[int(i) for i in idx])

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
                att = feature_attack(self.feature_model, batch, self.feature_layer, feat,
                                     steps=self.attack_steps, cache=self.cache)
            self.attack_grid.set_images(
                att.images, keys=[int(i) for i in top],
                captions=[f"{a:.3g} → {b:.3g} ({s} steps)" for a, b, s in
                          zip(att.start_activation, att.final_activation, att.steps)],
            )
        self.log.info(f"visualised feature[{feat}] on {len(top)} images")

    # ------------------------------------------------------------------------------------ export
    def rules_frame(self, valid_only: bool = True) -> pd.DataFrame:
        """Failure rules of the current tree (fit and held-out rows), with class name and grouping."""
        if self.result is None:
            return pd.DataFrame(columns=["class_index", "class_name", "grouping", "split", "node", "rule"]
                                + _METRIC_COLUMNS)
        out = self.result.rules_frame(valid_only)
        out.insert(1, "class_name", self.class_names[self.class_index])
        return out

    def rules_text(self, valid_only: bool = True) -> str:
        if self.result is None:
            return self.status
        return f"{self.class_names[self.class_index]}: " + self.result.rules_text(valid_only)

    def _on_export(self, _button: Any) -> None:
        self.export_text.value = self.rules_text()
        self.export_text.layout.display = ""

    # ---------------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        for link in self._links:
            link.unlink()
        self._links = []
        self.result = None
        self.feature_model = None
        self.images = None
        self.demo = self.fit_data = self.heldout_data = None
        super().close()
