"""Validation of the world's configuration: bad configs fail early with messages naming the argument."""

import math

import pytest

from failwidgets.world import Correlation, Minority, WorldConfig, make_world


@pytest.mark.parametrize("tau", [-0.1, 1.5, math.nan])
def test_tau_outside_unit_interval_is_rejected(tau):
    with pytest.raises(ValueError, match=r"tau: expected a value in \[0.0, 1.0\]"):
        Correlation("shape", "background", tau)


def test_tau_that_is_not_a_number_is_rejected():
    with pytest.raises(TypeError, match="tau: expected a number"):
        Correlation("shape", "background", "high")


def test_unknown_factor_names_are_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"factor_a: expected one of \['shape'.*got 'color'"):
        Correlation("color", "background", 0.5)
    with pytest.raises(ValueError, match="factor_b: expected one of"):
        Correlation("shape", "lighting", 0.5)
    with pytest.raises(ValueError, match="factor_b: expected a factor other than factor_a"):
        Correlation("shape", "shape", 0.5)


def test_unknown_value_names_in_a_mapping_are_rejected():
    with pytest.raises(ValueError, match=r"mapping key \(a value of 'shape'\).*got 'hexagon'"):
        Correlation("shape", "background", 0.5, {"hexagon": "grass"})
    with pytest.raises(ValueError, match=r"mapping\['circle'\] \(a value of 'background'\).*got 'lava'"):
        Correlation("shape", "background", 0.5, {"circle": "lava"})
    with pytest.raises(TypeError, match="mapping: expected a non-empty dict"):
        Correlation("shape", "background", 0.5, {})


def test_a_factor_may_be_dependent_only_once():
    with pytest.raises(ValueError, match=r"correlations\[1\]: factor 'background' is already the dependent side"):
        WorldConfig(correlations=[Correlation("shape", "background", 0.5), Correlation("colour", "background", 0.5)])


def test_cyclic_plants_are_rejected():
    with pytest.raises(ValueError, match="cycle among factors"):
        WorldConfig(correlations=[Correlation("colour", "size", 0.5), Correlation("size", "colour", 0.5)])
    # class -> colour through the minority, colour -> shape through the correlation
    with pytest.raises(ValueError, match="cycle"):
        WorldConfig(
            correlations=[Correlation("colour", "shape", 0.5)],
            minorities=[Minority("colour", {"circle": "red"})],
        )


def test_minority_validation():
    with pytest.raises(ValueError, match="factor: expected one of"):
        Minority("shape", {"circle": "square"})  # the class factor cannot be made rare within a class
    with pytest.raises(ValueError, match=r"values_by_class key \(a class name\).*got 'oval'"):
        Minority("colour", {"oval": "red"})
    with pytest.raises(ValueError, match=r"values_by_class\['circle'\] \(a value of 'colour'\).*got 'purple'"):
        Minority("colour", {"circle": "purple"})
    with pytest.raises(ValueError, match=r"fraction: expected a value in \[0.0, 1.0\]"):
        Minority("colour", {"circle": "red"}, fraction=1.2)
    with pytest.raises(ValueError, match=r"minorities\[1\]: class 'circle' already has a minority value"):
        WorldConfig(minorities=[Minority("colour", {"circle": "red"}), Minority("colour", {"circle": "blue"})])


def test_other_config_fields_are_validated():
    with pytest.raises(ValueError, match="image_size: expected an integer >= 32"):
        WorldConfig(image_size=16)
    with pytest.raises(TypeError, match="n_train: expected an integer"):
        WorldConfig(n_train=10.5)
    with pytest.raises(TypeError, match="seed: expected a non-negative int"):
        WorldConfig(seed=-1)
    with pytest.raises(TypeError, match=r"correlations\[0\]: expected a Correlation"):
        WorldConfig(correlations=[("shape", "background", 0.5)])
    with pytest.raises(TypeError, match="config: expected a WorldConfig"):
        make_world({"seed": 0})


def test_default_mapping_is_index_modulo_and_covers_every_value():
    mapping = Correlation("shape", "background", 0.9).resolved_mapping()
    assert mapping == {
        "circle": "grass",
        "square": "sand",
        "triangle": "water",
        "cross": "snow",
        "star": "grass",
        "diamond": "sand",
    }


def test_demo_and_control_configs():
    demo, control = WorldConfig.demo(), WorldConfig.control()
    assert [(c.factor_a, c.factor_b, c.tau) for c in demo.correlations] == [
        ("shape", "background", 0.95),
        ("texture", "size", 1.0),
    ]
    assert demo.correlations[1].resolved_mapping() == {"plain": "small", "striped": "large"}
    assert [c.tau for c in control.correlations] == [0.0, 0.0]
    assert [c.resolved_mapping() for c in control.correlations] == [c.resolved_mapping() for c in demo.correlations]
    assert control.minorities == ()
    assert (control.seed, control.n_train, control.image_size) == (demo.seed, demo.n_train, demo.image_size)
    assert WorldConfig.control(n_train=10).n_train == 10


def test_fingerprint_depends_on_config_only():
    small = dict(n_train=10, n_val=10, n_test=10, n_pool=10)
    a = make_world(WorldConfig.demo(**small), cache=False).fingerprint
    assert a == make_world(WorldConfig.demo(**small), cache=False).fingerprint
    assert a != make_world(WorldConfig.demo(seed=1, **small), cache=False).fingerprint
    assert a != make_world(WorldConfig.control(**small), cache=False).fingerprint
