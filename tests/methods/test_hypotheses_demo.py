"""Planted truth on the demo world: hypotheses about circles (trained almost only on grass) checked on the
held-out test split, and a lasso on the failure map around the hardest circles of the failure direction.

Measured on this demo (test split, 324 circles; backgrounds balanced there): circle error is 26% on grass,
95% on sand, 69% on water, 58% on snow. So "on grass" is significantly *lower* inside than outside, and
"on snow" is significantly higher than the majority cell (grass); against *all* other circles it is not
(63% vs 61%), because sand and water are minority backgrounds too -- that is what this model does, and the
test checks it as measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from failwidgets.methods.hypotheses import slice_evidence, test_hypothesis

pytestmark = pytest.mark.slow
CIRCLE = 0


@pytest.fixture(scope="module")
def demo():
    from failwidgets import demo as demo_mod

    return demo_mod.load(progress=False)


@pytest.fixture(scope="module")
def test_split(demo):
    data = demo.world["test"]
    return (data, demo.embeddings("test", progress=False), demo.predictions("test", progress=False))


def _background(demo, data, rows):
    names = np.asarray(demo.world.factor_values["background"], dtype=object)
    return names[data.factors["background"][rows]]


def test_on_grass_is_lower_and_on_snow_higher_than_grass_for_circles(demo, test_split):
    data, emb, preds = test_split
    assert demo.world.planted[0]["mapping"]["circle"] == "grass"
    grass = test_hypothesis("on grass", demo.vl, emb, data.labels, preds, CIRCLE, top_fraction=0.2)
    snow = test_hypothesis("on snow", demo.vl, emb, data.labels, preds, CIRCLE, top_fraction=0.2)
    # the phrase finds the planted background
    assert np.mean(_background(demo, data, grass.slice_indices) == "grass") > 0.9
    assert np.mean(_background(demo, data, snow.slice_indices) == "snow") > 0.9
    # "on grass": significantly lower held-out error inside than outside
    g = grass.evidence
    assert g.rate_inside < g.rate_outside and g.p_value < 1e-4 and g.ci_inside[1] < g.ci_outside[0]
    # "on snow": significantly higher error than the majority ("on grass") slice
    errors = data.labels != preds
    both = np.concatenate([snow.slice_indices, grass.slice_indices])
    vs_grass = slice_evidence(snow.slice_indices, errors, among=both)
    assert vs_grass.rate_inside > vs_grass.rate_outside + 0.2 and vs_grass.p_value < 1e-3
    # and not lower than the rest of the circles (the measured, not the hoped-for, comparison)
    assert snow.evidence.rate_inside >= snow.evidence.rate_outside - 0.05


def test_sand_the_worst_background_is_significantly_higher_inside(demo, test_split):
    data, emb, preds = test_split
    sand = test_hypothesis("on sand", demo.vl, emb, data.labels, preds, CIRCLE)
    ev = sand.evidence
    assert ev.rate_inside > ev.rate_outside and ev.p_value < 1e-6 and ev.ci_inside[0] > ev.ci_outside[1]


def test_lasso_around_the_hardest_circles_selects_mostly_minority_images(demo, test_split):
    from scipy.spatial import Delaunay

    from failwidgets.demo.recipes.directions import whitening
    from failwidgets.methods.directions import FailureDirections
    from failwidgets.widgets.failure_map import FailureMap

    data, emb, preds = test_split
    val = demo.world["val"]
    fd = FailureDirections(progress=False, n_permutations=0, max_modes=1).fit(
        demo.embeddings("val", progress=False),
        val.labels,
        demo.predictions("val", progress=False),
        n_classes=len(demo.world.class_names),
        whitening=whitening(demo),
    )
    plant = next(i for i, p in enumerate(demo.world.planted) if p.get("factor_b") == "background")
    minority = demo.world.minority_mask(plant, "test")
    rows = np.flatnonzero(data.labels == CIRCLE)
    fmap = FailureMap(
        emb[rows], data.labels[rows], preds[rows], data.images[rows], backend="bqplot", layout_method="pca", cache=False
    )
    try:
        dv = fd.decision_function(emb[rows], data.labels[rows])
        fmap.set_scores(dv, name="decision_value")
        hardest = np.argsort(dv)[:20]
        # the lasso: the polygon around the hardest points on the map, as a user would draw it
        inside = np.flatnonzero(Delaunay(fmap.xy[hardest]).find_simplex(fmap.xy) >= 0)
        fmap.mark.selected = np.flatnonzero(np.isin(fmap._sample, inside)).tolist()
        sel = fmap.selection_indices
        assert sorted(sel.tolist()) == sorted(inside.tolist()) and sel.size >= 20
        share = minority[rows][sel].mean()
        base = minority[rows].mean()
        assert share > 0.75 and share > base  # mostly minority, more than the class overall
        assert minority[rows][hardest].mean() > 0.95  # the hardest themselves: all minority
        ev = fmap.last_evidence
        assert ev.rate_inside > ev.rate_outside and ev.p_value < 0.01
        assert fmap.selection_frame()["decision_value"].mean() < dv.mean()
    finally:
        fmap.close()
