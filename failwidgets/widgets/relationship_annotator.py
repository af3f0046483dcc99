"""``RelationshipAnnotator``: label attribute relations and see where a CNN's mined relations disagree
(Zhang et al. 2018), on a fitted :class:`failwidgets.methods.relations.RelationMiner`.

Layout (top to bottom): counter and filter; the n x n matrix of mined mean relations (bqplot
``GridHeatMap`` through the shared ``MatrixHeatmap`` part, click a cell to select a pair; labelled cells carry their level's short mark);
navigation, level buttons, undo / redo and the hotkey box; the selected pair's histogram of r_ij with
the fitted Gaussian of its level and the KL; example images with both attributes' heat maps; the KL
per attribute; lists of blind spots and failure modes (with their test accuracy decrease when test
predictions are given); load / save of the annotation file; the log.

Keys (while the mouse is over the widget, through ``ipyevents``): ``1``..``L`` label the selected pair
with that level (default five levels: 1 = definitely negative ... 5 = definitely positive), ``0``
clears its label, ``u`` or Ctrl+Z undoes, ``r`` or Ctrl+Shift+Z (Ctrl+Y) redoes, ``n`` / ``p`` or the
arrow keys move to the next / previous pair. The table is ``widget.key_bindings``
(:class:`~failwidgets.widgets.parts.keys.KeyBindings`). Where ipyevents is not installed (or
``FAILWIDGETS_KEY_EVENTS=0``) the widget shows a small text box (``hotkeys``) instead: every character
typed into it acts at once and the box clears itself. ``widget.hotkeys.value = "3"`` is the same as
typing 3, in either case.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any, Sequence

import bqplot as bq
import ipywidgets as W
import numpy as np
import traitlets

from failwidgets._validation import check_array, check_positive_int
from failwidgets.methods.relations import (
    AnnotationFile,
    RelationGraph,
    RelationMiner,
    evaluate_modes,
    gaussian_density,
    inference_map,
)
from failwidgets.methods.relations.shared import writer_name
from failwidgets.widgets.parts import FailWidget, ImageGrid, to_uint8_images
from failwidgets.widgets.parts.charts import BarChart, MatrixHeatmap
from failwidgets.widgets.parts.keys import KeyBindings
from failwidgets.widgets.parts.sync import reject
from failwidgets.widgets.selections import RelationSelection

__all__ = ["RelationshipAnnotator"]

_esc = html.escape

# which pairs the pair view lists, and in which order (``pair_view``; "filter" is the conv-filter word)
PAIR_VIEWS = ("all pairs", "unlabelled", "informative first")
_MARKS_5 = ("--", "-", "0", "+", "++")


def _level_marks(levels: Sequence[str]) -> list[str]:
    if len(levels) == 5:
        return list(_MARKS_5)
    return [str(k + 1) for k in range(len(levels))]


class RelationshipAnnotator(RelationSelection, FailWidget):
    """Annotate ground-truth attribute relations and diagnose a CNN against them.

    Parameters
    ----------
    miner : RelationMiner
        Fitted on the training images (``relations_``, ``masks_`` ...).
    graph : RelationGraph, optional
        Labels to start from (default: empty graph over ``miner.attribute_names_``).
    images : uint8 ndarray (M, H, W, 3), optional
        Example images (e.g. a subset of the training images) for the heat maps.
    gradients : ndarray (M, n, *S), optional
        Gradients of all attribute outputs at the miner's layer for ``images`` (from
        ``failwidgets.compute.output_gradients``); needed for the heat maps.
    example_attributes : ndarray (M, n), optional
        Binary attributes of ``images``; examples are drawn from images with either attribute present.
    test_predictions, test_attributes : ndarray (T, n), optional
        Predicted and true binary attributes on test images: failure modes then show their accuracy
        decrease (paper, Experiment 3).
    autosave_path : str or Path, optional
        Annotation file written (atomically) after every change; loaded at start when it exists (and
        then not rewritten until a label changes, so a read-only file opens). Several annotators may
        share it: when another writer changed the file since this widget read it, its labels are
        merged in (this widget's own changes win) and the log names that writer and any pair both
        labelled differently (see :class:`~failwidgets.methods.relations.AnnotationFile`).
    n_examples : int
        Example images shown for the selected pair.
    auto_advance : bool
        Move to the next pair of the current order after labelling.

    Attributes
    ----------
    annotations : List trait (saved) of [attr_a, attr_b, level] entries, one per labelled pair.
    pair_view : Enum trait (saved), which pairs prev / next and the counter go through:
        ``"all pairs"``, ``"unlabelled"`` or ``"informative first"`` (unlabelled, strongest mined
        relation first); the toggle buttons ``pair_view_buttons`` show it.
    selected_pair : List trait (saved), [i, j] attribute indices with i < j ([j, i] is sorted).
    annotation_path : Unicode trait (saved), the file of the save / load buttons (``path_box``).
    auto_advance : Bool trait, move to the next pair after labelling.
    """

    state_version = 2  # version 1 called pair_view "filter_mode"
    _state_traits = ("annotations", "pair_view", "selected_pair", "annotation_path")  # view before pair
    _heavy_attrs = ("miner", "diagnosis", "graph")
    annotations = traitlets.List()
    selected_pair = traitlets.List([0, 1])
    pair_view = traitlets.Enum(PAIR_VIEWS, default_value=PAIR_VIEWS[0])
    annotation_path = traitlets.Unicode("")
    auto_advance = traitlets.Bool(True)

    def __init__(
        self,
        miner: RelationMiner,
        graph: RelationGraph | None = None,
        images=None,
        gradients=None,
        example_attributes=None,
        test_predictions=None,
        test_attributes=None,
        autosave_path=None,
        n_examples: int = 4,
        auto_advance: bool = True,
        **kwargs: Any,
    ):
        if not isinstance(miner, RelationMiner) or not hasattr(miner, "relations_"):
            raise ValueError("miner: expected a fitted RelationMiner (call fit() or fit_model() first)")
        n_examples = check_positive_int(n_examples, "n_examples")
        if example_attributes is not None:
            n_attr = len(miner.attribute_names_)
            rows = None if images is None else len(images)
            check_array(example_attributes, "example_attributes", ndim=2, shape=(rows, n_attr), finite=False)
        super().__init__(method=miner, **kwargs)
        self.miner = miner
        self.names = list(miner.attribute_names_)
        self.n = len(self.names)
        if graph is None:
            graph = RelationGraph(self.names)
        if graph.attribute_names != self.names:
            raise ValueError(f"graph: expected attribute names {self.names} (the miner's), got {graph.attribute_names}")
        self.graph = graph
        self.levels = list(graph.levels)
        self.marks = _level_marks(self.levels)
        self._undo: list[tuple[tuple[int, int], int | None, int | None]] = []
        self._redo: list[tuple[tuple[int, int], int | None, int | None]] = []
        self.diagnosis = None
        self.auto_advance = auto_advance
        self._images = None if images is None else np.asarray(images)
        self._gradients = None if gradients is None else np.asarray(gradients)
        self._example_attrs = None if example_attributes is None else np.asarray(example_attributes)
        self._test_pred = test_predictions
        self._test_true = test_attributes
        self.n_examples = n_examples
        if self._gradients is not None and self._images is not None and len(self._gradients) != len(self._images):
            raise ValueError(
                f"gradients: expected {len(self._images)} rows (one per image), got {len(self._gradients)}"
            )

        self._files: dict[str, AnnotationFile] = {}
        self._build()
        self.annotation_path = str(autosave_path) if autosave_path is not None else ""
        self.autosave = autosave_path is not None
        existing = False
        if self.autosave and Path(autosave_path).exists():
            self.graph = self._file(autosave_path).read()
            existing = True
        # an existing file is not rewritten just for being opened (it may be read-only)
        self._push_annotations(save=not existing)
        self.observe_guarded(self._on_annotations, names="annotations")
        self.observe_guarded(self._on_selected_pair, names="selected_pair")
        self.observe_guarded(self._on_pair_view, names="pair_view")
        self._refresh_all()

    @classmethod
    def from_model(
        cls,
        miner: RelationMiner,
        model,
        layer: str,
        images,
        example_attributes=None,
        outputs=None,
        n_images: int = 64,
        **kwargs: Any,
    ) -> RelationshipAnnotator:
        """Build the widget and compute the example gradients of the first ``n_images`` images.

        Parameters
        ----------
        miner : fitted RelationMiner (on ``layer`` of ``model``)
        model, layer, outputs : as in :meth:`RelationMiner.fit_model`
        images : uint8 ndarray (M, H, W, 3) or Tensor (M, 3, H, W) in [0, 1]
        example_attributes : ndarray (M, n), optional
        """
        from failwidgets.compute import as_image_tensor, output_gradients

        x = as_image_tensor(images)[:n_images]
        _, grads = output_gradients(model, x, layer, outputs=outputs, progress=False)
        shown = to_uint8_images(x)
        ea = None if example_attributes is None else np.asarray(example_attributes)[:n_images]
        return cls(miner, images=shown, gradients=grads.numpy(), example_attributes=ea, **kwargs)

    @classmethod
    def from_demo(
        cls,
        demo: Any = None,
        *,
        variant: str = "default",
        small: bool | None = None,
        layer: str | None = None,
        n_images: int | None = None,
        mask_images: int | None = None,
        graph: RelationGraph | str | None = "truth",
        n_example_images: int | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> RelationshipAnnotator:
        """The annotator on the demo world: the demo target's attribute head mined at one conv layer.

        Mines the relations of the shipped target's 20 attribute outputs on the first ``n_images``
        training images with the paper's defaults (positive-Lasso masks, 41-bin Q, 0.2 thresholds),
        through the demo's :class:`~failwidgets.compute.EmbeddingCache` (key: the target's fingerprint,
        the world's fingerprint, the layer, the image count and the mask parameters), so a second call
        computes no gradient. The ground-truth graph is the world's true relations
        (``world.attribute_relations()``): the planted pairs, e.g. ``striped`` / ``large`` (always together
        in the default world's training split), are labelled "not related" as the world says. Failure
        modes show their accuracy decrease on the test split.

        Why ``conv3`` and not the paper's first conv layer by default: ``conv4`` is useless here (the
        attribute head is linear on its global average, so dY_i/dx is the same for every image and every
        r_ij is a constant); ``conv3`` is the deepest layer with image-dependent patterns, and ``conv1``
        (16 x 32 x 32) costs about 3x more (the backward of the whole network 20 times per image).
        Pass ``layer="conv1"`` for the
        paper's setting.

        Parameters
        ----------
        demo : failwidgets.demo.Demo, optional
            Default: ``failwidgets.demo.load(variant)``.
        variant : ``"default"`` (texture -> size planted at tau 1) or ``"control"`` (tau 0); ignored
            when ``demo`` is given.
        small : bool, optional
            Fewer images so a notebook runs fast in CI. Default: True when the environment variable
            ``FAILWIDGETS_NOTEBOOK_TEST`` is set.
        layer : str, optional
            Conv layer of the target (``"conv1"`` .. ``"conv4"``; default ``"conv3"``, see above).
        n_images : int, optional
            Training images the relations are mined on (default 1000, small: 400).
        mask_images : int, optional
            Images the masks rho_i are selected on (default 256, small: 200).
        graph : ``"truth"``, None or RelationGraph
            Labels to start from: the world's true relations (default), none, or your own graph.
        n_example_images : int, optional
            Training images whose gradients are kept for the heat maps (default 64, small: 24).
        progress : bool
            Progress bars while mining.
        **kwargs
            Passed to the constructor (``autosave_path``, ``n_examples``, ``auto_advance`` ...).

        Returns
        -------
        RelationshipAnnotator, with ``.demo`` set.
        """
        from failwidgets.demo.loading import resolve
        from failwidgets.demo.recipes import build_widget, relations

        demo, small = resolve(demo, variant, small, progress)
        return build_widget(
            cls.from_model,
            relations.widget_inputs(
                demo,
                small=small,
                layer=layer,
                n_images=n_images,
                mask_images=mask_images,
                graph=graph,
                n_example_images=n_example_images,
                progress=progress,
            ),
            **kwargs,
        )

    # -- building ------------------------------------------------------------------------------------
    def _build(self) -> None:
        n = self.n
        self.header = W.HTML("<b>Attribute relations</b> (Zhang et al. 2018): mined mean r<sub>ij</sub>")
        self.counter = W.HTML("")
        self.pair_view_buttons = W.ToggleButtons(
            options=list(PAIR_VIEWS),
            style={"button_width": "auto"},
            tooltips=["every pair", "pairs without a label", "unlabelled pairs, strongest mined relation first"],
        )
        self.link("pair_view", self.pair_view_buttons)

        # matrix of mined mean relations (shared MatrixHeatmap part) with the labelled levels marked
        self.matrix_chart = MatrixHeatmap(diverging=True, title="mined mean relation E r_ij")
        self.matrix_chart.set_matrix(self.miner.means_.astype(float), self.names, self.names, vmax=1.0)
        self.matrix = self.matrix_chart.grid
        self.cell_marks = bq.Label(
            x=[],
            y=[],
            text=[],
            colors=["black"],
            align="middle",
            default_size=12,
            scales={"x": self.matrix_chart.col_scale, "y": self.matrix_chart.row_scale},
        )
        self.matrix_chart.figure.marks = [*self.matrix_chart.figure.marks, self.cell_marks]
        self.observe_guarded(self._on_matrix_select, names="selected_cell", widget=self.matrix_chart)
        self.legend = W.HTML("marks: " + ", ".join(f"{_esc(m)} {_esc(lv)}" for m, lv in zip(self.marks, self.levels)))

        # navigation, labelling
        self.prev_button = W.Button(description="◀ prev", layout=W.Layout(width="auto"))
        self.next_button = W.Button(description="next ▶", layout=W.Layout(width="auto"))
        self.on_click_guarded(self.prev_button, lambda _b: self.move(-1))
        self.on_click_guarded(self.next_button, lambda _b: self.move(+1))
        self.pair_label = W.HTML("")
        self.level_buttons = []
        for k, level in enumerate(self.levels):
            b = W.Button(description=f"{k + 1}: {level}", layout=W.Layout(width="auto"), tooltip=f"hotkey {k + 1}")
            self.on_click_guarded(b, lambda _b, k=k: self.label_selected(k))
            self.level_buttons.append(b)
        self.clear_button = W.Button(description="0: clear", layout=W.Layout(width="auto"))
        self.undo_button = W.Button(description="undo (u)", icon="undo", layout=W.Layout(width="auto"))
        self.redo_button = W.Button(description="redo (r)", icon="repeat", layout=W.Layout(width="auto"))
        self.on_click_guarded(self.clear_button, lambda _b: self.label_selected(None))
        self.on_click_guarded(self.undo_button, lambda _b: self.undo())
        self.on_click_guarded(self.redo_button, lambda _b: self.redo())
        self.hotkeys = W.Text(
            value="",
            placeholder=f"keys: 1-{len(self.levels)} label, 0 clear, u/r undo/redo, n/p",
            description="hotkeys",
            continuous_update=True,
            layout=W.Layout(width="360px"),
        )
        self.observe_guarded(self._on_hotkeys, names="value", widget=self.hotkeys)
        self.key_bindings = KeyBindings(self._key_table(), log=self.log)
        self.key_hint = W.HTML(
            f"<i>keys (mouse over the widget): 1-{len(self.levels)} label, 0 clear, "
            "u or Ctrl+Z undo, r or Ctrl+Shift+Z redo, ← → or n p previous / next pair</i>"
        )

        # selected pair: histogram + Gaussian
        bins = self.miner.histograms_.shape[-1]
        self._centres = -1.0 + (np.arange(bins) + 0.5) * (2.0 / bins)
        hx, hy = bq.LinearScale(min=-1, max=1), bq.LinearScale(min=0)
        self.hist_bars = bq.Bars(
            x=self._centres, y=np.zeros(bins), scales={"x": hx, "y": hy}, colors=["#90a4ae"], padding=0.05
        )
        self.gauss_line = bq.Lines(
            x=np.linspace(-1, 1, 201), y=np.zeros(201), scales={"x": hx, "y": hy}, colors=["#d32f2f"], stroke_width=2
        )
        self.hist_fig = bq.Figure(
            marks=[self.hist_bars, self.gauss_line],
            axes=[bq.Axis(scale=hx, label="r_ij"), bq.Axis(scale=hy, side="left", label="images")],
            layout=W.Layout(width="420px", height="260px"),
            title="",
            fig_margin={"top": 30, "bottom": 40, "left": 50, "right": 10},
        )
        self.pair_info = W.HTML("")
        self.examples = ImageGrid(columns=4, thumb_size=112, multiple=False, signed_overlays=True)

        # per attribute KL (shared BarChart part), lists
        self.kl_chart = BarChart(self.names, np.zeros(n), title="KL per attribute", y_label="KL_i")
        self.blind_list = W.HTML("")
        self.failure_list = W.HTML("")

        # files
        self.path_box = W.Text(
            value="",
            description="file",
            placeholder="annotations.json",
            continuous_update=False,
            layout=W.Layout(width="360px"),
        )
        self.link("annotation_path", self.path_box)
        self.save_button = W.Button(description="save", icon="save", layout=W.Layout(width="auto"))
        self.load_button = W.Button(description="load", icon="folder-open", layout=W.Layout(width="auto"))
        self.on_click_guarded(self.save_button, lambda _b: self.save())
        self.on_click_guarded(self.load_button, lambda _b: self.load())

        left = W.VBox([self.matrix_chart, self.legend])
        right = W.VBox([self.pair_label, self.hist_fig, self.pair_info])
        # everything but the file box listens to the keys (a key typed into a text box would act)
        self.key_area = W.VBox(
            [
                self.header,
                W.HBox([self.counter, self.pair_view_buttons]),
                W.HBox([left, right]),
                W.HBox(
                    [
                        self.prev_button,
                        self.next_button,
                        *self.level_buttons,
                        self.clear_button,
                        self.undo_button,
                        self.redo_button,
                    ]
                ),
                self.key_hint,
                self.hotkeys,
                self.examples,
                W.HBox([self.kl_chart, W.VBox([self.blind_list, self.failure_list])]),
            ]
        )
        self.key_events = self.key_bindings.attach(self.key_area)
        # the text box is the fallback where key events are not available
        (self.hotkeys if self.key_events is not None else self.key_hint).layout.display = "none"
        self.children = [
            self.key_area,
            W.HBox([self.path_box, self.save_button, self.load_button]),
            self.log,
        ]

    # -- pairs and order -----------------------------------------------------------------------------
    def pair_order(self) -> list[tuple[int, int]]:
        """Pairs (i < j) of the current ``pair_view``, in its order."""
        pairs = [(i, j) for i in range(self.n) for j in range(i + 1, self.n)]
        labelled = self.graph.level_matrix()
        if self.pair_view == "unlabelled":
            return [p for p in pairs if labelled[p] < 0]
        if self.pair_view == "informative first":
            strength = np.nan_to_num(np.abs(self.miner.means_), nan=-1.0)
            unl = [p for p in pairs if labelled[p] < 0]
            return sorted(unl, key=lambda p: -strength[p])
        return pairs

    def move(self, step: int) -> None:
        """Select the next (+1) or previous (-1) pair in the current order (wrapping around)."""
        order = self.pair_order()
        if not order:
            self.log.info("no pair in this view")
            return
        cur = tuple(self.selected_pair)
        k = order.index(cur) + step if cur in order else (0 if step > 0 else len(order) - 1)
        self.selected_pair = list(order[k % len(order)])

    # -- labelling -----------------------------------------------------------------------------------
    def label_selected(self, level: int | str | None) -> None:
        """Label the selected pair with ``level`` (index or name), or clear it with None."""
        i, j = self.selected_pair
        new = None if level is None else self._level_number(level)
        old = self.graph.level_matrix()[i, j]
        old = None if old < 0 else int(old)
        if new == old:
            return
        self._apply((i, j), new)
        self._undo.append(((i, j), old, new))
        self._redo.clear()
        if new is not None and self.auto_advance:
            self.move(+1)

    def _apply(self, pair, level) -> None:
        if level is None:
            self.graph.clear(*pair)
        else:
            self.graph.set(pair[0], pair[1], level)
        self._push_annotations()

    def undo(self) -> None:
        if not self._undo:
            self.log.info("nothing to undo")
            return
        pair, old, new = self._undo.pop()
        self._apply(pair, old)
        self._redo.append((pair, old, new))
        self.selected_pair = list(pair)

    def redo(self) -> None:
        if not self._redo:
            self.log.info("nothing to redo")
            return
        pair, old, new = self._redo.pop()
        self._apply(pair, new)
        self._undo.append((pair, old, new))
        self.selected_pair = list(pair)

    def _key_table(self) -> dict:
        """Key -> action (``self.key_bindings``): the same table serves key events and the text box."""
        table = {str(k + 1): (lambda k=k: self.label_selected(k)) for k in range(min(len(self.levels), 9))}
        table["0"] = lambda: self.label_selected(None)
        for key in ("u", "ctrl+z"):
            table[key] = self.undo
        for key in ("r", "ctrl+shift+z", "ctrl+y"):
            table[key] = self.redo
        for key in ("n", "arrowright", "arrowdown"):
            table[key] = lambda: self.move(+1)
        for key in ("p", "arrowleft", "arrowup"):
            table[key] = lambda: self.move(-1)
        return table

    def _on_hotkeys(self, change) -> None:
        text = change["new"]
        if not text:
            return
        self.hotkeys.value = ""
        for ch in text:
            if ch.isdigit() and int(ch) > len(self.levels):
                self.log.warning(f"hotkey {ch!r}: no level {ch} (levels 1-{len(self.levels)})")
            elif not ch.isspace() and not self.key_bindings.press(ch.lower()):
                self.log.warning(f"hotkey {ch!r}: unknown; use 0-{len(self.levels)}, u, r, n, p")

    # -- state sync ----------------------------------------------------------------------------------
    def _level_number(self, level: int | str) -> int:
        """Index of ``level`` (an index or a level name) in ``self.levels``."""
        if isinstance(level, (int, np.integer)) and not isinstance(level, bool):
            if not 0 <= level < len(self.levels):
                raise ValueError(f"level: expected an index in [0, {len(self.levels)}), got {level}")
            return int(level)
        if level not in self.levels:
            raise ValueError(f"level: unknown level {level!r}; expected one of {self.levels}")
        return self.levels.index(level)

    def _set_annotations_trait(self) -> None:
        with self.quietly():
            self.annotations = [[self.names[i], self.names[j], self.levels[lv]] for i, j, lv in self.graph.edges()]

    def _push_annotations(self, save: bool = True) -> None:
        """graph -> ``annotations`` trait (and autosave)."""
        self._set_annotations_trait()
        try:
            if save and self.autosave and self.annotation_path:
                self._write(self.annotation_path)
        finally:
            self._refresh_all()

    def _file(self, path) -> AnnotationFile:
        """The :class:`AnnotationFile` this widget uses for ``path`` (one per file, remembering its version)."""
        key = str(Path(path).expanduser().resolve())
        if key not in self._files:
            self._files[key] = AnnotationFile(
                path, self.names, self.levels, writer=writer_name(f"RelationshipAnnotator {id(self):x}")
            )
        return self._files[key]

    def _write(self, path) -> Path:
        """Write the graph to ``path``; another writer's changes since our last read are merged in."""
        report = self._file(path).write(self.graph)
        if report.merged:
            self.graph = report.graph
            self._set_annotations_trait()
            msg = f"{path} was changed by {report.other_writer}: merged ({report.added} of their labels kept)"
            if report.conflicts:
                pairs = ", ".join(f"({a}, {b}): theirs {t!r}, yours {o!r}" for a, b, t, o in report.conflicts[:5])
                self.log.warning(f"{msg}; {len(report.conflicts)} pair(s) labelled differently, yours kept: {pairs}")
            else:
                self.log.info(msg)
        return Path(path)

    def _graph_from(self, entries) -> RelationGraph:
        """A RelationGraph of ``annotations`` entries; ValueError naming the bad entry otherwise."""
        graph = RelationGraph(self.names, self.levels, self.graph.annotator)
        for entry in entries:
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise ValueError(f"annotations: expected [attr_a, attr_b, level] entries, got {entry!r}")
            a, b, level = entry
            try:
                old = graph.get(a, b)
                graph.set(a, b, level)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"annotations: entry {entry!r}: {exc}") from None
            if old not in (None, level):
                raise ValueError(f"annotations: pair ({a!r}, {b!r}) is labelled twice with different levels")
        return graph

    @traitlets.validate("annotations")
    def _valid_annotations(self, proposal):
        if not self.quietly:  # the widget's own copy of its graph is valid
            try:
                self._graph_from(proposal["value"])
            except ValueError as exc:
                reject(self, str(exc))
        return proposal["value"]

    def _on_annotations(self, change) -> None:
        if self.quietly:
            return
        self.graph = self._graph_from(change["new"])
        self._undo.clear()
        self._redo.clear()
        self._push_annotations()

    @traitlets.validate("selected_pair")
    def _valid_selected_pair(self, proposal):
        pair = list(proposal["value"])
        ok = len(pair) == 2 and all(isinstance(p, (int, np.integer)) and 0 <= p < self.n for p in pair)
        if not ok or pair[0] == pair[1]:
            reject(self, f"selected_pair: expected two different attribute indices in [0, {self.n}), got {pair}")
        return sorted(int(p) for p in pair)

    def _on_selected_pair(self, change) -> None:
        self._refresh_pair()

    def _on_pair_view(self, change) -> None:
        order = self.pair_order()
        if order and (change["new"] != "all pairs" or tuple(self.selected_pair) not in order):
            self.selected_pair = list(order[0])  # a filtered / sorted view starts at its first pair
        self._refresh_counter()

    def _on_matrix_select(self, change) -> None:
        cell = change["new"]
        if cell is None:
            return
        i, j = (int(v) for v in cell)
        if i == j:
            self.log.info(f"{self.names[i]!r} with itself has no relation to label")
            return
        self.selected_pair = sorted([i, j])

    # -- files ---------------------------------------------------------------------------------------
    def save(self, path=None) -> Path:
        """Write the annotation file (atomically)."""
        path = path or self.annotation_path
        if not path:
            raise ValueError("annotation_path: expected a file name to save to (type one in the 'file' box)")
        out = self._write(path)
        self._refresh_all()
        self.log.info(f"saved {len(self.graph)} labels to {out}")
        return out

    def load(self, path=None) -> None:
        """Load an annotation file (names checked against the miner's; partial graphs are fine)."""
        path = path or self.annotation_path
        if not path:
            raise ValueError("annotation_path: expected a file name to load from (type one in the 'file' box)")
        graph = self._file(path).read()
        if graph is None:
            raise FileNotFoundError(f"annotation_path: expected an existing annotation file, {path} does not exist")
        self.graph = graph
        self._undo.clear()
        self._redo.clear()
        self._push_annotations()
        self.log.info(f"loaded {len(graph)} labels from {path}")

    # -- rendering -----------------------------------------------------------------------------------
    def _refresh_all(self) -> None:
        if not hasattr(self, "matrix"):
            return
        self._rediagnose()
        self._refresh_counter()
        self._refresh_matrix()
        self._refresh_lists()
        self._refresh_pair()

    def _rediagnose(self) -> None:
        if len(self.graph) == 0:
            self.diagnosis = None
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.diagnosis = self.miner.diagnose(self.graph)
        for w in caught:
            self.log.warning(str(w.message))

    def _refresh_counter(self) -> None:
        self.counter.value = (
            f"<b>{len(self.graph)} of {self.graph.n_pairs} labelled</b> ({len(self.pair_order())} pairs in this view)"
        )

    def _refresh_matrix(self) -> None:
        edges = self.graph.edges()
        xs, ys, text = [], [], []
        for i, j, lv in edges:
            for r, c in ((i, j), (j, i)):
                ys.append(r)
                xs.append(c)
                text.append(self.marks[lv])
        with self.cell_marks.hold_sync():
            self.cell_marks.x = [self.names[c] for c in xs]
            self.cell_marks.y = [self.names[r] for r in ys]
            self.cell_marks.text = text
        kl = np.zeros(self.n)
        if self.diagnosis is not None:
            kl = np.nan_to_num(self.diagnosis.attribute_kl.to_numpy(dtype=float))
        self.kl_chart.set_data(self.names, kl)

    def _modes_table(self):
        diag = self.diagnosis
        if diag is None:
            return None, None
        fm = diag.failure_modes
        if len(fm) and self._test_pred is not None and self._test_true is not None:
            fm = evaluate_modes(fm, self._test_pred, self._test_true)
        return diag.blind_spots, fm

    def _refresh_lists(self) -> None:
        blind, fm = self._modes_table()
        if blind is None:
            self.blind_list.value = "<b>Blind spots</b>: label some pairs first"
            self.failure_list.value = "<b>Failure modes</b>: label some pairs first"
            return
        rows = "".join(
            f"<li>{_esc(r.attr_i)} – {_esc(r.attr_j)}: E r = {r['mean']:+.2f}, expected "
            f"{r.mu_level:+.2f} ({_esc(r.level)}), KL {r.kl:.2f}</li>"
            for _, r in blind.iterrows()
        )
        self.blind_list.value = f"<b>Blind spots ({len(blind)})</b><ul>{rows}</ul>"
        items = []
        for _, r in fm.iterrows():
            cell = f"({_esc(r.attr_i)} {'+' if r.a > 0 else '−'}, {_esc(r.attr_j)} {'+' if r.b > 0 else '−'})"
            drop = ""
            if "decrease" in fm:
                drop = (
                    f", accuracy decrease {100 * r.decrease:.1f} points on {r.n_mode} test images"
                    if np.isfinite(r.decrease)
                    else ", no test image in this mode"
                )
            items.append(
                f"<li>{cell}: E r = {r['mean']:+.2f} vs {r.mu_level:+.2f} ({_esc(r.level)}), KL {r.kl:.2f}{drop}</li>"
            )
        self.failure_list.value = f"<b>Failure modes ({len(fm)})</b><ul>{''.join(items)}</ul>"

    def _refresh_pair(self) -> None:
        if not hasattr(self, "hist_bars"):
            return
        i, j = self.selected_pair
        lv = self.graph.level_matrix()[i, j]
        level = self.levels[lv] if lv >= 0 else "unlabelled"
        self.pair_label.value = f"<b>{_esc(self.names[i])}</b> – <b>{_esc(self.names[j])}</b>: {_esc(level)}"
        counts = self.miner.histograms_[i, j]
        self.hist_bars.y = counts
        self.hist_fig.title = f"r_ij over {int(counts.sum())} images with either attribute"
        info = [f"mean {self.miner.means_[i, j]:+.3f}, spread {self.miner.spreads_[i, j]:.3f}"]
        gx = self.gauss_line.x
        gy = np.zeros_like(gx)
        row = self._diag_row(i, j)
        if row is not None and np.isfinite(row.mu_level):
            width = 2.0 / len(counts)
            gy = gaussian_density(gx, row.mu_level, row.sigma_level) * counts.sum() * width
            info.append(
                f"level {_esc(row.level)}: N({row.mu_level:+.3f}, {row.sigma_level:.3f}²); KL(P‖Q) = {row.kl:.3f}"
            )
            if row.kind:
                info.append(f"<b style='color:#b00020'>{_esc(row.kind)}</b>")
        self.gauss_line.y = gy
        self.pair_info.value = "<br>".join(info)
        if self.matrix_chart.selected_cell != (i, j):
            self.matrix_chart.selected_cell = (i, j)
        self._refresh_examples(i, j)

    def _diag_row(self, i, j):
        if self.diagnosis is None:
            return None
        p = self.diagnosis.pairs
        hit = p[(p.i == i) & (p.j == j)]
        return None if hit.empty else hit.iloc[0]

    def example_indices(self, i: int, j: int) -> np.ndarray:
        """Indices of the example images for pair (i, j): images with either attribute present."""
        if self._images is None:
            return np.zeros(0, dtype=int)
        m = len(self._images)
        if self._example_attrs is not None:
            ea = self._example_attrs > 0
            cand = np.flatnonzero(ea[:, i] | ea[:, j])
        else:
            cand = np.arange(m)
        cand = cand[self.selection_keep(cand)]
        return cand[: self.n_examples]

    def _refresh_examples(self, i: int, j: int) -> None:
        idx = self.example_indices(i, j)
        if idx.size == 0 or self._gradients is None:
            self.examples.set_images([], captions=[])
            return
        patterns = self.miner.inference_patterns(self._gradients[idx])  # (K, n, *S)
        if patterns.ndim != 5:
            self.log.warning("heat maps need a conv layer with (C, H, W) outputs")
            self.examples.set_images([], captions=[])
            return
        images, captions, overlays = [], [], []
        for k, img in zip(range(len(idx)), self._images[idx]):
            for a in (i, j):
                images.append(img)
                overlays.append(inference_map(patterns[k, a]))
                captions.append(f"#{int(idx[k])}: {_esc(self.names[a])}")
        self.examples.set_images(images, captions=captions, overlays=overlays)
