"""Barlow on the demo world with the shipped demo models.

Every class has its training backgrounds planted at tau 0.95 (shape -> background). Trees are fitted on
the validation split, where backgrounds are uniform again (so about 3 in 4 images of a class are in the
planted *minority*: background != the class's training background), and reported on the test split.
Nothing here depends on which class the retrained weights happen to fail on: every class is examined and
the per-class numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest

from failwidgets.demo.recipes.barlow import demo_class_trees, demo_split

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    from failwidgets.demo import load

    return load(progress=False)


@pytest.fixture(scope="module")
def data(demo):
    return {
        feats: (demo_split(demo, "val", features=feats), demo_split(demo, "test", features=feats))
        for feats in ("robust", "target")
    }


def _class_rows(fit, held, depth: int = 1) -> list[dict]:
    """Per class (label grouping): the fit-data top-IV leaf judged on held-out data."""
    rows = []
    for c, res in demo_class_trees(fit, held, max_depth=depth, k=20).items():
        group = held.labels == c
        row = {
            "class": c,
            "held_ber": float(np.mean(held.preds[group] != c)) if group.any() else np.nan,
            "minority_in_class": float(held.minority[group].mean()) if group.any() else np.nan,
        }
        if isinstance(res, str):  # no failures or only failures in the fit group: no tree (a status)
            rows.append({**row, "valid": False, "minority_share": np.nan, "aler_minus_ber": np.nan, "rule": res})
            continue
        leaf = res.fit.top_leaf()
        idx = res.heldout_indices
        in_leaf = idx[res.tree.node_membership(held.features[idx])[:, leaf]]
        errors = in_leaf[held.preds[in_leaf] != held.labels[in_leaf]]
        rows.append(
            {
                **row,
                "valid": bool(res.heldout.nodes.loc[leaf, "valid"]),
                "minority_share": float(held.minority[errors].mean()) if errors.size else np.nan,
                "minority_share_all_errors": float(held.minority[idx][held.preds[idx] != c].mean()),
                "aler_minus_ber": res.heldout.aler_minus_ber,
                "rule": res.fit.nodes.loc[leaf, "rule"],
            }
        )
    return rows


def _passes(row: dict) -> bool:
    return row["valid"] and row["minority_share"] >= 0.7 and row["aler_minus_ber"] >= 0.05


def test_depth1_top_leaf_is_a_held_out_failure_mode_of_the_planted_minority(data):
    # The claim, for a class: the depth-1 tree's highest-IV leaf (chosen on the fit split) is a
    # valid failure mode on held-out data (ER > BER + 0.1, EC > 0.2), >= 70% of its held-out errors are
    # planted-minority images, and held-out ALER - BER >= 0.05.
    rows = _class_rows(*data["robust"])
    print("\nrobust features, depth 1, label grouping (fit val, held-out test):")
    for r in rows:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    passing = [r for r in rows if _passes(r)]
    print(f"{len(passing)} of {len(rows)} classes meet all three criteria")
    # The issue asks it of a class. Shipped weights of e3a4fdb: 5 of 6 classes (class 1 misses only on
    # ALER - BER, 0.049); held-out BER 0.62-0.84 because the target still follows the background. Every
    # class has the planted background, so we require it of most classes, not just one.
    assert len(passing) >= len(rows) // 2 + 1, rows
    # A 70% minority share is not much on its own here: ~75% of every class's val/test images are in the
    # minority. So also require the passing leaves' errors to be *more* minority than the class's images.
    assert all(r["minority_share"] > r["minority_in_class"] for r in passing), passing


def test_robust_versus_target_features_aler_minus_ber(data):
    """The paper's comparison (printed with -s): mean held-out ALER - BER over the classes that have a
    tree, robust penultimate features versus the target model's own pooled features, depth 1 and 3.

    ALER >= BER for any partition, so the check is that each feature set explains a substantial share of
    the error on held-out data on average (>= 0.05, the issue's per-class bar). Shipped weights of
    e3a4fdb (6 classes with a tree): robust 0.118 (depth 1) and 0.142 (depth 3), target 0.151 and 0.184,
    i.e. robust features are *not* better than the target's own features on the demo world."""
    table = []
    for feats in ("robust", "target"):
        for depth in (1, 3):
            rows = _class_rows(*data[feats], depth=depth)
            scores = [r["aler_minus_ber"] for r in rows if np.isfinite(r["aler_minus_ber"])]
            table.append((feats, depth, len(scores), float(np.mean(scores)) if scores else np.nan))
    print("\nmean held-out ALER - BER (features, depth, classes with a tree, mean):", table)
    for feats, depth, n, score in table:
        assert n >= 1 and score >= 0.05, (feats, depth, table)
