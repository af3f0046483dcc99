"""Barlow on the demo world: the planted shape -> background shortcut (tau 0.95 in train) must show up
as a valid failure mode of a depth-1 tree on held-out data, made of the planted minority images.

Trees are fitted on the validation split (where background no longer follows shape, so the target model
fails on the minority images) and evaluated on the test split.
"""
from __future__ import annotations

import numpy as np
import pytest

from failwidgets.methods.barlow import fit_class_tree
from failwidgets.world.planted import cell_masks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    from failwidgets.demo import load

    return load(progress=False)


@pytest.fixture(scope="module")
def splits(demo):
    plant = next(p for p in demo.world.planted if tuple(p["factors"]) == ("shape", "background"))
    assert plant["tau"] == pytest.approx(0.95)
    out = {}
    for split in ("val", "test"):
        s = demo.world[split]
        minority, _ = cell_masks(plant["plant"], s.factors)
        out[split] = {
            "labels": s.labels,
            "preds": demo.predictions(split, progress=False),
            "minority": minority,
            "robust": demo.embeddings(split, "robust", progress=False),
            "target": demo.embeddings(split, "target", progress=False),
        }
    return out


def _tree(splits, features: str, cls: int, depth: int = 1):
    v, t = splits["val"], splits["test"]
    return fit_class_tree(v[features], v["labels"], v["preds"], cls, grouping="label", max_depth=depth, k=20,
                          heldout=(t[features], t["labels"], t["preds"]))


def _check_class(splits, cls: int) -> dict:
    """The three claims of the issue for one class (label grouping, depth 1, robust features)."""
    try:
        res = _tree(splits, "robust", cls)
    except ValueError as exc:  # a class the model never (or always) gets right has no failure tree
        return {"class": cls, "valid_held_out": False, "minority_share": 0.0, "aler_minus_ber": float("nan"),
                "rule": str(exc)}
    leaf = res.fit.top_leaf()
    t = splits["test"]
    in_leaf = res.heldout_indices[res.tree.node_membership(t["robust"][res.heldout_indices])[:, leaf]]
    errors = in_leaf[t["preds"][in_leaf] != t["labels"][in_leaf]]
    return {
        "class": cls,
        "valid_held_out": bool(res.heldout.nodes.set_index("node").loc[leaf, "valid"]),
        "minority_share": float(t["minority"][errors].mean()) if errors.size else 0.0,
        "aler_minus_ber": res.heldout.aler_minus_ber,
        "rule": res.fit.nodes.loc[leaf, "rule"],
    }


def test_depth1_top_leaf_is_a_held_out_failure_mode_of_the_planted_minority(splits):
    # Every class has a planted background at tau 0.95. A class whose held-out BER exceeds 1 - delta
    # cannot have a valid leaf (ER > BER + 0.1 is impossible), so the claim is required of most classes,
    # not all. Shipped (undertrained) demo models: 4 of 6 pass (minority share 1.0, ALER - BER 0.20-0.27);
    # circle and square have only failures on val, so no tree. Stand-in models trained longer: 5 of 6.
    rows = [_check_class(splits, c) for c in np.unique(splits["val"]["labels"])]
    print("\n" + "\n".join(map(str, rows)))
    passing = [r for r in rows if r["valid_held_out"] and r["minority_share"] >= 0.7 and r["aler_minus_ber"] >= 0.05]
    assert len(passing) >= len(rows) // 2 + 1, rows


def test_robust_versus_target_features_aler_minus_ber(splits):
    """The paper's comparison (printed with -s). ALER >= BER holds for any partition, so the check is
    that each feature set explains a substantial share of the error on held-out data on average."""
    rows = []
    for feats in ("robust", "target"):
        for depth in (1, 3):
            v = splits["val"]
            scores = [_tree(splits, feats, c, depth).heldout.aler_minus_ber
                      for c in np.unique(v["labels"])
                      if 0 < np.mean(v["preds"][v["labels"] == c] != c) < 1]  # classes that have a tree
            rows.append((feats, depth, float(np.nanmean(scores))))
    print("\nmean held-out ALER - BER by label grouping:", rows)
    for _, _, score in rows:
        assert score >= 0.05
