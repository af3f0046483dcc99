import importlib.util

import numpy as np
import pytest

from failwidgets.compute.words import (
    WordSpace,
    encoder_space,
    glove_space,
    open_clip_space,
    restrict_to_nouns,
)


@pytest.fixture()
def tiny():
    # 2-D vectors with known angles: a=0 deg, b=90 deg, c=45 deg, d=180 deg
    words = ["a", "b", "c", "d"]
    vecs = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [-5.0, 0.0]])
    return WordSpace(words, vecs, name="tiny")


def test_vectors_are_unit_and_lookup_by_word(tiny):
    e = tiny.embed(["c", "a"])
    np.testing.assert_allclose(e, [[2**-0.5, 2**-0.5], [1.0, 0.0]], atol=1e-6)
    assert "a" in tiny and "z" not in tiny and tiny.dim == 2


def test_nearest_hand_computed(tiny):
    # query at 30 deg: cos to a = .866, c = .966, b = .5, d = -.866
    q = np.array([[np.cos(np.pi / 6), np.sin(np.pi / 6)]])
    idx, val = tiny.nearest(q, k=3)
    assert [tiny.vocabulary[i] for i in idx[0]] == ["c", "a", "b"]
    np.testing.assert_allclose(val[0], [np.cos(np.pi / 12), np.cos(np.pi / 6), 0.5], atol=1e-6)


def test_restrict_keeps_space(tiny):
    r = tiny.restrict(["b", "d"])
    assert r.vocabulary == ["b", "d"]
    # concept words outside the vocabulary still embed identically
    np.testing.assert_array_equal(r.embed(["a"]), tiny.embed(["a"]))
    assert r.nearest_words(np.array([[1.0, 0.1]]), k=1) == [["b"]]
    assert r.with_words(["a"]).vocabulary == ["b", "d", "a"]


def test_missing_word_error_names_word(tiny):
    with pytest.raises(ValueError, match=r"concepts: 1 word\(s\) not in the tiny word space: 'zebra'"):
        tiny.rows(["a", "zebra"], name="concepts")
    with pytest.raises(TypeError, match="words"):
        tiny.embed("a")
    with pytest.raises(ValueError, match="words: expected one word per row"):
        WordSpace(["a"], np.ones((2, 3)))


def test_glove_is_real_and_cached():
    g = glove_space()
    assert len(g.words) == 400000 and g.dim == 50
    assert g.words[:3] == ["the", ",", "."]  # frequency order
    assert glove_space() is g  # loaded once
    np.testing.assert_allclose(np.linalg.norm(g.embed(["grass", "red"]), axis=1), 1.0, atol=1e-5)
    king, queen, grass = g.embed(["king", "queen", "grass"])
    assert king @ queen > 0.7 > king @ grass
    small = glove_space(alphabetic=True, max_words=1000)
    assert len(small) == 1000 and all(w.isalpha() for w in small.vocabulary)
    assert small.nearest_words(small.embed(["red"]), k=1) == [["red"]]


def test_encoder_space_uses_encode_texts():
    class Enc:
        name = "fake"

        def encode_texts(self, texts):
            return np.array([[len(t), 1.0] for t in texts])

    s = encoder_space(Enc(), ["ab", "abcd"], template="{}!")
    np.testing.assert_allclose(s.embed(["ab"]), [[3 / 10**0.5, 1 / 10**0.5]], atol=1e-6)
    with pytest.raises(TypeError, match="encoder: expected an object with encode_texts"):
        encoder_space(object(), ["a"])


def test_open_clip_text_side_offline():
    s = open_clip_space("RN50", ["grass", "sand", "water"], pretrained=None)
    assert s.vocabulary == ["grass", "sand", "water"] and s.dim == 1024
    # same word, same vector: the nearest word of each word's own vector is itself
    assert s.nearest_words(s.embed(["sand", "water"]), k=1) == [["sand"], ["water"]]


def test_restrict_to_nouns_or_clear_message(tiny):
    has_wordnet = False
    if importlib.util.find_spec("nltk") is not None:
        try:
            from nltk.corpus import wordnet

            wordnet.synsets("grass")
            has_wordnet = True
        except LookupError:
            pass
    space = WordSpace(["grass", "quickly", "red"], np.eye(3))
    if has_wordnet:
        assert "grass" in restrict_to_nouns(space).vocabulary
        assert "quickly" not in restrict_to_nouns(space).vocabulary
    else:
        with pytest.raises(ImportError, match="nltk"):
            restrict_to_nouns(space)
