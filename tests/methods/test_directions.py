"""Failure directions (Jain et al. 2023) on hand-computed formulas and planted embedding-space cases."""

import types

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from failwidgets.demo.recipes.directions import demo_vocabulary
from failwidgets.methods.directions import (
    FailureDirections,
    GeneratorDecoder,
    RetrievalDecoder,
    UnclipDecoder,
    caption_scores,
    filter_pool,
    generate_captions,
    preprocess,
    reference_caption,
    rotate,
    slerp,
    upweight,
    whitening_stats,
)
from failwidgets.methods.directions._svm import (
    _reference_cv_svm,
    balanced_accuracy,
    cv_linear_svm,
    permutation_strengths,
)

D = 24
MINORITY_DIM = 3  # the planted minority factor lives along this axis
SECOND_DIM = 7  # a second, independent failure factor


def planted(
    n_per_class=200,
    n_classes=3,
    tau_minority=0.25,
    p_err_minority=0.7,
    p_err_majority=0.03,
    second=False,
    seed=0,
    p_err_second=0.6,
):
    """Embeddings with a planted minority factor that makes the model fail.

    Class c has centroid 3 * e_{10+c}; a minority sample adds 3 * e_3. Errors: p_err_minority inside the
    minority group, p_err_majority outside. With ``second``, an independent factor along e_7 fails too.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(size=(len(labels), D))
    X[np.arange(len(labels)), 10 + labels] += 3.0
    minority = rng.random(len(labels)) < tau_minority
    X[minority, MINORITY_DIM] += 3.0
    p_err = np.where(minority, p_err_minority, p_err_majority)
    other = np.zeros(len(labels), bool)
    if second:
        other = (rng.random(len(labels)) < 0.25) & ~minority
        X[other, SECOND_DIM] += 3.0
        p_err = np.where(other, p_err_second, p_err)
    err = rng.random(len(labels)) < p_err
    preds = np.where(err, (labels + 1) % n_classes, labels)
    train = rng.normal(size=(1000, D))
    train[np.arange(1000), 10 + rng.integers(0, n_classes, 1000)] += 3.0
    return X, labels, preds, train, minority, other


# ---------------------------------------------------------------- formulas against hand-computed values
def test_slerp_hand_values():
    e1, e2 = np.array([1.0, 0, 0]), np.array([0, 2.0, 0])  # b not unit: slerp works on directions
    np.testing.assert_allclose(slerp(e1, e2, 0.5), [2**-0.5, 2**-0.5, 0], atol=1e-12)
    np.testing.assert_allclose(slerp(e1, e2, 1 / 3), [np.sqrt(3) / 2, 0.5, 0], atol=1e-12)  # 30 degrees
    np.testing.assert_allclose(slerp(e1, e2, 0.0), e1, atol=1e-12)
    np.testing.assert_allclose(slerp(e1, e2, 1.0), [0, 1, 0], atol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        slerp(e1, e2, 1.5)


def test_rotate_positive_alpha_goes_against_the_direction():
    r, w = np.array([1.0, 0]), np.array([0, 1.0])  # w = easy side
    np.testing.assert_allclose(rotate(r, w, 0.5), [2**-0.5, -(2**-0.5)], atol=1e-12)  # harder: towards -w
    np.testing.assert_allclose(rotate(r, w, -0.5), [2**-0.5, 2**-0.5], atol=1e-12)  # easier: towards +w
    np.testing.assert_allclose(rotate(r, w, 0.0), r, atol=1e-12)


def test_whitening_and_preprocess_hand_values():
    train = np.array([[0.0, 1.0], [2.0, 1.0]])  # mean (1, 1); std (1, 0 -> 1)
    mean, std = whitening_stats(train)
    np.testing.assert_allclose(mean, [1, 1])
    np.testing.assert_allclose(std, [1, 1])
    np.testing.assert_allclose(preprocess(np.array([[4.0, 5.0]]), mean, std), [[0.6, 0.8]])  # (3, 4) / 5


def test_balanced_accuracy_hand_value():
    y = np.array([1, 1, 1, 1, 0, 0])
    p = np.array([1, 1, 1, 0, 0, 1])
    assert balanced_accuracy(y, p) == pytest.approx((3 / 4 + 1 / 2) / 2)


def test_caption_scores_hand_value():
    mean, std = np.zeros(2), np.array([1.0, 2.0])
    caps = np.array([[1.0, 4.0], [3.0, 0.0]])
    ref = np.array([0.0, 0.0])
    # preprocess: (1, 2)/sqrt(5) and (3, 0)/3 = (1, 0); w = (1, -1), b = 0.5
    got = caption_scores(caps, ref, mean, std, np.array([1.0, -1.0]), 0.5)
    np.testing.assert_allclose(got, [(1 - 2) / np.sqrt(5) + 0.5, 1.5], rtol=1e-6)


def test_generate_captions_parts_optional():
    caps = generate_captions("cat", adjectives=[None, "white"], phrases=[None, "on grass"])
    assert caps == ["a photo of a cat on grass", "a photo of a white cat", "a photo of a white cat on grass"]
    assert reference_caption("cat") == "a photo of a cat"
    assert "a photo of a cat" in generate_captions("cat", [None], [None, "x"], include_reference=True)
    caps = generate_captions("circle", **demo_vocabulary())
    assert "a photo of a red circle on sand" in caps and "a photo of a striped circle" in caps
    assert len(caps) == len(set(caps)) == 9 * 7 - 1  # (None + 8 adjectives) x (None + 6 phrases) - reference


def test_interventions_hand_cases():
    d = np.array([0.5, -1.0, -0.2, np.nan, -3.0, 2.0])
    classes = np.array([0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(filter_pool(d, classes, k=2), [1, 2, 4, 5])
    np.testing.assert_array_equal(upweight(d, factor=3.0), [1, 3, 3, 1, 3, 1])
    with pytest.raises(ValueError, match="same number of rows"):
        filter_pool(d, classes[:3], k=1)


# ---------------------------------------------------------------- the SVM recipe
def test_fast_svm_reproduces_reference_recipe():
    rng = np.random.default_rng(1)
    for trial in range(4):
        X = rng.normal(size=(50, 64))
        y = (rng.random(50) < 0.6).astype(int)
        X[y == 0, 0] += 0.8 * trial
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        fast, ref = cv_linear_svm(X, y), _reference_cv_svm(X, y)
        np.testing.assert_allclose(fast.cv_scores, ref.cv_scores, atol=1e-9)
        assert fast.best_C == ref.best_C
        np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-6)
        assert fast.intercept == pytest.approx(ref.intercept, abs=1e-6)


def test_planted_minority_is_found():
    X, labels, preds, train, minority, _ = planted()
    fd = FailureDirections(progress=False).fit(X, labels, preds, train)
    assert fd.status_ == ["ok"] * 3
    assert np.all(fd.strength_ >= 0.7), fd.strength_
    for c in range(3):
        # the direction points away from the minority factor (negative = hard)
        w = fd.coef_[c] / np.linalg.norm(fd.coef_[c])
        assert np.argmin(w) == MINORITY_DIM
        idx, d = fd.hardest(c, k=30)
        assert np.all(np.diff(d) >= 0) and np.all(labels[idx] == c)
        assert minority[idx].mean() >= 0.8
        easy, de = fd.easiest(c, k=30)
        assert minority[easy].mean() <= 0.2 and de[0] >= d[-1]
    # decision values on the validation split agree with decision_function
    np.testing.assert_allclose(fd.decision_values_, fd.decision_function(X, labels), rtol=1e-5)


def test_no_signal_gives_chance_strength():
    X, labels, preds, train, _, _ = planted(p_err_minority=0.2, p_err_majority=0.2, seed=3)
    fd = FailureDirections(progress=False).fit(X, labels, preds, train)
    assert np.all(fd.strength_ < 0.6), fd.strength_


def test_permutation_strengths_are_the_recipe_on_permuted_targets():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 16))
    y = (rng.random(60) < 0.7).astype(int)
    null = permutation_strengths(X, y, n_permutations=3, seed=11)
    perm = np.random.default_rng(11)
    expected = [cv_linear_svm(X, perm.permutation(y)).strength for _ in range(3)]
    np.testing.assert_allclose(null, expected, atol=1e-12)


def test_chance_level_separates_signal_from_few_error_noise():
    # Few errors and no signal: the best-of-7 two-fold score is above 0.5 by chance, so some classes pass
    # a fixed 0.6 line; none beats its permutation chance level. The planted case beats it everywhere.
    X, labels, preds, train, _, _ = planted(
        n_per_class=150, p_err_minority=0.03, p_err_majority=0.03, seed=2, n_classes=6
    )
    fd = FailureDirections(n_permutations=50, progress=False).fit(X, labels, preds, train)
    ok = np.isfinite(fd.strength_)
    assert ok.sum() >= 4 and np.any(fd.strength_[ok] >= 0.6), (fd.strength_, fd.n_errors_)
    assert np.all(fd.strength_[ok] <= fd.chance_[ok]), (fd.strength_, fd.chance_)
    assert np.all(fd.p_value_[ok] > 0.05)
    assert not any(fd.mode(c).above_chance for c in np.flatnonzero(ok))
    X, labels, preds, train, _, _ = planted()
    fd = FailureDirections(n_permutations=50, progress=False).fit(X, labels, preds, train)
    assert np.all(fd.strength_ > fd.chance_) and np.all(fd.p_value_ == 1 / 51), (fd.strength_, fd.chance_)
    assert fd.mode(0).above_chance is True
    assert np.isnan(FailureDirections(progress=False).fit(X, labels, preds, train).chance_).all()
    with pytest.raises(ValueError, match="n_permutations: expected an integer >= 0"):
        FailureDirections(n_permutations=-1, progress=False).fit(X, labels, preds, train)


def test_failure_caption_names_the_planted_factor():
    X, labels, preds, train, _, _ = planted()
    fd = FailureDirections(progress=False).fit(X, labels, preds, train)
    # a toy text side living in the same space: caption = class vector + attribute vector
    attrs = {"striped": 5, "on grass": MINORITY_DIM, "at night": 8, "blurry": SECOND_DIM}
    for c in range(3):
        caps, embs = [], []
        ref = np.zeros(D)
        ref[10 + c] = 3.0
        for name, dim in attrs.items():
            e = ref.copy()
            e[dim] += 2.0
            caps.append(f"a photo of a thing {name}")
            embs.append(e)
        top = fd.top_captions(c, caps, np.array(embs), ref, k=2)
        assert top["failure"][0][0].endswith("on grass")
        assert top["easy"][0][0] != top["failure"][0][0]
        assert top["failure"][0][1] < top["failure"][1][1]


def test_second_failure_mode_is_found_and_then_stops():
    X, labels, preds, train, minority, other = planted(
        n_per_class=600, n_classes=2, second=True, seed=5, tau_minority=0.3, p_err_minority=0.9, p_err_majority=0.02
    )
    fd = FailureDirections(max_modes=4, progress=False).fit(X, labels, preds, train)
    for c in range(2):
        modes = fd.modes_[c]
        assert 2 <= len(modes) < 4, [m.strength for m in modes]
        assert [int(np.argmin(m.coef)) for m in modes[:2]] == [MINORITY_DIM, SECOND_DIM]
        assert modes[1].strength >= 0.6 and modes[1].rank == 1
        cos = modes[0].coef @ modes[1].coef / np.linalg.norm(modes[0].coef) / np.linalg.norm(modes[1].coef)
        assert abs(cos) < 1e-6
        idx, _ = fd.hardest(c, k=20, mode=1)
        assert other[idx].mean() >= 0.8
    # with chance levels, every kept mode beats its own, and the search stops at chance
    fd = FailureDirections(max_modes=4, n_permutations=30, progress=False).fit(X, labels, preds, train)
    for c in range(2):
        modes = fd.modes_[c]
        assert 2 <= len(modes) < 4 and all(m.strength > m.chance for m in modes), [
            (m.strength, m.chance) for m in modes
        ]


def test_hardest_on_another_split_and_rotation():
    X, labels, preds, train, minority, _ = planted()
    fd = FailureDirections(progress=False).fit(X, labels, preds, train)
    X2, labels2, _, _, minority2, _ = planted(seed=9)
    idx, _ = fd.hardest(1, X2, labels2, k=30)
    assert minority2[idx].mean() >= 0.8
    ref = X[labels == 1].mean(0)
    harder, easier = fd.rotated_embedding(1, 0.5, ref), fd.rotated_embedding(1, -0.5, ref)
    assert harder.shape == (D,) and np.isclose(np.linalg.norm(harder), 1, atol=1e-5)
    assert harder[MINORITY_DIM] > easier[MINORITY_DIM]  # harder = more of the minority factor
    d_h, d_e = fd.decision_function(np.stack([harder, easier]) * np.linalg.norm(ref), [1, 1])
    assert d_h < d_e


# ---------------------------------------------------------------- bad input: statuses and clear errors
def test_statuses_instead_of_crashes():
    X, labels, preds, train, _, _ = planted(n_classes=3)
    preds = preds.copy()
    preds[labels == 1] = 1  # class 1: all correct
    one = np.flatnonzero(labels == 2)
    preds[labels == 2] = 2
    preds[one[0]] = 0  # class 2: a single error
    fd = FailureDirections(progress=False).fit(X, labels, preds, train, n_classes=5)
    assert fd.status_[0] == "ok"
    assert fd.status_[1] == "no errors"
    assert fd.status_[2].startswith("too few errors to cross-validate")
    assert fd.status_[3] == fd.status_[4] == "absent from the validation split"
    assert np.isnan(fd.strength_[1:]).all() and np.isfinite(fd.strength_[0])
    assert np.isnan(fd.decision_values_[labels == 1]).all()
    with pytest.raises(ValueError, match="no failure direction \\(no errors\\)"):
        fd.hardest(1)
    assert len(fd.filter_pool(X, labels, k=5)) == 5  # only class 0 has a direction


def test_clear_errors_on_bad_input():
    X, labels, preds, train, _, _ = planted(n_classes=2, n_per_class=30)
    fd = FailureDirections(progress=False)
    with pytest.raises(ValueError, match="labels=59"):
        fd.fit(X, labels[:-1], preds, train)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="embeddings: contains 1 NaN"):
        fd.fit(bad, labels, preds, train)
    with pytest.raises(ValueError, match="train_embeddings: expected 24 columns"):
        fd.fit(X, labels, preds, train[:, :5])
    with pytest.raises(ValueError, match="labels: expected class indices in \\[0, 1\\)"):
        fd.fit(X, labels, preds, train, n_classes=1)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FailureDirections().hardest(0)
    assert FailureDirections(max_modes=3).get_params()["max_modes"] == 3  # scikit-learn estimator contract


# ---------------------------------------------------------------- decoders
def test_retrieval_decoder_returns_nearest_images():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 16)).astype(np.float32)
    images = rng.integers(0, 256, size=(500, 8, 8, 3), dtype=np.uint8)
    dec = RetrievalDecoder(emb, images)
    out = dec.decode(emb[[7, 42]] * 3.0)  # scale does not matter: cosine
    assert out.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(out[1].permute(1, 2, 0).numpy(), images[42] / 255.0, atol=1e-6)
    idx, sims = dec.nearest(emb[7], k=3)
    assert idx[0, 0] == 7 and sims[0, 0] == pytest.approx(1.0, abs=1e-5) and np.all(np.diff(sims[0]) <= 0)
    mask = np.zeros(500, bool)
    mask[100:200] = True
    idx, _ = dec.restrict(mask).nearest(emb[7], k=5)
    assert np.all((idx >= 100) & (idx < 200))
    assert dec.decode_many(emb[150], k=4).shape == (4, 3, 8, 8)
    with pytest.raises(ValueError, match="embeddings: expected 16 columns"):
        dec.decode(np.zeros((1, 5)))


def test_generator_decoder_wraps_any_module():
    gen = torch.nn.Sequential(torch.nn.Linear(4, 3 * 2 * 2), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (3, 2, 2)))
    dec = GeneratorDecoder(gen, embed_dim=4, batch_size=2)
    emb = np.random.default_rng(0).normal(size=(5, 4))
    out = dec.decode(emb)
    with torch.no_grad():
        want = gen(torch.as_tensor(emb / np.linalg.norm(emb, axis=1, keepdims=True), dtype=torch.float32))
    torch.testing.assert_close(out, want)
    with pytest.raises(ValueError, match="generator: expected outputs of shape"):
        GeneratorDecoder(lambda x: x).decode(emb)


def test_fit_with_precomputed_whitening_matches_train_embeddings():
    X, labels, preds, train, _, _ = planted(n_classes=2, n_per_class=80)
    a = FailureDirections(progress=False).fit(X, labels, preds, train)
    b = FailureDirections(progress=False).fit(X, labels, preds, whitening=whitening_stats(train))
    np.testing.assert_allclose(a.coef_, b.coef_)
    np.testing.assert_allclose(a.strength_, b.strength_)
    with pytest.raises(ValueError, match="give exactly one of the two"):
        FailureDirections(progress=False).fit(X, labels, preds)
    with pytest.raises(ValueError, match="give exactly one of the two"):
        FailureDirections(progress=False).fit(X, labels, preds, train, whitening=whitening_stats(train))
    with pytest.raises(ValueError, match="whitening mean: expected shape \\(24\\)"):
        FailureDirections(progress=False).fit(X, labels, preds, whitening=(np.zeros(5), np.ones(5)))
    with pytest.raises(ValueError, match="whitening std: expected positive"):
        FailureDirections(progress=False).fit(X, labels, preds, whitening=(np.zeros(D), np.zeros(D)))


def test_retrieval_decoder_select_class_searches_that_class():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    labels = np.repeat(np.arange(3), 100)
    images = rng.integers(0, 256, size=(300, 4, 4, 3), dtype=np.uint8)
    dec = RetrievalDecoder(emb, images, labels=labels)
    q = emb[5]  # class 0's own image is the global nearest
    assert dec.nearest(q, 1)[0][0, 0] == 5
    idx, _ = dec.select_class(2).nearest(q, k=10)
    assert np.all(labels[idx] == 2)
    assert dec.select_class(None).nearest(q, 1)[0][0, 0] == 5
    assert dec.select_class(7).nearest(q, 1)[0][0, 0] == 5  # a class without cached images: search all
    plain = RetrievalDecoder(emb, images)
    assert plain.select_class(2).nearest(q, 1)[0][0, 0] == 5  # without labels the hook changes nothing
    with pytest.raises(ValueError, match="labels"):
        RetrievalDecoder(emb, images, labels=labels[:10])


def test_generator_decoder_jitter_gives_distinct_nearby_images():
    gen = torch.nn.Sequential(torch.nn.Linear(6, 3 * 2 * 2), torch.nn.Unflatten(1, (3, 2, 2)))
    e = np.random.default_rng(0).normal(size=6).astype(np.float32)
    plain = GeneratorDecoder(gen, embed_dim=6).decode_many(e, 3)
    torch.testing.assert_close(plain[0], plain[2])  # without jitter: k copies
    dec = GeneratorDecoder(gen, embed_dim=6, jitter=0.1, random_state=3)
    out = dec.decode_many(e, 3)
    torch.testing.assert_close(out[0], plain[0])  # first image: the embedding itself
    assert (out[1] - out[2]).abs().max() > 1e-3
    torch.testing.assert_close(out, dec.decode_many(e, 3))  # seeded
    with pytest.raises(ValueError, match="jitter: expected a number >= 0"):
        GeneratorDecoder(gen, jitter=-1)


class _FakeUnclipPipe:
    """Stands in for diffusers' StableUnCLIPImg2ImgPipeline: records its arguments and paints each image
    with the first three coordinates of its (scaled) image embedding."""

    dtype, device = torch.float32, "cpu"

    def __init__(self):
        self.calls = []

    def __call__(self, prompt, image_embeds, num_inference_steps, noise_level, output_type, generator):
        self.calls.append(
            dict(
                prompt=prompt,
                image_embeds=image_embeds.clone(),
                steps=num_inference_steps,
                noise_level=noise_level,
                output_type=output_type,
            )
        )
        imgs = image_embeds[:, :3, None, None].expand(-1, 3, 4, 4) + 0 * torch.rand(1, generator=generator)
        return types.SimpleNamespace(images=imgs)


def test_unclip_decoder_drives_a_diffusers_style_pipeline():
    pipe = _FakeUnclipPipe()
    dec = UnclipDecoder(pipe, embed_norm=2.0, prompt="a photo", steps=7, noise_level=3, embed_dim=4)
    assert dec.interactive is False  # the widget turns continuous slider updates off
    imgs = dec.decode(np.array([[3.0, 0.0, 0.0, 4.0], [0.0, 0.3, 0.0, 0.0]]))
    call = pipe.calls[-1]
    # unit-normalised, then scaled to the pipeline's typical norm: (3, 0, 0, 4) / 5 * 2
    np.testing.assert_allclose(call["image_embeds"].numpy(), [[1.2, 0, 0, 1.6], [0, 2.0, 0, 0]], atol=1e-6)
    assert call["prompt"] == ["a photo"] * 2 and call["steps"] == 7 and call["noise_level"] == 3
    assert call["output_type"] == "pt"
    assert imgs.shape == (2, 3, 4, 4) and float(imgs.max()) == 1.0 and float(imgs[0, 0, 0, 0]) == 1.0  # clamped
    assert dec.decode_many(np.ones(4), k=3).shape == (3, 3, 4, 4)
    assert UnclipDecoder.typical_norm(np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])) == 5.0
    with pytest.raises(ValueError, match="expected 4 columns"):
        dec.decode(np.ones((1, 5)))
    with pytest.raises(ValueError, match="embed_norm"):
        UnclipDecoder(pipe, embed_norm=0)
    with pytest.raises(TypeError, match="pipe"):
        UnclipDecoder("not a pipeline")
    bad = lambda **kw: types.SimpleNamespace(images=torch.zeros(1, 4, 8, 8))  # noqa: E731
    with pytest.raises(ValueError, match="pipe: expected .images of shape"):
        UnclipDecoder(bad).decode(np.ones((1, 4)))
