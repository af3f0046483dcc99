"""Input checks shared by every public function.

Each check raises ``ValueError`` (or ``TypeError`` for a wrong type) whose message names the argument
and says what was expected, so a user sees e.g.
``labels: expected 1-D integer array of length 120 (same as embeddings), got shape (119,)``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "check_array",
    "check_labels",
    "check_same_length",
    "check_finite",
    "check_in_range",
    "check_choice",
    "check_positive_int",
    "check_probability",
    "to_numpy",
    "check_index",
    "check_number",
    "check_nonnegative_labels",
    "check_magnitude",
    "check_nesting",
]


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """Convert a numpy array, torch tensor or sequence to a numpy array (detached, on CPU)."""
    if isinstance(x, np.ndarray):
        return x
    try:  # torch is a hard dependency, but keep this helper importable without it
        import torch

        if isinstance(x, torch.Tensor):
            if x.device.type == "meta":
                raise ValueError(f"{name}: expected a tensor holding data, got a tensor on the 'meta' device")
            if x.dtype == torch.bfloat16:
                raise TypeError(
                    f"{name}: expected a tensor of a numpy dtype (float16/32/64, int, bool), got "
                    "torch.bfloat16; convert it with .float()"
                )
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name}: expected an array-like, got {type(x).__name__}") from exc


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: str | None = None,
    finite: bool = True,
    min_len: int = 0,
) -> np.ndarray:
    """Validate and return ``x`` as a numpy array.

    Parameters
    ----------
    ndim : expected number of dimensions (or several allowed values).
    shape : expected shape; ``None`` entries are free.
    dtype : ``"float"`` (converted to float32 unless already float64), ``"int"`` or ``"bool"``.
    finite : reject NaN / inf for float arrays.
    min_len : minimum length of the first axis.
    """
    arr = to_numpy(x, name)
    if arr.dtype == object:
        raise TypeError(f"{name}: expected a numeric array, got dtype object")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if dtype == "float":
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name}: expected a real float array, got dtype {arr.dtype} (complex)")
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise TypeError(f"{name}: expected a float array, got dtype {arr.dtype}")
        if arr.dtype != np.float64:
            arr = arr.astype(np.float32, copy=False)
    elif dtype == "int":
        if np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
                raise TypeError(f"{name}: expected integer values, got non-integer floats")
            arr = arr.astype(np.int64)
        elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
        else:
            arr = arr.astype(np.int64, copy=False)
    elif dtype == "bool":
        if arr.dtype != bool:
            uniq = np.unique(arr)
            if not np.all(np.isin(uniq, [0, 1])):
                raise ValueError(f"{name}: expected a boolean / 0-1 array, got values {uniq[:5]}")
            arr = arr.astype(bool)
    if finite and np.issubdtype(arr.dtype, np.floating):
        check_finite(arr, name)
    if arr.ndim >= 1 and arr.shape[0] < min_len:
        raise ValueError(f"{name}: expected at least {min_len} rows, got {arr.shape[0]}")
    return arr


_BLOCK_ELEMENTS = 1 << 22  # checks over bigger arrays run in row blocks of about this many values


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    """Reject NaN and inf, saying how many and where the first one is.

    Large arrays are checked in blocks of rows, so the check needs no full-size boolean temporary.
    """
    if arr.ndim >= 1 and arr.size > _BLOCK_ELEMENTS:
        step = max(1, _BLOCK_ELEMENTS // max(1, arr.size // arr.shape[0]))
        if all(np.isfinite(arr[i : i + step]).all() for i in range(0, arr.shape[0], step)):
            return arr
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: contains {int(bad.sum())} NaN/inf value(s) (first at index {first}); expected finite values"
        )
    return arr


def check_labels(y: Any, name: str, *, n_classes: int | None = None, length: int | None = None) -> np.ndarray:
    """Validate a 1-D integer label vector, optionally with values in ``[0, n_classes)``."""
    arr = check_array(y, name, ndim=1, dtype="int")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name}: expected length {length}, got {arr.shape[0]}")
    if n_classes is not None and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"{name}: expected class indices in [0, {n_classes}), got values in [{lo}, {hi}]")
    return arr


def check_same_length(**arrays: Any) -> int:
    """All given arrays must share their first-axis length; returns it."""
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"expected the same number of rows, got {desc}")
    return next(iter(lengths.values())) if lengths else 0


def check_in_range(value: float, name: str, low: float, high: float, *, inclusive: bool = True) -> float:
    """A scalar in ``[low, high]`` (or the open interval)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number, got {value!r}") from exc
    ok = low <= v <= high if inclusive else low < v < high
    if not ok or not np.isfinite(v):
        br = "[]" if inclusive else "()"
        raise ValueError(f"{name}: expected a value in {br[0]}{low}, {high}{br[1]}, got {value!r}")
    return v


def check_probability(value: float, name: str) -> float:
    return check_in_range(value, name, 0.0, 1.0)


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def check_index(value: Any, name: str, n: int, *, what: str = "an index") -> int:
    """An integer (Python or numpy, not bool / float / str) in ``[0, n)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name}: expected {what} (an integer in [0, {n})), got {value!r} of type {type(value).__name__}"
        )
    if not 0 <= int(value) < n:
        raise ValueError(f"{name}: expected {what} in [0, {n}), got {value}")
    return int(value)


def check_number(value: Any, name: str, *, finite: bool = True) -> float:
    """A real number (not bool / str); finite unless ``finite=False``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r} of type {type(value).__name__}")
    v = float(value)
    if finite and not np.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return v


def check_nonnegative_labels(arr: np.ndarray, name: str) -> np.ndarray:
    """Class indices must be >= 0 (and not booleans)."""
    if arr.dtype == bool:
        raise TypeError(f"{name}: expected integer class indices, got a boolean array")
    if arr.size and int(arr.min()) < 0:
        raise ValueError(f"{name}: expected class indices >= 0, got values down to {int(arr.min())}")
    return arr


def check_magnitude(arr: np.ndarray, name: str, limit: float = 1e150) -> np.ndarray:
    """Reject values so large that squaring them overflows float64 (statistics would become inf)."""
    if arr.size and np.issubdtype(arr.dtype, np.floating):
        big = max(abs(float(np.max(arr))), abs(float(np.min(arr))))  # no |arr| temporary of the input's size
        if big > limit:
            raise ValueError(
                f"{name}: expected values with |x| <= {limit:g} (their squares must be finite), got max |x| = {big:.3g}"
            )
    return arr


def check_nesting(obj: Any, name: str, max_depth: int = 100) -> None:
    """Reject containers nested deeper than ``max_depth`` or containing themselves (reference cycles)."""
    active: set[int] = set()
    # iterative walk with explicit enter / leave markers so a cycle (not a shared child) is detected
    todo: list[tuple[Any, int, bool]] = [(obj, 0, True)]
    while todo:
        item, depth, enter = todo.pop()
        if not enter:
            active.discard(id(item))
            continue
        if isinstance(item, (list, tuple, dict, set, frozenset)):
            if id(item) in active:
                raise ValueError(f"{name}: expected no reference cycles, got a container that contains itself")
            if depth > max_depth:
                raise ValueError(f"{name}: expected at most {max_depth} levels of nesting, got deeper")
            active.add(id(item))
            todo.append((item, depth, False))
            children = list(item.items()) if isinstance(item, dict) else list(item)
            for child in children:
                todo.append((child, depth + 1, True))
