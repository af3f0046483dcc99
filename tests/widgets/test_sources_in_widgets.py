"""Widgets over an image source decode only the images they show."""

import os

import numpy as np
import pytest
from PIL import Image

from failwidgets.data import GeneratedSource
from failwidgets.methods.directions import FailureDirections
from failwidgets.widgets.direction_slider import DirectionSlider
from failwidgets.widgets.tree_browser import TreeBrowser


class Counting:
    def __init__(self, images):
        self.images, self.calls = images, 0

    def __call__(self, i):
        self.calls += 1
        return self.images[i]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    X = rng.normal(size=(300, 8))
    X[np.arange(300), 4 + labels] += 3.0
    minority = rng.random(300) < 0.3
    X[minority, 1] += 3.0
    err = (rng.random(300) < np.where(minority, 0.8, 0.03)) & (labels != 1)
    preds = np.where(err, (labels + 1) % 3, labels)
    images = rng.integers(0, 256, (300, 8, 8, 3), dtype=np.uint8)
    return X, labels, preds, images


def test_direction_slider_over_a_source_shows_the_same_images_decoding_only_those(data):
    X, labels, preds, images = data
    fd = FailureDirections(max_modes=1, progress=False).fit(X, labels, preds, X)
    fn = Counting(images)
    src = GeneratedSource(300, fn, identity="counting")
    a = DirectionSlider(fd, images, X, labels, preds, class_names=["a", "b", "c"])
    b = DirectionSlider(fd, src, X, labels, preds, class_names=["a", "b", "c"])
    assert list(a.hard_grid.tile_keys) == list(b.hard_grid.tile_keys)
    np.testing.assert_array_equal(np.stack(a.hard_grid._images), np.stack(b.hard_grid._images))
    assert 0 < fn.calls <= 2 * b.n_images  # the hardest and easiest tiles, nothing else


def test_tree_browser_takes_image_files(data, tmp_path):
    X, labels, preds, images = data
    paths = []
    for i, im in enumerate(images):
        p = os.path.join(tmp_path, f"{i:03d}.png")
        Image.fromarray(im).save(p)
        paths.append(p)
    a = TreeBrowser.from_arrays(X, labels, preds, images=images, class_names=["a", "b", "c"])
    b = TreeBrowser.from_arrays(X, labels, preds, images=paths, class_names=["a", "b", "c"])
    a.selected_node = b.selected_node = 0
    assert list(a.failures_grid.tile_keys) == list(b.failures_grid.tile_keys)
    assert len(b.failures_grid) > 0
    np.testing.assert_array_equal(np.stack(a.failures_grid._images), np.stack(b.failures_grid._images))
