"""EmbeddingCache: keys, round trips, listing, corruption, killed writers, concurrent writers, speed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import torch

import failwidgets.compute.cache as cache_module
from failwidgets.compute.cache import CacheCorruptionWarning, EmbeddingCache, default_cache_dir

REPO = Path(__file__).resolve().parents[2]
_REAL_SAFE_OPEN = cache_module.safe_open


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def _emb(n=50, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _child(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _temp_files(root: Path) -> list[Path]:
    """The writers' temp directories (or files) in a cache root."""
    return [p for p in root.iterdir() if p.name.startswith(".tmp.")] if root.is_dir() else []


def _files_being_written(root: Path) -> list[Path]:
    return [f for d in _temp_files(root) if d.is_dir() for f in d.iterdir()]


# -- root ----------------------------------------------------------------------------------------------
def test_root_argument_beats_env_beats_platformdirs(tmp_path, monkeypatch):
    monkeypatch.delenv("FAILWIDGETS_CACHE", raising=False)
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("failwidgets"))
    monkeypatch.setenv("FAILWIDGETS_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert EmbeddingCache().root == tmp_path / "env"
    assert EmbeddingCache(tmp_path / "arg").root == tmp_path / "arg"
    with pytest.raises(TypeError, match="root: expected a path"):
        EmbeddingCache(3)


# -- keys ----------------------------------------------------------------------------------------------
def test_key_is_sha256_of_canonical_json():
    parts = {"model": "abc", "layer": "fc", "n": 3, "eps": 0.5, "flags": [True, None]}
    hand = '{"eps":0.5,"flags":[true,null],"layer":"fc","model":"abc","n":3}'
    assert EmbeddingCache.key(parts) == hashlib.sha256(hand.encode()).hexdigest()
    assert EmbeddingCache.key({"w": "é"}) == hashlib.sha256('{"w":"é"}'.encode()).hexdigest()


def test_key_canonicalises_order_tuples_and_numpy_scalars():
    k = EmbeddingCache.key({"a": 1, "b": {"y": [1, 2], "x": 0.25}})
    assert EmbeddingCache.key({"b": {"x": np.float32(0.25), "y": (np.int64(1), 2)}, "a": np.int32(1)}) == k
    assert EmbeddingCache.key({"a": 1.0, "b": {"y": [1, 2], "x": 0.25}}) != k  # 1 and 1.0 differ
    assert EmbeddingCache.key({"a": np.bool_(True)}) == EmbeddingCache.key({"a": True})


def test_key_rejects_what_json_cannot_hold_naming_the_key():
    with pytest.raises(TypeError, match=r"parts\['encoder'\]\['model'\]: expected a JSON-serialisable .*Linear"):
        EmbeddingCache.key({"encoder": {"model": torch.nn.Linear(2, 2)}})
    with pytest.raises(TypeError, match=r"parts\['data'\]: .*ndarray \(pass fingerprint\(value\) instead\)"):
        EmbeddingCache.key({"data": np.zeros(3)})
    with pytest.raises(TypeError, match=r"parts\['m'\]: expected str keys, got key 1"):
        EmbeddingCache.key({"m": {1: "x"}})
    with pytest.raises(ValueError, match=r"parts\['t'\]\[1\]: expected a finite number"):
        EmbeddingCache.key({"t": [0.0, float("nan")]})
    with pytest.raises(TypeError, match="parts: expected a dict"):
        EmbeddingCache.key(["a"])


# -- round trips -----------------------------------------------------------------------------------------
def test_put_get_single_array_and_dict_of_arrays(tmp_path):
    cache = EmbeddingCache(tmp_path)
    emb = _emb()
    k1 = cache.key({"what": "single"})
    assert cache.get(k1) is None and not cache.contains(k1)
    cache.put(k1, emb, {"what": "single"})
    got = cache.get(k1)
    assert cache.contains(k1) and k1 in cache
    assert got.dtype == np.float32 and np.array_equal(got, emb)

    named = {
        "acts": np.arange(24, dtype=np.float16).reshape(2, 3, 4),
        "labels": np.array([3, 1], dtype=np.int64),
        "mask": np.array([[True, False]]),
        "pixels": np.full((2, 2), 255, dtype=np.uint8),
        "big_endian": np.arange(3, dtype=">f8"),
        "strided": emb[::2, ::3],
        "empty": np.zeros((0, 4), np.float32),
    }
    k2 = cache.key({"what": "dict"})
    cache.put(k2, named, {"what": "dict"})
    got = cache.get(k2)
    assert set(got) == set(named)
    for name, arr in named.items():
        assert got[name].shape == arr.shape and np.array_equal(got[name], arr), name
        assert got[name].dtype == arr.dtype.newbyteorder("="), name

    k3 = cache.key({"what": "tensor"})
    cache.put(k3, torch.ones(2, 3), {"what": "tensor"})
    assert np.array_equal(cache.get(k3), np.ones((2, 3), np.float32))


def test_put_checks_its_arguments(tmp_path):
    cache = EmbeddingCache(tmp_path)
    parts = {"x": 1}
    key = cache.key(parts)
    with pytest.raises(ValueError, match=r"key: expected self.key\(parts\)"):
        cache.put(cache.key({"x": 2}), _emb(), parts)
    with pytest.raises(ValueError, match="key: expected 64 lowercase hex"):
        cache.get("../../etc/passwd")
    with pytest.raises(TypeError, match=r"arrays\['s'\]: expected dtype .* got <U1"):
        cache.put(key, {"s": np.array(["a"])}, parts)
    with pytest.raises(TypeError, match="arrays: expected a numeric array, got dtype object"):
        cache.put(key, np.array([object()]), parts)
    with pytest.raises(ValueError, match="arrays: expected an array or a non-empty dict"):
        cache.put(key, {}, parts)
    with pytest.raises(TypeError, match="compute: expected a callable"):
        cache.get_or_compute(parts, _emb())
    assert cache.entries() == [] and _temp_files(tmp_path) == []


def test_second_identical_request_computes_nothing(tmp_path):
    emb = _emb()
    compute = Counter(emb)
    parts = {"encoder": {"name": "tiny", "weights": "f00"}, "data": "world/val"}
    first = EmbeddingCache(tmp_path).get_or_compute(parts, compute)
    second = EmbeddingCache(tmp_path).get_or_compute(parts, compute)  # a new cache object on the same root
    assert compute.calls == 1
    assert np.array_equal(first, emb) and np.array_equal(second, emb)
    EmbeddingCache(tmp_path).get_or_compute({**parts, "data": "world/test"}, compute)
    assert compute.calls == 2

    pair = Counter({"img": emb, "txt": emb[:3]})
    for _ in range(2):
        out = EmbeddingCache(tmp_path).get_or_compute({"what": "pair"}, pair)
    assert pair.calls == 1 and np.array_equal(out["txt"], emb[:3])


class _HeaderOnly:
    """A safe_open whose get_tensor fails: proves that its user reads headers only."""

    def __init__(self, *args, **kwargs):
        self._f = _REAL_SAFE_OPEN(*args, **kwargs)

    def __enter__(self):
        self._inner = self._f.__enter__()
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def metadata(self):
        return self._inner.metadata()

    def keys(self):
        return self._inner.keys()

    def get_tensor(self, name):
        raise AssertionError("an array was loaded")


def test_entries_list_parts_sizes_and_times_without_loading_arrays(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    t0 = time.time()
    cache.get_or_compute({"layer": "a"}, lambda: _emb(10, 4))
    cache.get_or_compute({"layer": "b"}, lambda: {"x": _emb(20, 4), "y": np.arange(5)})
    t1 = time.time()

    monkeypatch.setattr(cache_module, "safe_open", _HeaderOnly)
    entries = cache.entries()
    assert [e.parts for e in entries] == [{"layer": "a"}, {"layer": "b"}]
    assert [e.key for e in entries] == [cache.key({"layer": "a"}), cache.key({"layer": "b"})]
    assert all(t0 <= e.created <= t1 for e in entries)
    assert entries[0].shapes == {"array": (10, 4)} and entries[0].dtypes == {"array": "float32"}
    assert entries[1].shapes == {"x": (20, 4), "y": (5,)} and entries[1].dtypes["y"] == "int64"
    sizes = [os.path.getsize(e.path) for e in entries]
    assert [e.size_bytes for e in entries] == sizes
    assert entries[0].size_bytes >= 10 * 4 * 4 and entries[1].size_bytes >= 20 * 4 * 4 + 5 * 8
    assert cache.size_bytes() == sum(sizes)
    with pytest.raises(AssertionError, match="an array was loaded"):  # the guard is live
        cache.get(entries[0].key)
    assert cache.contains(entries[0].key)  # an error that is not corruption removes nothing


def test_remove_and_clear(tmp_path):
    cache = EmbeddingCache(tmp_path)
    for layer in ["a", "b", "c"]:
        cache.get_or_compute({"layer": layer}, lambda: _emb(4, 2))
    assert cache.remove(cache.key({"layer": "c"})) is True
    assert cache.remove(cache.key({"layer": "c"})) is False
    assert cache.clear(lambda e: e.parts["layer"] == "a") == 1
    assert [e.parts["layer"] for e in cache.entries()] == ["b"]
    (tmp_path / "notes.txt").write_text("not an entry")
    assert cache.clear() == 1
    assert cache.entries() == [] and cache.size_bytes() == 0
    assert (tmp_path / "notes.txt").exists()  # the cache removes only its own files


# -- corruption ----------------------------------------------------------------------------------------
def _stored(tmp_path, parts=None):
    cache = EmbeddingCache(tmp_path)
    parts = parts or {"layer": "layer4", "data": "d"}
    emb = _emb(200, 16)
    cache.get_or_compute(parts, lambda: emb)
    return cache, parts, emb, cache.root / f"{cache.key(parts)}.safetensors"


def _assert_detected_then_recomputed(cache, parts, emb, path):
    key = cache.key(parts)
    with pytest.warns(CacheCorruptionWarning, match=key):
        assert cache.get(key) is None
    assert not path.exists()
    compute = Counter(emb)
    assert np.array_equal(cache.get_or_compute(parts, compute), emb)
    assert compute.calls == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(cache.get(key), emb)


def test_truncated_entry_is_detected_removed_and_recomputed(tmp_path):
    cache, parts, emb, path = _stored(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    _assert_detected_then_recomputed(cache, parts, emb, path)


@pytest.mark.parametrize("where", ["array bytes", "parts in header", "last byte"])
def test_flipped_byte_is_detected_removed_and_recomputed(tmp_path, where):
    cache, parts, emb, path = _stored(tmp_path)
    data = bytearray(path.read_bytes())
    pos = {
        "array bytes": len(data) - emb.nbytes // 2,
        "parts in header": data.index(b"layer4") + 4,
        "last byte": len(data) - 1,
    }[where]
    data[pos] ^= 0x01  # "layer4" -> "layes4": still valid JSON, so only the key check catches it
    path.write_bytes(bytes(data))
    _assert_detected_then_recomputed(cache, parts, emb, path)


def test_garbage_file_is_reported_by_entries_and_get(tmp_path):
    cache, parts, emb, path = _stored(tmp_path)
    path.write_bytes(b"\x00" * 7)
    with pytest.warns(CacheCorruptionWarning):
        assert cache.entries() == []
    assert not path.exists()
    path.write_bytes(b"not a safetensors file at all, just text")
    _assert_detected_then_recomputed(cache, parts, emb, path)


def test_failed_write_leaves_no_entry_and_no_temp_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)

    def interrupted(arrays, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute({"a": 1}, lambda: _emb())
    assert not cache.contains(cache.key({"a": 1})) and _temp_files(tmp_path) == []


# -- processes -----------------------------------------------------------------------------------------
_BIG_WRITER = """
import sys, numpy as np
from failwidgets.compute.cache import EmbeddingCache
cache = EmbeddingCache(sys.argv[1])
cache.get_or_compute({"data": "big"}, lambda: np.full((int(sys.argv[2]), 512), 0.25, np.float32))
"""


def _unwritten_tail(path: Path, data_bytes: int) -> bool:
    """Whether the end of a file meant to end in ``data_bytes`` of 0.25f is missing or still zero."""
    size = path.stat().st_size
    if size < data_bytes:
        return True
    with open(path, "rb") as f:
        f.seek(size - 4)
        return f.read(4) != np.float32(0.25).tobytes()


def test_writer_killed_mid_write_leaves_a_miss_and_a_fresh_compute_stores_a_valid_entry(tmp_path):
    rows = 65_536  # 128 MiB of float32 (0.25 = bytes 00 00 80 3e): a write long enough to kill halfway
    attempts = []
    for attempt in range(3):  # the kill can miss the write window on a busy machine; it must hit once
        root = tmp_path / f"attempt{attempt}"
        proc = _child(_BIG_WRITER, str(root), str(rows))
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if any(f.stat().st_size > 0 for f in _files_being_written(root)):
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        leftovers = _files_being_written(root)
        mid_write = bool(leftovers) and _unwritten_tail(leftovers[0], rows * 512 * 4)
        attempts.append((proc.returncode, [(f.name, f.stat().st_size) for f in leftovers], mid_write))
        if proc.returncode == -signal.SIGKILL and mid_write:
            break
    else:
        pytest.fail(f"never killed a writer mid-write; (returncode, leftovers, mid-write) per attempt: {attempts}")

    cache = EmbeddingCache.__new__(EmbeddingCache)  # look before the constructor cleans up
    cache.root = root
    key = EmbeddingCache.key({"data": "big"})
    assert not cache.contains(key) and cache.get(key) is None and cache.entries() == []
    assert cache.size_bytes() == 0

    cache = EmbeddingCache(root)  # opening the cache removes the dead writer's temp directory
    assert _temp_files(root) == []
    compute = Counter(np.full((rows, 512), 0.25, np.float32))
    cache.get_or_compute({"data": "big"}, compute)
    assert compute.calls == 1
    got = cache.get(key)
    assert got.shape == (rows, 512) and np.all(got == 0.25)


def test_temp_files_of_live_writers_are_kept_and_stale_ones_removed(tmp_path):
    host = cache_module._HOST
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    live = tmp_path / f".tmp.{os.getpid()}.{host}.aaaa"
    dead_writer = tmp_path / f".tmp.{int(dead.stdout)}.{host}.bbbb"
    other_host_recent = tmp_path / ".tmp.1.ffffffff.cccc"
    other_host_old = tmp_path / ".tmp.1.ffffffff.dddd"
    for p in [live, dead_writer, other_host_recent, other_host_old]:
        p.mkdir()
        (p / "partial.safetensors").write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(other_host_old, (two_days_ago, two_days_ago))
    EmbeddingCache(tmp_path)
    assert sorted(_temp_files(tmp_path)) == sorted([live, other_host_recent])


_SHARED = np.arange(1_000_000, dtype=np.float32).reshape(1000, 1000)


def _race(root: str, seconds: float) -> tuple[int, int]:
    """Put the shared entry, then read it back (any hit must be intact), until time is up."""
    cache = EmbeddingCache(root)
    parts = {"data": "shared"}
    key = cache.key(parts)
    end, writes, hits = time.time() + seconds, 0, 0
    while time.time() < end:
        cache.put(key, _SHARED, parts)
        writes += 1
        for _ in range(3):
            got = cache.get(key)
            if got is not None:
                assert np.array_equal(got, _SHARED)
                hits += 1
    return writes, hits


_RACER = """
import sys, time, warnings
from pathlib import Path
from failwidgets.compute.cache import CacheCorruptionWarning
from tests.compute.test_cache import _race
warnings.simplefilter("error", CacheCorruptionWarning)
Path(sys.argv[2]).touch()  # ready: imports are done
print(*_race(sys.argv[1], 2.0))
"""


def test_two_processes_writing_one_key_do_not_corrupt_each_other(tmp_path):
    root, ready = tmp_path / "cache", tmp_path / "ready"
    proc = _child(_RACER, str(root), str(ready))
    while not ready.exists() and proc.poll() is None:
        time.sleep(0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        writes, hits = _race(str(root), 2.0)  # this process writes and reads the same key meanwhile
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    child_writes, child_hits = map(int, out.split())
    assert min(writes, child_writes) >= 2 and min(hits, child_hits) >= 1, (writes, child_writes)
    cache = EmbeddingCache(root)
    assert [e.parts for e in cache.entries()] == [{"data": "shared"}]
    assert _temp_files(root) == []
    assert np.array_equal(cache.get(cache.key({"data": "shared"})), _SHARED)
