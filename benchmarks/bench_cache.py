"""Item 1: the embedding cache, cold versus warm for the same request, and loading 100k x 512 float32.

- cold: ``encode_with_cache`` on an empty cache (encode the images with a small torchvision ResNet-18,
  random weights, 64 px, then write the entry); warm: the same call again (read + checksum).
  Target: warm at least 50x faster than cold.
- load: ``EmbeddingCache.get`` of a 100k x 512 float32 entry (205 MB, checksum verified) versus
  ``np.load`` of the same array from a ``.npy`` file (no checksum). The issue sets no target for the
  load; the row reports the time and the cost of verification relative to a plain ``np.load``.
"""

from __future__ import annotations

import tempfile

import numpy as np

from ._common import Row, not_available, pick, timed

ITEM = "cache"


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.compute import EmbeddingCache, TorchvisionFeatureEncoder, encode_with_cache
    except ImportError as exc:
        return [not_available(ITEM, "cold vs warm", "warm >= 50x faster", "-", f"compute layer missing ({exc})")]
    return [
        _cold_warm(profile, device, EmbeddingCache, TorchvisionFeatureEncoder, encode_with_cache),
        _load(profile, EmbeddingCache),
    ]


def _cold_warm(profile, device, EmbeddingCache, TorchvisionFeatureEncoder, encode_with_cache) -> Row:
    import torchvision

    n = pick(profile, 16, 64, 1000)
    images = np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), np.uint8)  # content does not change the cost
    encoder = TorchvisionFeatureEncoder(torchvision.models.resnet18(weights=None), device=device)
    with tempfile.TemporaryDirectory() as root:
        cache = EmbeddingCache(root)
        call = lambda: encode_with_cache(encoder, images, cache=cache, data_id="bench", progress=False)  # noqa: E731
        cold_s, cold = timed(call)
        warm_s, warm = timed(call, repeats=pick(profile, 2, 5, 5))
    row = Row(
        ITEM,
        "same request, cold vs warm",
        "warm >= 50x faster than cold",
        f"{n} images 64px -> {cold.shape[1]}-d (ResNet-18)",
        device,
        "cold (encode + write)",
        "warm (read + verify)",
        cold_s,
        warm_s,
    ).finish()
    row.met = row.ratio >= 50
    row.agreement = {"identical": bool(np.array_equal(cold, warm))}
    return row


def _load(profile, EmbeddingCache) -> Row:
    n = pick(profile, 1000, 20_000, 100_000)
    emb = np.random.default_rng(0).standard_normal((n, 512), dtype=np.float32)
    with tempfile.TemporaryDirectory() as root:
        cache = EmbeddingCache(root)
        key = cache.key({"bench": "load", "n": n})
        cache.put(key, emb, {"bench": "load", "n": n})
        npy = f"{root}/plain.npy"
        np.save(npy, emb)
        repeats = pick(profile, 2, 3, 3)
        ours_s, got = timed(lambda: cache.get(key), repeats)
        base_s, plain = timed(lambda: np.load(npy), repeats)
    row = Row(
        ITEM,
        "load embeddings",
        "none in issue (report; vs plain np.load)",
        f"{n} x 512 float32 ({emb.nbytes / 2**20:.0f} MiB)",
        "cpu",
        "np.load .npy",
        "EmbeddingCache.get",
        base_s,
        ours_s,
    ).finish()
    row.agreement = {"identical": bool(np.array_equal(got, emb) and np.array_equal(plain, emb))}
    row.extra = {"MiB_per_s": round(emb.nbytes / 2**20 / ours_s, 1)}
    return row
