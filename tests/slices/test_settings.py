"""Settings: validated specs, drawn settings that vary, a training split that carries the plant, and a
two-setting smoke run of the benchmark through the SliceMethod interface."""

import numpy as np
import pytest

from failwidgets.compute import EmbeddingCache
from failwidgets.slices import KINDS, FunctionMethod, SettingSpec, draw_settings, precision_at_k
from failwidgets.slices.run import evaluate, format_tables, profile_specs, run_benchmark
from failwidgets.world import FACTOR_VALUES, make_world


def test_draw_settings_varies_and_is_deterministic():
    specs = draw_settings(30, seed=0)
    assert specs == draw_settings(30, seed=0)
    assert draw_settings(3, seed=0) == specs[:3]  # the small profile is the start of the full one
    assert [s.kind for s in specs[:6]] == list(KINDS) * 2
    assert len({s.seed for s in specs}) == 30
    assert {len(s.classes) for s in specs} >= {2, 4, 6}
    assert len({s.factor for s in specs}) >= 4
    shares = np.array([s.share for s in specs])
    assert shares.min() >= 0.02 and shares.max() <= 0.25 and (shares < 0.05).any()
    taus = [s.strength for s in specs if s.kind == "correlation"]
    assert min(taus) >= 0.5 and max(taus) <= 0.99
    assert len({s.fingerprint for s in specs}) == 30


def test_spec_validation_names_the_argument():
    base = dict(
        seed=0, classes=("circle", "square"), target="circle", factor="colour", value="red", strength=0.03, share=0.05
    )
    SettingSpec(kind="rare", **base)
    with pytest.raises(ValueError, match="mapping"):
        SettingSpec(kind="correlation", **base)
    with pytest.raises(ValueError, match="flip_to"):
        SettingSpec(kind="noisy", **base)
    with pytest.raises(ValueError, match="share"):
        SettingSpec(kind="rare", **{**base, "share": 0.0})
    with pytest.raises(ValueError, match="target"):
        SettingSpec(kind="rare", **{**base, "target": "star"})


@pytest.mark.parametrize("kind", ["rare", "correlation"])
def test_training_split_carries_the_plant(kind):
    spec = next(s for s in draw_settings(12, seed=3) if s.kind == kind)
    f = make_world(spec.world_config(), cache=False).factors("train")  # factors only: nothing rendered
    shape = FACTOR_VALUES["shape"]
    in_class = f["shape"] == shape.index(spec.target)
    hit = f[spec.factor][in_class] == FACTOR_VALUES[spec.factor].index(spec.value)
    k = len(FACTOR_VALUES[spec.factor])
    if kind == "rare":  # the slice keeps `strength` of the class
        assert abs(hit.mean() - spec.strength) < 4 * np.sqrt(spec.strength / in_class.sum()) + 0.005
    else:  # P(value = mapping[class]) = tau + (1 - tau) / k
        assert abs(hit.mean() - (spec.strength + (1 - spec.strength) / k)) < 0.06


@pytest.mark.slow
def test_two_tiny_settings_run_end_to_end(tmp_path):
    cache = EmbeddingCache(tmp_path)
    specs = profile_specs("toy")
    assert len(specs) == 2 and {s.kind for s in specs} == {"rare", "noisy"}
    result = run_benchmark("toy", cache=cache, progress=False)
    n_methods = len({r["method"] for r in result["rows"]})
    assert len(result["rows"]) == 2 * n_methods >= 2 * 8
    for r in result["rows"]:
        assert 0.0 <= r["precision_at_10"] <= 1.0 and 0.0 <= r["precision_at_25"] <= 1.0
        assert 1 <= r["n_slices"] <= 5 and r["seconds"] >= 0
    for s in result["settings"]:
        info, spec = s["info"], s["spec"]
        assert info["cached"] is False
        assert info["val_n"] == spec["n_val"] and info["test_n_slice"] >= spec["min_test_slice"]
        assert abs(info["val_n_slice"] / info["val_n"] - spec["share"]) < 0.01
    assert next(s for s in result["settings"] if s["spec"]["kind"] == "noisy")["info"]["n_flipped"] > 0
    assert "found / P@10 / P@25" in format_tables(result)

    # a second run reads everything from the cache and scores the deterministic methods identically
    again = run_benchmark("toy", cache=cache, progress=False)
    assert all(s["info"]["cached"] for s in again["settings"])
    key = lambda r: (r["setting"], r["method"], r["precision_at_10"], r["precision_at_25"])  # noqa: E731
    assert sorted(map(key, again["rows"])) == sorted(map(key, result["rows"]))

    # a user's method through the interface: constant scores tie everywhere -> exactly the prevalence
    const = FunctionMethod("constant", lambda val, data: np.zeros(len(data)))
    rows, built = evaluate(specs, [const], cache=cache, progress=False)
    for r, s in zip(rows, built):
        assert r["precision_at_10"] == pytest.approx(s.test_truth.mean())
        assert s.val.labels.tolist() == [s.spec.class_index] * len(s.val)
        assert precision_at_k(s.test_truth, s.test_truth.astype(float), 10) == 1.0
