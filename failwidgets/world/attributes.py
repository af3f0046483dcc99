"""Binary attributes of an image, derived from its factors, and their ground-truth relations.

Attributes (20): one-hot shape (6), one-hot colour (4), ``large``, ``striped``, one-hot background
(4), ``left``, and three derived ones that are positively related to their members by construction:
``warm`` (red or yellow), ``cool`` (green or blue), ``pointy`` (triangle, star or diamond).

The true relation of every pair is computed, not written by hand, by enumerating every combination
of factor values under the balanced (uniform, independent) distribution:

* ``"exclusive"``: never both present (one-hot groups; ``warm``/``cool``; ``pointy``/``circle``);
* ``"positive"``: present together more often than independence predicts (``red``/``warm``; with
  ``a`` implying ``b`` listed by :func:`attribute_implications`);
* ``"negative"``: less often, but not exclusive (none in the default set);
* ``"independent"``: P(a and b) = P(a) P(b) (attributes of different factors, e.g. ``striped`` and
  ``large``; a planted training correlation does not change the truth).
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from failwidgets.world.factors import FACTOR_NAMES, FACTOR_VALUES

__all__ = [
    "ATTRIBUTE_NAMES",
    "ATTRIBUTE_GROUPS",
    "compute_attributes",
    "attribute_relations",
    "attribute_relation_matrix",
    "attribute_implications",
    "RELATION_SCORES",
]


def _one_hot(factor: str, value: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    code = FACTOR_VALUES[factor].index(value)
    return lambda f: f[factor] == code


def _any_of(factor: str, values: list[str]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    codes = [FACTOR_VALUES[factor].index(v) for v in values]
    return lambda f: np.isin(f[factor], codes)


# name -> (group, function of the factor dict)
_DEFINITIONS: dict[str, tuple[str, Callable]] = {}
for _v in FACTOR_VALUES["shape"]:
    _DEFINITIONS[_v] = ("shape", _one_hot("shape", _v))
for _v in FACTOR_VALUES["colour"]:
    _DEFINITIONS[_v] = ("colour", _one_hot("colour", _v))
_DEFINITIONS["large"] = ("size", _one_hot("size", "large"))
_DEFINITIONS["striped"] = ("texture", _one_hot("texture", "striped"))
for _v in FACTOR_VALUES["background"]:
    _DEFINITIONS[_v] = ("background", _one_hot("background", _v))
_DEFINITIONS["left"] = ("position", _one_hot("position", "left"))
_DEFINITIONS["warm"] = ("derived", _any_of("colour", ["red", "yellow"]))
_DEFINITIONS["cool"] = ("derived", _any_of("colour", ["green", "blue"]))
_DEFINITIONS["pointy"] = ("derived", _any_of("shape", ["triangle", "star", "diamond"]))

#: attribute names, in column order of ``split.attributes``
ATTRIBUTE_NAMES: list[str] = list(_DEFINITIONS)

#: group -> attribute names; the groups "shape", "colour" and "background" are one-hot (exclusive)
ATTRIBUTE_GROUPS: dict[str, list[str]] = {}
for _name, (_group, _) in _DEFINITIONS.items():
    ATTRIBUTE_GROUPS.setdefault(_group, []).append(_name)

#: a relation as a score, e.g. for Zhang et al.'s labelled levels (-1 exclusive ... +1 positive)
RELATION_SCORES = {"exclusive": -1, "negative": -1, "independent": 0, "positive": 1}


def compute_attributes(factors: dict[str, np.ndarray]) -> np.ndarray:
    """Attributes of images from their factors.

    Parameters
    ----------
    factors : dict factor name -> int (N,)

    Returns
    -------
    float32 (N, A) in {0, 1}, columns in :data:`ATTRIBUTE_NAMES` order
    """
    cols = [fn(factors) for _, fn in _DEFINITIONS.values()]
    return np.stack(cols, axis=1).astype(np.float32)


def _all_combinations() -> dict[str, np.ndarray]:
    grids = np.meshgrid(*[np.arange(len(FACTOR_VALUES[f])) for f in FACTOR_NAMES], indexing="ij")
    return {f: g.ravel() for f, g in zip(FACTOR_NAMES, grids)}


def _pair_counts():
    attrs = compute_attributes(_all_combinations()).astype(np.int64)  # (768, A), each combination once
    total = attrs.shape[0]
    single = attrs.sum(0)
    joint = attrs.T @ attrs
    return total, single, joint


def attribute_relations() -> dict[tuple[str, str], str]:
    """The true relation of every pair of distinct attributes, both orders as keys.

    Returns
    -------
    dict (name_a, name_b) -> "exclusive" | "positive" | "negative" | "independent"
    (``out[a, b] == out[b, a]``)
    """
    total, single, joint = _pair_counts()
    out = {}
    for i, j in itertools.combinations(range(len(ATTRIBUTE_NAMES)), 2):
        both, expect = joint[i, j] * total, single[i] * single[j]  # exact integer comparison
        if joint[i, j] == 0:
            rel = "exclusive"
        elif both == expect:
            rel = "independent"
        elif both > expect:
            rel = "positive"
        else:
            rel = "negative"
        out[(ATTRIBUTE_NAMES[i], ATTRIBUTE_NAMES[j])] = rel
        out[(ATTRIBUTE_NAMES[j], ATTRIBUTE_NAMES[i])] = rel
    return out


def attribute_relation_matrix() -> np.ndarray:
    """int8 (A, A): +1 positive, 0 independent, -1 exclusive/negative; diagonal +1."""
    a = len(ATTRIBUTE_NAMES)
    mat = np.eye(a, dtype=np.int8)
    idx = {n: i for i, n in enumerate(ATTRIBUTE_NAMES)}
    for (x, y), rel in attribute_relations().items():
        mat[idx[x], idx[y]] = RELATION_SCORES[rel]
    return mat


def attribute_implications() -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` with ``a`` implies ``b`` (every image with ``a`` has ``b``), a != b."""
    _, single, joint = _pair_counts()
    out = []
    for i, j in itertools.permutations(range(len(ATTRIBUTE_NAMES)), 2):
        if single[i] > 0 and joint[i, j] == single[i]:
            out.append((ATTRIBUTE_NAMES[i], ATTRIBUTE_NAMES[j]))
    return out
