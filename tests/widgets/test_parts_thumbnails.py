"""Thumbnails and heat-map overlays: hand-computed pixels, formats and the cache."""

import io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from failwidgets.widgets.parts.thumbnails import (
    ThumbnailCache,
    data_uri,
    encode_image,
    normalize_map,
    overlay_heatmap,
    resize_map,
    thumbnail_bytes,
    to_uint8_images,
)


def _decode(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data))


def test_float_tensor_and_uint8_inputs_agree():
    t = torch.zeros(2, 3, 4, 5)
    t[0, 0] = 1.0  # image 0 pure red
    t[1, 2, :, :2] = 0.5  # image 1 half-blue on the left two columns
    out = to_uint8_images(t)
    assert len(out) == 2 and out[0].shape == (4, 5, 3) and out[0].dtype == np.uint8
    assert (out[0][..., 0] == 255).all() and (out[0][..., 1:] == 0).all()
    assert out[1][0, 0, 2] == 128 and out[1][0, 4, 2] == 0  # round(0.5 * 255) = 128
    again = to_uint8_images(np.stack(out))  # uint8 (N, H, W, 3) passes through
    assert np.array_equal(again[1], out[1])


def test_pil_and_path_inputs(tmp_path):
    arr = np.zeros((6, 8, 3), np.uint8)
    arr[:, :, 1] = 200
    path = tmp_path / "g.png"
    PILImage.fromarray(arr).save(path)
    a, b = to_uint8_images([PILImage.fromarray(arr), str(path)])
    assert np.array_equal(a, arr) and np.array_equal(b, arr)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"images.*\[0, 1\]"):
        to_uint8_images(torch.full((1, 3, 4, 4), 2.0))
    with pytest.raises(ValueError, match="images"):
        to_uint8_images(np.zeros((2, 3)))
    with pytest.raises(FileNotFoundError, match="images\\[0\\]"):
        to_uint8_images(["/nonexistent/file.png"])


def test_resize_map_bilinear_matches_hand_values():
    # 1x2 map [0, 1] resized to 1x4 with align_corners=False: sample points at x = -0.25, 0.25, 0.75, 1.25
    # in source coordinates, clamped: [0, 0.25, 0.75, 1]
    out = resize_map(np.array([[0.0, 1.0]]), (1, 4))
    assert np.allclose(out, [[0.0, 0.25, 0.75, 1.0]])


def test_resize_map_upsampling_matches_torch_interpolate():
    m = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(m)[None, None], size=(56, 40), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    assert np.allclose(resize_map(m, (56, 40)), ref, atol=1e-5)


def test_normalize_map_unsigned_and_signed():
    m = np.array([[2.0, 4.0], [6.0, 10.0]])
    assert np.allclose(normalize_map(m), [[0.0, 0.25], [0.5, 1.0]])
    s = np.array([[-2.0, 1.0], [0.0, 4.0]])
    assert np.allclose(normalize_map(s, signed=True), [[-0.5, 0.25], [0.0, 1.0]])
    assert np.allclose(normalize_map(np.ones((2, 2))), 0.0)  # constant map -> zeros, no NaN


def test_signed_overlay_positive_red_negative_blue_zero_untouched():
    img = np.full((4, 4, 3), 100, np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0  # strongest positive
    heat[3, 3] = -1.0  # strongest negative
    out = overlay_heatmap(img, heat, signed=True, alpha=0.5)
    # weight alpha*|v| = 0.5: red channel 0.5*100 + 0.5*255 = 177.5 -> 178; others 50
    assert tuple(out[0, 0]) == (178, 50, 50)
    assert tuple(out[3, 3]) == (50, 50, 178)
    assert tuple(out[1, 2]) == (100, 100, 100)


def test_unsigned_overlay_resizes_small_map_to_image():
    img = np.zeros((8, 8, 3), np.uint8)
    out = overlay_heatmap(img, np.array([[0.0, 1.0], [0.0, 1.0]]), alpha=1.0)
    assert out.shape == (8, 8, 3)
    # left columns get the low end of the ramp, right columns the high end: they differ
    assert not np.array_equal(out[:, 0], out[:, 7])
    assert np.array_equal(out[0], out[7])  # the map is constant along rows


def test_encode_formats_and_max_side():
    img = (np.random.default_rng(0).random((60, 200, 3)) * 255).astype(np.uint8)
    jpg = encode_image(img, max_side=50, fmt="jpeg")
    png = encode_image(img, max_side=50, fmt="png")
    assert jpg[:3] == b"\xff\xd8\xff" and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert _decode(jpg).size == (50, 15)  # longest side 200 -> 50, aspect kept
    small = encode_image(img[:10, :10], max_side=50, fmt="png")
    assert _decode(small).size == (10, 10)  # never upscaled
    with pytest.raises(ValueError, match="fmt"):
        encode_image(img, fmt="gif")


def test_thumbnail_cache_hits_and_lru_eviction():
    cache = ThumbnailCache(maxsize=2)
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 9, np.uint8)
    c = np.full((8, 8, 3), 200, np.uint8)
    first = thumbnail_bytes(a, cache=cache)
    assert thumbnail_bytes(a.copy(), cache=cache) is first  # same content -> same cached object
    assert (cache.hits, cache.misses) == (1, 1)
    with_ov = thumbnail_bytes(a, overlay=np.ones((2, 2)), cache=cache)
    assert with_ov[:4] == b"\x89PNG" and first[:3] == b"\xff\xd8\xff"  # overlays default to PNG
    thumbnail_bytes(b, cache=cache)
    thumbnail_bytes(c, cache=cache)
    assert len(cache) == 2
    thumbnail_bytes(a, cache=cache)  # evicted earlier -> recomputed
    assert cache.misses == 5


def test_data_uri():
    png = encode_image(np.zeros((2, 2, 3), np.uint8), fmt="png")
    assert data_uri(png).startswith("data:image/png;base64,iVBOR")
