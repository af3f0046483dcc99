"""Relation mining on the demo world with the shipped demo target CNNs.

The default demo world plants texture -> size at tau = 1 in training (every striped object is large)
although the true relation of ``striped`` and ``large`` is "independent" (labelled "not related"); the
control variant has every tau = 0. The ground-truth graph is the world's true relations. The default
world also plants shape -> background (tau 0.95); pairs of a shape attribute with a background
attribute are left unlabelled here so that the texture -> size pair is ranked against pairs without a
planted bias (they are failure modes of their own, found by the widget's full graph).

Mined at ``conv3``, the layer ``RelationshipAnnotator.from_demo`` uses (the paper's ``conv1`` costs
about 3x more; ``conv4`` has image-independent gradients on this model).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from failwidgets.methods.relations import RelationGraph, RelationMiner, entropy_baseline, evaluate_modes

pytestmark = pytest.mark.slow

N_MINE = 300  # training images the relations are mined on
MASK_IMAGES = 150
LAYER = "conv3"
PLANTED = ("large", "striped")


def _graph(names):
    from failwidgets.world import ATTRIBUTE_GROUPS

    shapes = set(ATTRIBUTE_GROUPS["shape"]) | {"pointy"}
    backgrounds = set(ATTRIBUTE_GROUPS["background"])
    pairs = [
        (a, b) for k, a in enumerate(names) for b in names[k + 1 :] if not ({a, b} & shapes and {a, b} & backgrounds)
    ]
    from failwidgets.world.attributes import attribute_relations

    return RelationGraph.from_relations(names, attribute_relations(), pairs=pairs)


def _mine(variant):
    from failwidgets.demo import load

    demo = load(variant, progress=False)
    train = demo.world["train"]
    names = list(demo.world.attribute_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an attribute the head ignores has an empty mask
        miner = RelationMiner(progress=False, mask_images=MASK_IMAGES).fit_model(
            demo.target.attribute_model().eval(),
            train.images[:N_MINE],
            LAYER,
            train.attributes[:N_MINE],
            names,
            cache=demo.cache,
            data_id=f"{demo.world.fingerprint}/train[:{N_MINE}]",
        )
        diag = miner.diagnose(_graph(names))
    return demo, miner, diag


@pytest.fixture(scope="module")
def mined_default():
    return _mine("default")


@pytest.fixture(scope="module")
def mined_control():
    return _mine("control")


def _rank(diag, pair):
    p = diag.pairs
    hit = p[((p.attr_i == pair[0]) & (p.attr_j == pair[1])) | ((p.attr_i == pair[1]) & (p.attr_j == pair[0]))]
    return int(hit.index[0]), hit.iloc[0]


def test_planted_pair_is_a_top3_failure_mode_on_the_rare_cell(mined_default):
    _, miner, diag = mined_default
    rank, row = _rank(diag, PLANTED)
    print(
        f"tau=1: rank {rank} of {len(diag.pairs)}, KL {row.kl:.3f}, E r {row['mean']:+.3f}, "
        f"level mu {row.mu_level:+.3f}, kind {row.kind!r}"
    )
    assert row.level == "not related"
    assert rank < 3
    assert row.kind == "failure mode"
    counts = miner.mode_counts_[row.i, row.j]
    a, b = (int(row.a) + 1) // 2, (int(row.b) + 1) // 2
    candidates = [counts[1, 0], counts[0, 1]] if row["mean"] > 0 else [counts[1, 1], counts[0, 0]]
    print(
        f"training counts of the candidate cells {candidates}, chosen cell (large={int(row.a):+d}, "
        f"striped={int(row.b):+d}) with {counts[a, b]} training images"
    )
    assert counts[a, b] == min(candidates)  # the rarer training cell of the two candidates
    # tau = 1 over two binary factors (plain -> small, striped -> large) empties both off-diagonal cells in
    # training, so the chosen cell is one the target never saw.
    assert counts[a, b] == 0


def test_control_pair_is_not_in_top3(mined_control):
    _, _, diag = mined_control
    rank, row = _rank(diag, PLANTED)
    print(f"tau=0: rank {rank} of {len(diag.pairs)}, KL {row.kl:.3f}, E r {row['mean']:+.3f}")
    assert rank >= 3


def test_failure_modes_beat_the_entropy_baseline(mined_default):
    demo, miner, diag = mined_default
    test = demo.world["test"]
    pred = (demo.attribute_logits("test", progress=False) > 0).astype(np.float32)
    ours = evaluate_modes(diag.failure_modes, pred, test.attributes, top=5)
    base = evaluate_modes(
        entropy_baseline(demo.world["train"].attributes[:N_MINE], miner.attribute_names_), pred, test.attributes, top=5
    )
    d_ours, d_base = np.nanmean(ours.decrease), np.nanmean(base.decrease)
    print(f"top-5 accuracy decrease: ours {100 * d_ours:.1f} points, entropy {100 * d_base:.1f} points")
    print(ours[["attr_i", "attr_j", "a", "b", "decrease", "n_mode"]])
    print(base[["attr_i", "attr_j", "a", "b", "decrease", "n_mode"]])
    assert len(ours) == 5
    assert d_ours > d_base


def test_demo_target_gradients_match_single_backward_passes():
    from failwidgets.compute import output_gradients
    from failwidgets.demo import load_model
    from failwidgets.world import WorldConfig, make_world

    model = load_model("target-default").attribute_model().eval()  # attribute_model() starts in train mode
    x = make_world(WorldConfig(seed=3, n_train=2, n_val=1, n_test=1, n_pool=1))["train"].as_tensor()
    acts, grads = output_gradients(model, x, LAYER, progress=False)
    n = model.n_attributes
    assert grads.shape == (2, n, 64, 8, 8)

    def tail(a):
        return model.attribute_head(model.pool(model.conv4(a)))

    for img in range(2):
        a = acts[img : img + 1].clone().requires_grad_(True)
        y = tail(a)
        torch.testing.assert_close(y, model(x[img : img + 1]), atol=1e-5, rtol=1e-5)
        for out in range(n):
            (g,) = torch.autograd.grad(y[0, out], a, retain_graph=True)
            torch.testing.assert_close(grads[img, out], g[0], atol=1e-5, rtol=0)
