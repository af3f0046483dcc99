"""The pieces FailureDirections and the slider use to stay within memory on 1M-row embeddings: block-wise
checks and statistics give the whole-array results, per-class preprocessing gives the same decision values
as preprocessing everything, and the slider's hardest / easiest images are the class's hardest / easiest."""

import re

import numpy as np
import pytest

from failwidgets._validation import check_array, check_finite, check_magnitude
from failwidgets.methods.directions import FailureDirections, RetrievalDecoder
from failwidgets.methods.directions.geometry import l2_normalize, normalized_rows, preprocess, whitening_stats


def _big(n=20_000, d=300, seed=0):  # 6M values: above the 4M-value block threshold of the checks
    return np.random.default_rng(seed).normal(3.0, 2.0, size=(n, d)).astype(np.float32)


def test_blockwise_finite_check_finds_a_late_nan_with_its_count_and_index():
    x = _big()
    assert check_finite(x, "x") is x
    x[17_001, 5] = np.nan
    x[19_999, 299] = np.inf
    with pytest.raises(ValueError, match=r"x: contains 2 NaN/inf value\(s\) \(first at index \(17001, 5\)\)"):
        check_array(x, "x", ndim=2, dtype="float")


def test_magnitude_check_without_abs_copy_sees_negative_values():
    x = _big().astype(np.float64)
    check_magnitude(x, "x")
    x[123, 4] = -1e200  # the largest |x| is a negative value: max(x) alone would miss it
    with pytest.raises(ValueError, match=re.escape("got max |x| = 1e+200")):
        check_magnitude(x, "x")


def test_blockwise_whitening_stats_equal_numpy_and_normalized_rows_equal_l2_normalize():
    x = _big(n=20_001, d=64)  # several 8192-row blocks, the last one short
    mean, std = whitening_stats(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, x64.std(0), rtol=1e-10)
    x[:, 7] = 2.5  # a constant dimension: std 1, not 0
    assert whitening_stats(x)[1][7] == 1.0
    z = normalized_rows(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z, l2_normalize(x), rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def fitted():
    """Five classes in shuffled order (so rows of a class are scattered), a planted error minority."""
    rng = np.random.default_rng(1)
    n, d = 600, 12
    labels = rng.permutation(np.repeat(np.arange(5), n // 5))
    x = rng.normal(size=(n, d)) + 3 * np.eye(d)[labels]
    minority = rng.random(n) < 0.3
    x[minority, 0] += 3.0
    err = rng.random(n) < np.where(minority, 0.8, 0.05)
    err[labels == 4] = False  # a class without errors: no direction, NaN decision values
    preds = np.where(err, (labels + 1) % 5, labels)
    fd = FailureDirections(max_modes=2, min_mode_strength=0.0, progress=False).fit(x, labels, preds, x[::2])
    return fd, x, labels, preds


def test_per_class_decision_values_equal_scoring_all_rows_at_once(fitted):
    fd, x, labels, _ = fitted
    assert fd.status_[4] != "ok" and np.isnan(fd.decision_values_[labels == 4]).all()
    for m in range(2):
        expected = fd.decision_function(x, labels, mode=m)  # preprocesses every row together
        np.testing.assert_array_equal(fd.mode_decision_values_[m], expected)
    # and by hand from the whitened, normalised rows
    z = preprocess(x, fd.mean_, fd.std_)
    rows = labels == 2
    np.testing.assert_allclose(fd.decision_values_[rows], z[rows] @ fd.coef_[2] + fd.intercept_[2], rtol=1e-5)


def test_slider_grids_show_the_class_hardest_and_easiest_rows(fitted, tmp_path):
    from failwidgets.widgets.direction_slider import DirectionSlider

    fd, x, labels, preds = fitted
    images = np.zeros((len(x), 8, 8, 3), np.uint8)
    w = DirectionSlider(
        fd,
        images,
        x,
        labels,
        preds,
        decoders={"r": RetrievalDecoder(x, images, labels=labels)},
        n_images=5,
        export_dir=str(tmp_path),
    )
    for c in (0, 3):
        w.class_index = c
        hard, _ = fd.hardest(c, k=5)
        easy, _ = fd.easiest(c, k=5)
        assert list(w.hard_grid.tile_keys) == list(hard) and list(w.easy_grid.tile_keys) == list(easy)
        assert (labels[w.hard_grid.tile_keys] == c).all()
    w.close()


def test_retrieval_select_class_rows_equal_restricting_to_the_class_mask():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 7, 500)
    labels[labels == 3] = 4  # class 3 has no cached images: retrieval falls back to all rows
    x = rng.normal(size=(500, 6))
    dec = RetrievalDecoder(x, np.zeros((500, 4, 4, 3), np.uint8), labels=labels)
    q = rng.normal(size=(3, 6))
    for c in (0, 3, 6, None, 4):
        idx, sims = dec.select_class(c).nearest(q, k=5)
        mask = None if c is None or not (labels == c).any() else labels == c
        ref_idx, ref_sims = RetrievalDecoder(x, np.zeros((500, 4, 4, 3), np.uint8)).restrict(mask).nearest(q, k=5)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(sims, ref_sims)
        if c == 6:
            assert (labels[idx] == 6).all()
