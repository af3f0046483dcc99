"""Public test helpers: the shared contract checks of the failure estimators and their widgets.

``check_failure_estimator("lavise")`` runs every check on a registered method's tiny fit case;
``estimator_checks(spec)`` lists the checks so a test can parametrise over (method x check), as
``tests/test_common.py`` does. A new method registers ``MethodSpec(..., estimator_case="module:function")``
and is checked from then on; ``check_failwidget(build)`` and ``WIDGET_CHECKS`` do the same for a widget
(``MethodSpec(..., widget_case="module:function")``).
"""

from failwidgets.testing.estimator_checks import (
    check_bad_input,
    check_failure_estimator,
    check_fit_returns_self,
    check_fitted_attributes,
    check_get_params_clone,
    check_not_fitted,
    check_progress_silent,
    check_random_state,
    check_results,
    check_save_load,
    estimator_checks,
    get_case,
)
from failwidgets.testing.widget_checks import WIDGET_CHECKS, check_failwidget

__all__ = [
    "check_failwidget",
    "WIDGET_CHECKS",
    "check_failure_estimator",
    "estimator_checks",
    "get_case",
    "check_get_params_clone",
    "check_fit_returns_self",
    "check_not_fitted",
    "check_fitted_attributes",
    "check_random_state",
    "check_progress_silent",
    "check_bad_input",
    "check_results",
    "check_save_load",
]
