"""Barlow features named in words: hand-computed scores, named rules, and the demo world's root splits."""

from __future__ import annotations

import numpy as np
import pytest

from failwidgets.methods.barlow import (
    BarlowTree,
    name_features,
    name_features_with_encoder,
    named_rule,
    named_rules_frame,
    split_features,
)


def _toy():
    # 6 images; feature 0 is high on images 0, 1 (which look like "snow"), feature 1 on images 4, 5
    feats = np.array([[5, 0], [4, 0], [1, 1], [0, 2], [0, 8], [0, 9]], dtype=np.float32)
    # image embeddings in a 2-d "VL" space: x = snow-ness, y = sand-ness
    img = np.array([[1, 0], [1, 0], [0.6, 0.8], [0.6, 0.8], [0, 1], [0, 1]], dtype=np.float32)
    words = ["snow", "sand", "blend"]
    txt = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)  # "blend" is 45 degrees: near every image
    return feats, img, words, txt


def test_name_features_hand_computed():
    feats, img, words, txt = _toy()
    names = name_features(feats, img, txt, words, n_top=2, max_words=3, min_ratio=0.0)
    # cos(image, snow) = 1, 1, .6, .6, 0, 0 (mean .533); cos(image, sand) = 0, 0, .8, .8, 1, 1 (mean .6)
    # cos(image, blend) = s, s, 1.4 s, 1.4 s, s, s with s = 1/sqrt2 (mean 1.1333 s)
    f0 = names[0]
    assert f0.words == ("snow",)  # sand: 0 - .6 < 0 and blend: s - 1.1333 s < 0 are dropped
    assert f0.scores[0] == pytest.approx(1 - 3.2 / 6, abs=1e-6)
    assert f0.label == '"snow"'
    np.testing.assert_array_equal(f0.top_images, [0, 1])
    # AUROC of cos(., snow): top images {1, 1} vs the rest {.6, .6, 0, 0} -> 1
    assert f0.confidence == pytest.approx(1.0)
    f1 = names[1]
    assert f1.words[0] == "sand" and f1.scores[0] == pytest.approx(1 - 3.6 / 6, abs=1e-6)
    # rest of cos(., sand) = {0, 0, .8, .8} all below the top {1, 1}
    assert f1.confidence == pytest.approx(1.0)
    assert "blend" not in f1.words  # s - 1.1333 s < 0
    assert set(name_features(feats, img, txt, words, feature_indices=[1], n_top=2)) == {1}
    with pytest.raises(ValueError, match="feature_indices"):
        name_features(feats, img, txt, words, feature_indices=[2])
    with pytest.raises(ValueError, match="word_embeddings"):
        name_features(feats, img, txt[:2], words)


def test_min_ratio_and_confidence_with_ties():
    feats, img, words, txt = _toy()
    # top 3 images of feature 1: 5, 4, 3 -> sand cos 1, 1, .8; rest 0, 0, .8 (one tie at .8)
    f1 = name_features(feats, img, txt, words, n_top=3, min_ratio=0.0)[1]
    # AUROC = (pairs won + ties / 2) / 9 = (8 + 0.5) / 9
    assert f1.confidence == pytest.approx(8.5 / 9)
    assert f1.scores[0] == pytest.approx(2.8 / 3 - 3.6 / 6, abs=1e-6)


class _Encoder:
    def encode_texts(self, texts):
        table = {"a snow": [1, 0], "a sand": [0, 1], "a blend": [1, 1]}
        return np.array([table[t] for t in texts], dtype=np.float32)


def test_with_encoder_and_named_rules():
    feats, img, words, _ = _toy()
    names = name_features_with_encoder(feats, img, _Encoder(), words, template="a {}", n_top=2)
    assert names[0].words == ("snow",) and names[1].words[0] == "sand"
    assert (
        named_rule("feature[0] <= 2.5 and feature[1] > 4", names)
        == 'feature[0] "snow" <= 2.5 and feature[1] "' + ", ".join(names[1].words) + '" > 4'
    )
    assert named_rule("feature[7] <= 1", names) == "feature[7] <= 1"  # unnamed features stay as they are
    assert named_rule("all samples", None) == "all samples"
    tree = BarlowTree(max_depth=1, k=2, random_state=0).fit(feats, np.array([1, 1, 0, 0, 0, 0], bool))
    assert split_features(tree) == [int(tree.node_structure()["feature"][0])]
    frame = named_rules_frame(tree.node_structure(), names)
    assert '"' in frame["rule"][1] and frame["rule"][0] == "all samples"


@pytest.mark.slow
def test_demo_root_split_of_background_planted_classes_named_by_background():
    """Every class of the demo world has its training background planted (shape -> background, tau 0.95);
    the root split of its tree (robust features, fitted on the validation split) is named with a
    background word by the demo's vision-language encoder."""
    from failwidgets.demo import load
    from failwidgets.demo.recipes.barlow import background_plant, demo_class_trees, demo_split
    from failwidgets.world.factors import FACTOR_VALUES

    demo = load(progress=False)
    fit = demo_split(demo, "val")
    trees = demo_class_trees(fit, None, max_depth=1, k=20)
    words = list(demo.world.concepts)
    names = name_features_with_encoder(fit.features, demo.embeddings("val", "vl"), demo.vl, words)
    backgrounds = set(FACTOR_VALUES["background"])
    assert background_plant(demo)["factors"] == ("shape", "background")
    checked = 0
    for c, tree in trees.items():
        if isinstance(tree, str):
            continue
        root = split_features(tree)[0]
        name = names[root]
        rule = named_rule(tree.fit.nodes.loc[1, "rule"], names)
        print(demo.world.class_names[c], rule, name.scores, f"confidence {name.confidence:.2f}")
        assert backgrounds & set(name.words), (demo.world.class_names[c], name)
        assert name.confidence > 0.5
        checked += 1
    assert checked >= 3
