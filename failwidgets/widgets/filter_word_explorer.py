"""``FilterWordExplorer``: browse LaViSE word explanations of a layer's filters (Yang et al. 2022).

Views
-----
- *Filters*: a layer selector, a searchable / sortable list of filters with their top words (novel words,
  i.e. not among the explainer's training concepts, are marked ``*``); click a filter to see its top-p
  images with activation masks (> T_u) overlaid, its word counts per method (filter attention beside the
  baselines) and the concepts that match it by IoU (when the explanations were evaluated with masks).
- *Groups* (when ``groups`` are given): per filter, the difference in the share of qualified images
  between groups as a bqplot bar chart; click a bar to open that filter.

The widget renders :class:`failwidgets.methods.lavise.FilterExplanations`; it computes nothing heavy.
"""
from __future__ import annotations

import html
import warnings
from typing import Any, Mapping, Sequence

import ipywidgets as W
import numpy as np
import torch
import traitlets

from failwidgets.methods.lavise import FilterExplanations, compare_groups
from failwidgets.widgets.parts import BarChart, FailWidget, ImageGrid
from failwidgets.widgets.selections import FilterSelection

__all__ = ["FilterWordExplorer"]

SORT_KEYS = ("filter", "top_count", "difference")


class FilterWordExplorer(FilterSelection, FailWidget):
    """Explore which words explain which filters.

    Parameters
    ----------
    explanations : FilterExplanations or dict layer name -> FilterExplanations
        From :meth:`LaViSE.explain` (optionally after :meth:`LaViSE.evaluate`, which adds IoU matches).
    images : images (N, ...) the explanations index (the explained dataset), any format ``ImageGrid``
        accepts; may be a dict layer -> images if layers were explained on different data.
    groups : array (N,), optional
        A group per image for the bias view (two or more groups).
    method : LaViSE or dict layer -> LaViSE, optional (kept as ``.method``; not used for computing).
    k : int, words shown per filter in the list.
    n_bars : int, filters shown in the group chart.

    Traits (saved by ``to_dict``)
    ------
    layer : str, the shown layer.
    search : str, show only filters whose top-k words (any method) contain this word.
    sort_by : ``"filter"``, ``"top_count"`` or ``"difference"`` (group difference; needs groups).
    selected_filter : int or None, the opened filter (original index).
    view : ``"filters"`` or ``"groups"``.
    """

    _state_traits = ("layer", "search", "sort_by", "selected_filter", "view")
    _heavy_attrs = ("demo", "evaluation")
    layer = traitlets.Unicode("")
    search = traitlets.Unicode("")
    sort_by = traitlets.Unicode("filter")
    selected_filter = traitlets.Int(None, allow_none=True)
    view = traitlets.Unicode("filters")

    def __init__(self, explanations: FilterExplanations | Mapping[str, FilterExplanations], images: Any,
                 groups: Any = None, *, method: Any = None, k: int = 5, n_bars: int = 20,
                 thumb_size: int = 96, **kwargs: Any):
        if isinstance(explanations, FilterExplanations):
            explanations = {explanations.layer: explanations}
        if not isinstance(explanations, Mapping) or not explanations:
            raise TypeError("explanations: expected FilterExplanations or a non-empty dict layer -> FilterExplanations")
        for name, ex in explanations.items():
            if not isinstance(ex, FilterExplanations):
                raise TypeError(f"explanations[{name!r}]: expected FilterExplanations, got {type(ex).__name__}")
        self.explanations = dict(explanations)
        self.images = images if isinstance(images, Mapping) else {name: images for name in self.explanations}
        for name, ex in self.explanations.items():
            if name not in self.images:
                raise ValueError(f"images: no images for layer {name!r}")
            n = len(self.images[name])
            if n != ex.max_activations.shape[0]:
                raise ValueError(
                    f"images: expected {ex.max_activations.shape[0]} images for layer {name!r} "
                    f"(as explained), got {n}"
                )
        self.groups = None if groups is None else np.asarray(groups)
        self.k = k
        self.n_bars = n_bars
        self._group_tables: dict[str, Any] = {}
        super().__init__(method=method, **kwargs)

        # -- filters view ------------------------------------------------------------------------------
        self.layer_select = W.Dropdown(options=list(self.explanations), description="layer")
        self.search_box = W.Text(placeholder="word, e.g. grass", description="search", continuous_update=False)
        sort_options = [("filter index", "filter"), ("top word count", "top_count")]
        if self.groups is not None:
            sort_options.append(("group difference", "difference"))
        self.sort_select = W.Dropdown(options=sort_options, description="sort by")
        self.filter_list = W.Select(options=[], rows=12, layout=W.Layout(width="100%"))
        self.count_label = W.HTML("")
        self.header = W.HTML("")
        self.words_html = W.HTML("")
        self.matches_html = W.HTML("")
        self.grid = ImageGrid(columns=5, thumb_size=thumb_size)
        detail = W.VBox([self.header, W.HBox([self.words_html, self.matches_html]), self.grid])
        filters_view = W.VBox([
            W.HBox([self.layer_select, self.search_box, self.sort_select]),
            self.count_label, self.filter_list, detail,
        ])
        # -- groups view -------------------------------------------------------------------------------
        self.chart = BarChart(title="share of qualified images: difference between groups",
                              x_label="filter", y_label="difference")
        self.groups_html = W.HTML("" if self.groups is not None else "<i>pass groups= to compare groups</i>")
        groups_view = W.VBox([self.groups_html, self.chart])
        self.tabs = W.Tab(children=[filters_view, groups_view], titles=("Filters", "Groups"))
        self.children = [self.tabs, self.log]

        self.observe_guarded(self._on_layer_widget, names="value", widget=self.layer_select)
        self.observe_guarded(self._on_search_widget, names="value", widget=self.search_box)
        self.observe_guarded(self._on_sort_widget, names="value", widget=self.sort_select)
        self.observe_guarded(self._on_list_pick, names="value", widget=self.filter_list)
        self.observe_guarded(self._on_bar_pick, names="selected_index", widget=self.chart)
        self.observe_guarded(self._on_tab, names="selected_index", widget=self.tabs)
        self.observe_guarded(self._on_layer, names="layer")
        self.observe_guarded(self._on_list_state, names=["search", "sort_by"])
        self.observe_guarded(self._on_selected_filter, names="selected_filter")
        self.observe_guarded(self._on_view, names="view")
        self.layer = next(iter(self.explanations))

    # -- construction from the demo ---------------------------------------------------------------------
    @classmethod
    def from_demo(cls, demo: Any = None, *, variant: str = "default", small: bool | None = None,
                  split: str = "train", n_images: int | None = None,
                  groups: str | tuple | None = ("shape", "circle", "square"),
                  methods: Sequence[str] | None = None, progress: bool = False,
                  **kwargs: Any) -> "FilterWordExplorer":
        """The explorer on the demo world: the demo target's ``conv4`` explained with the shipped head.

        Loads the shipped explainer head (:func:`failwidgets.demo.recipes.lavise.load_explainer`; it is
        trained here only when the shipped one does not fit the target, with a warning), computes the
        layer's features through the demo's :class:`~failwidgets.compute.EmbeddingCache`, explains every
        filter (p = 25, s = 5), scores the words against the world's exact concept masks and opens the
        group view.

        Parameters
        ----------
        demo : failwidgets.demo.Demo, optional
            Default: ``failwidgets.demo.load(variant)``.
        variant : ``"default"`` or ``"control"`` (ignored when ``demo`` is given)
        small : bool, optional
            Fewer images and only the cheap methods (attention and original image) so a notebook runs
            fast in CI. Default: True when the environment variable ``FAILWIDGETS_NOTEBOOK_TEST`` is set.
        split : the world split to explain (default ``"train"``: the planted correlations live there,
            so the group view shows them)
        n_images : the first ``n_images`` of the split (default 2000, small: 600)
        groups : ``(factor, value_a, value_b)`` -- images with one of the two values, the others left
            out -- or a factor name (one group per value), or None (no group view). Default: circles
            vs squares, which the training split pairs with grass and sand backgrounds.
        methods : inference methods (default: all four of :data:`~failwidgets.methods.lavise.METHODS`;
            small: attention and original)
        progress : progress bars while computing
        **kwargs : passed to the constructor (``k``, ``n_bars``, ``thumb_size``).

        Returns
        -------
        FilterWordExplorer, with ``.evaluation`` (the dict of :meth:`LaViSE.evaluate`) and ``.demo``.
        """
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes.lavise import feature_data_id, load_explainer
        from failwidgets.demo.training.lavise import train_explainer
        from failwidgets.methods.lavise import METHODS
        from failwidgets.world.factors import FACTOR_NAMES, FACTOR_VALUES

        demo, small = resolve(demo, variant, small, progress)
        try:
            lav = load_explainer(demo, progress=progress)
        except (FileNotFoundError, ValueError) as exc:
            warnings.warn(f"{exc}; training an explainer now (slower)", RuntimeWarning, stacklevel=2)
            lav = train_explainer(demo, n_images=1000 if small else None, progress=progress)
        data = demo.world[split]
        n = min(len(data), n_images if n_images is not None else (600 if small else 2000))
        idx = np.arange(n)
        images = data.as_tensor(idx)
        feats = lav.features(images, data_id=feature_data_id(demo, split, n))
        if methods is None:
            methods = ("attention", "original") if small else METHODS
        ex = lav.explain(images, features=feats, methods=methods)
        masks = {c: data.concept_masks(c, idx) for c in demo.world.concepts}
        evaluation = lav.evaluate(ex, masks, ks=(5, 10))
        del masks
        labels = None
        if groups is not None:
            factor, wanted = (groups, None) if isinstance(groups, str) else (groups[0], list(groups[1:]))
            if factor not in FACTOR_NAMES:
                raise ValueError(f"groups: expected a factor name among {FACTOR_NAMES}, got {factor!r}")
            names = np.asarray(FACTOR_VALUES[factor], dtype=object)[data.factors[factor][:n]]
            if wanted is not None:
                for v in wanted:
                    if v not in FACTOR_VALUES[factor]:
                        raise ValueError(f"groups: {v!r} is not a value of {factor!r} {FACTOR_VALUES[factor]}")
                names = np.where(np.isin(names, wanted), names, None)
            labels = names
        widget = cls(ex, np.asarray(data.images[:n]), labels, method=lav, **kwargs)
        widget.evaluation = evaluation
        widget.demo = demo
        return widget

    # -- data -------------------------------------------------------------------------------------------
    @property
    def current(self) -> FilterExplanations:
        """The explanations of the shown layer."""
        return self.explanations[self.layer]

    def group_table(self):
        """``compare_groups`` of the shown layer (cached), or None without groups."""
        if self.groups is None:
            return None
        if self.layer not in self._group_tables:
            self._group_tables[self.layer] = compare_groups(self.current, self.groups, k=self.k)
        return self._group_tables[self.layer]

    def visible_filters(self) -> list[int]:
        """Filters listed now (after search and sort), original indices."""
        ex = self.current
        word = self.search.strip().lower()
        filters = [int(u) for u in ex.filters]
        if word:
            hits: set[int] = set()
            for m in ex.methods:
                hits.update(ex.filters_with_word(word, m, self.k))
            filters = [u for u in filters if u in hits]
        if self.sort_by == "top_count":
            counts = {int(u): (ws[0][1] if ws else 0) for u, ws in zip(ex.filters, ex.words[ex.methods[0]])}
            filters.sort(key=lambda u: (-counts[u], u))
        elif self.sort_by == "difference" and self.groups is not None:
            order = {int(u): i for i, u in enumerate(self.group_table()["filter"])}
            filters.sort(key=lambda u: order[u])
        return filters

    def _row_label(self, u: int) -> str:
        ex = self.current
        words = [w for w, _ in ex.word_counts(u, ex.methods[0])[: self.k]]
        marked = [w + ("*" if ex.is_novel(w) else "") for w in words]
        return f"filter {u}: {', '.join(marked)}"

    # -- handlers: widgets -> traits --------------------------------------------------------------------
    def _on_layer_widget(self, change: dict) -> None:
        self.layer = change["new"]

    def _on_search_widget(self, change: dict) -> None:
        self.search = change["new"]

    def _on_sort_widget(self, change: dict) -> None:
        self.sort_by = change["new"]

    def _on_list_pick(self, change: dict) -> None:
        if change["new"] is not None and not getattr(self, "_listing", False):
            self.selected_filter = int(change["new"])

    def _on_bar_pick(self, change: dict) -> None:
        i = change["new"]
        if i is not None:
            self.selected_filter = int(self.chart.labels[i])

    def _on_tab(self, change: dict) -> None:
        self.view = "groups" if change["new"] == 1 else "filters"

    # -- handlers: traits -> views ----------------------------------------------------------------------
    def _on_layer(self, change: dict) -> None:
        if change["new"] not in self.explanations:
            self.layer = change["old"]
            raise ValueError(f"layer: expected one of {list(self.explanations)}, got {change['new']!r}")
        self.layer_select.value = change["new"]
        self.selected_filter = None
        self._refresh_list()
        self._refresh_groups()
        self._show_filter(None)

    def _on_list_state(self, change: dict) -> None:
        if change["name"] == "sort_by":
            allowed = SORT_KEYS if self.groups is not None else SORT_KEYS[:2]
            if change["new"] not in allowed:
                self.sort_by = change["old"]
                raise ValueError(f"sort_by: expected one of {list(allowed)}, got {change['new']!r}")
            self.sort_select.value = change["new"]
        else:
            self.search_box.value = change["new"]
        self._refresh_list()

    def _on_selected_filter(self, change: dict) -> None:
        u = change["new"]
        if u is not None and u not in set(int(f) for f in self.current.filters):
            self.selected_filter = change["old"]
            raise ValueError(f"selected_filter: filter {u} was not explained in layer {self.layer!r}")
        self.filter_list.value = u if u in dict((v, v) for _, v in self.filter_list.options) else None
        if self.groups is not None and self.chart.labels:
            label = str(u)
            self.chart.selected_index = self.chart.labels.index(label) if label in self.chart.labels else None
        self._show_filter(u)

    def _on_view(self, change: dict) -> None:
        if change["new"] not in ("filters", "groups"):
            self.view = change["old"]
            raise ValueError(f"view: expected 'filters' or 'groups', got {change['new']!r}")
        self.tabs.selected_index = 1 if change["new"] == "groups" else 0

    # -- rendering --------------------------------------------------------------------------------------
    def _refresh_list(self) -> None:
        filters = self.visible_filters()
        keep = self.selected_filter
        # new options make the Select pick its first one; that is not a user's pick of a filter
        self._listing = True
        try:
            with self.filter_list.hold_sync():
                self.filter_list.options = [(self._row_label(u), u) for u in filters]
                self.filter_list.value = keep if keep in filters else None
        finally:
            self._listing = False
        total = len(self.current.filters)
        what = f" with {html.escape(self.search)!s}" if self.search.strip() else ""
        self.count_label.value = f"{len(filters)} of {total} filters{what} (<b>*</b> = novel word)"

    def _refresh_groups(self) -> None:
        table = self.group_table()
        if table is None:
            return
        top = table.head(self.n_bars)
        col = "signed_difference" if "signed_difference" in top else "difference"
        self.chart.set_data([str(u) for u in top["filter"]], top[col].to_numpy())
        groups = [c[len("share["):-1] for c in table.columns if c.startswith("share[")]
        self.groups_html.value = (
            f"groups: {', '.join(html.escape(g) for g in groups)}; bars: "
            + ("share[" + html.escape(groups[1]) + "] - share[" + html.escape(groups[0]) + "]"
               if col == "signed_difference" else "max - min share")
            + " of images whose max activation exceeds T_u; click a bar to open the filter"
        )

    def _show_filter(self, u: int | None) -> None:
        ex = self.current
        if u is None:
            self.header.value = "<i>pick a filter</i>"
            self.words_html.value = self.matches_html.value = ""
            self.grid.set_images(np.zeros((0, 8, 8, 3), dtype=np.uint8))
            return
        row = ex._row(u)
        self.header.value = (
            f"<b>{html.escape(ex.layer)} filter {u}</b>: threshold T_u = {ex.thresholds[u]:.4g}, "
            f"top {ex.p} images, {ex.s} words per image"
        )
        self.words_html.value = self._words_table(u)
        self.matches_html.value = self._matches_table(u)
        idx = ex.top_images[row]
        maps = torch.from_numpy(ex.activation_maps[row])
        size = tuple(ex.image_size)
        up = torch.nn.functional.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        masks = (up > float(ex.thresholds[u])).float().numpy()
        keep = self.selection_keep(idx)  # only images inside a selection assigned from outside
        idx, masks, acts = idx[keep], masks[keep], ex.top_activations[row][keep]
        imgs = self.images[self.layer]
        sub = imgs[torch.as_tensor(idx)] if isinstance(imgs, torch.Tensor) else np.asarray(imgs)[idx]
        captions = [f"#{i} max {a:.3g}" for i, a in zip(idx, acts)]
        self.grid.set_images(sub, captions=captions, overlays=masks, keys=[int(i) for i in idx])

    def _words_table(self, u: int) -> str:
        ex = self.current
        cols = [ex.word_counts(u, m)[: self.k] for m in ex.methods]
        head = "".join(f"<th>{html.escape(m)}</th>" for m in ex.methods)
        rows = []
        for r in range(max((len(c) for c in cols), default=0)):
            cells = []
            for c in cols:
                if r < len(c):
                    w, n = c[r]
                    mark = " <b>*</b>" if ex.is_novel(w) else ""
                    cells.append(f"<td>{html.escape(w)}{mark} ({n})</td>")
                else:
                    cells.append("<td></td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>"

    def _matches_table(self, u: int) -> str:
        ex = self.current
        if ex.iou is None:
            return "<i>no concept masks evaluated</i>"
        m = ex.matches(u)
        if not m:
            return f"<i>no concept with IoU &gt; {ex.iou_threshold:g}</i>"
        rows = "".join(
            f"<tr><td>{html.escape(c)}{' (held out)' if c in ex.heldout_concepts else ''}</td><td>{v:.3f}</td></tr>"
            for c, v in m
        )
        return f"<table><tr><th>matching concept</th><th>IoU</th></tr>{rows}</table>"

    def close(self) -> None:
        self.explanations, self.images, self._group_tables = {}, {}, {}
        if not hasattr(self, "_observers"):  # __init__ failed before the base class ran
            W.Widget.close(self)
            return
        super().close()
