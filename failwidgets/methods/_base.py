"""The one place that owns the failure sign convention.

A *failure* is ``pred != label``. Models of failure (the failure-direction SVM, Barlow trees) predict the
target ``1 = correct, 0 = error``, so a **negative decision value means failure-aligned ("hard")** and a
positive one means "easy".
"""

from __future__ import annotations

import numpy as np

from failwidgets._validation import check_labels, check_same_length

CORRECT = 1
ERROR = 0


def is_failure(labels, preds) -> np.ndarray:
    """Boolean array (N,): True where the model got the sample wrong (``pred != label``)."""
    labels = check_labels(labels, "labels")
    preds = check_labels(preds, "preds")
    check_same_length(labels=labels, preds=preds)
    return labels != preds


def failure_target(labels, preds) -> np.ndarray:
    """Integer target (N,) for failure models: 1 = correct, 0 = error."""
    return np.where(is_failure(labels, preds), ERROR, CORRECT).astype(np.int64)


def hardness_order(decision_values) -> np.ndarray:
    """Indices from hardest (most negative decision value) to easiest."""
    return np.argsort(np.asarray(decision_values), kind="stable")


def check_fitted(estimator, attributes) -> None:
    """Raise sklearn's ``NotFittedError`` unless ``estimator`` has the fitted ``attributes``.

    The one fitted-check of the four methods (a thin wrapper over
    :func:`sklearn.utils.validation.check_is_fitted` with a message that names the verbs to call).

    Parameters
    ----------
    estimator : an estimator of :mod:`failwidgets.methods`
    attributes : str or list of str, fitted attributes (ending in ``_``) that ``fit`` sets
    """
    from sklearn.utils.validation import check_is_fitted

    verbs = " or ".join(f"{v}()" for v in ("fit", "fit_model") if hasattr(estimator, v))
    check_is_fitted(
        estimator, attributes, msg=f"This %(name)s is not fitted yet: call {verbs} before using this method."
    )
