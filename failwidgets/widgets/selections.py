"""The selection hooks of the four method widgets (see :mod:`failwidgets.widgets.parts.selection`).

Each mixin says what the widget's rows are, what it publishes as its ``selection`` and how it limits its
examples to a selection assigned from outside:

- ``TreeSelection`` (TreeBrowser): the samples of the clicked node (a Barlow leaf); score ``leaf``.
- ``DirectionSelection`` (DirectionSlider): the flagged set of the class and mode (decision value < 0);
  score ``decision_value``.
- ``FilterSelection`` (FilterWordExplorer): the qualified images of the opened filter (max activation
  > T_u); score ``activation``.
- ``RelationSelection`` (RelationshipAnnotator): the example images with both attributes of the
  selected pair present (the relation cell); score ``both_present``.
"""

from __future__ import annotations

import numpy as np
import traitlets

from failwidgets.widgets.parts.selection import SelectionMixin

__all__ = ["TreeSelection", "DirectionSelection", "FilterSelection", "RelationSelection"]


def _keep(indices, selection_filter) -> np.ndarray:
    """bool mask over ``indices``: inside the selection filter (all True without one)."""
    idx = np.asarray(indices, dtype=np.int64)
    if selection_filter is None:
        return np.ones(idx.shape, bool)
    return np.isin(idx, selection_filter)


class TreeSelection(SelectionMixin):
    score_name = "leaf"

    def _selection_size(self):
        return len(self.labels) if getattr(self, "labels", None) is not None else None

    def _selection_columns(self):
        leaf = np.full(len(self.labels), -1, dtype=np.int64)
        r = getattr(self, "result", None)
        if r is not None and len(r.fit_indices):
            leaf[r.fit_indices] = r.tree.apply(self.features[r.fit_indices])
        return {"label": self.labels, "prediction": self.preds, "error": self.failed, "leaf": leaf}

    def node_members(self, node: int) -> np.ndarray:
        """Rows (into the widget's arrays) of the fit group's samples in ``node`` (all of them)."""
        r = self.result
        if r is None or node < 0 or node >= len(r.fit.nodes):
            return np.zeros(0, np.int64)
        member = r.tree.node_membership(self.features[r.fit_indices])[:, node]
        return r.fit_indices[member].astype(np.int64)

    def refresh_selection(self):
        if getattr(self, "result", None) is not None:
            self._publish_node({"new": self.selected_node})

    @traitlets.observe("selected_node")
    def _publish_node(self, change):
        if getattr(self, "result", None) is None and change["new"] >= 0:
            return
        self._publish_selection(self.node_members(change["new"]) if change["new"] >= 0 else [])

    def _apply_selection(self, indices):
        if getattr(self, "result", None) is not None and self.selected_node >= 0:
            self._show_samples(self.selected_node)


class DirectionSelection(SelectionMixin):
    score_name = "decision_value"

    def _selection_size(self):
        return len(self.labels) if getattr(self, "labels", None) is not None else None

    def _selection_columns(self):
        d = np.full(len(self.labels), np.nan, dtype=np.float32)
        c, m = self.class_index, self.mode
        if self.method.modes_[c] and m < len(self.method.modes_[c]):
            rows = np.flatnonzero(self.labels == c)
            d[rows] = self.method.decision_function(self.embeddings[rows], self.labels[rows], mode=m)
        cols = {"label": self.labels, "error": self.failed, "decision_value": d}
        if getattr(self, "preds", None) is not None:
            cols["prediction"] = self.preds
        return cols

    def refresh_selection(self):
        self._publish_flagged({})

    @traitlets.observe("class_index", "mode")
    def _publish_flagged(self, change):
        if getattr(self, "labels", None) is None or not hasattr(self, "hard_grid"):
            return
        modes = self.method.modes_[self.class_index] if 0 <= self.class_index < self.method.n_classes_ else None
        if modes is None or (modes and self.mode >= len(modes)):
            return  # the mode is reset next; publish then
        self._publish_selection(self.flagged()["index"].to_numpy())
        self._refresh_caption_evidence()

    def within_selection(self, class_index: int, mode: int, hard, hard_d, easy, easy_d):
        """The hardest / easiest images, limited to a selection assigned from outside (if any)."""
        if self.selection_filter is None or not self._has_direction():
            return hard, hard_d, easy, easy_d
        rows = np.flatnonzero(self.labels == class_index)
        rows = rows[_keep(rows, self.selection_filter)]
        if rows.size == 0:
            empty = np.zeros(0, np.int64)
            return empty, np.zeros(0, np.float32), empty, np.zeros(0, np.float32)
        d = self.method.decision_function(self.embeddings[rows], self.labels[rows], mode=mode)
        order = np.argsort(d, kind="stable")
        h, e = order[: self.n_images], order[::-1][: self.n_images]
        return rows[h], d[h], rows[e], d[e]

    def _apply_selection(self, indices):
        if hasattr(self, "hard_grid"):
            self._render_mode()

    # -- hypotheses on held-out data ------------------------------------------------------------------
    def set_hypothesis_data(
        self, encoder, embeddings, labels, preds, *, top_fraction: float = 0.2, caption_evidence: bool = True
    ) -> None:
        """Held-out data for the hypothesis box and the evidence of each failure caption.

        Parameters
        ----------
        encoder : vision-language encoder with ``encode_texts`` (the text side of the embedding space).
        embeddings : ndarray (M, D), held-out image embeddings (not the data the directions were fit on).
        labels, preds : int ndarray (M,)
        top_fraction : float, share of the class's images most similar to a phrase that forms its slice.
        caption_evidence : bool, also show the table of each failure caption's top-fraction slice
            (``caption_hypotheses``); off where the slider already shows ``caption_evidence`` under its
            captions (``caption_embedder`` + ``heldout``).
        """
        import ipywidgets as W

        from failwidgets._validation import check_array, check_labels, check_same_length

        emb = check_array(embeddings, "embeddings", ndim=2, dtype="float")
        lab, pr = check_labels(labels, "labels"), check_labels(preds, "preds")
        check_same_length(embeddings=emb, labels=lab, preds=pr)
        self._hypothesis_data = (encoder, emb, lab, pr, float(top_fraction))
        self._show_caption_hypotheses = bool(caption_evidence)
        if not hasattr(self, "hypothesis_box"):
            self.hypothesis_box = W.Text(
                placeholder="hypothesis, e.g. on snow",
                description="hypothesis",
                continuous_update=False,
                layout=W.Layout(width="360px"),
            )
            self.hypothesis_html = W.HTML("")
            self.caption_evidence_html = W.HTML("")
            kids = list(self.children)
            at = kids.index(self.log) if self.log in kids else len(kids)
            self.children = (
                kids[:at] + [self.caption_evidence_html, self.hypothesis_box, self.hypothesis_html] + kids[at:]
            )
            self.observe_guarded(
                lambda ch: self.test_phrase(ch["new"]) if ch["new"].strip() else None,
                names="value",
                widget=self.hypothesis_box,
            )
        self._refresh_caption_evidence()

    def test_phrase(self, phrase: str):
        """Test ``phrase`` for the current class on the held-out data; shows and returns the result."""
        from failwidgets.methods.hypotheses import test_hypothesis
        from failwidgets.widgets.failure_map import hypothesis_html

        if getattr(self, "_hypothesis_data", None) is None:
            raise ValueError(
                "phrase: no held-out data to test on; call set_hypothesis_data(encoder, embeddings, "
                "labels, preds) first"
            )
        enc, emb, lab, pr, frac = self._hypothesis_data
        res = test_hypothesis(phrase, enc, emb, lab, pr, self.class_index, top_fraction=frac)
        self.hypothesis_html.value = hypothesis_html(res, self.class_names)
        self.last_hypothesis = res
        return res

    test_phrase.__test__ = False

    def caption_hypotheses(self):
        """Held-out evidence of each failure caption of the current class and mode.

        Returns
        -------
        DataFrame with ``caption``, ``score``, ``n_matching``, ``error_inside``, ``ci_inside``,
        ``error_outside``, ``ci_outside``, ``p_value`` (empty without captions or held-out data).
        """
        import pandas as pd

        from failwidgets.methods.hypotheses import test_hypothesis

        cols = ["caption", "score", "n_matching", "error_inside", "ci_inside", "error_outside", "ci_outside", "p_value"]
        data = getattr(self, "_hypothesis_data", None)
        if data is None or self.captions is None or not self._has_direction():
            return pd.DataFrame(columns=cols)
        enc, emb, lab, pr, frac = data
        if not np.any(lab == self.class_index):
            return pd.DataFrame(columns=cols)
        rows = []
        for caption, score in self.captions(self.class_index, self.mode)["failure"]:
            ev = test_hypothesis(caption, enc, emb, lab, pr, self.class_index, top_fraction=frac)
            e = ev.evidence
            rows.append(
                [
                    caption,
                    float(score),
                    ev.n_matching,
                    e.rate_inside,
                    e.ci_inside,
                    e.rate_outside,
                    e.ci_outside,
                    e.p_value,
                ]
            )
        return pd.DataFrame(rows, columns=cols)

    def _refresh_caption_evidence(self) -> None:
        import html

        if not hasattr(self, "caption_evidence_html"):
            return
        if not getattr(self, "_show_caption_hypotheses", True):
            self.caption_evidence_html.value = ""
            return
        df = self.caption_hypotheses()
        if df.empty:
            self.caption_evidence_html.value = ""
            return
        body = "".join(
            f"<tr><td>{html.escape(r.caption)}</td><td>{r.n_matching}</td>"
            f"<td>{100 * r.error_inside:.0f}% [{100 * r.ci_inside[0]:.0f}, {100 * r.ci_inside[1]:.0f}]</td>"
            f"<td>{100 * r.error_outside:.0f}% [{100 * r.ci_outside[0]:.0f}, {100 * r.ci_outside[1]:.0f}]</td>"
            f"<td>{r.p_value:.2g}</td></tr>"
            for r in df.itertuples()
        )
        self.caption_evidence_html.value = (
            "<b>failure captions on held-out data</b> (top "
            f"{100 * self._hypothesis_data[4]:.0f}% most similar images of the class)"
            "<table><tr><th>caption</th><th>match</th><th>error inside</th><th>error outside</th><th>p</th></tr>"
            f"{body}</table>"
        )


class FilterSelection(SelectionMixin):
    score_name = "activation"

    def _selection_size(self):
        ex = self._current_or_none()
        return None if ex is None else int(ex.max_activations.shape[0])

    def _current_or_none(self):
        try:
            return self.explanations[self.layer] if self.layer else next(iter(self.explanations.values()))
        except (AttributeError, KeyError, StopIteration):
            return None

    def _selection_columns(self):
        ex = self._current_or_none()
        if ex is None:
            return {}
        u = self.selected_filter
        act = (
            np.full(ex.max_activations.shape[0], np.nan, np.float32)
            if u is None
            else np.asarray(ex.max_activations[:, int(u)], np.float32)
        )
        return {"activation": act}

    def qualified(self, u: int | None = None) -> np.ndarray:
        """Images whose max activation of filter ``u`` (default: the opened one) exceeds its T_u."""
        ex = self.current
        u = self.selected_filter if u is None else int(u)
        if u is None:
            return np.zeros(0, np.int64)
        return np.flatnonzero(ex.max_activations[:, int(u)] > ex.thresholds[int(u)]).astype(np.int64)

    def refresh_selection(self):
        self._publish_filter({"new": self.selected_filter})

    @traitlets.observe("selected_filter")
    def _publish_filter(self, change):
        if not hasattr(self, "grid"):
            return
        u = change["new"]
        valid = u is None or u in set(int(f) for f in self.current.filters)
        if valid:
            self._publish_selection(self.qualified(u) if u is not None else [])

    def selection_keep(self, indices) -> np.ndarray:
        """bool mask over ``indices``: inside a selection assigned from outside (all True without one)."""
        return _keep(indices, self.selection_filter)

    def _apply_selection(self, indices):
        if hasattr(self, "grid"):
            self._show_filter(self.selected_filter)


class RelationSelection(SelectionMixin):
    score_name = "both_present"

    def _selection_size(self):
        imgs = getattr(self, "_images", None)
        attrs = getattr(self, "_example_attrs", None)
        if attrs is not None:
            return len(attrs)
        return None if imgs is None else len(imgs)

    def _selection_columns(self):
        attrs = getattr(self, "_example_attrs", None)
        if attrs is None:
            return {}
        i, j = self.selected_pair
        ea = np.asarray(attrs) > 0
        return {"both_present": ea[:, i] & ea[:, j]}

    def relation_cell(self, i: int | None = None, j: int | None = None) -> np.ndarray:
        """Example images with both attributes of the pair (default: the selected one) present."""
        attrs = getattr(self, "_example_attrs", None)
        if attrs is None:
            return np.zeros(0, np.int64)
        if i is None or j is None:
            i, j = self.selected_pair
        ea = np.asarray(attrs) > 0
        return np.flatnonzero(ea[:, i] & ea[:, j]).astype(np.int64)

    def refresh_selection(self):
        self._publish_pair({"new": list(self.selected_pair)})

    @traitlets.observe("selected_pair")
    def _publish_pair(self, change):
        pair = change["new"]
        if not hasattr(self, "examples") or len(pair) != 2 or pair != sorted(pair):
            return
        self._publish_selection(self.relation_cell(*pair))

    def selection_keep(self, indices) -> np.ndarray:
        """bool mask over ``indices``: inside a selection assigned from outside (all True without one)."""
        return _keep(indices, self.selection_filter)

    def _apply_selection(self, indices):
        if hasattr(self, "examples"):
            self._refresh_examples(*self.selected_pair)
