"""Planted biases: measured levels match the parameters, held-out splits are balanced.

Tolerances are Z standard errors of a binomial proportion, sqrt(p (1 - p) / n), with Z = 4.5 (a false
alarm about once in 150 000 checks); the draws are seeded, so the tests are deterministic anyway.
"""

import numpy as np
import pytest

from failwidgets.world import FACTOR_VALUES, Correlation, Minority, WorldConfig, make_world
from failwidgets.world.sampling import sample_factors

Z = 4.5


def _tol(p, n):
    return Z * np.sqrt(p * (1 - p) / n)


def _code(factor, value):
    return FACTOR_VALUES[factor].index(value)


@pytest.mark.parametrize("tau", [0.0, 0.5, 0.95, 1.0])
def test_correlation_level_matches_tau(tau):
    n = 30000
    f = sample_factors(n, np.random.default_rng(1), [Correlation("shape", "background", tau)])
    # default mapping: shape i -> background i mod 4, checked by hand here
    p = np.mean(f["background"] == f["shape"] % 4)
    expected = tau + (1 - tau) / 4
    assert abs(p - expected) <= _tol(expected, n) + 1e-12
    # the driving factor stays uniform
    freq = np.bincount(f["shape"], minlength=6) / n
    assert np.all(np.abs(freq - 1 / 6) <= _tol(1 / 6, n))
    # within the images whose background is NOT the mapped one, the other three are equally likely
    if tau < 1:
        off = f["background"] != f["shape"] % 4
        rel = (f["background"][off] - f["shape"][off]) % 4  # 1, 2 or 3 steps away from the mapped value
        share = np.bincount(rel, minlength=4)[1:] / off.sum()
        assert np.all(np.abs(share - 1 / 3) <= _tol(1 / 3, off.sum()))


def test_partial_mapping_leaves_unmapped_values_alone():
    n = 30000
    f = sample_factors(n, np.random.default_rng(2), [Correlation("colour", "position", 1.0, {"red": "left"})])
    red = f["colour"] == _code("colour", "red")
    assert np.all(f["position"][red] == _code("position", "left"))
    left_share = np.mean(f["position"][~red] == _code("position", "left"))
    assert abs(left_share - 0.5) <= _tol(0.5, (~red).sum())


def test_minority_share_is_fraction_of_normal_share():
    n = 60000
    m = Minority("colour", {"circle": "blue", "square": "red"}, fraction=0.25)
    f = sample_factors(n, np.random.default_rng(3), minorities=[m])
    for cls, val in m.values_by_class.items():
        in_cls = f["shape"] == _code("shape", cls)
        share = np.bincount(f["colour"][in_cls], minlength=4) / in_cls.sum()
        rare = _code("colour", val)
        # normal share 1/4; the rare colour keeps a quarter of it; the other three split the rest evenly
        assert abs(share[rare] - 0.25 * 0.25) <= _tol(0.0625, in_cls.sum())
        others = np.delete(share, rare)
        assert np.all(np.abs(others - (1 - 0.0625) / 3) <= _tol(0.3125, in_cls.sum()))
    # classes not listed keep the uniform colour distribution
    tri = f["shape"] == _code("shape", "triangle")
    share = np.bincount(f["colour"][tri], minlength=4) / tri.sum()
    assert np.all(np.abs(share - 0.25) <= _tol(0.25, tri.sum()))


def test_minority_on_a_class_driven_factor_scales_its_conditional_share():
    # background follows shape at tau 0.5 -> P(grass | circle) = 0.5 + 0.5 / 4 = 0.625 normally;
    # the minority keeps 0.2 of it: 0.125. The other backgrounds keep their normal proportions
    # (0.125 each normally) scaled to fill the rest: (1 - 0.125) / 3 each.
    cfg = WorldConfig(
        n_train=3000,
        n_val=10,
        n_test=10,
        n_pool=10,
        correlations=[Correlation("shape", "background", 0.5)],
        minorities=[Minority("background", {"circle": "grass"}, fraction=0.2)],
    )
    n = 60000
    f = sample_factors(n, np.random.default_rng(4), cfg.correlations, cfg.minorities)
    circ = f["shape"] == _code("shape", "circle")
    share = np.bincount(f["background"][circ], minlength=4) / circ.sum()
    assert abs(share[0] - 0.125) <= _tol(0.125, circ.sum())
    assert np.all(np.abs(share[1:] - 0.875 / 3) <= _tol(0.875 / 3, circ.sum()))
    # the world's ground truth reports the same expected numbers, and the measured level in its train split
    world = make_world(cfg, cache=False)
    group = world.planted[1]["groups"][0]
    assert group["class"] == "circle" and group["value"] == "grass"
    assert group["normal_share"] == pytest.approx(0.625)
    assert group["expected_share"] == pytest.approx(0.125)
    meas = group["measured"]["train"]
    assert abs(meas["share"] - 0.125) <= _tol(0.125, meas["n_class"])
    train = world.factors("train")
    in_cls = train["shape"] == 0
    assert meas["n_class"] == in_cls.sum()
    assert meas["n_minority"] == np.sum(in_cls & (train["background"] == 0))


@pytest.fixture(scope="module")
def demo_world():
    # only factors are used here, so large splits cost nothing (no image is rendered)
    return make_world(WorldConfig.demo(n_train=20000, n_val=10000, n_test=10000, n_pool=200), cache=False)


def test_world_reports_measured_levels_in_train(demo_world):
    shape_bg, texture_size = demo_world.planted
    train = demo_world.factors("train")
    assert shape_bg["kind"] == "correlation" and shape_bg["factors"] == ("shape", "background")
    assert shape_bg["tau"] == 0.95 and shape_bg["expected_p"] == pytest.approx(0.9625)
    p = np.mean(train["background"] == train["shape"] % 4)
    meas = shape_bg["measured"]["train"]
    assert meas["p"] == pytest.approx(p) and meas["n"] == 20000
    assert abs(meas["p"] - 0.9625) <= _tol(0.9625, 20000)
    assert meas["tau"] == pytest.approx((p - 0.25) / 0.75)
    # tau 1: every striped object is large and every plain one small in training
    assert np.array_equal(train["size"], train["texture"])
    assert texture_size["measured"]["train"]["tau"] == 1.0


@pytest.mark.parametrize("split", ["val", "test"])
def test_held_out_splits_are_balanced_and_plant_pairs_independent(demo_world, split):
    f = demo_world.factors(split)
    n = len(f["shape"])
    for factor, values in FACTOR_VALUES.items():
        k = len(values)
        freq = np.bincount(f[factor], minlength=k) / n
        assert np.all(np.abs(freq - 1 / k) <= _tol(1 / k, n)), (factor, freq)
    # the planted pairs are independent here: P(b = mapping[a]) = 1 / |b|
    for plant, k in zip(demo_world.planted, (4, 2)):
        meas = plant["measured"][split]
        assert abs(meas["p"] - 1 / k) <= _tol(1 / k, meas["n"]), plant["description"]
    # and the full joint of the planted pair is close to uniform
    joint = np.bincount(f["shape"] * 4 + f["background"], minlength=24) / n
    assert np.all(np.abs(joint - 1 / 24) <= _tol(1 / 24, n))


def test_minority_and_majority_cells(demo_world):
    test = demo_world.factors("test")
    off_map = test["background"] != test["shape"] % 4
    assert np.array_equal(demo_world.minority_mask(0, "test"), off_map)
    assert np.array_equal(demo_world.majority_mask(0, "test"), ~off_map)
    same = demo_world.minority_mask(demo_world.planted[1], "test")
    assert np.array_equal(same, test["size"] != test["texture"])
    with pytest.raises(ValueError, match=r"plant: expected an index in \[0, 2\)"):
        demo_world.minority_mask(5)


def test_minority_mask_of_a_minority_plant():
    cfg = WorldConfig(n_train=20, n_val=10, n_test=300, n_pool=10, minorities=[Minority("size", {"star": "small"})])
    world = make_world(cfg, cache=False)
    f = world.factors("test")
    star = f["shape"] == _code("shape", "star")
    small = f["size"] == _code("size", "small")
    assert np.array_equal(world.minority_mask(0, "test"), star & small)
    assert np.array_equal(world.majority_mask(0, "test"), star & ~small)


def test_control_world_has_no_correlation_in_train():
    world = make_world(WorldConfig.control(n_train=3000, n_val=10, n_test=10, n_pool=10), cache=False)
    meas = world.planted[0]["measured"]["train"]
    assert abs(meas["p"] - 0.25) <= _tol(0.25, 3000)
    assert abs(world.planted[1]["measured"]["train"]["p"] - 0.5) <= _tol(0.5, 3000)


def test_factors_without_rendering_equal_the_rendered_split():
    world = make_world(WorldConfig.demo(n_train=50, n_val=20, n_test=20, n_pool=20), cache=False)
    before = {k: v.copy() for k, v in world.factors("train").items()}
    assert not world._splits  # nothing rendered yet
    _ = world.planted
    assert not world._splits
    split = world["train"]
    assert all(np.array_equal(before[k], split.factors[k]) for k in before)
    assert world.factors("train") is split.factors
