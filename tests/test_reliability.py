"""The 84 bad inputs a probe found answered obscurely or silently wrong, each now answered clearly.

Every case raises ``ValueError`` / ``TypeError`` (or, for file-system situations, an ``OSError`` subclass)
whose message names the argument and what was expected, or returns a documented status (a miss with a
warning, a merged file, a single method given as a str). The numbers are the probe's case numbers.
Trait cases of the widgets ("a rejected value stays in the trait") are in
``tests/widgets/test_rejected_values.py``.
"""

from __future__ import annotations

import json
import warnings
from functools import cached_property

import numpy as np
import pytest
import torch

from failwidgets.compute import as_image_tensor, fingerprint, get_device, layer_activations
from failwidgets.compute.cache import CacheAccessWarning, EmbeddingCache
from failwidgets.compute.encoders import TorchvisionFeatureEncoder, encode_with_cache
from failwidgets.compute.images import iter_batches
from failwidgets.methods.barlow import fit_class_tree
from failwidgets.methods.directions import FailureDirections, GeneratorDecoder, RetrievalDecoder, upweight
from failwidgets.methods.lavise import LaViSE, compare_groups, whole_image_masks
from failwidgets.methods.relations import RelationGraph, RelationMiner
from failwidgets.world import WorldConfig

D = 16


class Ctx:
    """Small fitted objects, built on first use and shared by the cases of this module."""

    @cached_property
    def directions_data(self):
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(3), 60)
        X = rng.normal(size=(180, D))
        X[np.arange(180), 8 + labels] += 3.0
        minority = rng.random(180) < 0.3
        X[minority, 3] += 3.0
        err = (rng.random(180) < np.where(minority, 0.8, 0.03)) & (labels != 1)
        preds = np.where(err, (labels + 1) % 3, labels)
        train = rng.normal(size=(200, D))
        return X, labels, preds, train

    @cached_property
    def fd(self):
        X, labels, preds, train = self.directions_data
        return FailureDirections(max_modes=1, n_permutations=0, progress=False).fit(X, labels, preds, train)

    def slider(self, tmp_path, **kw):
        from failwidgets.widgets import DirectionSlider

        X, labels, preds, _ = self.directions_data
        images = np.zeros((len(X), 8, 8, 3), np.uint8)
        kw.setdefault("decoders", {"retrieval": RetrievalDecoder(X, images)})
        return DirectionSlider(
            self.fd,
            images,
            kw.pop("embeddings", X),
            kw.pop("labels", labels),
            preds,
            class_names=["a", "b", "c"],
            export_dir=str(tmp_path),
            **kw,
        )

    @cached_property
    def tree_data(self):
        from tests.widgets.test_tree_browser import _data

        return _data(0), _data(1)

    @cached_property
    def lavise(self):
        from failwidgets.compute.words import WordSpace
        from tests.methods.test_lavise import ColourNet, colour_world

        rng = np.random.default_rng(1)
        words = ["red", "green", "blue", "yellow", "grass", "sand"]
        space = WordSpace(words, rng.normal(size=(len(words), 16)), name="planted")
        images, masks, groups = colour_world(24, seed=5, bias=True)
        torch.manual_seed(0)
        lav = LaViSE(space, lr=3e-2, epochs=2, batch_size=64, p=4, s=1, quantile=0.05, progress=False).fit_model(
            ColourNet().eval(), images, "features", masks
        )
        ex = lav.explain(images, methods=("attention",))
        return lav, ex, images, groups

    @cached_property
    def relations(self):
        from tests.methods.test_relations import N_ATTR, _attributes, _planted_gradients

        rng = np.random.default_rng(0)
        acts, grads = _planted_gradients(rng, 80, share_4_5=1.5)
        attrs = _attributes(rng, 80)
        names = [f"a{k}" for k in range(N_ATTR)]
        miner = RelationMiner(progress=False, max_units=32).fit(acts, grads, attrs, names)
        return miner, acts, grads, attrs, names


CTX = Ctx()


def _graph_file(tmp_path, mutate):
    g = RelationGraph(["a0", "a1"])
    g.set(0, 1, "not related")
    data = g.to_dict()
    mutate(data)
    p = tmp_path / "g.json"
    p.write_text(json.dumps(data))
    return p


def _tree(tmp_path=None, **kw):
    from failwidgets.widgets import TreeBrowser

    (x, labels, preds, imgs), (hx, hl, hp, _) = CTX.tree_data
    x, labels, preds = kw.pop("features", x), kw.pop("labels", labels), kw.pop("preds", preds)
    args = dict(images=imgs, heldout=(hx, hl, hp), class_names=["a", "b", "c"], k=5, class_index=1)
    args.update(kw)
    return TreeBrowser.from_arrays(x, labels, preds, **args)


def _meta(shape):
    return torch.empty(shape, device="meta")


# -- the cases: number -> (call, expected exception(s), regex the message must match) ---------------------
def _fd_fit(**over):
    X, labels, preds, train = CTX.directions_data
    args = dict(embeddings=X, labels=labels, preds=preds, train_embeddings=train)
    args.update(over)
    return FailureDirections(max_modes=1, n_permutations=0, progress=False).fit(**args)


def _case_22():
    X, *_ = CTX.directions_data
    _fd_fit(embeddings=np.asarray(X, np.float64) * 1e300)


def _case_40():
    CTX.fd.rotated_embedding(0, 0.5, np.zeros(D))


def _case_117():
    miner, acts, grads, attrs, names = CTX.relations
    RelationMiner(progress=False).fit(acts[:0], grads[:0], attrs[:0], names)


def _case_114():
    miner, acts, grads, attrs, names = CTX.relations
    RelationMiner(progress=False).fit(acts, grads, attrs, ["a"] * len(names))


CASES = {
    # methods: directions
    7: (
        lambda: _fd_fit(labels=np.where(CTX.directions_data[1] == 0, -1, CTX.directions_data[1])),
        ValueError,
        r"labels: expected class indices >= 0",
    ),
    20: (lambda: _fd_fit(embeddings=_meta((180, D))), ValueError, r"embeddings: .*'meta' device"),
    21: (lambda: _fd_fit(embeddings=CTX.directions_data[0] + 5j), TypeError, r"embeddings: expected a real float"),
    22: (_case_22, ValueError, r"embeddings: expected values with \|x\| <="),
    23: (lambda: _fd_fit(preds=CTX.directions_data[2] > 0), TypeError, r"preds: expected integer class indices"),
    28: (lambda: CTX.fd.hardest(1.5), TypeError, r"class_index: expected a class index"),
    29: (lambda: CTX.fd.hardest("0"), TypeError, r"class_index: expected a class index"),
    35: (
        lambda: CTX.fd.top_captions(0, ["x"] * 5, np.ones((5, 8)), np.ones(D)),
        ValueError,
        r"caption_embeddings: expected shape \(\*, 16\)",
    ),
    40: (_case_40, ValueError, r"reference_embedding: expected a non-zero vector"),
    43: (lambda: upweight(np.array([-1.0, 1.0]), factor="2"), TypeError, r"factor: expected a number"),
    50: (lambda: GeneratorDecoder(torch.nn.Identity(), device="xla"), ValueError, r"device: 'xla' is not available"),
    # methods: barlow
    70: (
        lambda: fit_class_tree(*CTX.tree_data[0][:3], 1, heldout=CTX.tree_data[1][:2]),
        ValueError,
        r"heldout: expected a tuple \(features, labels, preds\)",
    ),
    # methods: lavise
    95: (lambda: CTX.lavise[0].explain(CTX.lavise[2], filters=[]), ValueError, r"filters: expected at least 1"),
    105: (lambda: compare_groups(CTX.lavise[1], CTX.lavise[3], k=0), ValueError, r"k: expected an integer >= 1"),
    108: (
        lambda: whole_image_masks(np.array([0, 1]), ["a", "b"], (-4, 4)),
        ValueError,
        r"image_size: expected an integer >= 1",
    ),
    # methods: relations
    114: (_case_114, ValueError, r"attribute_names: expected unique names"),
    117: (_case_117, ValueError, r"activations: expected at least 1 rows"),
    125: (lambda: CTX.relations[0].q_density(99, 0), ValueError, r"i: expected an attribute index in \[0, 6\)"),
    139: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d["edges"][0].pop("level"))),
        ValueError,
        r"data\['edges'\]\[0\]: expected an object with keys 'a', 'b' and 'level'",
    ),
    140: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d.update(edges=["a0", "a1"]))),
        ValueError,
        r"data\['edges'\]\[0\]: expected an object",
    ),
    141: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d.update(edges={"a": "a0"}))),
        ValueError,
        r"data\['edges'\]: expected a list",
    ),
    143: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d.update(attributes="a0a1"))),
        ValueError,
        r"data\['attributes'\]: expected a list of attribute names",
    ),
    144: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d.update(levels=5))),
        ValueError,
        r"data\['levels'\]: expected a list of level names",
    ),
    146: (
        lambda p: RelationGraph.load(_graph_file(p, lambda d: d.update(annotator={"x": [1]}))),
        ValueError,
        r"data\['annotator'\]: expected a str or null",
    ),
    148: (
        lambda p: (p / "b.json").write_bytes(b"\xff\xfe{") and RelationGraph.load(p / "b.json"),
        ValueError,
        r"path: .* is not a valid JSON annotation file \(UnicodeDecodeError",
    ),
    149: (
        lambda p: (p / "d.json").write_text("[" * 100_000) and RelationGraph.load(p / "d.json"),
        ValueError,
        r"path: .* is not a valid JSON annotation file \(RecursionError",
    ),
    150: (
        lambda p: (p / "good.json").write_text("{}") and RelationGraph(["a", "b"]).save(p / "good.json" / "x.json"),
        NotADirectoryError,
        r"path: expected a folder at .*good.json .*found a file",
    ),
    # widget: DirectionSlider
    159: (
        lambda p: CTX.slider(p, labels=np.where(CTX.directions_data[1] == 2, 7, CTX.directions_data[1])),
        ValueError,
        r"labels: expected class indices in \[0, 3\)",
    ),
    160: (
        lambda p: CTX.slider(p, embeddings=CTX.directions_data[0][:, :8]),
        ValueError,
        r"embeddings: expected shape \(\*, 16\)",
    ),
    162: (lambda p: CTX.slider(p, n_images=0), ValueError, r"n_images: expected an integer >= 1"),
    163: (lambda p: CTX.slider(p, n_decoded=-2), ValueError, r"n_decoded: expected an integer >= 1"),
    165: (
        lambda p: CTX.slider(p, captions=lambda c, m: None),
        TypeError,
        r"captions: expected the callable to return a dict with 'failure' and 'easy'",
    ),
    166: (lambda p: CTX.slider(p, decoders={"x": "not a decoder"}), TypeError, r"decoders\['x'\]: expected a Decoder"),
    # widget: TreeBrowser (constructor and methods; trait cases are in tests/widgets)
    185: (lambda: _tree(class_names=["a", "b"]), ValueError, r"class_names: expected at least 3 names"),
    186: (lambda: _tree(class_index=99), ValueError, r"class_index: expected a class index in \[0, 3\)"),
    187: (lambda: _tree(grouping="foo"), ValueError, r"grouping: expected one of \['label', 'prediction'\]"),
    188: (lambda: _tree(max_depth=7), ValueError, r"max_depth: expected 1, 2 or 3"),
    189: (lambda: _tree(k=0), ValueError, r"k: expected an integer >= 1"),
    190: (
        lambda: _tree(heldout=CTX.tree_data[1][:2]),
        ValueError,
        r"heldout: expected a tuple \(features, labels, preds\)",
    ),
    191: (
        lambda: _tree(heldout=(CTX.tree_data[1][0][:, :20],) + CTX.tree_data[1][1:3]),
        ValueError,
        r"heldout features: expected 30 columns",
    ),
    192: (lambda: _tree(n_samples=-1), ValueError, r"n_samples: expected an integer >= 1"),
    208: (
        lambda: _tree(labels=np.where(CTX.tree_data[0][1] == 0, -1, CTX.tree_data[0][1])),
        ValueError,
        r"labels: expected class indices >= 0",
    ),
    # widget: RelationshipAnnotator
    235: (
        lambda: _annotator(example_attributes=CTX.relations[3][:8, :2]),
        ValueError,
        r"example_attributes: expected shape \(8, 6\)",
    ),
    240: (lambda: _annotator(n_examples=-1), ValueError, r"n_examples: expected an integer >= 1"),
    # compute
    266: (lambda: as_image_tensor(_meta((2, 3, 8, 8))), ValueError, r"images: .*'meta' device"),
    269: (lambda: list(iter_batches(10, 2.5)), TypeError, r"batch_size: expected an integer >= 1"),
    274: (lambda: get_device("xla"), ValueError, r"device: 'xla' is not available"),
    281: (
        lambda: layer_activations(
            torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), torch.rand(2, 3, 1, 1), "0", progress=False
        ),
        ValueError,
        r"images: expected images large enough",
    ),
    289: (
        lambda: TorchvisionFeatureEncoder(torch.nn.Identity(), mean=(0.5, 0.5)),
        ValueError,
        r"mean: expected 3 finite numbers",
    ),
    290: (
        lambda: TorchvisionFeatureEncoder(torch.nn.Identity(), std=(0, 1, 1)),
        ValueError,
        r"std: expected 3 positive numbers",
    ),
    291: (
        lambda: TorchvisionFeatureEncoder(torch.nn.Identity(), image_size=-8),
        ValueError,
        r"image_size: expected an integer >= 1",
    ),
    292: (
        lambda: TorchvisionFeatureEncoder(torch.nn.Identity(), image_size=0),
        ValueError,
        r"image_size: expected an integer >= 1",
    ),
    298: (lambda: fingerprint(_cycle()), ValueError, r"obj: expected no reference cycles"),
    301: (
        lambda: encode_with_cache(
            TorchvisionFeatureEncoder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))),
            torch.rand(1, 3, 4, 4),
            cache="somepath",
        ),
        TypeError,
        r"cache: expected an EmbeddingCache",
    ),
    # compute: cache
    311: (
        lambda p: (p / "f").write_text("x") and EmbeddingCache(p / "f"),
        ValueError,
        r"root: expected a directory .*got the file",
    ),
    319: (
        lambda p: _put(EmbeddingCache(p), torch.ones(3, dtype=torch.bfloat16)),
        TypeError,
        r"arrays: expected a tensor of a numpy dtype .*bfloat16",
    ),
    328: (lambda: EmbeddingCache.key({"x": _deep(5000)}), ValueError, r"parts: expected at most 100 levels"),
    335: (
        lambda p: _dir_entry(p) and _put(EmbeddingCache(p), np.ones(3)),
        IsADirectoryError,
        r"key: the entry path .* is a directory, expected a cache entry file",
    ),
    # world
    367: (lambda: WorldConfig(pixel_noise="abc"), TypeError, r"pixel_noise: expected a number"),
    368: (lambda: WorldConfig(pixel_noise=None), TypeError, r"pixel_noise: expected a number"),
    369: (lambda: WorldConfig(pixel_noise=float("inf")), ValueError, r"pixel_noise: expected a finite number"),
    389: (
        lambda: _small_world()["val"].concept_masks("circle", [99]),
        ValueError,
        r"indices: expected image indices in \[0, 4\)",
    ),
}


def _small_world():
    from failwidgets.world import make_world

    return make_world(WorldConfig(seed=0, n_train=4, n_val=4, n_test=4, n_pool=4))


def _annotator(**kw):
    from failwidgets.widgets import RelationshipAnnotator

    miner, _, grads, attrs, _ = CTX.relations
    images = np.zeros((8, 8, 8, 3), np.uint8)
    return RelationshipAnnotator(miner, images=images, gradients=grads[:8], **kw)


def _cycle():
    a = [1]
    a.append(a)
    return a


def _deep(n):
    out = cur = []
    for _ in range(n):
        cur.append([])
        cur = cur[0]
    return out


def _parts():
    return {"what": "test", "n": 1}


def _put(cache, arr):
    return cache.put(cache.key(_parts()), arr, _parts())


def _dir_entry(root):
    root.mkdir(exist_ok=True)
    (root / f"{EmbeddingCache.key(_parts())}.safetensors").mkdir()
    return True


@pytest.mark.parametrize("number", sorted(CASES))
def test_bad_input_is_answered_clearly(number, tmp_path):
    call, exc, pattern = CASES[number]
    import inspect

    with pytest.raises(exc, match=pattern):
        call(tmp_path) if inspect.signature(call).parameters else call()


# -- cases answered by a documented status instead of an error ------------------------------------------------
def test_100_a_single_method_given_as_str_is_one_method():
    lav, ex, images, _ = CTX.lavise
    one = lav.explain(images, methods="attention")
    assert one.methods == ("attention",) and set(one.words) == {"attention"}
    np.testing.assert_array_equal(one.top_words("attention", 1), ex.top_words("attention", 1))


def test_131_numpy_integer_indices_are_indices():
    g = RelationGraph(["a", "b", "c"])
    g.set(np.int64(0), np.int32(2), np.int64(1))
    assert g.get("a", "c") == "probably negative"


def test_176_truncated_state_file_names_the_file(tmp_path):
    w = CTX.slider(tmp_path)
    path = tmp_path / "state.json"
    w.save_state(path)
    path.write_text(path.read_text()[:11])
    with pytest.raises(ValueError, match=r"path: .*state.json is not a valid JSON widget state file"):
        w.load_state(path)
    w.close()


def test_181_demo_given_as_a_str_says_use_variant():
    from failwidgets.widgets import DirectionSlider

    with pytest.raises(TypeError, match=r"demo: expected a failwidgets.demo.Demo or None, got str .*variant='default'"):
        DirectionSlider.from_demo(demo="default")


@pytest.mark.slow
def test_207_from_demo_class_index_out_of_range():
    from failwidgets.demo import load
    from failwidgets.widgets import TreeBrowser

    demo = load("default", progress=False)
    with pytest.raises(ValueError, match=r"class_index: expected a class index in \[0, 6\)"):
        TreeBrowser.from_demo(demo, class_index=99)


def test_202_visualise_without_images_says_images_are_needed():
    w = _tree(images=None)
    w.selected_node = 0
    with pytest.raises(ValueError, match=r"images: the feature views need the fit split's images"):
        w._on_visualise(None)
    w.close()


def test_constructor_failure_leaves_a_closable_object():
    from failwidgets.widgets import TreeBrowser

    with pytest.raises(ValueError):
        _tree(class_names=["a"])
    # what __del__ does with a half-built widget must not raise
    obj = TreeBrowser.__new__(TreeBrowser)
    obj.close()


def test_215_k_negative_is_rejected():
    from failwidgets.widgets import FilterWordExplorer

    _, ex, images, _ = CTX.lavise
    with pytest.raises(ValueError, match=r"k: expected an integer >= 1"):
        FilterWordExplorer(ex, images, k=-1)


def test_217_missing_image_files_are_named(tmp_path):
    from failwidgets.widgets import FilterWordExplorer

    _, ex, images, _ = CTX.lavise
    paths = [str(tmp_path / f"im{i}.png") for i in range(len(images))]
    with pytest.raises(
        ValueError, match=r"images: expected existing image files .*do not exist \(first: '.*im0.png'\)"
    ):
        FilterWordExplorer(ex, paths)


def test_224_documented_image_paths_work(tmp_path):
    from PIL import Image

    from failwidgets.widgets import FilterWordExplorer

    _, ex, images, _ = CTX.lavise
    paths = []
    for i, im in enumerate((images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    w = FilterWordExplorer(ex, paths)
    w.filter_list.value = 0
    assert len(w.grid.tiles) == len(ex.top_images[0]) and w.grid.image_bytes(0)
    w.close()


def test_263_ambiguous_uint8_layout_is_read_as_hwc():
    arr = np.arange(2 * 3 * 5 * 3, dtype=np.uint8).reshape(2, 3, 5, 3)
    t = as_image_tensor(arr)
    assert tuple(t.shape) == (2, 3, 3, 5)
    np.testing.assert_allclose(t[0, :, 1, 2].numpy(), arr[0, 1, 2] / 255.0, rtol=1e-6)


# -- cache on a foreign, read-only or odd disk ---------------------------------------------------------------
def _unreadable(monkeypatch, exc=FileNotFoundError):
    import failwidgets.compute.cache as cache_mod

    def refuse(*a, **k):
        raise exc("Permission denied (os error 13)")

    monkeypatch.setattr(cache_mod, "safe_open", refuse)


def test_333_336_337_a_directory_named_like_an_entry(tmp_path):
    _dir_entry(tmp_path)
    cache = EmbeddingCache(tmp_path)
    with pytest.warns(CacheAccessWarning, match=r"is not a file \(expected a cache entry file\)"):
        assert cache.get(cache.key(_parts())) is None  # 333: a miss, said so
    assert cache.entries() == []  # 336: not an entry
    assert cache.clear() == 0  # 337: nothing to remove, no error
    assert (tmp_path / f"{cache.key(_parts())}.safetensors").is_dir()  # left alone


def test_340_342_unreadable_entries_are_misses_with_a_warning(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    _put(cache, np.ones(3, np.float32))
    _unreadable(monkeypatch)  # what safetensors raises for EACCES
    with pytest.warns(CacheAccessWarning, match=r"exists but cannot be read"):
        assert cache.get(cache.key(_parts())) is None
    with pytest.warns(CacheAccessWarning, match=r"exists but cannot be read .*not listed"):
        assert cache.entries() == []


def test_346_read_only_cache_returns_the_computed_value(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    _put(cache, np.ones(3, np.float32))
    _unreadable(monkeypatch)

    def no_write(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(EmbeddingCache, "put", no_write)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = cache.get_or_compute(_parts(), lambda: np.full(3, 7.0, np.float32))
    np.testing.assert_array_equal(out, np.full(3, 7.0))
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheAccessWarning)]
    assert any("returning it uncached" in m for m in messages), messages


def test_352_corrupt_entry_on_a_read_only_cache_is_a_miss(tmp_path, monkeypatch):
    from pathlib import Path

    cache = EmbeddingCache(tmp_path)
    path = _put(cache, np.ones(3, np.float32))
    path.write_bytes(path.read_bytes()[:20])
    real_unlink = Path.unlink

    def refuse(self, *a, **k):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get(cache.key(_parts())) is None
    assert any("could not remove the corrupt entry" in str(w.message) for w in caught)


def test_361_existing_annotation_file_opens_without_writing(tmp_path, monkeypatch):
    import failwidgets.methods.relations.shared as shared
    from failwidgets.widgets import RelationshipAnnotator

    miner, *_ = CTX.relations
    g = RelationGraph(miner.attribute_names_)
    g.set(0, 1, "not related")
    path = g.save(tmp_path / "ann.json")
    before = path.read_bytes()

    def no_write(*a, **k):
        raise PermissionError(13, "Permission denied (read-only folder)", str(path))

    monkeypatch.setattr(shared, "atomic_write", no_write)
    w = RelationshipAnnotator(miner, autosave_path=path)
    assert w.graph.get("a0", "a1") == "not related"
    assert path.read_bytes() == before
    w.close()


def test_the_case_count_is_the_probes():
    """84 cases: 62 parametrized above, 18 status / situation tests here, 4 trait cases in tests/widgets."""
    status_cases = {100, 131, 176, 181, 207, 202, 215, 217, 224, 263, 333, 336, 337, 340, 342, 346, 352, 361}
    assert len(set(CASES) | status_cases) == 84 - 4, sorted(set(CASES) | status_cases)
