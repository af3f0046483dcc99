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
import os
from typing import Any, Mapping, Sequence

import ipywidgets as W
import numpy as np
import torch
import traitlets

from failwidgets._validation import check_positive_int
from failwidgets.methods.lavise import WORD_SCORINGS, FilterExplanations, activation_masks, compare_groups
from failwidgets.widgets.parts import BarChart, FailWidget, ImageGrid
from failwidgets.widgets.parts.keys import KeyBindings
from failwidgets.widgets.parts.sync import reject
from failwidgets.widgets.selections import FilterSelection

__all__ = ["FilterWordExplorer"]

SORT_KEYS = ("filter", "top_count", "difference")
VIEWS = ("filters", "groups")


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

    Attributes
    ----------
    layer : Unicode trait (saved), the shown layer (a key of ``explanations``).
    search : Unicode trait (saved), show only filters whose top-k words (any method) contain this word.
    sort_by : Enum trait (saved), ``"filter"``, ``"top_count"`` or ``"difference"`` (group
        difference; needs groups).
    selected_filter : Int trait (saved) or None, the opened filter (original index, explained in
        ``layer``).
    view : Enum trait (saved), the tab: ``"filters"`` or ``"groups"``.
    word_scoring : Enum trait (saved), how words are ranked: ``"count"`` (the paper: how many top images
        carry the word) or ``"pmi"`` (corrected for how likely the word is for any image;
        :mod:`failwidgets.methods.lavise.scoring`). Default: the scoring the explanations were made with.
    """

    _state_traits = ("layer", "search", "sort_by", "selected_filter", "view", "word_scoring")
    _heavy_attrs = ("explanations", "images", "groups", "_group_tables", "_rescored", "evaluation")
    layer = traitlets.Unicode("")
    search = traitlets.Unicode("")
    sort_by = traitlets.Enum(SORT_KEYS, default_value="filter")
    selected_filter = traitlets.Int(None, allow_none=True)
    view = traitlets.Enum(VIEWS, default_value="filters")
    word_scoring = traitlets.Enum(WORD_SCORINGS, default_value="count")

    def __init__(
        self,
        explanations: FilterExplanations | Mapping[str, FilterExplanations],
        images: Any,
        groups: Any = None,
        *,
        method: Any = None,
        k: int = 5,
        n_bars: int = 20,
        thumb_size: int = 96,
        **kwargs: Any,
    ):
        if isinstance(explanations, FilterExplanations):
            explanations = {explanations.layer: explanations}
        if not isinstance(explanations, Mapping) or not explanations:
            raise TypeError("explanations: expected FilterExplanations or a non-empty dict layer -> FilterExplanations")
        for name, ex in explanations.items():
            if not isinstance(ex, FilterExplanations):
                raise TypeError(f"explanations[{name!r}]: expected FilterExplanations, got {type(ex).__name__}")
        images = images if isinstance(images, Mapping) else {name: images for name in explanations}
        for name, ex in explanations.items():
            if name not in images:
                raise ValueError(f"images: no images for layer {name!r}")
            n = len(images[name])
            if n != ex.max_activations.shape[0]:
                raise ValueError(
                    f"images: expected {ex.max_activations.shape[0]} images for layer {name!r} (as explained), got {n}"
                )
            imgs = images[name]
            if isinstance(imgs, (list, tuple)):
                missing = [str(p) for p in imgs if isinstance(p, (str, os.PathLike)) and not os.path.isfile(p)]
                if missing:
                    raise ValueError(
                        f"images: expected existing image files for layer {name!r}, "
                        f"{len(missing)} do not exist (first: {missing[0]!r})"
                    )
        super().__init__(method=method, **kwargs)
        self.explanations = dict(explanations)
        self.images = images
        self.groups = None if groups is None else np.asarray(groups)
        self.k = check_positive_int(k, "k")
        self.n_bars = check_positive_int(n_bars, "n_bars")
        self._group_tables: dict[str, Any] = {}
        self._rescored: dict[tuple, FilterExplanations] = {}
        self.word_scoring = next(iter(self.explanations.values())).scoring
        self.layer = next(iter(self.explanations))

        # -- filters view ------------------------------------------------------------------------------
        self.layer_select = W.Dropdown(options=list(self.explanations), description="layer")
        self.search_box = W.Text(placeholder="word, e.g. grass", description="search", continuous_update=False)
        sort_options = [("filter index", "filter"), ("top word count", "top_count")]
        if self.groups is not None:
            sort_options.append(("group difference", "difference"))
        self.sort_select = W.Dropdown(options=sort_options, description="sort by")
        # explanations built without their nearest-word hits (by hand, or saved by an older version) keep
        # the scoring they were made with
        labels = {"count": "count (paper)", "pmi": "specific (PMI)"}
        scorings = WORD_SCORINGS if self._rescorable() else (self.word_scoring,)
        self.scoring_select = W.Dropdown(
            options=[(labels[k], k) for k in scorings], description="words by", disabled=len(scorings) < 2
        )
        self.filter_list = W.Select(options=[], rows=12, layout=W.Layout(width="100%"))
        self.count_label = W.HTML("")
        self.header = W.HTML("")
        self.words_html = W.HTML("")
        self.matches_html = W.HTML("")
        self.grid = ImageGrid(columns=5, thumb_size=thumb_size)
        detail = W.VBox([self.header, W.HBox([self.words_html, self.matches_html]), self.grid])
        filters_view = W.VBox(
            [
                W.HBox([self.layer_select, self.search_box, self.sort_select, self.scoring_select]),
                self.count_label,
                self.filter_list,
                detail,
            ]
        )
        # -- groups view -------------------------------------------------------------------------------
        self.chart = BarChart(
            title="share of qualified images: difference between groups", x_label="filter", y_label="difference"
        )
        self.groups_html = W.HTML("" if self.groups is not None else "<i>pass groups= to compare groups</i>")
        groups_view = W.VBox([self.groups_html, self.chart])
        self.tabs = W.Tab(children=[filters_view, groups_view], titles=("Filters", "Groups"))
        self.children = [self.tabs, self.log]
        # keys while the mouse is over the list or the opened filter: next / previous filter
        step = {"arrowdown": +1, "n": +1, "j": +1, "arrowup": -1, "p": -1, "k": -1}
        self.key_bindings = KeyBindings({k: (lambda d=d: self.step_filter(d)) for k, d in step.items()}, log=self.log)
        self.key_events = [
            e for e in (self.key_bindings.attach(self.filter_list), self.key_bindings.attach(detail)) if e is not None
        ]

        self.link("layer", self.layer_select)
        self.link("search", self.search_box)
        self.link("sort_by", self.sort_select)
        self.link("word_scoring", self.scoring_select)
        self.link("view", self.tabs, "selected_index", transform=(lambda v: VIEWS.index(v), lambda i: VIEWS[i or 0]))
        self.observe_guarded(self._on_list_pick, names="value", widget=self.filter_list)
        self.observe_guarded(self._on_bar_pick, names="selected_index", widget=self.chart)
        self.observe_guarded(self._on_layer, names="layer")
        self.observe_guarded(self._on_list_state, names=["search", "sort_by"])
        self.observe_guarded(self._on_selected_filter, names="selected_filter")
        self.observe_guarded(self._on_word_scoring, names="word_scoring")
        self.run_guarded(self._show_layer)

    # -- construction from the demo ---------------------------------------------------------------------
    @classmethod
    def from_demo(
        cls,
        demo: Any = None,
        *,
        variant: str = "default",
        small: bool | None = None,
        split: str = "train",
        n_images: int | None = None,
        groups: str | tuple | None = ("shape", "circle", "square"),
        methods: Sequence[str] | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> FilterWordExplorer:
        """The explorer on the demo world: the demo target's ``conv4`` explained with the shipped head.

        Built by :func:`failwidgets.demo.recipes.lavise.widget_inputs`: loads the shipped explainer head (it is
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
        FilterWordExplorer, with ``.evaluation`` (the :class:`~failwidgets.methods.lavise.FilterEvaluation` of
            :meth:`LaViSE.evaluate`) and ``.demo``.
        """
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes import build_widget, lavise

        demo, small = resolve(demo, variant, small, progress)
        return build_widget(
            cls,
            lavise.widget_inputs(
                demo, small=small, split=split, n_images=n_images, groups=groups, methods=methods, progress=progress
            ),
            **kwargs,
        )

    # -- data -------------------------------------------------------------------------------------------
    @property
    def current(self) -> FilterExplanations:
        """The explanations of the shown layer, words ranked by ``word_scoring``."""
        key = (self.layer, self.word_scoring)
        if key not in self._rescored:
            self._rescored[key] = self.explanations[self.layer].rescore(self.word_scoring)
        return self._rescored[key]

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

    def step_filter(self, step: int) -> None:
        """Open the next (+1) or previous (-1) filter of the list (the first / last when none is open)."""
        shown = self.visible_filters()
        if not shown:
            return
        cur = self.selected_filter
        if cur in shown:
            k = min(max(shown.index(cur) + step, 0), len(shown) - 1)
        else:
            k = 0 if step > 0 else len(shown) - 1
        self.selected_filter = shown[k]

    def _row_label(self, u: int) -> str:
        ex = self.current
        words = [w for w, _ in ex.word_counts(u, ex.methods[0])[: self.k]]
        marked = [w + ("*" if ex.is_novel(w) else "") for w in words]
        return f"filter {u}: {', '.join(marked)}"

    # -- validation -------------------------------------------------------------------------------------
    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict) -> str:
        if proposal["value"] not in self.explanations:
            reject(self, f"layer: expected one of {list(self.explanations)}, got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("word_scoring")
    def _valid_word_scoring(self, proposal: dict) -> str:
        if proposal["value"] != self.word_scoring and not self._rescorable():
            reject(
                self,
                f"word_scoring: these explanations keep no word hits, so only {self.word_scoring!r} is "
                f"available, got {proposal['value']!r}",
            )
        return proposal["value"]

    def _rescorable(self) -> bool:
        return all(ex.word_hits is not None and ex.vocabulary is not None for ex in self.explanations.values())

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: dict) -> str:
        if proposal["value"] == "difference" and self.groups is None:
            reject(self, f"sort_by: expected one of {list(SORT_KEYS[:2])} (no groups given), got 'difference'")
        return proposal["value"]

    @traitlets.validate("selected_filter")
    def _valid_selected_filter(self, proposal: dict) -> int | None:
        u = proposal["value"]
        if u is not None and u not in set(int(f) for f in self.current.filters):
            reject(self, f"selected_filter: filter {u} was not explained in layer {self.layer!r}")
        return u

    # -- handlers: widgets -> traits --------------------------------------------------------------------
    def _on_list_pick(self, change: dict) -> None:
        if change["new"] is not None and not self.quietly:
            self.selected_filter = int(change["new"])

    def _on_bar_pick(self, change: dict) -> None:
        i = change["new"]
        if i is not None and not self.quietly:
            self.selected_filter = int(self.chart.labels[i])

    # -- handlers: traits -> views ----------------------------------------------------------------------
    def _on_layer(self, change: dict) -> None:
        self._show_layer()

    def _show_layer(self) -> None:
        self.selected_filter = None
        self._refresh_list()
        self._refresh_groups()
        self._show_filter(None)

    def _on_list_state(self, change: dict) -> None:
        self._refresh_list()

    def _on_word_scoring(self, change: dict) -> None:
        self._group_tables.pop(self.layer, None)  # its word column follows the scoring
        self._refresh_list()
        self._show_filter(self.selected_filter)

    def _on_selected_filter(self, change: dict) -> None:
        u = change["new"]
        with self.quietly():
            self.filter_list.value = u if u in dict((v, v) for _, v in self.filter_list.options) else None
            if self.groups is not None and self.chart.labels:
                label = str(u)
                self.chart.selected_index = self.chart.labels.index(label) if label in self.chart.labels else None
        self._show_filter(u)

    # -- rendering --------------------------------------------------------------------------------------
    def _refresh_list(self) -> None:
        filters = self.visible_filters()
        keep = self.selected_filter
        # new options make the Select pick its first one; that is not a user's pick of a filter
        with self.filter_list.hold_sync(), self.quietly():
            self.filter_list.options = [(self._row_label(u), u) for u in filters]
            self.filter_list.value = keep if keep in filters else None
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
        groups = [c[len("share[") : -1] for c in table.columns if c.startswith("share[")]
        self.groups_html.value = (
            f"groups: {', '.join(html.escape(g) for g in groups)}; bars: "
            + (
                "share[" + html.escape(groups[1]) + "] - share[" + html.escape(groups[0]) + "]"
                if col == "signed_difference"
                else "max - min share"
            )
            + " of images whose max activation exceeds T_u; click a bar to open the filter"
        )

    def _show_filter(self, u: int | None) -> None:
        ex = self.current
        if u is None:
            self.header.value = "<i>pick a filter</i>"
            self.words_html.value = self.matches_html.value = ""
            self.grid.set_images(np.zeros((0, 8, 8, 3), dtype=np.uint8))
            return
        row = ex.row(u)
        self.header.value = (
            f"<b>{html.escape(ex.layer)} filter {u}</b>: threshold T_u = {ex.thresholds[u]:.4g}, "
            f"top {ex.p} images, {ex.s} words per image; words by "
            + ("count (paper)" if ex.scoring == "count" else "specificity-corrected score (PMI)")
        )
        self.words_html.value = self._words_table(u)
        self.matches_html.value = self._matches_table(u)
        idx = ex.top_images[row]
        maps = torch.from_numpy(ex.activation_maps[row])[:, None]  # (p, 1, h, w): filter u's maps
        masks = activation_masks(maps, ex.thresholds[u : u + 1], tuple(ex.image_size))[:, 0].float().numpy()
        keep = self.selection_keep(idx)  # only images inside a selection assigned from outside
        idx, masks, acts = idx[keep], masks[keep], ex.top_activations[row][keep]
        imgs = self.images[self.layer]
        if isinstance(imgs, torch.Tensor):
            sub = imgs[torch.as_tensor(idx)]
        elif isinstance(imgs, (list, tuple)):  # file paths or PIL images: pick, do not stack
            sub = [imgs[int(i)] for i in idx]
        else:
            sub = np.asarray(imgs)[idx]
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
                    score = f"{n}" if ex.scoring == "count" else f"{n:.3f}"
                    cells.append(f"<td>{html.escape(w)}{mark} ({score})</td>")
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
