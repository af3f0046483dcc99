"""Contract tests parametrised over every registered method (as scikit-learn's ``tests/test_common.py``):
the estimator checks of :mod:`failwidgets.testing.estimator_checks` and the widget checks of
:mod:`failwidgets.testing.widget_checks`, found through :mod:`failwidgets.registry`."""

import pytest

from failwidgets.registry import list_methods
from failwidgets.testing import WIDGET_CHECKS, estimator_checks

ESTIMATOR_CHECKS = [
    pytest.param(spec, check, id=f"{spec.name}-{check.__name__}")
    for spec in list_methods()
    if spec.estimator_case
    for check in estimator_checks(spec)
]


def test_every_method_has_an_estimator_case():
    assert [s.name for s in list_methods() if not s.estimator_case] == []


@pytest.mark.parametrize("spec, check", ESTIMATOR_CHECKS)
def test_estimator_contract(spec, check):
    from failwidgets.testing import get_case

    check(get_case(spec))


WIDGET_SPECS = [s for s in list_methods() if s.widget_case]


def test_every_registered_method_has_a_widget_case():
    assert [s.name for s in WIDGET_SPECS] == [s.name for s in list_methods()]


@pytest.mark.parametrize("check", list(WIDGET_CHECKS))
@pytest.mark.parametrize("spec", WIDGET_SPECS, ids=[s.name for s in WIDGET_SPECS])
def test_widget_contract(spec, check):
    WIDGET_CHECKS[check](spec.load_widget_case())
