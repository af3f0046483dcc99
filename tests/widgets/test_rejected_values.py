"""A trait value a widget rejects must not stay in the trait (nor reach ``to_dict`` / a saved state).

Each row sets a trait from Python to an invalid value, as ``from_dict`` or a linked control would, and
checks that (1) an error names the trait and (2) the trait, its control and ``to_dict()`` still hold the
previous value. The rows are the probe's table of rejected values (its TreeBrowser trait cases 194, 195,
197 and 199 among them).

The last column records what the probe found (the value stayed after the error: 21 of 26 rows). The
traits now validate before they change (typed traits and ``@validate``), so every row must pass.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import traitlets

from tests.test_reliability import CTX, _annotator, _tree


def _slider(tmp_path):
    return CTX.slider(tmp_path)


def _explorer(tmp_path):
    from failwidgets.widgets import FilterWordExplorer

    _, ex, images, _ = CTX.lavise
    return FilterWordExplorer(ex, images)


def _browser(tmp_path):
    return _tree()


def _relations(tmp_path):
    return _annotator()


ROWS = [
    ("DirectionSlider", _slider, "class_index", 99, True),
    ("DirectionSlider", _slider, "class_index", -1, True),
    ("DirectionSlider", _slider, "alpha", 5.0, True),
    ("DirectionSlider", _slider, "alpha", float("nan"), True),
    ("DirectionSlider", _slider, "decoder", "unclip", True),
    ("DirectionSlider", _slider, "mode", 7, True),
    ("DirectionSlider", _slider, "class_index", "1", False),
    ("TreeBrowser", _browser, "class_index", 99, True),  # probe case 194
    ("TreeBrowser", _browser, "class_index", -1, True),  # probe case 195
    ("TreeBrowser", _browser, "selected_node", 999, True),
    ("TreeBrowser", _browser, "grouping", "foo", True),  # probe case 197
    ("TreeBrowser", _browser, "tau", 5.0, True),
    ("TreeBrowser", _browser, "delta", float("nan"), True),  # probe case 199
    ("TreeBrowser", _browser, "k", 1_000_000, True),
    ("TreeBrowser", _browser, "max_depth", 0, True),
    ("FilterWordExplorer", _explorer, "layer", "nope", False),
    ("FilterWordExplorer", _explorer, "selected_filter", 999, False),
    ("FilterWordExplorer", _explorer, "sort_by", "magic", False),
    ("FilterWordExplorer", _explorer, "view", "3d", False),
    ("RelationshipAnnotator", _relations, "selected_pair", [0, 0], True),
    ("RelationshipAnnotator", _relations, "selected_pair", [0, 99], True),
    ("RelationshipAnnotator", _relations, "selected_pair", [1], True),
    ("RelationshipAnnotator", _relations, "annotations", [["a0", "zz", "probably positive"]], True),
    ("RelationshipAnnotator", _relations, "annotations", [["a0", "a1"]], True),
    ("RelationshipAnnotator", _relations, "annotations", [["a0", "a1", "sort of"]], True),
    ("RelationshipAnnotator", _relations, "pair_view", "foo", True),
]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize(
    "factory, trait, value",
    [pytest.param(f, t, v, id=f"{w}.{t}={v!r}") for w, f, t, v, _stayed in ROWS],
)
def test_rejected_value_is_rolled_back(factory, trait, value, tmp_path):
    w = factory(tmp_path)
    try:
        old = copy.deepcopy(getattr(w, trait))
        saved = w.to_dict()
        with pytest.raises((ValueError, TypeError, traitlets.TraitError)) as info:
            setattr(w, trait, value)
        assert trait in str(info.value) or trait.replace("_", " ") in str(info.value), str(info.value)
        assert _same(getattr(w, trait), old), f"{trait} kept the rejected value {getattr(w, trait)!r}"
        assert w.to_dict() == saved
    finally:
        w.close()


def test_the_table_has_the_probes_rows():
    assert len(ROWS) == 26  # the probe's 27 rows less the search box, whose markup is a valid search string
    assert np.sum([stays for *_, stays in ROWS]) == 21
