"""Stable content hashes of models, arrays and plain values, for cache keys.

``fingerprint(obj)`` returns the same hex string for the same content in any process (it never uses
Python's salted ``hash()`` or object ids), and a different one when any byte, dtype, shape, name or
class that defines the content changes.

Why not ``pickle`` + sha256: pickles of equal objects differ between Python / torch versions and
contain object-graph details (memo ids, storage ordering), so they are not stable; and hashing must
read tensor bytes directly (zero-copy ``memoryview`` into ``hashlib``) so that a 25M-parameter model
hashes in a fraction of a second.

Encoding (fed to one sha256): every value is written as a one-byte type tag followed by
length-prefixed fields, so no two different values produce the same byte stream.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported only when a tensor or module is hashed
    import torch

__all__ = ["fingerprint"]

# numpy dtype kinds whose bytes fully define the values: bool, signed/unsigned int, float, complex,
# fixed-width bytes and unicode strings. Object arrays hold pointers and are refused.
_ARRAY_KINDS = frozenset("biufcSU")
# ``extra_repr`` of some modules shows callables as "<function f at 0x7f...>"; addresses change per
# process, the rest of the text is stable.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def fingerprint(obj: Any) -> str:
    """Stable sha256 hex digest of ``obj``'s content.

    Parameters
    ----------
    obj : torch.nn.Module, ndarray, torch.Tensor, str, bytes, int, float, bool, None, tuple, list,
        dict, numpy scalar, or any object with a ``.fingerprint`` attribute (a string, or a method
        returning one of the supported values), which is used instead of its content.

        - ``nn.Module``: class (module + qualname), the names and classes of all submodules with their
          ``extra_repr`` (so e.g. a conv's stride counts), and every ``state_dict`` entry's name,
          dtype, shape and raw bytes. Hyper-parameters that appear nowhere in these (for example a
          ``forward`` that changes) are not seen: give such models a ``.fingerprint``.
        - arrays / tensors: dtype name, shape and raw little-endian bytes. A numpy array and a torch
          tensor with the same dtype, shape and values have the same fingerprint.
        - ``tuple`` and ``list`` are the same sequence; ``dict`` keys may be any supported value and
          their order does not matter; numpy scalars hash as the equal Python number.

    Returns
    -------
    str
        64 lowercase hex characters.

    Raises
    ------
    TypeError
        For any other type (the message names the type and the path inside ``obj``).
    """
    from failwidgets._validation import check_nesting

    check_nesting(obj, "obj")  # a self-referencing or absurdly deep container would exhaust the stack
    h = hashlib.sha256()
    _update(h, obj, "obj")
    return h.hexdigest()


def _field(h: hashlib._Hash, tag: bytes, payload: bytes | memoryview) -> None:
    h.update(tag)
    h.update(struct.pack("<Q", len(payload)))
    h.update(payload)


def _digest(obj: Any, path: str) -> bytes:
    h = hashlib.sha256()
    _update(h, obj, path)
    return h.digest()


def _update(h: hashlib._Hash, obj: Any, path: str) -> None:
    """Write the tagged encoding of ``obj`` into ``h``; ``path`` names the value in error messages."""
    import torch

    if obj is None:
        h.update(b"N")
    elif isinstance(obj, (bool, np.bool_)):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, (int, np.integer)):
        _field(h, b"i", str(int(obj)).encode())
    elif isinstance(obj, (float, np.floating)):
        _field(h, b"f", repr(float(obj)).encode())
    elif isinstance(obj, str):
        _field(h, b"s", obj.encode("utf-8"))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _field(h, b"b", bytes(obj))
    elif isinstance(obj, (tuple, list)):
        _field(h, b"l", struct.pack("<Q", len(obj)))
        for i, item in enumerate(obj):
            _update(h, item, f"{path}[{i}]")
    elif isinstance(obj, dict):
        # Order-free: sort items by the digest of their key.
        items = sorted((_digest(k, f"{path} key {k!r}"), _digest(v, f"{path}[{k!r}]")) for k, v in obj.items())
        _field(h, b"d", struct.pack("<Q", len(items)))
        for kd, vd in items:
            h.update(kd)
            h.update(vd)
    elif isinstance(obj, np.ndarray):
        _update_array(h, obj, path)
    elif isinstance(obj, torch.Tensor):
        _update_tensor(h, obj, path)
    elif not isinstance(obj, type) and hasattr(obj, "fingerprint"):
        value = obj.fingerprint
        value = value() if callable(value) else value
        h.update(b"P")
        _update(h, value, f"{path}.fingerprint")
    elif isinstance(obj, torch.nn.Module):
        _update_module(h, obj, path)
    else:
        raise TypeError(
            f"{path}: cannot fingerprint an object of type {type(obj).__module__}.{type(obj).__qualname__}; "
            "expected an nn.Module, ndarray, torch.Tensor, str, bytes, int, float, bool, None, "
            "tuple/list, dict, or an object with a .fingerprint attribute"
        )


def _update_array(h: hashlib._Hash, arr: np.ndarray, path: str) -> None:
    if arr.dtype.kind not in _ARRAY_KINDS or arr.dtype.fields is not None:
        raise TypeError(
            f"{path}: cannot fingerprint an array of dtype {arr.dtype}; expected a numeric, bool or string dtype"
        )
    # One byte order for every machine, then a C-contiguous buffer hashed without a Python loop.
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    _field(h, b"a", arr.dtype.name.encode())
    _field(h, b"z", struct.pack(f"<{arr.ndim}Q", *arr.shape))
    _field(h, b"x", memoryview(arr.reshape(-1).view(np.uint8)))


def _update_tensor(h: hashlib._Hash, t: torch.Tensor, path: str) -> None:
    import torch

    if t.layout != torch.strided or t.is_quantized or t.is_meta:
        raise TypeError(f"{path}: cannot fingerprint a {t.layout} / quantized / meta tensor; expected a dense tensor")
    t = t.detach().cpu().resolve_conj().resolve_neg().contiguous()
    # Same dtype names as numpy ("float32", "int64", "bool", ...), so equal content hashes equal.
    _field(h, b"a", str(t.dtype).removeprefix("torch.").encode())
    _field(h, b"z", struct.pack(f"<{t.dim()}Q", *t.shape))
    # A uint8 view reads the raw bytes of any dtype (bfloat16 included, which numpy lacks).
    _field(h, b"x", memoryview(t.reshape(-1).view(torch.uint8).numpy()))


def _update_module(h: hashlib._Hash, module: torch.nn.Module, path: str) -> None:
    cls = type(module)
    _field(h, b"m", f"{cls.__module__}.{cls.__qualname__}".encode())
    structure = [
        (name, f"{type(m).__module__}.{type(m).__qualname__}", _ADDRESS.sub("", m.extra_repr()))
        for name, m in module.named_modules()
    ]
    _update(h, structure, f"{path} structure")
    state = module.state_dict()
    _field(h, b"l", struct.pack("<Q", len(state)))
    for name in sorted(state):
        _field(h, b"s", name.encode("utf-8"))
        _update(h, state[name], f"{path}.state_dict()[{name!r}]")
