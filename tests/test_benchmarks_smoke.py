"""Smoke test of the benchmark suite: every item's code path at toy sizes.

Checks the structure of the rows, the table and the JSON, and that both sides of each comparison agree
numerically where they must (same gradients, same CV scores, same words, same relations, identical
cached arrays). No timing assertions: speed goals are the suite's output, not test conditions.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from benchmarks import _common, scale_child
from benchmarks._common import Row, format_table, not_available, pick, write_json
from benchmarks.run import ITEMS, run_suite


@pytest.fixture(scope="module")
def suite():
    rows, env = run_suite("toy", verbose=False)
    return rows, env


def _rows(suite, item):
    return [r for r in suite[0] if r.item == item and r.available]


def test_every_item_runs_and_none_crashes(suite):
    rows, _ = suite
    assert {r.item for r in rows} == set(ITEMS)
    crashed = [r for r in rows if r.name == "(item crashed)"]
    assert not crashed, [r.note for r in crashed]
    # with the library present, only GPU rows may be unavailable on a CPU-only machine
    import torch

    missing = [r for r in rows if not r.available]
    assert all(r.device == "cuda" for r in missing) or torch.cuda.is_available(), [r.note for r in missing]
    assert all(r.note.startswith("not available: ") for r in missing)


def test_rows_state_target_size_device_timings_and_ratio(suite):
    for r in suite[0]:
        assert r.target and r.size and r.device in ("cpu", "cuda"), r
        if not r.available:
            assert r.ours_s is None and r.ratio is None and r.met is None
            continue
        assert r.ours_s is not None and r.ours_s > 0, r
        if r.baseline_s is not None:
            assert r.ratio == pytest.approx(r.baseline_s / r.ours_s), r
        assert r.met in (True, False, None)


def test_environment_records_load_average(suite):
    env = suite[1]
    assert len(env["loadavg_1_5_15"]) == 3 and len(env["loadavg_end_1_5_15"]) == 3
    assert set(env["item_wall_s"]) == set(ITEMS)


def test_both_sides_agree(suite):
    for r in _rows(suite, "cache"):
        assert r.agreement["identical"] is True
    grads = _rows(suite, "gradients")
    assert grads
    for r in grads:
        assert r.agreement["max_abs_diff"] <= 1e-5 * r.agreement["max_abs_grad"]
        assert r.met is True
    svm = [r for r in _rows(suite, "svm") if r.name.startswith("per-class CV")]
    assert svm
    for r in svm:
        assert r.agreement["max_cv_bal_acc_diff"] <= 0.01
        assert r.agreement["same_best_C"] == 1.0
        assert r.agreement["min_coef_cosine"] > 0.999
    (chance,) = [r for r in _rows(suite, "svm") if r.name.startswith("chance level")]
    assert chance.agreement["same_strengths"] is True and chance.ours_s > 0
    (lav,) = _rows(suite, "lavise")
    assert lav.agreement["share_filters_same_top_word"] >= 0.99
    assert lav.agreement["attention_max_abs_diff"] < 1e-5
    rel = _rows(suite, "relations")
    assert rel
    for r in rel:
        assert r.agreement["relations_max_abs_diff"] <= 1e-4 and r.agreement["same_masks"] is True


def test_barlow_and_widget_rows_report_their_measures(suite):
    mi, attack = _rows(suite, "barlow")
    assert 0.0 <= mi.agreement["topk_overlap"] <= 1.0
    assert attack.extra["steps_to_plateau_max"] <= 3  # toy profile: at most 3 steps
    names = [r.name for r in _rows(suite, "widgets")]
    assert any("slider step" in n for n in names) and any("node click" in n for n in names)
    for r in _rows(suite, "widgets"):
        assert r.extra["steps"] >= 1 and r.extra["p90_first_ms"] >= 0


def test_scale_rows_have_a_point_per_size_and_exponents(suite):
    rows = _rows(suite, "scale")
    assert {r.name for r in rows} == set(scale_child.METHODS)
    for r in rows:
        t = r.extra["time_s"]
        assert len(t) == 2 and len(r.extra["peak_MiB"]) == 2
        expected = math.log10(t[1] / t[0]) / math.log10(1000 / 100)  # toy sizes 100 and 1,000
        assert r.extra["time_exponent"] == pytest.approx(expected, abs=0.006)


def test_table_and_json_round_trip(suite, tmp_path):
    rows, env = suite
    table = format_table(rows, env)
    lines = table.splitlines()
    assert "load average" in lines[0]
    assert sum(line.startswith("| ") for line in lines) == len(rows) + 1  # header + one line per row
    path = write_json(rows, env, "toy", tmp_path / "out.json", latest=False)
    payload = json.loads(path.read_text())
    assert payload["profile"] == "toy" and len(payload["rows"]) == len(rows)
    assert payload["rows"][0].keys() == {f.name for f in dataclasses.fields(Row)}


def test_row_ratio_and_not_available_by_hand():
    r = Row("x", "y", "t", "s", baseline="a", ours="b", baseline_s=2.0, ours_s=0.5).finish()
    assert r.ratio == 4.0
    na = not_available("x", "y", "t", "s", "no GPU on this machine", device="cuda")
    assert not na.available and na.note == "not available: no GPU on this machine"
    assert "not available: no GPU" in format_table([na], _common.environment())
    assert pick("full", 1, 2, 3) == 3
    with pytest.raises(ValueError, match="profile"):
        pick("huge", 1, 2, 3)


def test_scale_child_prints_one_json_point_per_size(capsys):
    scale_child.main(["retrieval", "50", "500"])
    points = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(p["method"], p["n"]) for p in points] == [("retrieval", 50), ("retrieval", 500)]
    for p in points:
        assert p["memory"] == "tracemalloc" and p["time_s"] > 0 and p["peak_delta_mb"] > 0
        assert p["maxrss_mb"] > 0 and p["rss_now_mb"] > 0
    # the bank is 500 x 512 float32 (~1 MiB) plus its normalised copy: the traced peak must see it
    assert points[1]["peak_delta_mb"] >= 500 * 512 * 4 / 2**20


def test_run_child_reports_a_failing_point():
    with pytest.raises(RuntimeError, match="scale_child"):
        _common.run_child("benchmarks.scale_child", ["no-such-method", "10"], timeout=120)


def test_planted_barlow_group_matches_its_rule():
    from benchmarks.bench_barlow import planted_group

    x, fail, planted = planted_group(4000, 2048)
    assert planted == [17, 301, 1456, 2000]
    assert (x >= 0).all()
    hit = x[:, 2000] > np.quantile(x[:, 2000], 0.85)
    # failure probability 0.85 inside the planted region vs 0.1 outside (the other rules add some hits)
    assert fail[hit].mean() == pytest.approx(0.85, abs=0.05)
    assert fail[~hit].mean() < 0.5


def test_scale1m_rows_report_memory_steps_and_decodes(suite):
    fit, slider, tree = _rows(suite, "scale1m")
    assert fit.extra["classes_with_direction"] >= 1 and fit.extra["peak_delta_mb"] >= 0
    assert slider.extra["step_steps"] == 40 and slider.extra["decodes_at_most_shown"] is True
    assert slider.extra["decodes_build"] == 20  # 2 x 8 hardest / easiest + 4 decoded, nothing more
    assert tree.extra["click_steps"] >= 1 and tree.extra["decodes_build"] == 0
