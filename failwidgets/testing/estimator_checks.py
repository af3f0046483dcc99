"""Shared contract checks of the failure estimators (modelled on scikit-learn's ``estimator_checks``).

Every registered method (:func:`failwidgets.registry.list_methods`) names a tiny fit case
(``MethodSpec.estimator_case``, see :mod:`failwidgets.testing._cases`); each check below takes that
:class:`~failwidgets.testing._cases.EstimatorCase` and raises ``AssertionError`` when the estimator
breaks the contract:

- ``check_get_params_clone``: ``get_params`` / ``set_params`` / ``sklearn.base.clone`` round trip;
- ``check_fit_returns_self``: the fit verb returns the estimator and changes none of its parameters;
- ``check_not_fitted``: a call that needs a fit raises sklearn's ``NotFittedError`` before one;
- ``check_fitted_attributes``: what the fit adds are public attributes ending in ``_``;
- ``check_random_state``: two fits with the same ``random_state`` compute the same outputs;
- ``check_progress_silent``: with ``progress=False`` nothing is written to stdout or stderr (and with
  ``progress=True`` something is, so the capture is known to work);
- ``check_bad_input``: each bad argument raises ``ValueError`` / ``TypeError`` whose message names it;
- ``check_results``: result objects are frozen, and ``from_dict(json(to_dict()))`` gives them back;
- ``check_save_load`` (estimators with ``save``/``load``): a loaded copy computes the same outputs.

Use :func:`check_failure_estimator` to run them all, or :func:`estimator_checks` to parametrise a test
over (method x check) as ``tests/test_common.py`` does.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = [
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


def get_case(spec_or_case: Any):
    """The :class:`EstimatorCase` of a registered method name, a ``MethodSpec`` or a case itself."""
    from failwidgets.registry import MethodSpec, get_method
    from failwidgets.testing._cases import EstimatorCase

    if isinstance(spec_or_case, EstimatorCase):
        return spec_or_case
    spec = get_method(spec_or_case) if isinstance(spec_or_case, str) else spec_or_case
    if not isinstance(spec, MethodSpec):
        raise TypeError(
            f"spec_or_case: expected a method name, a MethodSpec or an EstimatorCase, got {type(spec_or_case).__name__}"
        )
    if not spec.estimator_case:
        raise ValueError(
            f"spec_or_case: method {spec.name!r} has no estimator_case; register one "
            "('module:function' returning an EstimatorCase)"
        )
    case = spec.load_estimator_case()()
    if not isinstance(case, EstimatorCase):
        raise TypeError(
            f"spec_or_case: {spec.estimator_case} returned {type(case).__name__}, expected an EstimatorCase"
        )
    return case


# -- helpers ----------------------------------------------------------------------------------------
def _hash(value: Any) -> str:
    import joblib

    return joblib.hash(value)


def _canonical(value: Any) -> str:
    """A JSON text of ``value`` (arrays, frames, results, tuples encoded), for equality of outputs."""
    from failwidgets.methods.results import encode

    return json.dumps(encode(_plain(value)), sort_keys=True, default=repr)


def _plain(value: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return value.tolist()
    return value


def _has_param(est, name: str) -> bool:
    return name in est.get_params(deep=False)


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are not progress output; they are checked elsewhere
        yield out


# -- the checks -------------------------------------------------------------------------------------
def check_get_params_clone(case) -> None:
    """``get_params`` lists every ``__init__`` argument; ``clone`` and ``set_params`` round trip."""
    import inspect

    from sklearn.base import clone

    est = case.make(progress=False)
    params = est.get_params(deep=False)
    init = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    assert sorted(params) == sorted(init), (
        f"{type(est).__name__}: get_params {sorted(params)} != __init__ {sorted(init)}"
    )
    for name in params:
        assert hasattr(est, name), f"{type(est).__name__}: parameter {name!r} is not stored under its own name"
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    got = twin.get_params(deep=False)
    assert sorted(got) == sorted(params)
    for name, value in params.items():
        assert _hash(got[name]) == _hash(value), f"{type(est).__name__}: clone changed parameter {name!r}"
    rebuilt = type(est)(**params)
    for name, value in params.items():
        assert _hash(rebuilt.get_params(deep=False)[name]) == _hash(value), (
            f"{type(est).__name__}: __init__ changes parameter {name!r}"
        )
    assert twin.set_params(random_state=7) is twin and twin.random_state == 7
    assert est.get_params()["random_state"] == params["random_state"], "set_params on the clone changed the original"


def check_fit_returns_self(case) -> None:
    """The fit verb returns the estimator itself and leaves every parameter as it was given."""
    est = case.make(progress=False)
    before = est.get_params(deep=False)
    ids = {k: id(v) for k, v in before.items()}
    hashes = {k: _hash(v) for k, v in before.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = case.fit(est)
    assert out is est, f"{type(est).__name__}: fit returned {type(out).__name__}, expected the estimator itself"
    after = est.get_params(deep=False)
    for name in before:
        assert id(after[name]) == ids[name], f"{type(est).__name__}: fit replaced parameter {name!r}"
        assert _hash(after[name]) == hashes[name], f"{type(est).__name__}: fit changed parameter {name!r}"


def check_not_fitted(case) -> None:
    """Before a fit, a call that needs one raises sklearn's ``NotFittedError``."""
    from sklearn.exceptions import NotFittedError

    est = case.make(progress=False)
    try:
        case.needs_fit(est)
    except NotFittedError:
        pass
    except Exception as exc:
        raise AssertionError(f"{type(est).__name__}: an unfitted call raised {exc!r}, expected NotFittedError") from exc
    else:
        raise AssertionError(f"{type(est).__name__}: an unfitted call did not raise NotFittedError")
    assert hasattr(est, "check_fitted"), f"{type(est).__name__}: no public check_fitted()"
    try:
        est.check_fitted()
    except NotFittedError:
        pass
    else:
        raise AssertionError(f"{type(est).__name__}.check_fitted() passed before fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(est)
    est.check_fitted()


def check_fitted_attributes(case) -> None:
    """Every attribute the fit adds is public and ends in ``_`` (no private fitted data)."""
    est = case.make(progress=False)
    before = set(vars(est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(est)
    added = sorted(set(vars(est)) - before)
    assert added, f"{type(est).__name__}: fit added no attribute"
    bad = [a for a in added if not a.endswith("_") or a.startswith("_")]
    assert not bad, f"{type(est).__name__}: fit set {bad}; fitted attributes are public and end in '_'"


def check_random_state(case) -> None:
    """Two fits with the same ``random_state`` (default 0) compute the same outputs."""
    a, b = case.make(progress=False), case.make(progress=False)
    assert type(a)().get_params()["random_state"] == 0, f"{type(a).__name__}: random_state default is not 0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(a)
        case.fit(b)
        first, second = _canonical(case.outputs(a)), _canonical(case.outputs(b))
    assert first == second, f"{type(a).__name__}: two fits with random_state={a.random_state} differ"


def check_progress_silent(case) -> None:
    """``progress=False``: nothing on stdout/stderr during fit and outputs; ``progress=True`` shows bars."""
    est = case.make(progress=False)
    assert _has_param(est, "progress"), f"{type(est).__name__}: no progress parameter"
    with _captured() as out:
        case.fit(est)
        case.outputs(est)
    assert out.getvalue() == "", f"{type(est).__name__}: progress=False printed {out.getvalue()[:200]!r}"
    loud = case.make(progress=True)
    with _captured() as out:
        case.fit(loud)
    assert out.getvalue() != "", f"{type(est).__name__}: progress=True printed nothing (is the capture working?)"


def check_bad_input(case) -> None:
    """Each bad argument raises ``ValueError`` or ``TypeError`` whose message names the argument."""
    fitted = case.make(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(fitted)
    assert case.bad_inputs, f"case {case.name!r}: no bad inputs listed"
    for name, call in case.bad_inputs:
        est = copy.deepcopy(fitted)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(est)
        except (ValueError, TypeError) as exc:
            assert name in str(exc), f"{type(est).__name__}: bad {name!r} raised {exc!r}, which does not name it"
        except Exception as exc:
            raise AssertionError(
                f"{type(est).__name__}: bad {name!r} raised {exc!r}, expected ValueError/TypeError"
            ) from exc
        else:
            raise AssertionError(f"{type(est).__name__}: a bad {name!r} raised nothing")


def check_results(case) -> None:
    """Result objects are frozen dataclasses with ``to_frame``; ``from_dict(json(to_dict()))`` rebuilds them."""
    import pandas as pd

    est = case.make(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(est)
        results = case.results(est)
    assert results, f"case {case.name!r}: no result objects listed"
    for res in results:
        kind = type(res).__name__
        assert dataclasses.is_dataclass(res) and type(res).__dataclass_params__.frozen, (
            f"{kind}: not a frozen dataclass"
        )
        first = dataclasses.fields(res)[0].name
        try:
            setattr(res, first, getattr(res, first))
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError(f"{kind}: assigning {first!r} did not raise")
        assert isinstance(res.to_frame(), pd.DataFrame), f"{kind}.to_frame() is not a DataFrame"
        data = res.to_dict()
        text = json.dumps(data)
        back = type(res).from_dict(json.loads(text))
        assert type(back) is type(res)
        assert json.dumps(back.to_dict(), sort_keys=True) == json.dumps(data, sort_keys=True), (
            f"{kind}: round trip differs"
        )
        assert back.to_frame().equals(res.to_frame()), f"{kind}: to_frame differs after the round trip"
        try:
            type(res).from_dict({**data, "no_such_field": 1})
        except ValueError as exc:
            assert "no_such_field" in str(exc)
        else:
            raise AssertionError(f"{kind}.from_dict accepted an unknown key")


def check_save_load(case) -> None:
    """``save(path)`` then ``type(est).load(path, ...)`` gives an estimator computing the same outputs."""
    est = case.make(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fit(est)
        with tempfile.TemporaryDirectory() as tmp:
            path = est.save(Path(tmp) / "estimator.json")
            loaded = type(est).load(path, **case.load_kwargs(est))
            assert [p.name for p in sorted(Path(tmp).iterdir())] != [], "save wrote nothing"
            assert not any(p.suffix in (".pkl", ".pickle", ".pt") for p in Path(tmp).iterdir()), "save used pickle"
        assert _canonical(loaded.get_params()) == _canonical(est.get_params())
        assert _canonical(case.outputs(loaded)) == _canonical(case.outputs(est)), "the loaded estimator differs"


_CHECKS: tuple[Callable[[Any], None], ...] = (
    check_get_params_clone,
    check_fit_returns_self,
    check_not_fitted,
    check_fitted_attributes,
    check_random_state,
    check_progress_silent,
    check_bad_input,
    check_results,
)


def estimator_checks(spec_or_case: Any) -> list[Callable[[Any], None]]:
    """The checks that apply to a method's estimator (``check_save_load`` only where it has ``save``)."""
    case = get_case(spec_or_case)
    checks = list(_CHECKS)
    est = case.make()
    if hasattr(est, "save") and hasattr(type(est), "load"):
        checks.append(check_save_load)
    return checks


def check_failure_estimator(spec_or_case: Any, checks: list[Callable[[Any], None]] | None = None) -> None:
    """Run every applicable contract check (or ``checks``) on a registered method; the first failure raises.

    Parameters
    ----------
    spec_or_case : str, MethodSpec or EstimatorCase
        A registered method name (``"lavise"``), its :class:`~failwidgets.registry.MethodSpec`, or a case.
    checks : list of check functions, optional
        Default: :func:`estimator_checks`.
    """
    case = get_case(spec_or_case)
    for check in checks if checks is not None else estimator_checks(case):
        check(case)
