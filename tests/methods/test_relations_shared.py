"""Shared annotation files: a second writer is detected and merged (or refused), never overwritten silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from failwidgets.methods.relations import AnnotationConflictError, AnnotationFile, RelationGraph

NAMES = [f"a{k}" for k in range(6)]


def _graph(**labels):
    g = RelationGraph(NAMES)
    for pair, level in labels.items():
        a, b = pair.split("_")
        g.set(a, b, level)
    return g


def test_two_writers_merge_instead_of_overwriting(tmp_path):
    path = tmp_path / "ann.json"
    one, two = AnnotationFile(path, NAMES, writer="alice"), AnnotationFile(path, NAMES, writer="bob")
    assert one.read() is None and two.read() is None
    r1 = one.write(_graph(a0_a1="not related"))
    assert not r1.merged
    r2 = two.write(_graph(a2_a3="definitely negative"))
    assert r2.merged and r2.other_writer == "alice" and r2.added == 1 and r2.conflicts == ()
    on_disk = RelationGraph.load(path, NAMES)
    assert on_disk.get("a0", "a1") == "not related" and on_disk.get("a2", "a3") == "definitely negative"
    assert json.loads(path.read_text())["writer"] == "bob"
    # alice labels again from her own (older) graph: bob's label survives, hers is applied
    mine = r1.graph.copy()
    mine.set("a4", "a5", "probably positive")
    r3 = one.write(mine)
    assert r3.merged and r3.other_writer == "bob"
    assert len(RelationGraph.load(path, NAMES)) == 3


def test_own_changes_win_and_conflicts_are_reported(tmp_path):
    path = tmp_path / "ann.json"
    one, two = AnnotationFile(path, NAMES, writer="alice"), AnnotationFile(path, NAMES, writer="bob")
    base = one.write(_graph(a0_a1="not related")).graph
    two.read()
    two.write(_graph(a0_a1="probably positive"))  # bob relabels
    changed = base.copy()
    changed.set("a0", "a1", "definitely negative")  # alice relabels the same pair differently
    report = one.write(changed)
    assert report.conflicts == (("a0", "a1", "probably positive", "definitely negative"),)
    assert RelationGraph.load(path, NAMES).get("a0", "a1") == "definitely negative"
    # a pair alice cleared is cleared, a pair only bob touched stays bob's
    two.read()
    g = two.read()
    g.set("a2", "a3", "not related")
    two.write(g)
    cleared = report.graph.copy()
    cleared.clear("a0", "a1")
    one.write(cleared)
    final = RelationGraph.load(path, NAMES)
    assert final.get("a0", "a1") is None and final.get("a2", "a3") == "not related"


def test_refuse_names_the_other_writer(tmp_path):
    path = tmp_path / "ann.json"
    AnnotationFile(path, NAMES, writer="alice").write(_graph(a0_a1="not related"))
    strict = AnnotationFile(path, NAMES, writer="carol", on_conflict="refuse")
    with pytest.raises(AnnotationConflictError, match=r"was changed by alice since this writer \(carol\) read it"):
        strict.write(_graph(a2_a3="not related"))
    assert RelationGraph.load(path, NAMES).get("a2", "a3") is None  # nothing written
    strict.read()
    strict.write(_graph(a2_a3="not related"))  # after reading it, carol may write
    with pytest.raises(ValueError, match=r"on_conflict: expected one of \['merge', 'refuse'\]"):
        AnnotationFile(path, NAMES, on_conflict="overwrite")


def test_a_held_lock_times_out_with_a_clear_message(tmp_path):
    path = tmp_path / "ann.json"
    code = (
        "import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); l.acquire(); "
        "print('held', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path) + ".lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        f = AnnotationFile(path, NAMES, lock_timeout=0.3)
        with pytest.raises(TimeoutError, match=r"path: another writer has held .*ann.json.lock for more than 0.3 s"):
            f.write(_graph(a0_a1="not related"))
    finally:
        proc.kill()
        proc.wait()
    AnnotationFile(path, NAMES).write(_graph(a0_a1="not related"))  # the lock died with its holder


def test_two_annotator_widgets_on_one_autosave_file(tmp_path):
    from failwidgets.widgets import RelationshipAnnotator
    from tests.test_reliability import CTX

    miner = CTX.relations[0]
    path = tmp_path / "ann.json"
    w1 = RelationshipAnnotator(miner, autosave_path=path, auto_advance=False)
    w2 = RelationshipAnnotator(miner, autosave_path=path, auto_advance=False)
    w1.selected_pair = [0, 1]
    w1.level_buttons[0].click()
    w2.selected_pair = [2, 3]
    w2.level_buttons[4].click()
    on_disk = RelationGraph.load(path, miner.attribute_names_)
    assert on_disk.get("a0", "a1") == "definitely negative" and on_disk.get("a2", "a3") == "definitely positive"
    assert w2.graph.get("a0", "a1") == "definitely negative"  # w2 now shows w1's label too
    assert "was changed by" in w2.log.text and "RelationshipAnnotator" in w2.log.text
    w1.selected_pair = [4, 5]
    w1.level_buttons[2].click()
    assert len(RelationGraph.load(path, miner.attribute_names_)) == 3
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    w1.close()
    w2.close()
