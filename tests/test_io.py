"""failwidgets._io: atomic writes, file modes, stale temporaries, safe file names, paths kept in a folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from failwidgets._io import (
    atomic_open,
    atomic_write,
    clean_stale_temps,
    current_umask,
    default_file_mode,
    path_inside,
    safe_filename,
)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_text_and_bytes(tmp_path):
    p = atomic_write(tmp_path / "sub" / "a.txt", "héllo")
    assert p.read_text(encoding="utf-8") == "héllo"
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(p.parent)) == ["a.txt"]  # no temporary left


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_umask_mode_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        p = atomic_write(tmp_path / f"m{umask:o}.json", "{}")
        assert _mode(p) == 0o666 & ~umask == default_file_mode()
    finally:
        os.umask(old)


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    p = atomic_write(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p) as fh:
            fh.write("new, half written")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.json"]


def test_stale_temps_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    # a writer that dies inside atomic_open leaves its temporary behind
    import failwidgets._io as io_mod

    # load the module by its file (stdlib only), so the child does not pay for importing the package
    code = (
        "import os, sys, importlib.util as u\n"
        "spec = u.spec_from_file_location('fwio', sys.argv[2]); m = u.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "with m.atomic_open(sys.argv[1]) as fh:\n    fh.write('partial'); fh.flush(); os._exit(9)\n"
    )
    target = tmp_path / "a.json"
    subprocess.run([sys.executable, "-c", code, str(target), io_mod.__file__], check=False)
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and not target.exists()
    # a live writer's temporary (this process) must be kept
    own = tmp_path / f".a.json.fwtmp.{os.getpid()}.{leftovers[0].split('.')[4]}.{'0' * 32}.tmp"
    own.write_text("in progress")
    atomic_write(target, "done")
    assert sorted(os.listdir(tmp_path)) == sorted(["a.json", own.name])
    own.unlink()
    assert clean_stale_temps(tmp_path) == 0


def test_writing_onto_a_directory_or_under_a_file_names_the_problem(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match=r"path: expected a file, .*d is a directory"):
        atomic_write(tmp_path / "d", "x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"path: expected a folder at .*f to write x.json into"):
        atomic_write(tmp_path / "f" / "x.json", "x")
    with pytest.raises(TypeError, match=r"data: expected str or bytes"):
        atomic_write(tmp_path / "y", 3)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cat", "cat"),
        ("a/b", "a_b"),
        ("x/../../../TRAVERSED", "x_TRAVERSED"),
        ("..", "file"),
        ("../..", "file"),
        (".hidden", "hidden"),
        ("a\x00b\nc\td", "a_b_c_d"),
        ("C:\\Windows\\evil", "C_Windows_evil"),
        ("<img src=x onerror=alert(1)>", "_img_src_x_onerror_alert_1_"),
        ("CON", "_CON"),
        ("chat noir", "chat_noir"),
        ("", "file"),
        ("Ünïcödé-ok_1.2", "Ünïcödé-ok_1.2"),
    ],
)
def test_safe_filename(name, expected):
    out = safe_filename(name)
    assert out == expected
    assert "/" not in out and "\\" not in out and ".." not in out and out.isprintable()


def test_safe_filename_length_and_argument_check():
    assert len(safe_filename("x" * 1000)) == 120
    with pytest.raises(ValueError, match=r"max_length: expected an integer >= 1"):
        safe_filename("x", max_length=0)


def test_path_inside_rejects_escapes(tmp_path):
    assert path_inside(tmp_path, "a.csv") == (tmp_path / "a.csv").resolve()
    with pytest.raises(ValueError, match=r"export_dir: expected a file inside"):
        path_inside(tmp_path, "../outside.csv", argument="export_dir")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(ValueError, match=r"path: expected a file inside"):
        path_inside(tmp_path, "link/x.csv")


def test_every_writer_gives_new_files_the_umask_mode(tmp_path):
    """Cache entries, annotation files, widget state and snapshots: 0666 minus the umask, never 0600."""
    import numpy as np

    from failwidgets.compute.cache import EmbeddingCache
    from failwidgets.methods.relations import AnnotationFile, RelationGraph
    from failwidgets.widgets.parts import FailWidget

    old = os.umask(0o022)
    try:
        cache = EmbeddingCache(tmp_path / "cache")
        parts = {"what": "mode"}
        entry = cache.put(cache.key(parts), np.ones(3, np.float32), parts)
        g = RelationGraph(["a", "b"])
        g.set(0, 1, "not related")
        ann = g.save(tmp_path / "ann.json")
        AnnotationFile(tmp_path / "shared.json", ["a", "b"]).write(g)
        w = FailWidget()
        w.save_state(tmp_path / "state.json")
        w.export_html(tmp_path / "snap.html")
        w.close()
        for p in (entry, ann, tmp_path / "shared.json", tmp_path / "state.json", tmp_path / "snap.html"):
            assert _mode(p) == 0o644, (p, oct(_mode(p)))
    finally:
        os.umask(old)


def test_orphans_of_the_earlier_annotation_writer_are_removed(tmp_path):
    """``tempfile.mkstemp`` temporaries a killed save of an earlier version left next to the file."""
    import time

    old = tmp_path / ".ann.json.k2j_x8qa.tmp"
    recent = tmp_path / ".ann.json.zz11yy22.tmp"
    other = tmp_path / ".notes.txt.abcdefgh.tmp"
    for p in (old, recent, other):
        p.write_text("{")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    atomic_write(tmp_path / "ann.json", "{}")
    assert not old.exists() and recent.exists() and other.exists()  # only this file's, only old ones
