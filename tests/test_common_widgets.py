"""The widget contract (:mod:`failwidgets.testing.widget_checks`) on every registered method's widget."""
import pytest

from failwidgets.registry import list_methods
from failwidgets.testing.widget_checks import WIDGET_CHECKS

SPECS = [s for s in list_methods() if s.widget_case]


def test_every_registered_method_has_a_widget_case():
    assert [s.name for s in SPECS] == [s.name for s in list_methods()]


@pytest.mark.parametrize("check", list(WIDGET_CHECKS))
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_widget_contract(spec, check):
    WIDGET_CHECKS[check](spec.load_widget_case())
