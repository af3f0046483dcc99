"""``FailureMap``: every image on one 2-D map, coloured by correct / error, a score, label or metadata.

The layout is :func:`failwidgets.compute.layout.layout_2d` (UMAP when umap-learn is installed, PCA
otherwise; cached). Points are drawn with jupyter-scatter (WebGL, millions of points, lasso selections
come back to Python) when it is installed (``pip install failwidgets[map]``); otherwise with a bqplot
scatter of at most ``max_svg_points`` sampled points and a lasso selector.

A selection (a lasso on the page, ``map.selection = [...]`` from Python, or a linked widget's pick)
fills an image grid and shows its error rate with a 95% Wilson interval against the rest and a Fisher
exact p-value. A text box tests a hypothesis ("on snow") for a class on held-out data
(:func:`failwidgets.methods.hypotheses.test_hypothesis`) and selects the matching slice.
"""

from __future__ import annotations

import html
import importlib.util
from typing import Any, Sequence

import ipywidgets as W
import numpy as np
import pandas as pd
import traitlets

from failwidgets._validation import check_array, check_choice, check_labels, check_positive_int, check_same_length
from failwidgets.methods import SliceEvidence, slice_evidence
from failwidgets.methods.hypotheses import HypothesisResult, test_hypothesis
from failwidgets.widgets.parts import FailWidget, ImageGrid
from failwidgets.widgets.parts.selection import SelectionMixin

__all__ = ["FailureMap", "jscatter_available"]

_ERROR_COLORS = {"correct": "#9e9e9e", "error": "#d32f2f"}


def jscatter_available() -> bool:
    """Whether jupyter-scatter is installed (``pip install failwidgets[map]``)."""
    return importlib.util.find_spec("jscatter") is not None


class FailureMap(SelectionMixin, FailWidget):
    """A map of all images, linked to selections, with live hypothesis tests.

    Parameters
    ----------
    embeddings : ndarray (N, D), optional
        Laid out in 2-D with ``layout_2d`` (needed unless ``xy`` is given); also the image embeddings of
        hypotheses unless ``hypothesis_embeddings`` is given.
    labels, preds : int ndarray (N,)
    images : images (N, ...) in any format ``ImageGrid`` accepts, or a callable ``indices -> images``;
        optional (no grid without them).
    xy : ndarray (N, 2), optional: a precomputed layout.
    scores : ndarray (N,), optional: a method's score (decision value, tree leaf, filter activation...).
    score_name : str, name of the score column (``selection_frame`` and the colour menu).
    metadata : DataFrame with N rows, optional: more columns to colour by, shown in the frame, and the
        table metadata hypotheses are evaluated on.
    class_names : list of str, optional
    color_by : ``"error"``, ``"label"``, ``"prediction"``, ``score_name`` or a metadata column.
    encoder : vision-language encoder with ``encode_texts``, optional: hypotheses are phrases; without
        it they are metadata expressions (``"background == 'snow'"``).
    hypothesis_embeddings : ndarray (N, D), optional: the encoder's image embeddings of the N images
        (default: ``embeddings``).
    heldout : None, bool ndarray (N,) or float: see ``test_hypothesis`` (None: the map's data is the
        held-out data).
    overlays : ndarray (N, h, w) or callable ``indices -> (K, h, w)`` heat maps, optional: the grid's
        saliency toggle.
    n_grid : int, images shown from a selection (a seeded sample when the selection is larger).
    backend : ``"auto"`` (jupyter-scatter when installed), ``"jscatter"`` or ``"bqplot"``.
    max_svg_points : int, points drawn by the bqplot fallback (a seeded sample above it).
    previews : bool or None, hover thumbnails (jupyter-scatter); None: when N <= 5000 and images given.
    layout_method, cache : passed to ``layout_2d``.
    random_state : int, seed of the samples.

    Traits
    ------
    selection : list of int (see :class:`SelectionMixin`).
    color_by : str.
    """

    _state_traits = ("color_by", "selection")
    color_by = traitlets.Unicode("error")

    def __init__(
        self,
        embeddings: Any = None,
        labels: Any = None,
        preds: Any = None,
        images: Any = None,
        *,
        xy: Any = None,
        scores: Any = None,
        score_name: str = "score",
        metadata: pd.DataFrame | None = None,
        class_names: Sequence[str] | None = None,
        color_by: str = "error",
        encoder: Any = None,
        hypothesis_embeddings: Any = None,
        heldout: Any = None,
        overlays: Any = None,
        n_grid: int = 24,
        backend: str = "auto",
        max_svg_points: int = 10_000,
        previews: bool | None = None,
        layout_method: str = "auto",
        cache: Any = None,
        random_state: int = 0,
        height: int = 420,
        **kwargs: Any,
    ):
        from failwidgets.compute.layout import layout_2d

        check_choice(backend, "backend", ["auto", "jscatter", "bqplot"])
        if backend == "jscatter" and not jscatter_available():
            raise ImportError("backend='jscatter' needs jupyter-scatter: pip install 'failwidgets[map]'")
        self.backend = ("jscatter" if jscatter_available() else "bqplot") if backend == "auto" else backend
        if labels is None or preds is None:
            raise ValueError("labels, preds: expected int arrays (N,), got None")
        self.labels = check_labels(labels, "labels")
        self.preds = check_labels(preds, "preds")
        n = check_same_length(labels=self.labels, preds=self.preds)
        self.errors = self.labels != self.preds
        if xy is None:
            if embeddings is None:
                raise ValueError("embeddings: expected an (N, D) array to lay out (or pass xy=), got None")
            xy = layout_2d(embeddings, method=layout_method, cache=cache, random_state=random_state)
        self.xy = check_array(xy, "xy", shape=(n, 2), dtype="float")
        self.embeddings = embeddings
        self.hypothesis_embeddings = hypothesis_embeddings if hypothesis_embeddings is not None else embeddings
        self.score_name = str(score_name)
        self.scores = None if scores is None else check_array(scores, "scores", shape=(n,), dtype="float", finite=False)
        if metadata is not None:
            if not isinstance(metadata, pd.DataFrame):
                raise TypeError(f"metadata: expected a pandas DataFrame, got {type(metadata).__name__}")
            if len(metadata) != n:
                raise ValueError(f"metadata: expected {n} rows (one per point), got {len(metadata)}")
            metadata = metadata.reset_index(drop=True)
        self.metadata = metadata
        n_classes = int(max(self.labels.max(initial=0), self.preds.max(initial=0))) + 1
        self.class_names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
        if len(self.class_names) < n_classes:
            raise ValueError(f"class_names: expected at least {n_classes} names, got {len(self.class_names)}")
        if images is not None and not callable(images) and len(images) != n:
            raise ValueError(f"images: expected {n} images (one per point), got {len(images)}")
        self.images = images
        self.overlays = overlays
        self.encoder, self.heldout = encoder, heldout
        self.n_grid = check_positive_int(n_grid, "n_grid")
        self.max_svg_points = check_positive_int(max_svg_points, "max_svg_points")
        self.random_state = int(random_state)
        self.last_evidence: SliceEvidence | None = None
        self.last_hypothesis: HypothesisResult | None = None
        self._sample: np.ndarray | None = None  # bqplot: the drawn rows
        self._syncing = False
        super().__init__(method=None, **kwargs)

        self.color_dropdown = W.Dropdown(options=self.color_options(), value=None, description="colour by")
        self.evidence_html = W.HTML("<i>lasso points on the map (or set .selection) to see their images</i>")
        self.grid = ImageGrid(columns=8, thumb_size=72)
        self.phrase_box = W.Text(
            placeholder=(
                "hypothesis, e.g. on snow" if encoder is not None else "metadata filter, e.g. background == 'snow'"
            ),
            description="hypothesis",
            continuous_update=False,
            layout=W.Layout(width="360px"),
        )
        self.class_dropdown = W.Dropdown(options=[(c, i) for i, c in enumerate(self.class_names)], description="class")
        self.fraction_slider = W.FloatSlider(
            value=0.2,
            min=0.05,
            max=1.0,
            step=0.05,
            description="top fraction",
            readout_format=".2f",
            style={"description_width": "initial"},
            disabled=encoder is None,
        )
        self.test_button = W.Button(description="test", icon="flask")
        self.hypothesis_html = W.HTML("")
        self.plot = self._build_plot(height, previews)
        self.observe_guarded(
            lambda ch: setattr(self, "color_by", ch["new"]) if ch["new"] else None,
            names="value",
            widget=self.color_dropdown,
        )
        self.observe_guarded(self._on_color_by, names="color_by")
        self.observe_guarded(self._on_selection, names="selection")
        self.observe_guarded(lambda ch: self.test_phrase(), names="value", widget=self.phrase_box)
        self.on_click_guarded(self.test_button, lambda _b: self.test_phrase())
        self.children = [
            W.HBox([self.color_dropdown]),
            self.plot,
            self.evidence_html,
            self.grid,
            W.HBox([self.phrase_box, self.class_dropdown, self.fraction_slider, self.test_button]),
            self.hypothesis_html,
            self.log,
        ]
        check_choice(color_by, "color_by", [v for _, v in self.color_options()])
        self.color_by = color_by
        if self.color_by == "error":  # the trait did not change: draw the initial colours here
            self.run_guarded(self._recolor)

    # ------------------------------------------------------------------ construction from the demo
    @classmethod
    def from_demo(
        cls,
        demo: Any = None,
        *,
        variant: str = "default",
        split: str = "test",
        small: bool | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> FailureMap:
        """The map of one demo split: VL embeddings laid out, target predictions, the VL encoder for
        hypotheses, the world's factors as metadata.

        Parameters
        ----------
        demo : failwidgets.demo.Demo, optional (default: ``failwidgets.demo.load(variant)``)
        variant : ``"default"`` or ``"control"``
        split : ``"val"``, ``"test"`` (default: held out from every fit) or ``"pool"``.
        small : bool, optional: the first 600 images only (fast notebook tests). Default: True when
            ``FAILWIDGETS_NOTEBOOK_TEST`` is set.
        **kwargs : passed to the constructor (``layout_method``, ``color_by``, ``n_grid`` ...).

        Returns
        -------
        FailureMap, with ``.demo`` and ``.rows`` (the split's rows shown).
        """
        from failwidgets.demo.loading import resolve

        demo, small = resolve(demo, variant, small, progress)
        data = demo.world[split]
        emb = demo.embeddings(split, progress=progress)
        preds = demo.predictions(split, progress=progress)
        rows = np.arange(min(600, len(preds))) if small else np.arange(len(preds))
        meta = pd.DataFrame(
            {
                name: np.asarray(demo.world.factor_values[name], dtype=object)[values[rows]]
                for name, values in data.factors.items()
                if name != "shape"
            }
        )
        kwargs.setdefault("layout_method", "pca" if small else "auto")
        kwargs.setdefault("cache", demo.cache)
        widget = cls(
            emb[rows],
            data.labels[rows],
            preds[rows],
            data.images[rows],
            metadata=meta,
            class_names=demo.world.class_names,
            encoder=demo.vl,
            **kwargs,
        )
        widget.demo, widget.rows = demo, rows
        return widget

    # ------------------------------------------------------------------ colours
    def color_options(self) -> list[tuple[str, str]]:
        """(label, value) pairs of what the points can be coloured by."""
        opts = [("correct / error", "error"), ("label", "label"), ("prediction", "prediction")]
        if self.scores is not None:
            opts.append((self.score_name, self.score_name))
        if self.metadata is not None:
            opts += [(f"metadata: {c}", c) for c in self.metadata.columns if c not in dict(opts).values()]
        return opts

    def set_scores(self, scores: Any, name: str | None = None) -> None:
        """Replace the score column (N,) (e.g. a direction's decision values) and colour by it."""
        self.scores = check_array(scores, "scores", shape=(len(self.labels),), dtype="float", finite=False)
        if name is not None:
            self.score_name = str(name)
        self.color_dropdown.options = self.color_options()
        if self.color_by == self.score_name:
            self._recolor()
        else:
            self.color_by = self.score_name

    def scores_from(self, widget: Any, rows: Any = None) -> None:
        """Colour by another widget's score (decision value, tree leaf, filter activation, relation cell).

        Parameters
        ----------
        widget : a widget with a selection (its ``score_name`` column of ``selection_frame``).
        rows : int ndarray (N,), optional: for each point of the map, its row in ``widget``'s data (as
            for ``link(widget, map, rows=...)``); default: the same rows.
        """
        cols = widget._selection_columns()
        name = getattr(widget, "score_name", "score")
        if name not in cols:
            raise ValueError(f"widget: {type(widget).__name__} has no {name!r} score to colour by")
        values = np.asarray(cols[name], dtype=np.float64)
        if rows is not None:
            values = values[np.asarray(rows, dtype=np.int64)]
        self.set_scores(values, name=name)

    def _color_values(self, by: str) -> tuple[np.ndarray, bool, list[str] | None]:
        """(values (N,), categorical, category names) for ``by``."""
        if by == "error":
            return self.errors.astype(np.int64), True, ["correct", "error"]
        if by in ("label", "prediction"):
            v = self.labels if by == "label" else self.preds
            return v, True, self.class_names
        if self.scores is not None and by == self.score_name:
            return np.nan_to_num(self.scores, nan=0.0), False, None
        col = self.metadata[by]
        if pd.api.types.is_numeric_dtype(col) and col.nunique() > 12:
            return col.to_numpy(np.float64), False, None
        codes, names = pd.factorize(col, sort=True)
        return codes.astype(np.int64), True, [str(x) for x in names]

    def _on_color_by(self, change: dict) -> None:
        options = [v for _, v in self.color_options()]
        if change["new"] not in options:
            self.color_by = change["old"] if change["old"] in options else "error"
            raise ValueError(f"color_by: expected one of {options}, got {change['new']!r}")
        self._recolor()

    def _recolor(self) -> None:
        self._syncing = True
        try:
            self.color_dropdown.value = self.color_by
        finally:
            self._syncing = False
        values, categorical, names = self._color_values(self.color_by)
        if self.backend == "jscatter":
            self._jscatter_color(values, categorical, names)
        else:
            self._bqplot_color(values, categorical)

    # ------------------------------------------------------------------ plot backends
    def _build_plot(self, height: int, previews: bool | None) -> W.Widget:
        if self.backend == "jscatter":
            return self._build_jscatter(height, previews)
        return self._build_bqplot(height)

    def _build_jscatter(self, height: int, previews: bool | None) -> W.Widget:
        import jscatter

        n = len(self.labels)
        df = pd.DataFrame(
            {
                "x": self.xy[:, 0],
                "y": self.xy[:, 1],
                "outcome": pd.Categorical(np.where(self.errors, "error", "correct"), categories=["correct", "error"]),
                "label": pd.Categorical(
                    [self.class_names[i] for i in self.labels], categories=list(dict.fromkeys(self.class_names))
                ),
                "prediction": pd.Categorical(
                    [self.class_names[i] for i in self.preds], categories=list(dict.fromkeys(self.class_names))
                ),
            }
        )
        if self.scores is not None:
            df[self.score_name] = self.scores
        if self.metadata is not None:
            for c in self.metadata.columns:
                if c not in df:
                    col = self.metadata[c]
                    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
                    df[c] = col.to_numpy() if numeric else pd.Categorical(col.astype(str))
        use_previews = (
            (self.images is not None and not callable(self.images) and n <= 5000)
            if previews is None
            else bool(previews) and self.images is not None
        )
        if use_previews:
            df["preview"] = self._preview_uris(np.arange(n))
        self._jscatter_frame = df
        sc = jscatter.Scatter(data=df, x="x", y="y", height=height, lasso_initiator=True)
        sc.tooltip(
            True,
            properties=["color", "x", "y"],
            **({"preview": "preview", "preview_type": "image"} if use_previews else {}),
        )
        sc.legend(True)
        self.scatter = sc
        sc.widget.observe(self._on_jscatter_selection, names="selection")
        return sc.widget

    def _preview_uris(self, rows: np.ndarray) -> list[str]:
        from failwidgets.widgets.parts.thumbnails import data_uri, encode_image, to_uint8_images

        imgs = self._images_at(rows)
        return [data_uri(encode_image(im, max_side=48)) for im in to_uint8_images(imgs, "images")]

    def _jscatter_color(self, values: np.ndarray, categorical: bool, names: list[str] | None) -> None:
        col = {"error": "outcome"}.get(self.color_by, self.color_by)
        if col == "outcome":
            self.scatter.color(by=col, map=_ERROR_COLORS)
        elif categorical and col in self._jscatter_frame.columns:
            self.scatter.color(by=col, map="auto")
        else:  # a score set after construction: its values go as an array
            self.scatter.color(by=np.asarray(values, np.float32), map="viridis")

    def _build_bqplot(self, height: int) -> W.Widget:
        import bqplot as bq

        n = len(self.labels)
        rng = np.random.default_rng(self.random_state)
        self._sample = (
            np.sort(rng.choice(n, self.max_svg_points, replace=False)) if n > self.max_svg_points else np.arange(n)
        )
        sx, sy = bq.LinearScale(), bq.LinearScale()
        self._color_scale = bq.ColorScale(colors=["#9e9e9e", "#d32f2f"])
        pts = self.xy[self._sample]
        self.mark = bq.Scatter(
            x=pts[:, 0],
            y=pts[:, 1],
            color=np.zeros(len(pts)),
            scales={"x": sx, "y": sy, "color": self._color_scale},
            default_size=12,
            stroke=None,
            unselected_style={"opacity": 0.25},
            selected_style={"stroke": "black"},
        )
        self.lasso = bq.interacts.LassoSelector(marks=[self.mark])
        title = (
            ""
            if n <= self.max_svg_points
            else f"{len(self._sample)} of {n} points (sampled; install jupyter-scatter for all)"
        )
        fig = bq.Figure(
            marks=[self.mark],
            axes=[bq.Axis(scale=sx), bq.Axis(scale=sy, side="left")],
            interaction=self.lasso,
            title=title,
            layout=W.Layout(height=f"{height}px", width="100%"),
            fig_margin={"top": 30, "bottom": 30, "left": 40, "right": 10},
        )
        self.mark.observe(self._on_bqplot_selected, names="selected")
        return fig

    def _bqplot_color(self, values: np.ndarray, categorical: bool) -> None:
        v = values[self._sample].astype(np.float64)
        if self.color_by == "error":
            self._color_scale.colors, self._color_scale.min, self._color_scale.max = ["#9e9e9e", "#d32f2f"], 0.0, 1.0
        elif categorical:
            from failwidgets.widgets.parts.charts import GROUP_COLORS

            k = int(values.max(initial=0)) + 1
            self._color_scale.colors = [GROUP_COLORS[i % len(GROUP_COLORS)] for i in range(max(k, 2))]
            self._color_scale.min, self._color_scale.max = 0.0, float(max(k - 1, 1))
        else:
            self._color_scale.colors = ["#440154", "#21918c", "#fde725"]
            self._color_scale.min, self._color_scale.max = float(v.min(initial=0.0)), float(v.max(initial=1.0))
        self.mark.color = v

    # ------------------------------------------------------------------ selection
    def _selection_size(self) -> int:
        return len(self.labels)

    def _selection_columns(self) -> dict[str, np.ndarray]:
        cols: dict[str, Any] = {"label": self.labels, "prediction": self.preds, "error": self.errors}
        if self.scores is not None:
            cols[self.score_name] = self.scores
        if self.metadata is not None:
            for c in self.metadata.columns:
                cols.setdefault(c, self.metadata[c].to_numpy())
        return cols

    def _on_jscatter_selection(self, change: dict) -> None:
        if self._syncing:
            return
        new = change["new"]
        self._publish_selection(np.zeros(0, np.int64) if new is None else np.asarray(new, np.int64))

    def _on_bqplot_selected(self, change: dict) -> None:
        if self._syncing:
            return
        sel = change["new"]
        rows = np.zeros(0, np.int64) if sel is None or len(sel) == 0 else self._sample[np.asarray(sel, np.int64)]
        self._publish_selection(rows)

    def _on_selection(self, change: dict) -> None:
        idx = np.asarray(change["new"], np.int64)
        self._syncing = True
        try:
            if self.backend == "jscatter":
                current = self.scatter.widget.selection
                same = (
                    current is not None
                    and len(current) == idx.size
                    and (np.array_equal(current, idx) or np.array_equal(np.sort(current), np.sort(idx)))
                )
                if not same:
                    self.scatter.selection(idx if idx.size else None)
            else:
                pos = np.flatnonzero(np.isin(self._sample, idx))
                self.mark.selected = pos.tolist() if idx.size else None
        finally:
            self._syncing = False
        self.show_selection(idx)

    def evidence(self, indices: Any = None) -> SliceEvidence:
        """Error rate of a selection (default: ``selection``) versus the rest, 95% Wilson CIs, Fisher p."""
        idx = self.selection_indices if indices is None else np.asarray(indices, np.int64)
        return slice_evidence(idx, self.errors)

    def grid_rows(self, indices: Any) -> np.ndarray:
        """The rows of a selection shown in the grid: all of it up to ``n_grid``, else a seeded sample."""
        idx = np.asarray(indices, np.int64)
        if idx.size <= self.n_grid:
            return idx
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(idx, self.n_grid, replace=False))

    def show_selection(self, indices: Any) -> None:
        """Fill the grid with (a sample of) ``indices`` and show its evidence (what a selection does)."""
        idx = np.asarray(indices, np.int64)
        if idx.size == 0:
            self.last_evidence = None
            self.evidence_html.value = "<i>no selection</i>"
            if self.images is not None:
                self.grid.set_images(np.zeros((0, 8, 8, 3), np.uint8))
            return
        ev = self.evidence(idx)
        self.last_evidence = ev
        self.evidence_html.value = f"<b>{ev.n_inside} selected</b> of {len(self.labels)}: " + html.escape(ev.summary())
        if self.images is None:
            return
        rows = self.grid_rows(idx)
        caps = [
            f"#{int(i)} {html.escape(self.class_names[self.labels[i]])}"
            + (f" → <b>{html.escape(self.class_names[self.preds[i]])}</b>" if self.errors[i] else " ✓")
            for i in rows
        ]
        self.grid.set_images(
            self._images_at(rows), captions=caps, overlays=self._overlays_at(rows), keys=[int(i) for i in rows]
        )

    def _images_at(self, rows: np.ndarray) -> Any:
        if callable(self.images):
            return self.images(rows)
        imgs = self.images
        try:
            import torch

            if isinstance(imgs, torch.Tensor):
                return imgs[torch.as_tensor(rows)]
        except ImportError:  # pragma: no cover
            pass
        if isinstance(imgs, np.ndarray):
            return imgs[rows]
        return [imgs[int(i)] for i in rows]

    def _overlays_at(self, rows: np.ndarray) -> Any:
        if self.overlays is None:
            return None
        if callable(self.overlays):
            return self.overlays(rows)
        return np.asarray(self.overlays)[rows]

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if not hasattr(self, "_observers"):  # __init__ failed before the base class was set up
            return
        if getattr(self, "scatter", None) is not None:
            self.scatter.widget.unobserve(self._on_jscatter_selection, names="selection")
        self.scatter = self.images = self.overlays = self.encoder = self.metadata = None
        super().close()

    # ------------------------------------------------------------------ hypotheses
    def test_phrase(
        self, phrase: str | None = None, class_index: int | None = None, top_fraction: float | None = None
    ) -> HypothesisResult | None:
        """Test a hypothesis (default: the text box, class menu and slider), show it, select its slice.

        Returns
        -------
        HypothesisResult, or None for an empty phrase.
        """
        phrase = self.phrase_box.value if phrase is None else phrase
        if not phrase or not phrase.strip():
            return None
        c = self.class_dropdown.value if class_index is None else int(class_index)
        frac = self.fraction_slider.value if top_fraction is None else float(top_fraction)
        with self.log.busy(f"testing {phrase!r}..."):
            norms = None
            if self.encoder is not None and self.hypothesis_embeddings is not None:
                if getattr(self, "_hypothesis_norms", None) is None:  # once: every later phrase is one dot product
                    from failwidgets.methods.hypotheses import embedding_norms

                    self._hypothesis_norms = embedding_norms(self.hypothesis_embeddings)
                norms = self._hypothesis_norms
            res = test_hypothesis(
                phrase,
                self.encoder,
                self.hypothesis_embeddings,
                self.labels,
                self.preds,
                c,
                top_fraction=frac,
                heldout=self.heldout,
                metadata=self.metadata,
                random_state=self.random_state,
                row_norms=norms,
            )
        self.last_hypothesis = res
        self.hypothesis_html.value = hypothesis_html(res, self.class_names)
        self.selection = res.slice_indices.tolist()
        return res

    test_phrase.__test__ = False  # type: ignore[attr-defined]


def hypothesis_html(res: HypothesisResult, class_names: Sequence[str] | None = None) -> str:
    """The evidence of a hypothesis as a small HTML table (inside / outside, CIs, p-value)."""
    ev = res.evidence
    name = class_names[res.class_index] if class_names is not None else str(res.class_index)

    def row(side, n, e, rate, ci):
        if n == 0:
            return f"<tr><td>{side}</td><td>0</td><td>—</td><td>—</td></tr>"
        return (
            f"<tr><td>{side}</td><td>{n}</td><td>{100 * rate:.1f}%</td>"
            f"<td>[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]</td></tr>"
        )

    verdict = (
        "<b>higher</b> error inside"
        if ev.significant() and ev.difference > 0
        else "<b>lower</b> error inside"
        if ev.significant()
        else "no significant difference"
    )
    what = (
        f"top {100 * res.top_fraction:.0f}% of {html.escape(name)} images by similarity"
        if res.kind == "text"
        else f"{html.escape(name)} images matching the filter"
    )
    return (
        f"<div class='fw-hypothesis'><b>{html.escape(res.phrase)}</b>: {what} "
        f"({res.n_matching} match; evidence on {len(res.heldout_indices)} held-out images)"
        "<table><tr><th></th><th>n</th><th>error</th><th>95% CI</th></tr>"
        f"{row('inside', ev.n_inside, ev.errors_inside, ev.rate_inside, ev.ci_inside)}"
        f"{row('outside', ev.n_outside, ev.errors_outside, ev.rate_outside, ev.ci_outside)}"
        f"</table>Fisher exact p = {ev.p_value:.2g}: {verdict}</div>"
    )
