"""The Ray engine on a local Ray instance started and stopped here: embeddings equal the local engine's,
a dead actor still ends with a complete identical store, a rerun computes only missing shards, and
per-class fits on Ray equal local fits."""

import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from failwidgets.compute import EmbeddingCache, as_image_tensor, embed, fingerprint
from failwidgets.data import GeneratedSource

ray = pytest.importorskip("ray", reason="the [ray] extra is part of the test extra")
pytestmark = pytest.mark.slow

ONE_ACTOR = {"num_actors": 1}  # fewer processes to start on a small CI machine (the demo-world job uses 2)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def local_ray():
    # workers import the same failwidgets as this process; a loaded CI machine needs time to start agents
    os.environ["PYTHONPATH"] = os.pathsep.join([REPO, *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


class TinyEncoder:
    """A 4-d image encoder; ``die_once`` / ``fail_once``: a flag file makes the first process that sees
    it missing exit (an actor dying mid-job) or raise."""

    name = "tiny"
    embed_dim = 4

    def __init__(self, die_once=None, fail_once=None):
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
        self.die_once, self.fail_once = die_once, fail_once

    def identity(self):
        return {"name": self.name, "weights": fingerprint(self.net)}

    def encode_images(self, images, *, batch_size=64, progress=True):
        for flag, die in ((self.die_once, True), (self.fail_once, False)):
            if flag is not None:
                try:
                    fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    continue
                os.close(fd)
                if die:
                    os._exit(1)
                raise RuntimeError("simulated encoder failure")
        with torch.no_grad():
            return self.net(as_image_tensor(images)).numpy()


def _pattern(i):
    return np.random.default_rng(i).integers(0, 256, (12, 12, 3), dtype=np.uint8)


def test_ray_embeddings_equal_local_on_the_demo_world_and_on_a_file_source(local_ray, tmp_path):
    import failwidgets as fw
    from failwidgets.demo.loading import load_model

    world = fw.make_world(fw.WorldConfig.demo(n_train=12, n_val=48, n_test=12, n_pool=12))
    enc = load_model("vl")
    local = embed(world["val"], enc, cache=False, batch_size=16, progress=False)
    on_ray = embed(
        world["val"],
        enc,
        cache=EmbeddingCache(tmp_path / "c"),
        batch_size=16,
        shard_size=16,
        engine="ray",
        progress=False,
    )
    assert on_ray.shape == local.shape and np.abs(np.asarray(on_ray) - local).max() <= 1e-5

    paths = []
    for i in range(30):
        p = tmp_path / "files" / f"{i:03d}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(_pattern(i)).save(p)
        paths.append(str(p))
    tiny = TinyEncoder()
    local = embed(paths, tiny, cache=False, batch_size=8, progress=False)
    cache = EmbeddingCache(tmp_path / "f")
    on_ray = embed(
        paths, tiny, cache=cache, batch_size=8, shard_size=8, engine="ray", ray_options=ONE_ACTOR, progress=False
    )
    assert np.abs(np.asarray(on_ray) - local).max() <= 1e-5
    # the local engine reads Ray's store as its own: nothing left to compute, same rows
    again = embed(paths, TinyEncoder(fail_once=str(tmp_path / "never-reached")), cache=cache, progress=False)
    assert not (tmp_path / "never-reached").exists()
    np.testing.assert_array_equal(again, on_ray)


def test_an_actor_dying_mid_job_still_ends_with_a_complete_identical_store(local_ray, tmp_path):
    src = GeneratedSource(48, _pattern, identity="pattern-ray-die")
    local = embed(src, TinyEncoder(), cache=False, batch_size=8, progress=False)
    flag = tmp_path / "died"
    out = embed(
        src,
        TinyEncoder(die_once=str(flag)),
        cache=EmbeddingCache(tmp_path / "c"),
        batch_size=8,
        shard_size=8,
        engine="ray",
        ray_options=ONE_ACTOR,
        progress=False,
    )
    assert flag.exists()  # an actor did exit on its first batch
    assert np.abs(np.asarray(out) - local).max() <= 1e-5
    store = next(iter((tmp_path / "c").glob("*.shards")))
    assert len(list((store / "done").glob("*.json"))) == 6


def test_a_rerun_after_a_failure_computes_only_the_missing_shards(local_ray, tmp_path):
    src = GeneratedSource(48, _pattern, identity="pattern-ray-rerun")
    local = embed(src, TinyEncoder(), cache=False, batch_size=8, progress=False)
    cache = EmbeddingCache(tmp_path / "c")
    flag = tmp_path / "failed"
    with pytest.raises(Exception, match="simulated encoder failure"):
        embed(
            src,
            TinyEncoder(fail_once=str(flag)),
            cache=cache,
            batch_size=8,
            shard_size=8,
            engine="ray",
            ray_options=ONE_ACTOR,
            progress=False,
        )
    store = next(iter((tmp_path / "c").glob("*.shards")))
    before = {p.name: p.stat().st_mtime_ns for p in (store / "done").glob("*.json")}
    assert len(before) < 6
    out = embed(
        src, TinyEncoder(), cache=cache, batch_size=8, shard_size=8, engine="ray", ray_options=ONE_ACTOR, progress=False
    )
    after = {p.name: p.stat().st_mtime_ns for p in (store / "done").glob("*.json")}
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())  # finished shards untouched
    assert np.abs(np.asarray(out) - local).max() <= 1e-5


def _class_data(n_classes=6, per_class=40, d=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    X = rng.normal(size=(len(labels), d)).astype(np.float32)
    preds = labels.copy()
    wrong = X[:, 0] + 0.5 * rng.normal(size=len(labels)) > 0.8  # failures along one feature
    preds[wrong] = (labels[wrong] + 1) % n_classes
    return X, labels, preds, rng.normal(size=(80, d)).astype(np.float32)


def test_failure_directions_on_ray_equal_local_fits(local_ray):
    from failwidgets.methods import FailureDirections

    X, labels, preds, train = _class_data()
    kw = {"n_permutations": 3, "max_modes": 2, "progress": False}
    a = FailureDirections(**kw).fit(X, labels, preds, train)
    b = FailureDirections(engine="ray", **kw).fit(X, labels, preds, train)
    assert a.status_ == b.status_ and sum(s == "ok" for s in a.status_) >= 4
    for name in ("coef_", "intercept_", "strength_", "chance_", "p_value_", "mode_decision_values_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert [len(m) for m in a.modes_] == [len(m) for m in b.modes_]


def test_barlow_trees_per_class_on_ray_equal_local_fits(local_ray):
    from failwidgets.methods.barlow import fit_class_trees

    X, labels, preds, _ = _class_data()
    held = _class_data(seed=1)[:3]
    kw = {"max_depth": 2, "k": 4, "heldout": held, "errors": "skip"}
    a = fit_class_trees(X, labels, preds, **kw)
    b = fit_class_trees(X, labels, preds, engine="ray", **kw)
    assert list(a) == list(b) and len(a) >= 4
    for c in a:
        assert a[c].to_frame(valid_only=False).equals(b[c].to_frame(valid_only=False))
        np.testing.assert_array_equal(a[c].fit_indices, b[c].fit_indices)
        np.testing.assert_array_equal(a[c].tree.apply(X), b[c].tree.apply(X))


def test_the_ray_engine_without_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'failwidgets\[ray\]'"):
        embed(np.zeros((2, 8, 8, 3), np.uint8), TinyEncoder(), cache=EmbeddingCache(tmp_path), engine="ray")
    from failwidgets.methods import FailureDirections

    X, labels, preds, train = _class_data()
    with pytest.raises(ImportError, match=r"failwidgets\[ray\]"):
        FailureDirections(engine="ray", progress=False).fit(X, labels, preds, train)


def test_the_ray_engine_needs_a_store():
    with pytest.raises(ValueError, match="cache: engine='ray'"):
        embed(np.zeros((2, 8, 8, 3), np.uint8), TinyEncoder(), cache=False, engine="ray")
    with pytest.raises(ValueError, match="engine"):
        embed(np.zeros((2, 8, 8, 3), np.uint8), TinyEncoder(), cache=False, engine="spark")
