"""The failure-map benchmark item at toy size: both sides agree, every row states what it measured."""

import pytest

from benchmarks import bench_map


@pytest.mark.slow
def test_map_item_rows_agree_at_toy_size():
    rows = bench_map.run("toy")
    names = [r.name for r in rows]
    assert sum(n.startswith("hypothesis") for n in names) == 4 and any(n.startswith("selection") for n in names)
    for r in rows:
        assert r.available and r.ours_s is not None and r.ours_s > 0 and r.target and r.size
        if r.name.startswith("hypothesis"):
            assert r.agreement["slice_overlap"] == 1.0  # the same slice as the naive ranking
        elif r.name.startswith("selection"):
            assert r.agreement["evidence_and_grid_filled"] is True
        else:
            assert r.agreement["identical"] is True  # the cached layout is the computed one
