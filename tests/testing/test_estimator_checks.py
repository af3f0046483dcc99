"""The contract checks themselves: each one fails on an estimator that breaks its rule."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from failwidgets._validation import check_array
from failwidgets.methods._base import check_fitted
from failwidgets.testing import (
    check_bad_input,
    check_failure_estimator,
    check_fit_returns_self,
    check_fitted_attributes,
    check_get_params_clone,
    check_not_fitted,
    check_progress_silent,
    check_random_state,
)
from failwidgets.testing._cases import EstimatorCase

X = np.random.default_rng(0).normal(size=(20, 3))


class Toy(BaseEstimator):
    def __init__(self, scale=1.0, progress=True, random_state=0):
        self.scale = scale
        self.progress = progress
        self.random_state = random_state

    def fit(self, x):
        x = check_array(x, "x", ndim=2, dtype="float")
        rng = np.random.default_rng(self.random_state)
        for _ in tqdm(range(2), desc="toy", disable=not self.progress):
            pass
        self.mean_ = x.mean(0) * self.scale + rng.normal(size=x.shape[1])
        return self

    def check_fitted(self):
        check_fitted(self, "mean_")

    def transform(self, x):
        self.check_fitted()
        return np.asarray(x) - self.mean_


class ReturnsNone(Toy):
    def fit(self, x):
        super().fit(x)


class ChangesParam(Toy):
    def fit(self, x):
        super().fit(x)
        self.scale = 2.0
        return self


class PrivateFitted(Toy):
    def fit(self, x):
        super().fit(x)
        self._x = x
        return self


class RuntimeNotFitted(Toy):
    def transform(self, x):
        if not hasattr(self, "mean_"):
            raise RuntimeError("call fit first")
        return super().transform(x)


class Noisy(Toy):
    def fit(self, x):
        print("fitting")
        return super().fit(x)


class Unseeded(Toy):
    def fit(self, x):
        super().fit(x)
        self.mean_ = self.mean_ + np.random.default_rng().normal()
        return self


class VagueErrors(Toy):
    def fit(self, x):
        if np.ndim(x) != 2:
            raise ValueError("bad input")
        return super().fit(x)


class NoneSeed(Toy):
    def __init__(self, scale=1.0, progress=True, random_state=None):
        super().__init__(scale, progress, random_state)


def case_of(cls):
    return EstimatorCase(
        name="toy",
        make=lambda **params: cls(**params),
        fit=lambda est: est.fit(X),
        outputs=lambda est: est.transform(X),
        needs_fit=lambda est: est.transform(X),
        bad_inputs=(("x", lambda est: est.fit(np.zeros(3))),),
    )


CHECKS = [
    check_get_params_clone,
    check_fit_returns_self,
    check_not_fitted,
    check_fitted_attributes,
    check_random_state,
    check_progress_silent,
    check_bad_input,
]


def test_a_well_behaved_estimator_passes_every_check():
    check_failure_estimator(case_of(Toy), checks=CHECKS)


@pytest.mark.parametrize(
    "broken, check",
    [
        (ReturnsNone, check_fit_returns_self),
        (ChangesParam, check_fit_returns_self),
        (PrivateFitted, check_fitted_attributes),
        (RuntimeNotFitted, check_not_fitted),
        (Noisy, check_progress_silent),
        (Unseeded, check_random_state),
        (NoneSeed, check_random_state),
        (VagueErrors, check_bad_input),
    ],
)
def test_each_check_catches_its_violation(broken, check):
    with pytest.raises(AssertionError):
        check(case_of(broken))


def test_unknown_method_and_missing_case_are_clear():
    from failwidgets.registry import MethodSpec
    from failwidgets.testing import get_case

    with pytest.raises(KeyError, match="no method 'nope'"):
        get_case("nope")
    with pytest.raises(ValueError, match="no estimator_case"):
        get_case(MethodSpec(name="x", paper="", estimator="m:E", widget="m:W", recipe="m"))
    with pytest.raises(TypeError, match="spec_or_case"):
        get_case(3)
