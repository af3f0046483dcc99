"""One vocabulary for the methods' result objects: frozen dataclasses with ``to_frame``, ``to_dict``,
``from_dict``.

``to_dict()`` gives plain JSON-serialisable values (numpy arrays and DataFrames are tagged so that
``from_dict(to_dict())`` rebuilds the same object, dtypes included); nested results are encoded the same
way. Fields declared in a class's ``_transient`` tuple (large in-memory companions such as cached
feature tensors) are left out of ``to_dict`` and come back as their default.

Fitted estimators that a notebook keeps are saved the same way everywhere (:func:`write_fitted`): arrays
in ``<stem>.safetensors``, everything else in ``<stem>.json``, both through the atomic writer; no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["Result", "encode", "decode", "fitted_paths", "write_fitted"]


def encode(value: Any) -> Any:
    """A JSON-ready version of ``value`` (arrays, frames, series, tuples, results, numpy scalars)."""
    if isinstance(value, Result):
        return {"__result__": type(value).__name__, "value": value.to_dict()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": encode(value.tolist()), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, pd.DataFrame):
        return {
            "__frame__": {str(c): encode(value[c].to_numpy()) for c in value.columns},
            "columns": [encode(c) for c in value.columns],
            "index": encode(value.index.to_numpy()),
        }
    if isinstance(value, pd.Series):
        return {
            "__series__": encode(value.to_numpy()),
            "index": encode(value.index.to_numpy()),
            "name": encode(value.name),
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    return value


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__result__" in value:
        return _RESULTS[value["__result__"]].from_dict(value["value"])
    if "__ndarray__" in value:
        data = decode(value["__ndarray__"])
        dtype = np.dtype(value["dtype"])
        return np.array(data, dtype=dtype).reshape(value["shape"])
    if "__frame__" in value:
        columns = decode(value["columns"])
        data = {c: decode(value["__frame__"][str(c)]) for c in columns}
        return pd.DataFrame(data, columns=columns, index=decode(value["index"]))
    if "__series__" in value:
        return pd.Series(decode(value["__series__"]), index=decode(value["index"]), name=decode(value["name"]))
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__items__"]}
    if "__float__" in value:
        return float(value["__float__"])
    return {k: decode(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


_RESULTS: dict[str, type] = {}


class Result:
    """Mixin of the frozen result dataclasses: ``to_dict`` / ``from_dict`` / ``to_frame``."""

    _transient: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _RESULTS[cls.__name__] = cls

    def to_dict(self) -> dict:
        """Every field as plain JSON-serialisable values (see :func:`encode`)."""
        return {
            f.name: encode(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in self._transient
        }

    @classmethod
    def from_dict(cls, data: dict):
        """Rebuild a result from :meth:`to_dict`'s output; unknown keys raise ``ValueError``."""
        if not isinstance(data, dict):
            raise TypeError(f"data: expected a dict from {cls.__name__}.to_dict(), got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"data: unknown keys {unknown} for {cls.__name__}; expected some of {sorted(names)}")
        return cls(**{k: decode(v) for k, v in data.items()})

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - every result overrides it
        raise NotImplementedError


def fitted_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(<stem>.json, <stem>.safetensors)``: the two files of a saved estimator."""
    json_path = Path(path).with_suffix(".json")
    return json_path, json_path.with_suffix(".safetensors")


def write_fitted(path: str | os.PathLike, weights: bytes, info: dict) -> Path:
    """Write a fitted estimator: ``weights`` (safetensors bytes) and ``info`` (JSON), each atomically.

    Returns
    -------
    Path of the JSON file.
    """
    from failwidgets._io import atomic_write

    json_path, weights_path = fitted_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(weights_path, weights)
    atomic_write(json_path, json.dumps(info, indent=1) + "\n")
    return json_path
