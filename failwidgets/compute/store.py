"""A sharded, resumable on-disk array of rows (N, *S), the large-data entry kind of the embedding cache.

Layout: ``<cache root>/<key>.shards/`` holding

- ``manifest.json``: the parts, ``n_rows``, ``row_shape``, ``dtype``, ``shard_size``, creation time and a
  sha256 of these fields;
- ``data.npy``: the whole (N, *S) array as a ``.npy`` file, pre-allocated (sparse on most file
  systems) when the store is created;
- ``done/<k>.json``: one marker per finished shard ``k`` (rows ``[k * shard_size, (k + 1) * shard_size)``)
  with the sha256 of the shard's bytes and the indices of its missing rows.

A shard's rows are written with plain positioned writes (no memory map, so the rows written never
count as this process's memory), fsynced, and only then is its marker written (temp file, fsync,
``os.replace``). A killed job therefore leaves complete shards with markers and at most the shard it
was computing without one; reopening the store computes exactly the shards without a marker. A marker
whose checksum no longer matches the bytes (a damaged disk, a writer that died after its marker was
replaced) is reported with ``CacheCorruptionWarning`` and that shard is recomputed.

Reads are memory-mapped (``np.load(mmap_mode="r")``): the (N, *S) result is never copied into RAM.
Formats are JSON and ``.npy`` (read without ``allow_pickle``), never pickle.

Two processes computing the same store at once both write the same rows (same inputs, same model); the
last marker wins. Missing rows (images that could not be read) are NaN and listed in the markers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from failwidgets._io import atomic_write, clean_stale_temps
from failwidgets.compute.cache import (
    _HOST,
    _TMP_PREFIX,
    CacheCorruptionWarning,
    EmbeddingCache,
    _canonical_json,
    _fsync_dir,
    _fsync_file,
    _pid_alive,
)

__all__ = ["DEFAULT_SHARD_SIZE", "STORE_SUFFIX", "ShardedStore"]

STORE_SUFFIX = ".shards"
DEFAULT_SHARD_SIZE = 4096
_FORMAT = 1
_DATA = "data.npy"
_MANIFEST = "manifest.json"
_DONE = "done"
_READ_CHUNK = 16 << 20  # bytes per read while verifying


@dataclasses.dataclass(frozen=True)
class _Manifest:
    key: str
    parts: dict
    n_rows: int
    row_shape: tuple
    dtype: str
    shard_size: int
    created: float

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["row_shape"] = list(self.row_shape)
        d["format"] = _FORMAT
        d["sha256"] = _sha({k: v for k, v in d.items() if k != "sha256"})
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> _Manifest:
        if d.get("format") != _FORMAT:
            raise ValueError(f"unknown store format {d.get('format')!r}")
        if _sha({k: v for k, v in d.items() if k != "sha256"}) != d.get("sha256"):
            raise ValueError("manifest checksum mismatch")
        return cls(
            key=d["key"],
            parts=d["parts"],
            n_rows=int(d["n_rows"]),
            row_shape=tuple(d["row_shape"]),
            dtype=str(d["dtype"]),
            shard_size=int(d["shard_size"]),
            created=float(d["created"]),
        )


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_json_atomic(path: Path, obj: Any) -> None:
    """Manifest / shard marker through the package's one atomic writer (temp, fsync, replace, dir fsync)."""
    atomic_write(path, json.dumps(obj, sort_keys=True), make_parents=False)


class ShardedStore:
    """Rows (N, *S) stored in shards that are written as they are computed.

    Open or create one with :meth:`open` (usually through ``EmbeddingCache.sharded``); then
    :meth:`pending_shards` lists what is left, :meth:`write_shard` stores one, and :meth:`read` returns
    the (N, *S) memory map once :meth:`is_complete`.

    Attributes
    ----------
    path : Path of the store directory.
    key : str, the cache key.
    parts : dict, what the key was made from.
    n_rows, row_shape, dtype, shard_size, n_shards, created
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path / _MANIFEST, encoding="utf-8") as f:
            m = _Manifest.from_json(json.load(f))
        self._m = m
        self.key, self.parts, self.n_rows = m.key, m.parts, m.n_rows
        self.row_shape, self.dtype, self.shard_size, self.created = (
            m.row_shape,
            np.dtype(m.dtype),
            m.shard_size,
            m.created,
        )
        self.n_shards = -(-self.n_rows // self.shard_size) if self.n_rows else 0
        self._row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self._offset: int | None = None
        self._verified: set[int] = set()

    def __repr__(self) -> str:
        return (
            f"ShardedStore({str(self.path)!r}, rows={self.n_rows}, row_shape={self.row_shape}, "
            f"shards={len(self.done_shards())}/{self.n_shards})"
        )

    # -- create / open --------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        parts: Mapping[str, Any],
        *,
        n_rows: int,
        row_shape: Sequence[int],
        dtype: Any = "float32",
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> ShardedStore:
        """The store for ``parts`` under ``root``: the existing one (any finished shards kept) or a new one.

        An existing store whose ``n_rows`` / ``row_shape`` / ``dtype`` differ from the request, or whose
        manifest does not parse, is reported (``CacheCorruptionWarning``) and replaced. Its
        ``shard_size`` is kept (the request's is used only for a new store).
        """
        root = Path(root)
        key = EmbeddingCache.key(parts)
        path = root / f"{key}{STORE_SUFFIX}"
        row_shape = tuple(int(s) for s in row_shape)
        dtype = np.dtype(dtype)
        if int(shard_size) < 1:
            raise ValueError(f"shard_size: expected an integer >= 1, got {shard_size}")
        if path.is_dir():
            try:
                store = cls(path)
                store._remove_dead_temp_files()
                if (store.key, store.n_rows, store.row_shape, store.dtype) == (key, int(n_rows), row_shape, dtype):
                    return store
                problem = (
                    f"it holds {store.n_rows} rows of {store.row_shape} {store.dtype}, asked for "
                    f"{n_rows} of {row_shape} {dtype}"
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"embedding cache: store {path.name} is unusable ({problem}); it is rebuilt",
                CacheCorruptionWarning,
                stacklevel=3,
            )
            shutil.rmtree(path, ignore_errors=True)
        manifest = _Manifest(
            key=key,
            parts=json.loads(_canonical_json(parts)),
            n_rows=int(n_rows),
            row_shape=row_shape,
            dtype=dtype.str,
            shard_size=int(shard_size),
            created=time.time(),
        )
        tmp = root / f"{_TMP_PREFIX}{os.getpid()}.{_HOST}.{uuid.uuid4().hex}"
        build = tmp / "store"
        (build / _DONE).mkdir(parents=True)
        try:
            data = np.lib.format.open_memmap(build / _DATA, mode="w+", dtype=dtype, shape=(int(n_rows), *row_shape))
            del data  # only the header is written; the rest of the file is a hole until rows arrive
            _fsync_file(build / _DATA)
            _write_json_atomic(build / _MANIFEST, manifest.to_json())
            try:
                os.rename(build, path)
            except OSError:
                if not path.is_dir():  # not "another process created it first"
                    raise
            _fsync_dir(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return cls(path)

    def _remove_dead_temp_files(self) -> None:
        """Marker temp files left by a killed writer (same host, pid gone)."""
        clean_stale_temps(self.path / _DONE)  # those of the atomic writer
        for p in (self.path / _DONE).glob(f"{_TMP_PREFIX}*"):
            fields = p.name[len(_TMP_PREFIX) :].split(".")
            try:
                if len(fields) == 3 and fields[1] == _HOST and not _pid_alive(int(fields[0])):
                    p.unlink(missing_ok=True)
            except ValueError:
                continue

    # -- shards ---------------------------------------------------------------------------------------
    def shard_range(self, k: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` of shard ``k``."""
        if not 0 <= int(k) < self.n_shards:
            raise IndexError(f"shard: expected an int in [0, {self.n_shards}), got {k}")
        start = int(k) * self.shard_size
        return start, min(start + self.shard_size, self.n_rows)

    def _marker(self, k: int) -> Path:
        return self.path / _DONE / f"{int(k):09d}.json"

    def _read_marker(self, k: int) -> dict | None:
        try:
            with open(self._marker(k), encoding="utf-8") as f:
                d = json.load(f)
            if d.get("key") != self.key or tuple(self.shard_range(k)) != (d.get("start"), d.get("stop")):
                raise ValueError("marker does not belong to this shard")
            return d
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            self._discard(k, f"{type(exc).__name__}: {exc}")
            return None

    def done_shards(self) -> list[int]:
        """Indices of the shards that have a marker (checksums are checked by :meth:`verify`)."""
        d = self.path / _DONE
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            stem, _, ext = n.partition(".")
            if ext == "json" and stem.isdigit() and int(stem) < self.n_shards:
                out.append(int(stem))
        return sorted(out)

    def pending_shards(self) -> list[int]:
        """Shards still to compute, in order."""
        done = set(self.done_shards())
        return [k for k in range(self.n_shards) if k not in done]

    def is_complete(self) -> bool:
        return not self.pending_shards()

    def _data_offset(self) -> int:
        if self._offset is None:
            m = np.load(self.path / _DATA, mmap_mode="r", allow_pickle=False)  # maps, touches no row
            self._offset = int(m.offset)
            del m
        return self._offset

    def write_shard(self, k: int, rows: Any, missing: Iterable[int] = ()) -> None:
        """Store the rows of shard ``k`` (durably) and then its marker.

        Parameters
        ----------
        k : shard index.
        rows : ndarray (stop - start, *row_shape); missing rows should be NaN.
        missing : global row indices of this shard whose image could not be read.
        """
        start, stop = self.shard_range(k)
        arr = np.ascontiguousarray(rows, dtype=self.dtype)
        if arr.shape != (stop - start, *self.row_shape):
            raise ValueError(f"rows: expected shape {(stop - start, *self.row_shape)} for shard {k}, got {arr.shape}")
        missing = sorted(int(i) for i in missing)
        if any(not start <= i < stop for i in missing):
            raise ValueError(f"missing: expected row indices in [{start}, {stop})")
        with open(self.path / _DATA, "r+b") as f:
            f.seek(self._data_offset() + start * self._row_bytes)
            f.write(memoryview(arr.reshape(-1).view(np.uint8)))
            f.flush()
            os.fsync(f.fileno())
        marker = {
            "format": _FORMAT,
            "key": self.key,
            "start": start,
            "stop": stop,
            "missing": missing,
            "sha256": self._shard_checksum(start, stop, missing, arr),
            "written": time.time(),
        }
        _write_json_atomic(self._marker(k), marker)
        self._verified.add(int(k))

    def _shard_checksum(self, start: int, stop: int, missing: list[int], arr: np.ndarray | None = None) -> str:
        h = hashlib.sha256(f"{self.key}|{start}|{stop}|{self.dtype.str}|{self.row_shape}|{missing}".encode())
        if arr is not None:
            h.update(memoryview(arr.reshape(-1).view(np.uint8)))
            return h.hexdigest()
        todo = (stop - start) * self._row_bytes
        buf = bytearray(min(_READ_CHUNK, max(todo, 1)))
        with open(self.path / _DATA, "rb") as f:
            f.seek(self._data_offset() + start * self._row_bytes)
            while todo > 0:
                n = f.readinto(memoryview(buf)[: min(len(buf), todo)])
                if not n:
                    break
                h.update(memoryview(buf)[:n])
                todo -= n
        return h.hexdigest()

    def verify(self) -> list[int]:
        """Check every finished shard's checksum (plain reads, not the memory map); a mismatching shard
        loses its marker (``CacheCorruptionWarning``) so that it is recomputed. Returns the bad shards."""
        bad = []
        for k in self.done_shards():
            if k in self._verified:
                continue
            d = self._read_marker(k)
            if d is None:
                bad.append(k)
                continue
            start, stop = self.shard_range(k)
            if self._shard_checksum(start, stop, list(d.get("missing", []))) != d.get("sha256"):
                self._discard(k, "checksum mismatch")
                bad.append(k)
            else:
                self._verified.add(k)
        return bad

    def _discard(self, k: int, problem: str) -> None:
        warnings.warn(
            f"embedding cache: shard {k} of {self.path.name} is corrupt ({problem}); it will be recomputed",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        self._marker(k).unlink(missing_ok=True)
        self._verified.discard(int(k))

    # -- read -----------------------------------------------------------------------------------------
    def missing(self) -> np.ndarray:
        """bool (N,): rows whose image could not be read (NaN in :meth:`read`)."""
        out = np.zeros(self.n_rows, bool)
        for k in self.done_shards():
            d = self._read_marker(k)
            if d is not None:
                out[np.asarray(d.get("missing", []), dtype=np.int64)] = True
        return out

    def read(self, *, verify: bool = True) -> np.ndarray:
        """The (N, *S) array as a read-only memory map.

        Raises
        ------
        RuntimeError when shards are still pending (compute them first), naming how many.
        """
        if verify:
            self.verify()
        pending = self.pending_shards()
        if pending:
            raise RuntimeError(f"store {self.path.name}: {len(pending)} of {self.n_shards} shards are not computed yet")
        return np.load(self.path / _DATA, mmap_mode="r", allow_pickle=False)

    def size_bytes(self) -> int:
        """Bytes allocated on disk (a pre-allocated, partly written data file counts what is written)."""
        total = 0
        for p in self.path.rglob("*"):
            try:
                st = p.stat()
                if p.is_file():
                    total += getattr(st, "st_blocks", st.st_size // 512 + 1) * 512 if os.name == "posix" else st.st_size
            except FileNotFoundError:
                pass
        return total

    def remove(self) -> bool:
        """Delete the store; returns whether it existed."""
        if not self.path.is_dir():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True
