"""Every writer survives SIGKILL mid-write, and a concurrent reader never sees a truncated file.

Each trial forks a child process (cheap: the writer's objects are already built) that writes version
after version of one file in a loop, reporting ``start v`` / ``done v`` through a pipe; the parent
kills it with SIGKILL after a random 1-40 ms and checks the file: it must hold the last completed
version or the one in flight, complete (it parses and carries its whole payload), never truncated
or empty. Temporaries of the killed writers must be gone after the next write. 20 trials per writer
(``N_TRIALS``); a reader test reads while a child writes for 2 s.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np
import pandas as pd
import pytest
import traitlets

from failwidgets.widgets.parts import FailWidget

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

N_TRIALS = 20


def _fork_writer(write, start: int = 0):
    """Start a child that calls ``write(v)`` for v = start, start + 1, ...; returns (pid, read fd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            v = start
            while True:
                os.write(w, f"s{v}\n".encode())
                write(v)
                os.write(w, f"d{v}\n".encode())
                v += 1
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _kill(pid: int, r: int) -> tuple[int | None, int | None]:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    lines = b"".join(chunks).decode().split()
    done = [int(x[1:]) for x in lines if x.startswith("d")]
    started = [int(x[1:]) for x in lines if x.startswith("s")]
    return (done[-1] if done else None), (started[-1] if started else None)


def _run_trials(path, write, read_version, seed=0, n=N_TRIALS, temps_cleaned_on_write=True):
    """Kill ``n`` writers at random moments; return how many kills landed inside a write."""
    rng = np.random.default_rng(seed)
    write(-1)  # a good previous file
    last_good = -1
    mid = 0
    for t in range(n):
        pid, r = _fork_writer(write, start=last_good + 1)
        time.sleep(float(rng.uniform(0.001, 0.04)))
        done, started = _kill(pid, r)
        in_flight = started if started is not None and started != done else None
        mid += in_flight is not None
        allowed = {last_good if done is None else done}
        if in_flight is not None:
            allowed.add(in_flight)
        got = read_version(path)  # raises on a truncated / unparsable file
        assert got in allowed, f"trial {t}: file holds version {got}, expected one of {sorted(allowed)}"
        last_good = got
    write(last_good + 1)  # the next write cleans up the killed writers' temporaries
    if temps_cleaned_on_write:
        left = [n for n in os.listdir(os.path.dirname(path)) if ".tmp" in n]
        assert left == [], left
    print(f"{os.path.basename(path)}: {n} kills, {mid} inside a write, file always complete")
    return mid


def _payload(v: int, n: int = 20_000) -> dict:
    return {"version": v, "rows": [[v, i] for i in range(n)]}


def _read_json_payload(path) -> int:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    assert len(data["rows"]) == 20_000 and data["rows"][-1] == [data["version"], 19_999]
    return data["version"]


# -- the writers -----------------------------------------------------------------------------------------
def _state_widget():
    class Big(FailWidget):
        _state_traits = ("step", "rows")
        step = traitlets.Int(0)
        rows = traitlets.Unicode("")

    return Big()


def test_save_state_survives_sigkill(tmp_path):
    w, reader = _state_widget(), _state_widget()
    path = str(tmp_path / "state.json")

    def write(v):
        w.step, w.rows = v, "x" * 300_000 + f"end {v}"
        w.save_state(path)

    def read(p):
        d = json.load(open(p, encoding="utf-8"))
        assert len(d["rows"]) == 300_000 + len(f"end {d['step']}") and d["rows"].endswith(f"end {d['step']}")
        reader.load_state(p)
        assert reader.step == d["step"]
        return d["step"]

    mid = _run_trials(path, write, read)
    w.close()
    reader.close()
    assert mid >= 1, "no kill landed inside a write; the test proved nothing"


def test_export_html_survives_sigkill(tmp_path):
    import ipywidgets as W

    w = _state_widget()
    box = W.HTML("")
    w.children = [box]
    path = str(tmp_path / "snap.html")

    def write(v):
        box.value = f"<b>version {v}</b>" + "<i>x</i>" * 20_000 + f"<span>end {v}</span>"
        w.export_html(path)

    def read(p):
        text = open(p, encoding="utf-8").read()
        assert text.rstrip().endswith("</html>")
        v = int(text.split("<b>version ")[1].split("<")[0])
        assert f"<span>end {v}</span>" in text
        return v

    assert _run_trials(path, write, read) >= 1
    w.close()


def test_relation_graph_and_annotation_file_survive_sigkill(tmp_path):
    from failwidgets.methods.relations import AnnotationFile, RelationGraph

    names = [f"attr{i}" for i in range(60)]
    path = str(tmp_path / "ann.json")
    shared = AnnotationFile(path, names)

    def graph(v):
        g = RelationGraph(names, annotator=f"v{v}")
        for i in range(60):
            for j in range(i + 1, 60):
                g.set(i, j, (i + j + v) % 5)
        return g

    def write(v):
        if v % 2:
            graph(v).save(path)  # RelationGraph.save
        else:
            shared._version = None  # what the widget's autosave does, but without merging in the old file
            shared._base = None
            shared.write(graph(v))

    def read(p):
        g = RelationGraph.load(p, names)
        assert len(g) == 1770
        v = int(g.annotator[1:])
        assert g == graph(v) or g.edges() == graph(v).edges()
        return v

    assert _run_trials(path, write, read) >= 1


def test_flagged_csv_export_survives_sigkill(tmp_path):
    from failwidgets._io import atomic_write

    path = str(tmp_path / "flagged_a_mode1.csv")
    n = 30_000

    def write(v):  # what DirectionSlider._on_export does with its DataFrame
        df = pd.DataFrame({"index": np.arange(n), "decision_value": np.full(n, -float(v + 2)), "error": True})
        atomic_write(path, df.to_csv(index=False), newline="")

    def read(p):
        df = pd.read_csv(p)
        assert len(df) == n and df["decision_value"].nunique() == 1
        return int(-df["decision_value"].iloc[0]) - 2

    assert _run_trials(path, write, read) >= 1


def test_cache_put_survives_sigkill(tmp_path):
    import warnings

    from failwidgets.compute.cache import CacheCorruptionWarning, EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache")
    parts = {"what": "kill test"}
    key = cache.key(parts)

    def write(v):
        cache.put(key, np.full((1000, 512), v, np.float32), parts)

    def read(_):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheCorruptionWarning)
            arr = cache.get(key)
        assert arr is not None and arr.shape == (1000, 512) and np.all(arr == arr[0, 0])
        return int(arr[0, 0])

    rng_path = str(cache.root / f"{key}.safetensors")
    mid = _run_trials(rng_path, write, read, temps_cleaned_on_write=False)
    EmbeddingCache(cache.root)  # opening the cache removes dead writers' temp directories
    assert [p.name for p in cache.root.iterdir()] == [f"{key}.safetensors"]
    assert mid >= 1


def test_benchmark_results_survive_sigkill(tmp_path):
    sys.path.insert(0, os.getcwd())
    from benchmarks._common import write_json

    path = tmp_path / "bench.json"

    def write(v):
        env = {"time_utc": "2026-12-01T00:00:00+0000", "v": v, "pad": "x" * 400_000}
        write_json([], env, "toy", path, latest=False)

    def read(p):
        d = json.loads(open(p, encoding="utf-8").read())
        assert len(d["environment"]["pad"]) == 400_000
        return d["environment"]["v"]

    assert _run_trials(str(path), write, read) >= 1


def test_a_concurrent_reader_never_sees_a_truncated_file(tmp_path):
    from failwidgets._io import atomic_write

    path = str(tmp_path / "shared.json")
    n = 2000

    def read(p):
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)  # raises on a partial file
        assert len(data["rows"]) == n and data["rows"][-1] == [data["version"], n - 1]
        return data["version"]

    atomic_write(path, json.dumps(_payload(-1, n)))
    pid, r = _fork_writer(lambda v: atomic_write(path, json.dumps(_payload(v, n))))
    reads, versions = 0, set()
    t_end = time.monotonic() + 2.0
    try:
        while time.monotonic() < t_end:
            versions.add(read(path))
            reads += 1
    finally:
        _kill(pid, r)
    print(f"concurrent reader: {reads} reads of {len(versions)} versions, none truncated")
    assert reads > 5 and len(versions) > 1, (reads, versions)
