"""FailureMap keeps the widget contract of :mod:`failwidgets.testing.widget_checks` on both backends."""

import numpy as np
import pandas as pd
import pytest

from failwidgets.testing import WIDGET_CHECKS
from failwidgets.widgets.failure_map import FailureMap


def _build(backend):
    def build():
        rng = np.random.default_rng(0)
        n = 120
        labels = rng.integers(0, 3, n)
        preds = np.where(rng.random(n) < 0.3, (labels + 1) % 3, labels)
        images = rng.integers(0, 255, (n, 12, 12, 3), dtype=np.uint8)
        return FailureMap(
            labels=labels,
            preds=preds,
            images=images,
            xy=rng.normal(size=(n, 2)),
            backend=backend,
            metadata=pd.DataFrame({"background": rng.choice(["grass", "snow"], n)}),
        )

    return build


@pytest.mark.slow
@pytest.mark.parametrize("check", list(WIDGET_CHECKS))
@pytest.mark.parametrize("backend", ["bqplot", "jscatter"])
def test_failure_map_widget_contract(backend, check):
    WIDGET_CHECKS[check](_build(backend))
