"""Contract tests parametrised over every registered method (as scikit-learn's ``tests/test_common.py``)."""
import pytest

from failwidgets.registry import list_methods
from failwidgets.testing import estimator_checks

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
