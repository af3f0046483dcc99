"""LaViSE: formulas against hand-computed values, the method on a planted colour world."""

import copy

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from failwidgets.compute.words import WordSpace
from failwidgets.methods.lavise import (
    FilterExplanations,
    LaViSE,
    activation_masks,
    activation_thresholds,
    attended_pooled,
    compare_groups,
    compute_features,
    filter_attention,
    filter_concept_iou,
    hinge_rank_loss,
    qualified_share,
    recall_at_k,
    spatial_cosine,
    whole_image_masks,
)
from failwidgets.methods.lavise.attention import _naive_attended_pooled

# ---------------------------------------------------------------------------------------------------
# formulas
# ---------------------------------------------------------------------------------------------------


def test_filter_attention_hand_computed():
    f = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 2.0]]]])  # (1, 3, 1, 2)
    s = 2**-0.5
    np.testing.assert_allclose(spatial_cosine(f)[0], [[1, s, 0], [s, 1, s], [0, s, 1]], atol=1e-6)
    # the paper's equation: weights a(F_0, F_k) = 1, 1/sqrt2, 0 on whole maps
    att = filter_attention(f, 0)[0]
    np.testing.assert_allclose(att[:, 0], [[1.0, 0.0], [s, s], [0.0, 0.0]], atol=1e-6)
    pooled = attended_pooled(f, torch.tensor([0]), torch.tensor([0]))
    np.testing.assert_allclose(pooled[0], [0.5, s, 0.0], atol=1e-6)
    # the authors' code: F_0 / |F_0| = (1, 0) is a spatial attention, so F_k^att = F_k * (1, 0)
    att = filter_attention(f, 0, "spatial")[0]
    np.testing.assert_allclose(att[:, 0], [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], atol=1e-6)
    pooled = attended_pooled(f, torch.tensor([0]), torch.tensor([0]), pooling="spatial")
    np.testing.assert_allclose(pooled[0], [0.5, 0.5, 0.0], atol=1e-6)
    # = a(F_0, F_k) |F_k| / (h w) with a = 1, 1/sqrt2, 0 and |F_k| = 1, sqrt2, 2
    np.testing.assert_allclose(pooled[0], [1 * 1 / 2, s * 2**0.5 / 2, 0.0], atol=1e-6)
    # target u = 2: F_2 / |F_2| = (0, 1)
    pooled2 = attended_pooled(f, torch.tensor([0]), torch.tensor([2]), pooling="spatial")
    np.testing.assert_allclose(pooled2[0], [0.0, 0.5, 1.0], atol=1e-6)


def test_batched_attention_equals_naive_loop_any_map_size():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(7, 5, 3, 4, generator=g)  # non-square 3x4 maps
    f[2, 1] = 0  # an all-zero map must not produce NaN
    img = torch.tensor([0, 2, 2, 6, 3, 1])
    flt = torch.tensor([4, 1, 0, 2, 3, 3])
    for pooling in ("reweight", "spatial"):
        fast = attended_pooled(f, img, flt, chunk=4, pooling=pooling)
        slow = _naive_attended_pooled(f, img, flt, pooling)
        torch.testing.assert_close(fast, slow)
        assert torch.isfinite(fast).all()


def test_hinge_rank_loss_hand_computed():
    concepts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # pred along concept 0: cos = (1, 0, -1): max(0, 1-1+0) + max(0, 1-1-1) = 0
    # pred along concept 1 with target 0: cos = (0, 1, 0): (1-0+1) + (1-0+0) = 3
    pred = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    loss = hinge_rank_loss(pred, torch.tensor([0, 0]), concepts, margin=1.0)
    assert float(loss) == pytest.approx(1.5)


def test_threshold_is_top_quantile():
    f = torch.arange(1000, dtype=torch.float32).reshape(10, 1, 10, 10)
    # 1 - 0.005 quantile of 0..999 with linear interpolation: 0.995 * 999 = 994.005
    assert activation_thresholds(f, 0.005)[0] == pytest.approx(994.005, abs=1e-3)


def test_activation_masks_keep_height_width_order():
    f = torch.zeros(1, 1, 2, 3)
    f[0, 0, 0, 2] = 1.0  # top-right cell of a 2x3 map
    m = activation_masks(f, np.array([0.5]), (4, 6))[0, 0]
    assert m.shape == (4, 6)
    assert m[0, 5] and m[0, 4] and not m[3, 0] and not m[3, 5] and not m[0, 0]


def test_iou_hand_computed():
    f = torch.zeros(2, 1, 2, 2)
    f[0, 0, 0, 0] = 1.0  # image 0: filter active in its top-left cell
    masks = torch.zeros(2, 2, 2, 2, dtype=torch.bool)  # 2 concepts, 2 images, 2x2 images (= map size)
    masks[0, 0, 0, 0] = True  # concept 0: exactly the active cell -> IoU 1
    masks[1, 0, 0, :] = True  # concept 1: the top row (2 px) -> 1 / 2
    masks[1, 1, 1, 1] = True  # ... plus one px on image 1 -> 1 / 3
    iou = filter_concept_iou(f, np.array([0.5]), masks)
    np.testing.assert_allclose(iou, [[1.0, 1 / 3]], atol=1e-6)


def test_iou_sparse_gather_equals_dense_definition():
    """The fast IoU (qualified images only, gathered at mask pixels) equals the NetDissect definition
    written densely: sum_i |A_iu & M_ic| / sum_i |A_iu | M_ic| over upsampled masks of every image."""
    g = torch.Generator().manual_seed(0)
    f = torch.rand(30, 5, 3, 4, generator=g) ** 4  # non-square maps, a few high cells
    masks = torch.rand(3, 30, 12, 16, generator=g) > 0.7
    thr = activation_thresholds(f, 0.05)
    act = activation_masks(f, thr, (12, 16))  # (N, d, H, W), dense
    inter = torch.einsum("nduv,cnuv->dc", act.float(), masks.float())
    union = act.sum((0, 2, 3)).float()[:, None] + masks.sum((1, 2, 3)).float()[None] - inter
    np.testing.assert_allclose(filter_concept_iou(f, thr, masks, chunk=1), (inter / union).numpy(), atol=1e-6)


def test_recall_and_qualified_share_hand_computed():
    words = [["a", "b", "c"], ["c"], ["x"]]
    matches = [{"a", "z"}, set(), {"x"}]
    assert recall_at_k(words, matches, 1) == pytest.approx((0.5 + 1.0) / 2)
    assert np.isnan(recall_at_k(words, [set()] * 3, 1))
    maxact = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 2.0], [2.0, 0.0]])
    share = qualified_share(maxact, np.array([1.0, 1.0]), np.array([0, 0, 1, 1]), [0, 1])
    np.testing.assert_allclose(share, [[0.5, 0.0], [1.0, 0.5]])


def test_whole_image_masks():
    m = whole_image_masks([1, 0], ["cat", "dog"], (2, 3))
    assert m["dog"].shape == (2, 2, 3) and m["dog"][0].all() and not m["dog"][1].any()


# ---------------------------------------------------------------------------------------------------
# a planted colour world: filter k of the model detects exactly one colour
# ---------------------------------------------------------------------------------------------------
COLOURS = {"red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0)}
H, W = 24, 32  # non-square on purpose


class ColourNet(nn.Module):
    """features: 1x1 conv, one filter per colour (+1 constant filter that sees nothing), ReLU, 4x4 average pool."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv2d(3, 5, 1)
        with torch.no_grad():
            conv.weight[:, :, 0, 0] = torch.tensor(
                [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -2], [0, 0, 0]], dtype=torch.float32
            )
            conv.bias[:] = torch.tensor([0.0, 0.0, 0.0, -1.0, 0.1])
        self.features = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(4))
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def colour_world(n, seed, bias=None):
    """Grey images with two rectangles of different colours; exact masks per colour.

    ``bias``: if given, images of group 1 always contain red (groups alternate).
    """
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    img = np.full((n, H, W, 3), 0.5, dtype=np.float32)
    masks = {c: np.zeros((n, H, W), dtype=bool) for c in names}
    groups = np.arange(n) % 2
    for i in range(n):
        cols = rng.choice(4, size=2, replace=False)
        if bias is not None and groups[i] == 1 and 0 not in cols:
            cols[0] = 0
        if bias is not None and groups[i] == 0:
            cols = rng.choice([1, 2, 3], size=2, replace=False)
        for j, c in enumerate(cols):
            h, w = rng.integers(6, 12), rng.integers(6, 14)
            y = rng.integers(0, H - h)
            x = rng.integers(0, W // 2 - w // 2) + (W // 2 if j else 0)
            x = min(x, W - w)
            region = np.zeros((H, W), dtype=bool)
            region[y : y + h, x : x + w] = True
            for other in names:  # later rectangle paints over earlier ones
                masks[other][i] &= ~region
            masks[names[c]][i] |= region
            img[i][region] = COLOURS[names[c]]
    img = np.clip(img + rng.uniform(-0.1, 0.1, img.shape), 0, 1).astype(np.float32)
    return torch.from_numpy(img).permute(0, 3, 1, 2).contiguous(), masks, groups


@pytest.fixture(scope="module")
def space():
    rng = np.random.default_rng(1)
    words = list(COLOURS) + ["grass", "sand", "snow", "circle"]
    return WordSpace(words, rng.normal(size=(len(words), 16)), name="planted")


@pytest.fixture(scope="module")
def fitted(space):
    torch.manual_seed(0)
    model = ColourNet().eval()
    images, masks, _ = colour_world(160, seed=0)
    lav = LaViSE(space, lr=3e-2, epochs=30, batch_size=160, p=10, s=1, quantile=0.05, progress=False, random_state=0)
    return lav.fit_model(model, images, "features", masks)


def test_fit_learns_and_sets_attributes(fitted):
    assert fitted.n_filters_ == 5 and fitted.feature_size_ == (6, 8)
    assert fitted.train_concepts_ == list(COLOURS) and fitted.heldout_concepts_ == []
    assert fitted.loss_history_[-1] < 0.5 * fitted.loss_history_[0]


def test_attention_finds_planted_colours_and_beats_original(fitted):
    images, masks, _ = colour_world(120, seed=1)
    ex = fitted.explain(images, methods=("attention", "original", "activation_masking", "image_masking"))
    top1 = ex.top_words("attention", 1)
    assert [w[0] for w in top1[:4]] == list(COLOURS)  # filter k <-> colour k, planted
    assert ex.filters_with_word("yellow", k=1)[0] == 3
    assert not {0, 1, 2} & set(ex.filters_with_word("yellow", k=1))
    # naive per-filter loop gives the same words
    naive = fitted.explain(images, methods=("attention",), naive=True)
    assert naive.words["attention"] == ex.words["attention"]
    res = fitted.evaluate(ex, masks, ks=(1, 2))
    assert ex.iou is None and res.explanations.iou is not None  # evaluate returns a copy, ex is unchanged
    # each colour filter matches its colour by IoU, and the constant filter matches none of them
    scored = res.explanations
    assert [c for c, _ in scored.matches(0)][:1] == ["red"] and scored.matches(4) == []
    assert res.n_matched_filters == 4
    rec = res.recall["recall@1"]
    assert rec["attention"] == 1.0 and rec["attention"] > rec["original"]
    assert rec["activation_masking"] >= rec["original"]
    # the authors' spatial pooling finds the planted colours too
    fitted.attention_pooling = "spatial"
    try:
        spatial = fitted.explain(images, methods=("attention",))
        assert [w[0] for w in spatial.top_words("attention", 1)[:4]] == list(COLOURS)
        naive = fitted.explain(images, methods=("attention",), naive=True)
        assert naive.words["attention"] == spatial.words["attention"]
    finally:
        fitted.attention_pooling = "reweight"
    assert {"filter", "words", "novel"} <= set(ex.to_frame().columns)


def test_group_comparison_finds_planted_bias(fitted):
    images, masks, groups = colour_world(120, seed=2, bias=True)
    ex = fitted.explain(images, methods=("attention",))
    df = compare_groups(ex, groups)
    assert df["filter"].iloc[0] == 0  # the red filter: red appears only in group 1
    assert df["signed_difference"].iloc[0] > 0.5
    assert df["words"].iloc[0].startswith("red")
    # images without a group (None) are left out: same shares as on the subset by hand
    g = groups.astype(object)
    g[:40] = None
    df2 = compare_groups(ex, g).set_index("filter")
    q = ex.max_activations[40:] > ex.thresholds[None]
    want = q[groups[40:] == 1].mean(0)
    np.testing.assert_allclose(df2.loc[list(range(5)), "share[1]"], want, atol=1e-6)
    assert [c for c in df2.columns if c.startswith("share")] == ["share[0]", "share[1]"]


def test_holdout_and_novel_words(space):
    model = ColourNet().eval()
    images, masks, _ = colour_world(60, seed=3)
    lav = LaViSE(space, holdout=["yellow"], lr=1e-2, epochs=2, progress=False)
    lav.fit_model(model, images, "features", masks)
    assert lav.heldout_concepts_ == ["yellow"] and "yellow" not in lav.train_concepts_
    ex = lav.explain(images, filters=[0, 3], p=5, s=2)
    assert ex.is_novel("yellow") and ex.is_novel("grass") and not ex.is_novel("red")
    assert ex.top_images.shape == (2, 5) and ex.activation_maps.shape == (2, 5, 6, 8)
    lav2 = LaViSE(space, holdout_fraction=0.5, epochs=1, progress=False).fit_model(model, images, "features", masks)
    assert len(lav2.heldout_concepts_) == 2


def test_bad_inputs_are_clear(space):
    model = ColourNet().eval()
    images, masks, _ = colour_world(20, seed=4)
    with pytest.raises(ValueError, match=r"layer: 'fc' must output a conv feature map"):
        LaViSE(space, epochs=1, progress=False).fit_model(model, images, "fc", masks)
    with pytest.raises(ValueError, match=r"layer: no module named 'feature'"):
        LaViSE(space, epochs=1, progress=False).fit_model(model, images, "feature", masks)
    wrong = dict(masks, red=masks["red"][:, :, :24])  # transposed-size masks (24 x 24 instead of 24 x 32)
    with pytest.raises(ValueError, match=r"concept_masks\['red'\]: expected masks of the image size"):
        LaViSE(space, epochs=1, progress=False).fit_model(model, images, "features", wrong)
    with pytest.raises(ValueError, match=r"concept_masks: 1 word\(s\) not in the planted word space: 'purple'"):
        LaViSE(space, epochs=1, progress=False).fit_model(model, images, "features", dict(masks, purple=masks["red"]))
    with pytest.raises(NotFittedError, match="not fitted"):
        LaViSE(space).explain(images)
    lav = LaViSE(space, epochs=1, progress=False).fit_model(model, images, "features", masks)
    with pytest.raises(ValueError, match="methods: expected one of"):
        lav.explain(images, methods=("gradcam",))
    lav.attention_pooling = "max"
    with pytest.raises(ValueError, match=r"attention_pooling: expected one of \['reweight', 'spatial'\], got 'max'"):
        lav.explain(images)
    lav.attention_pooling = "reweight"
    with pytest.raises(ValueError, match=r"filters: expected indices in \[0, 5\)"):
        lav.explain(images, filters=[7])
    with pytest.raises(ValueError, match="groups: expected a 1-D array with one group per image"):
        compare_groups(lav.explain(images), [0, 1])


def test_features_go_through_the_embedding_cache(tmp_path, space):
    from failwidgets.compute import EmbeddingCache

    images, _, _ = colour_world(12, seed=6)
    cache = EmbeddingCache(tmp_path)
    model = ColourNet().eval()
    first = compute_features(model, images, "features", cache=cache, progress=False)
    assert len(cache.entries()) == 1
    again = compute_features(copy.deepcopy(model), images, "features", cache=cache, progress=False)
    torch.testing.assert_close(again, first)
    assert len(cache.entries()) == 1  # same weights, layer and data: loaded, not added
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.features[0].bias.add_(1.0)  # other weights -> another key, recomputed
    compute_features(other, images, "features", cache=cache, progress=False)
    assert len(cache.entries()) == 2


def test_save_load_round_trip_gives_the_same_explanations(tmp_path, fitted, space):
    images, masks, _ = colour_world(40, seed=7)
    path = fitted.save(tmp_path / "explainer.json", metadata={"note": "test"})
    assert path.is_file() and (tmp_path / "explainer.safetensors").is_file()
    again = LaViSE.load(path, model=fitted.model_, word_space=space)
    assert again.get_params() == fitted.get_params()
    assert again.layer_ == "features" and again.train_concepts_ == fitted.train_concepts_
    a = fitted.explain(images, methods=("attention", "original"))
    b = again.explain(images, methods=("attention", "original"))
    assert a.words == b.words
    # a different word space is refused instead of giving wrong words
    other = WordSpace(space.words, np.eye(len(space.words), 16), name="other")
    with pytest.raises(ValueError, match="word_space: .* another word space"):
        LaViSE.load(path, word_space=other)
    # without a model the loaded explainer still explains precomputed features
    no_model = LaViSE.load(path, word_space=space)
    feats = compute_features(fitted.model_, images, "features", progress=False)
    assert no_model.explain(images, features=feats, methods=("attention", "original")).words == a.words
    with pytest.raises(ValueError, match="images: this LaViSE has no model"):
        no_model.explain(images)


def test_explanations_are_immutable_and_round_trip(fitted):
    import dataclasses
    import json

    images, masks, _ = colour_world(30, seed=8)
    ev = fitted.evaluate(fitted.explain(images), masks, ks=(1,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.explanations.iou = None
    data = json.loads(json.dumps(ev.explanations.to_dict()))
    back = FilterExplanations.from_dict(data)
    assert back.words == ev.explanations.words and back.features is None
    assert back.matches(0) == ev.explanations.matches(0)
    assert back.to_frame().equals(ev.explanations.to_frame())
