"""A content-addressed on-disk cache of arrays (embeddings, activations), one safetensors file per entry.

Layout: ``<root>/<key>.safetensors`` where ``key = sha256(canonical JSON of the parts)``. The file's
safetensors header carries a ``"failwidgets"`` metadata string (JSON) with the parts, the creation time,
whether the entry is a single array, and a sha256 checksum of that metadata together with every array's
name, dtype, shape and bytes. ``entries()`` reads only headers; ``get()`` loads the arrays and verifies
the checksum and the key, so a truncated or bit-flipped file is reported (``CacheCorruptionWarning``),
removed, and treated as a miss.

Writes go to a private directory ``.tmp.<pid>.<host>.<token>/`` inside the root, are fsynced and then
renamed over the entry with ``os.replace`` (atomic on POSIX and Windows), so a killed writer leaves at
most a temp directory, never a partial entry. Temp directories of dead writers are removed when a cache
is opened or cleared. Two
processes writing the same key each rename their own complete file: the last one wins, and both hold
the same content.

safetensors is used (not pickle / ``np.load(allow_pickle=True)``) because loading it cannot run code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from failwidgets._io import _pid_alive, default_file_mode
from failwidgets._io import fsync_dir as _fsync_dir
from failwidgets._validation import check_array
from failwidgets.compute.hashing import fingerprint

__all__ = [
    "EmbeddingCache",
    "cached",
    "as_cache",
    "CacheEntry",
    "CacheCorruptionWarning",
    "CacheAccessWarning",
    "default_cache_dir",
]

_ENV = "FAILWIDGETS_CACHE"
_SUFFIX = ".safetensors"
_META = "failwidgets"
_FORMAT = 1
_SINGLE = "array"  # tensor name of an entry that holds one array
_KEY = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp."
_STALE_SECONDS = 24 * 3600  # temp files older than this are stale even if their writer looks alive
# dtypes safetensors stores for numpy (safetensors.numpy._TYPES)
_DTYPES = frozenset(np.dtype(t) for t in ("f8", "f4", "f2", "i8", "u8", "i4", "u4", "i2", "u2", "i1", "u1", "?", "c8"))
# What reading a damaged file raises: safetensors' own error (truncated / bad header), bad JSON or
# missing / mistyped metadata fields.
_PARSE_ERRORS = (SafetensorError, ValueError, KeyError, TypeError, AttributeError)
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


class CacheCorruptionWarning(UserWarning):
    """An entry failed to parse or its checksum did not match; it was removed and will be recomputed."""


class CacheAccessWarning(UserWarning):
    """The cache could not be read or written (permissions, read-only disk, a folder in the way).

    A read that fails this way counts as a miss; a write that fails this way leaves the computed value
    uncached (``get_or_compute`` still returns it).
    """


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """What ``EmbeddingCache.entries()`` lists about one entry (read from its header only).

    Attributes
    ----------
    key : str, 64 hex characters.
    parts : dict, the parts the key was made from.
    size_bytes : int, size of the file on disk.
    created : float, Unix time of the write.
    shapes : dict name -> tuple of ints (an entry holding one array has the single name ``"array"``).
    dtypes : dict name -> str (numpy dtype name).
    path : Path of the file (of the directory for a sharded store).
    complete : bool, False for a sharded store whose shards are not all computed yet.
    """

    key: str
    parts: dict
    size_bytes: int
    created: float
    shapes: dict
    dtypes: dict
    path: Path
    complete: bool = True


def default_cache_dir() -> Path:
    """The cache root used when none is given: env ``FAILWIDGETS_CACHE``, else the user cache dir.

    Returns
    -------
    Path
        ``$FAILWIDGETS_CACHE`` (``~`` expanded) when set and non-empty, otherwise
        ``platformdirs.user_cache_dir("failwidgets")``.
    """
    env = os.environ.get(_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("failwidgets"))


class EmbeddingCache:
    """Content-addressed cache of numpy arrays on disk.

    Parameters
    ----------
    root : str or Path, optional
        Directory of the cache (created on first write). Default: ``default_cache_dir()``, i.e. env
        ``FAILWIDGETS_CACHE``, else ``platformdirs.user_cache_dir("failwidgets")``.

    Examples
    --------
    >>> cache = EmbeddingCache(tmp_dir)                                     # doctest: +SKIP
    >>> parts = {"encoder": encoder.identity(), "data": world.fingerprint, "split": "val"}
    >>> emb = cache.get_or_compute(parts, lambda: encoder.encode_images(images))  # (N, D)
    """

    def __init__(self, root: str | os.PathLike | None = None):
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a path (str or os.PathLike) or None, got {type(root).__name__}")
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(
                f"root: expected a directory (or a path where one can be created), got the file {self.root}"
            )
        self._remove_stale_temp_files()

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"

    # -- keys -----------------------------------------------------------------------------------------
    @staticmethod
    def key(parts: Mapping[str, Any]) -> str:
        """sha256 hex of the canonical JSON of ``parts``.

        Canonical JSON: keys sorted, separators ``(",", ":")``, UTF-8, tuples as lists, numpy scalars as
        the equal Python number. Put model identity (e.g. ``fingerprint(model)``), preprocessing, layer /
        output name, dataset identity and any parameters in ``parts``.

        Parameters
        ----------
        parts : dict with str keys; values are str, int, float (finite), bool, None, numpy scalars,
            lists / tuples and dicts of these.

        Raises
        ------
        TypeError
            A value is not JSON-serialisable or a dict key is not a str; the message names its path,
            e.g. ``parts['encoder']['model']``.
        ValueError
            A float is NaN or infinite.
        """
        return hashlib.sha256(_canonical_json(parts).encode("utf-8")).hexdigest()

    # -- read -----------------------------------------------------------------------------------------
    def contains(self, key: str) -> bool:
        """Whether an entry file exists for ``key`` (cheap; its checksum is verified only by ``get``)."""
        return self._path(key).is_file()

    def __contains__(self, key: str) -> bool:
        return self.contains(key)

    def get(self, key: str) -> np.ndarray | dict[str, np.ndarray] | None:
        """Load an entry, verifying its checksum.

        Returns
        -------
        ndarray, or dict name -> ndarray (as stored), or None on a miss. A corrupt entry warns
        ``CacheCorruptionWarning``, is removed, and counts as a miss.
        """
        path = self._path(key)
        try:
            before = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _access_warning(f"entry {path.name} cannot be read ({exc}); treated as a miss")
            return None
        if not path.is_file():
            _access_warning(f"{path} is not a file (expected a cache entry file); treated as a miss")
            return None
        try:
            with safe_open(str(path), framework="numpy") as f:  # what load_file does, plus the header
                meta = _parse_meta(f.metadata())
                arrays = {name: f.get_tensor(name) for name in f.keys()}
            problem = _verify(key, meta, arrays)
        except (FileNotFoundError, PermissionError) as exc:
            # safetensors reports EACCES as FileNotFoundError: an entry that is still there is unreadable
            if path.exists():
                _access_warning(
                    f"entry {path.name} exists but cannot be read ({type(exc).__name__}: {exc}; "
                    "another user's cache?); treated as a miss"
                )
            return None
        except _PARSE_ERRORS as exc:  # not MemoryError / PermissionError: those say nothing of the file
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            self._discard_corrupt(path, before, problem)
            return None
        return arrays[_SINGLE] if meta["single"] else arrays

    def entries(self) -> list[CacheEntry]:
        """All entries, oldest first, read from file headers only (no array is loaded).

        Files whose header does not parse are reported (``CacheCorruptionWarning``) and removed.
        """
        out = []
        for path in self._entry_paths():
            try:
                stat = path.stat()
                with safe_open(str(path), framework="numpy") as f:
                    meta = _parse_meta(f.metadata())
                out.append(
                    CacheEntry(
                        key=path.stem,
                        parts=meta["parts"],
                        size_bytes=stat.st_size,
                        created=meta["created"],
                        shapes={n: tuple(a["shape"]) for n, a in meta["arrays"].items()},
                        dtypes={n: a["dtype"] for n, a in meta["arrays"].items()},
                        path=path,
                    )
                )
            except (FileNotFoundError, PermissionError) as exc:
                if path.exists():
                    _access_warning(
                        f"entry {path.name} exists but cannot be read ({type(exc).__name__}: {exc}); not listed"
                    )
                continue
            except _PARSE_ERRORS as exc:
                self._discard_corrupt(path, stat, f"{type(exc).__name__}: {exc}")
        out += self._sharded_entries()
        return sorted(out, key=lambda e: e.created)

    def size_bytes(self) -> int:
        """Total size of the entry files on disk (temp files of writers in progress not counted)."""
        total = 0
        for path in self._entry_paths():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total + sum(e.size_bytes for e in self._sharded_entries())

    # -- write ----------------------------------------------------------------------------------------
    def put(self, key: str, arrays: Any, parts: Mapping[str, Any]) -> Path:
        """Store ``arrays`` under ``key`` atomically (temp directory inside the root, fsync, rename).

        Parameters
        ----------
        key : str, must equal ``self.key(parts)``.
        arrays : ndarray / torch.Tensor of any shape, or a non-empty dict name -> array. dtypes: float16/
            32/64, int8-64, uint8-64, bool, complex64.
        parts : dict, the parts the key was made from (stored so that ``entries()`` can list them).

        Returns
        -------
        Path of the entry file.
        """
        path = self._path(key)
        expected = self.key(parts)
        if key != expected:
            raise ValueError(f"key: expected self.key(parts) = {expected}, got {key}")
        single, named = _as_named_arrays(arrays)
        meta = {
            "format": _FORMAT,
            "key": key,
            "parts": json.loads(_canonical_json(parts)),
            "created": time.time(),
            "single": single,
            "arrays": {n: {"dtype": a.dtype.name, "shape": list(a.shape)} for n, a in named.items()},
        }
        meta["sha256"] = _checksum(meta, named)
        if path.exists() and not path.is_file():
            raise IsADirectoryError(
                f"key: the entry path {path} is a directory, expected a cache entry file; remove it"
            )
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"root: expected a directory, {self.root} is a file")
        # A private temp directory per write: save_file streams the arrays without copying them, and
        # recent safetensors (0.8) writes through its own temp file, which a killed writer would leave
        # behind under a name we do not choose; inside our directory it is found and cleaned with it.
        tmp_dir = self.root / f"{_TMP_PREFIX}{os.getpid()}.{_HOST}.{uuid.uuid4().hex}"
        tmp_dir.mkdir(parents=True)
        try:
            tmp = tmp_dir / f"{key}{_SUFFIX}"
            save_file(named, str(tmp), metadata={_META: json.dumps(meta, sort_keys=True)})
            os.chmod(tmp, default_file_mode())  # safetensors' temp file is 0600; a shared cache needs the umask's mode
            _fsync_file(tmp)
            try:
                os.replace(tmp, path)
            except PermissionError:
                # Windows refuses to replace a file another process has open; that file holds the
                # same content (same key), so keep it.
                if not path.is_file():
                    raise
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        _fsync_dir(self.root)
        return path

    def get_or_compute(
        self, parts: Mapping[str, Any], compute: Callable[[], Any]
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Return the cached value for ``parts``; on a miss call ``compute()`` once, store and return it.

        Parameters
        ----------
        parts : dict, see ``key``.
        compute : callable with no arguments returning an array / tensor or a dict name -> array.

        Returns
        -------
        ndarray (or dict name -> ndarray): exactly what a later ``get(self.key(parts))`` returns.
        """
        if not callable(compute):
            raise TypeError(f"compute: expected a callable with no arguments, got {type(compute).__name__}")
        key = self.key(parts)
        hit = self.get(key)
        if hit is not None:
            return hit
        value = compute()
        single, named = _as_named_arrays(value, name="compute()")
        try:
            self.put(key, named[_SINGLE] if single else named, parts)
        except OSError as exc:  # read-only or foreign cache: keep the result, say why it is not cached
            _access_warning(
                f"could not store the computed value in {self.root} ({type(exc).__name__}: {exc}); "
                "returning it uncached"
            )
        return named[_SINGLE] if single else named

    def sharded(
        self, parts: Mapping[str, Any], *, n_rows: int, row_shape, dtype: Any = "float32", shard_size: int | None = None
    ):
        """The resumable sharded store for ``parts`` (created, or reopened with its finished shards).

        See :class:`failwidgets.compute.store.ShardedStore`; ``failwidgets.compute.embed`` fills it.
        """
        from failwidgets.compute.store import DEFAULT_SHARD_SIZE, ShardedStore

        return ShardedStore.open(
            self.root,
            parts,
            n_rows=n_rows,
            row_shape=row_shape,
            dtype=dtype,
            shard_size=DEFAULT_SHARD_SIZE if shard_size is None else shard_size,
        )

    # -- remove ---------------------------------------------------------------------------------------
    def remove(self, key: str) -> bool:
        """Remove one entry (a single-file entry or a sharded store); returns whether it existed."""
        from failwidgets.compute.store import STORE_SUFFIX

        self._path(key)  # validates the key
        store = self.root / f"{key}{STORE_SUFFIX}"
        removed = False
        if store.is_dir():
            shutil.rmtree(store, ignore_errors=True)
            removed = True
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return removed

    def clear(self, predicate: Callable[[CacheEntry], bool] | None = None) -> int:
        """Remove every entry (or those for which ``predicate(entry)`` is true) and stale temp files.

        Parameters
        ----------
        predicate : callable CacheEntry -> bool, optional, e.g. ``lambda e: e.parts["layer"] == "fc"``.

        Returns
        -------
        int, the number of entries removed.
        """
        if predicate is not None and not callable(predicate):
            raise TypeError(
                f"predicate: expected a callable CacheEntry -> bool or None, got {type(predicate).__name__}"
            )
        self._remove_stale_temp_files()
        if predicate is None:
            keys = {p.stem for p in self._entry_paths()} | {e.key for e in self._sharded_entries()}
            return sum(self.remove(k) for k in keys)
        return sum(self.remove(e.key) for e in self.entries() if predicate(e))

    # -- internals ------------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"key: expected 64 lowercase hex characters (from EmbeddingCache.key), got {key!r}")
        return self.root / f"{key}{_SUFFIX}"

    def _entry_paths(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in self.root.iterdir() if p.suffix == _SUFFIX and _KEY.fullmatch(p.stem) and p.is_file())

    def _sharded_entries(self) -> list[CacheEntry]:
        """Entries of the sharded stores (``<key>.shards/`` directories), from their manifests."""
        from failwidgets.compute.store import STORE_SUFFIX, ShardedStore

        if not self.root.is_dir():
            return []
        out = []
        for p in self.root.iterdir():
            if p.suffix != STORE_SUFFIX or not _KEY.fullmatch(p.stem) or not p.is_dir():
                continue
            try:
                st = ShardedStore(p)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a store being created or broken; ShardedStore.open rebuilds a broken one
            out.append(
                CacheEntry(
                    key=st.key,
                    parts=st.parts,
                    size_bytes=st.size_bytes(),
                    created=st.created,
                    shapes={_SINGLE: (st.n_rows, *st.row_shape), "missing": (st.n_rows,)},
                    dtypes={_SINGLE: st.dtype.name, "missing": "bool"},
                    path=p,
                    complete=st.is_complete(),
                )
            )
        return out

    def _discard_corrupt(self, path: Path, before: os.stat_result, problem: str) -> None:
        warnings.warn(
            f"embedding cache: entry {path.name} is corrupt ({problem}); removed, it will be recomputed",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        try:
            now = path.stat()
            # Another process may have just replaced the bad file with a good one: leave that alone.
            if (now.st_ino, now.st_mtime_ns, now.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size):
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # read-only cache: report, still a miss
            _access_warning(f"could not remove the corrupt entry {path.name} ({type(exc).__name__}: {exc})")

    def _remove_stale_temp_files(self) -> None:
        """Remove temp directories whose writer died (same host, pid gone) or older than a day."""
        if not self.root.is_dir():
            return
        for p in self.root.iterdir():
            if not p.name.startswith(_TMP_PREFIX):
                continue
            fields = p.name[len(_TMP_PREFIX) :].split(".")
            try:
                age = time.time() - p.stat().st_mtime
                dead = len(fields) == 3 and fields[1] == _HOST and not _pid_alive(int(fields[0]))
            except (FileNotFoundError, ValueError):
                continue
            if not (dead or age > _STALE_SECONDS):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


# -- helpers ----------------------------------------------------------------------------------------------
_MAX_DEPTH = 100  # nesting of parts; deeper is surely a mistake (and would exhaust the stack)


def as_cache(cache: Any, *, allow_none: bool = True) -> EmbeddingCache | None:
    """``cache`` as an :class:`EmbeddingCache`: a cache as it is, a folder path wrapped, ``None`` kept.

    Raises ``TypeError`` naming ``cache`` for anything else.
    """
    if cache is None and allow_none:
        return None
    if cache is None or isinstance(cache, (str, os.PathLike)):
        return EmbeddingCache(cache)
    if not callable(getattr(cache, "get_or_compute", None)):
        raise TypeError(f"cache: expected an EmbeddingCache, a directory path or None, got {type(cache).__name__}")
    return cache


def _identity(value: Any) -> Any:
    """A JSON-able stand-in for one part of a key: models, arrays, tensors and sources by their fingerprint."""
    if value is None or isinstance(value, (str, int, float, bool, np.generic)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return list(value)
    if isinstance(value, dict):
        return {k: _identity(v) for k, v in value.items()}
    return fingerprint(value)


def cached(cache: Any, compute: Callable[[], Any], *, what: str, **parts: Any) -> Any:
    """``compute()`` through ``cache`` under one key convention: ``{"what": what, **parts}``.

    The one cache-or-compute path of the library (methods, demo, layouts). ``cache=None`` computes without
    storing. Parts that are models, arrays, tensors or image sources enter the key as their
    :func:`~failwidgets.compute.fingerprint`; everything else as it is (see :meth:`EmbeddingCache.key`).

    Parameters
    ----------
    cache : EmbeddingCache, a directory path, or None
    compute : callable with no arguments returning an array / tensor or a dict name -> array
    what : str, what is computed (``"lavise_features"``, ``"barlow_features"``, ...)
    **parts : the rest of the key: model, layer, data identity, parameters

    Returns
    -------
    What ``compute()`` returns, as numpy arrays when it came from (or went through) the cache.
    """
    store = as_cache(cache)
    if store is None:
        return compute()
    return store.get_or_compute({"what": str(what), **{k: _identity(v) for k, v in parts.items()}}, compute)


def _access_warning(message: str) -> None:
    warnings.warn(f"embedding cache: {message}", CacheAccessWarning, stacklevel=3)


def _canonical_json(parts: Any) -> str:
    if not isinstance(parts, Mapping):
        raise TypeError(f"parts: expected a dict with str keys, got {type(parts).__name__}")
    return json.dumps(
        _jsonable(parts, "parts"), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _jsonable(obj: Any, path: str, depth: int = 0) -> Any:
    """``obj`` as JSON-native values (numpy scalars unwrapped, tuples as lists), naming the bad path."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"parts: expected at most {_MAX_DEPTH} levels of nesting, got deeper at {path[:80]}...")
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        obj = obj.item()
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        if not np.isfinite(obj):
            raise ValueError(f"{path}: expected a finite number, got {obj!r}")
        return obj
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: expected str keys, got key {k!r} of type {type(k).__name__}")
            out[k] = _jsonable(v, f"{path}[{k!r}]", depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)]
    hint = " (pass fingerprint(value) instead)" if hasattr(obj, "shape") or hasattr(obj, "state_dict") else ""
    raise TypeError(
        f"{path}: expected a JSON-serialisable value (str, int, float, bool, None, list, dict), "
        f"got {type(obj).__name__}{hint}"
    )


def _as_named_arrays(value: Any, name: str = "arrays") -> tuple[bool, dict[str, np.ndarray]]:
    """(is_single, dict name -> C-contiguous little-endian ndarray) from an array or a dict of arrays."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"{name}: expected an array or a non-empty dict of arrays, got an empty dict")
        items, single = list(value.items()), False
    else:
        items, single = [(_SINGLE, value)], True
    out = {}
    for k, v in items:
        label = name if single else f"{name}[{k!r}]"
        if not isinstance(k, str) or not k or k == "__metadata__":
            raise ValueError(f"{name}: expected non-empty str array names other than '__metadata__', got {k!r}")
        arr = check_array(v, label, finite=False)
        if arr.dtype.newbyteorder("=") not in _DTYPES:
            raise TypeError(f"{label}: expected dtype float16/32/64, (u)int8-64, bool or complex64, got {arr.dtype}")
        out[k] = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return single, out


def _checksum(meta: dict, arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the metadata (without the checksum) and every array's name, dtype, shape and bytes."""
    return fingerprint({"meta": {k: v for k, v in meta.items() if k != "sha256"}, "arrays": dict(arrays)})


def _parse_meta(header: Mapping[str, str] | None) -> dict:
    meta = json.loads((header or {})[_META])
    if meta.get("format") != _FORMAT:
        raise ValueError(f"unknown entry format {meta.get('format')!r}")
    missing = {"key", "parts", "created", "single", "arrays", "sha256"} - set(meta)
    if missing:
        raise ValueError(f"header lacks {sorted(missing)}")
    meta["created"] = float(meta["created"])
    return meta


def _verify(key: str, meta: dict, arrays: Mapping[str, np.ndarray]) -> str | None:
    """None if the entry is intact, else what is wrong."""
    if meta.get("key") != key or EmbeddingCache.key(meta["parts"]) != key:
        return "its parts do not hash to its key"
    if set(arrays) != set(meta["arrays"]) or (meta["single"] and set(arrays) != {_SINGLE}):
        return "its arrays do not match its header"
    if _checksum(meta, arrays) != meta.get("sha256"):
        return "checksum mismatch"
    return None


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))  # Windows fsync needs write access
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
