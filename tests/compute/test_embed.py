"""Streaming embed: the sharded store, kill-and-resume, bad input, and streamed == in-memory."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from failwidgets.compute import (
    EmbeddingCache,
    SkippedImagesWarning,
    as_image_tensor,
    embed,
    fingerprint,
    image_batches,
    layer_activations,
    output_gradients,
)
from failwidgets.compute.cache import CacheCorruptionWarning
from failwidgets.data import GeneratedSource, SourceReadError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TinyEncoder:
    """A 4-d image encoder that counts the rows it encodes."""

    name = "tiny"
    embed_dim = 4

    def __init__(self, fail_after=None):
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
        self.rows, self.fail_after = 0, fail_after

    def identity(self):
        return {"name": self.name, "weights": fingerprint(self.net)}

    def encode_images(self, images, *, batch_size=64, progress=True):
        x = as_image_tensor(images)
        if self.fail_after is not None and self.rows >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.rows += len(x)
        with torch.no_grad():
            return self.net(x).numpy()


def _pattern(i):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)


def _write_folder(root, imgs, labels):
    paths = []
    for i, (im, y) in enumerate(zip(imgs, labels)):
        d = os.path.join(root, f"c{y}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"{i:04d}.png")
        Image.fromarray(im).save(p)
        paths.append(p)
    return paths


def test_embed_returns_a_memory_map_and_a_second_call_computes_nothing(tmp_path):
    src = GeneratedSource(40, _pattern, identity="pattern-v1")
    enc = TinyEncoder()
    cache = EmbeddingCache(tmp_path)
    a = embed(src, enc, cache=cache, batch_size=8, shard_size=16, progress=False)
    assert isinstance(a, np.memmap) and a.shape == (40, 4) and a.dtype == np.float32 and not a.flags.writeable
    ref = enc.net(as_image_tensor(src)).detach().numpy()
    np.testing.assert_allclose(a, ref, atol=1e-6)
    rows = enc.rows
    b = embed(src, enc, cache=cache, batch_size=8, progress=False)
    assert enc.rows == rows
    np.testing.assert_array_equal(a, b)
    (entry,) = cache.entries()
    assert entry.complete and entry.shapes["array"] == (40, 4) and entry.path.name.endswith(".shards")
    assert cache.clear() == 1 and cache.entries() == []


def test_interrupted_embed_resumes_from_the_last_complete_shard(tmp_path):
    src = GeneratedSource(50, _pattern, identity="pattern-v1")
    cache = EmbeddingCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        embed(src, TinyEncoder(fail_after=28), cache=cache, batch_size=4, shard_size=10, progress=False)
    (entry,) = cache.entries()
    assert not entry.complete
    again = TinyEncoder()
    out = embed(src, again, cache=cache, batch_size=4, shard_size=10, progress=False)
    assert again.rows == 30  # rows 0-19 were in finished shards; the shard in progress (20-29) is redone
    np.testing.assert_array_equal(out, embed(src, TinyEncoder(), cache=False, batch_size=4, progress=False))


_CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {here!r})
from test_embed import TinyEncoder, _pattern
from failwidgets.compute import EmbeddingCache, embed
from failwidgets.data import GeneratedSource

class Slow(TinyEncoder):
    def encode_images(self, images, **kw):
        time.sleep(0.1)
        return super().encode_images(images, **kw)

embed(GeneratedSource(160, _pattern, identity="pattern-v1"), Slow(), cache=EmbeddingCache({root!r}),
      batch_size=4, shard_size=8, progress=False)
print("finished")
"""


@pytest.mark.slow
def test_sigkill_mid_embed_then_resume_gives_identical_result(tmp_path):
    root = tmp_path / "cache"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(repo=REPO, here=os.path.dirname(__file__), root=str(root)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    done_dir = None
    try:
        while time.time() < deadline:
            stores = list(root.glob("*.shards/done")) if root.is_dir() else []
            if stores and len([n for n in os.listdir(stores[0]) if n.endswith(".json")]) >= 3:
                done_dir = stores[0]
                break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        assert done_dir is not None, proc.communicate()[1].decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = len([n for n in os.listdir(done_dir) if n.endswith(".json")])
    assert 3 <= finished < 20
    enc = TinyEncoder()
    src = GeneratedSource(160, _pattern, identity="pattern-v1")
    out = embed(src, enc, cache=EmbeddingCache(root), batch_size=4, shard_size=8, progress=False)
    assert enc.rows == 160 - 8 * finished  # only the shards without a marker, nothing more
    np.testing.assert_array_equal(out, embed(src, TinyEncoder(), cache=False, batch_size=4, progress=False))


def test_streamed_imagefolder_equals_in_memory_on_the_demo_world(tmp_path):
    import torchvision

    import failwidgets as fw
    from failwidgets.demo.loading import load_model

    world = fw.make_world(fw.WorldConfig.demo(n_train=12, n_val=48, n_test=12, n_pool=12))
    split = world["val"]
    _write_folder(tmp_path / "val", split.images, split.labels)
    folder = torchvision.datasets.ImageFolder(str(tmp_path / "val"))
    order = [int(os.path.basename(p)[:4]) for p, _ in folder.samples]
    enc = load_model("vl")
    ref = enc.encode_images(split.images, progress=False)
    streamed = embed(folder, enc, cache=EmbeddingCache(tmp_path / "c"), batch_size=16, num_workers=1, progress=False)
    assert np.abs(np.asarray(streamed) - ref[order]).max() <= 1e-5
    direct = embed(split, enc, cache=False, batch_size=16, progress=False)
    assert np.abs(direct - ref).max() <= 1e-5


def test_unreadable_file_raises_naming_it_or_is_skipped_as_a_nan_row(tmp_path):
    imgs = np.stack([_pattern(i) for i in range(6)])
    paths = _write_folder(tmp_path / "imgs", imgs, [0, 0, 0, 1, 1, 1])
    with open(paths[4], "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n broken")
    cache = EmbeddingCache(tmp_path / "c")
    with pytest.raises(SourceReadError, match=r"images\[4\] \(.*0004.png\)"):
        embed(paths, TinyEncoder(), cache=cache, batch_size=2, num_workers=0, progress=False)
    with pytest.warns(SkippedImagesWarning, match=r"1 of 6 images .* 4 \(.*0004.png\)"):
        out, missing = embed(
            paths,
            TinyEncoder(),
            cache=cache,
            batch_size=2,
            num_workers=1,
            on_error="skip",
            return_missing=True,
            progress=False,
        )
    assert missing.tolist() == [False] * 4 + [True, False]
    assert np.isnan(out[4]).all() and np.isfinite(out[[0, 1, 2, 3, 5]]).all()
    # the stored result remembers the skipped row: asking again without skip says which file is missing
    with pytest.raises(SourceReadError, match=r"images\[4\].*skipped"):
        embed(paths, TinyEncoder(), cache=cache, batch_size=2, progress=False)


def test_a_changed_source_is_recomputed_not_reused(tmp_path):
    imgs = np.stack([_pattern(i) for i in range(6)])
    paths = _write_folder(tmp_path / "imgs", imgs, [0] * 6)
    cache = EmbeddingCache(tmp_path / "c")
    first = np.array(embed(paths, TinyEncoder(), cache=cache, batch_size=3, progress=False))
    Image.fromarray(imgs[0]).save(paths[2])  # image 2 now shows image 0
    os.utime(paths[2], ns=(10**9, 10**9))
    enc = TinyEncoder()
    second = embed(paths, enc, cache=cache, batch_size=3, progress=False)
    assert enc.rows == 6
    np.testing.assert_array_equal(second[2], first[0])
    assert len(cache.entries()) == 2


def test_a_corrupt_shard_is_reported_and_only_it_is_recomputed(tmp_path):
    src = GeneratedSource(30, _pattern, identity="pattern-v1")
    cache = EmbeddingCache(tmp_path)
    good = np.array(embed(src, TinyEncoder(), cache=cache, batch_size=5, shard_size=10, progress=False))
    (entry,) = cache.entries()
    data = entry.path / "data.npy"
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 0xFF  # inside the last shard
    data.write_bytes(bytes(raw))
    enc = TinyEncoder()
    with pytest.warns(CacheCorruptionWarning, match="shard 2"):
        again = embed(src, enc, cache=cache, batch_size=5, shard_size=10, progress=False)
    assert enc.rows == 10
    np.testing.assert_array_equal(again, good)


def test_mixed_sizes_need_image_size_and_are_resized_in_the_loader(tmp_path):
    a, b = np.zeros((10, 10, 3), np.uint8), np.full((14, 8, 3), 200, np.uint8)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    Image.fromarray(a).save(paths[0])
    Image.fromarray(b).save(paths[1])
    with pytest.raises(ValueError, match="image_size"):
        embed(paths, TinyEncoder(), cache=False, batch_size=2, progress=False)
    out = embed(paths, TinyEncoder(), cache=False, batch_size=2, image_size=12, progress=False)
    assert out.shape == (2, 4) and np.isfinite(out).all()


def test_activations_and_gradients_stream_a_source_like_a_tensor():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    src = GeneratedSource(10, _pattern, identity="pattern-v1")
    x = as_image_tensor(src)
    assert x.shape == (10, 3, 12, 12)
    torch.testing.assert_close(
        layer_activations(model, src, "0", batch_size=4, progress=False),
        layer_activations(model, x, "0", batch_size=4, progress=False),
    )
    a1, g1 = output_gradients(model, src, "1", batch_size=3, progress=False)
    a2, g2 = output_gradients(model, x, "1", batch_size=3, progress=False)
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(a1, a2)
    rows = [sl for sl, _ in image_batches(src, 4, progress=False)]
    assert rows == [slice(0, 4), slice(4, 8), slice(8, 10)]
