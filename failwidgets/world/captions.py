"""Captions built from factor values, e.g. ``"a small striped red circle on grass, on the left"``.

:func:`make_caption` takes any subset of the factors (omitted ones are left out of the sentence), so it
also builds caption candidates for the failure-direction method (Jain et al. 2023), e.g.
``make_caption(shape="circle", background="sand")`` -> ``"a circle on sand"``.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from failwidgets.world.factors import FACTOR_NAMES, FACTOR_VALUES, value_index

__all__ = ["make_caption", "captions_from_factors", "caption_candidates"]


def make_caption(
    shape: str | None = None,
    colour: str | None = None,
    size: str | None = None,
    texture: str | None = None,
    background: str | None = None,
    position: str | None = None,
    *,
    prefix: str = "a",
    noun: str = "shape",
) -> str:
    """A caption naming the given factor values (``None`` = not mentioned).

    Parameters
    ----------
    shape, colour, size, texture, background, position : str or None
        Value names of the factors.
    prefix : str, first word(s), e.g. ``"a photo of a"``
    noun : str, used when ``shape`` is None (``"a red shape on sand"``)

    Returns
    -------
    str, "{prefix} {size} {texture} {colour} {shape} on {background}, on the {position}"
    """
    values = dict(shape=shape, colour=colour, size=size, texture=texture, background=background, position=position)
    for k, v in values.items():
        if v is not None:
            value_index(k, v, k)  # validates the value name
    words = [prefix] if prefix else []
    words += [w for w in (size, texture, colour) if w is not None]
    words.append(shape if shape is not None else noun)
    text = " ".join(words)
    if background is not None:
        text += f" on {background}"
    if position is not None:
        text += f", on the {position}"
    return text


def captions_from_factors(factors: dict[str, np.ndarray]) -> list[str]:
    """One full caption per image (every factor named).

    Parameters
    ----------
    factors : dict factor name -> int (N,)

    Returns
    -------
    list of N str
    """
    n = len(factors[FACTOR_NAMES[0]])
    names = {f: FACTOR_VALUES[f] for f in FACTOR_NAMES}
    # the 768 distinct captions are cheap to build once per combination seen
    cache: dict[tuple, str] = {}
    out = []
    cols = [np.asarray(factors[f]) for f in FACTOR_NAMES]
    for i in range(n):
        key = tuple(int(c[i]) for c in cols)
        text = cache.get(key)
        if text is None:
            text = make_caption(**{f: names[f][k] for f, k in zip(FACTOR_NAMES, key)})
            cache[key] = text
        out.append(text)
    return out


def caption_candidates(
    shape: str | None = None,
    factors: Sequence[str] = ("colour", "size", "texture", "background", "position"),
    max_factors: int = 1,
    *,
    prefix: str = "a",
) -> list[str]:
    """Every caption that names ``shape`` and up to ``max_factors`` values of the given factors.

    For the failure-direction method's caption scoring (Jain et al. 2023): with ``shape="circle"``,
    ``max_factors=1`` gives "a circle", "a red circle", ..., "a circle on sand", "a circle, on the left".

    Parameters
    ----------
    shape : str or None (None: the generic noun "shape")
    factors : factor names that may be mentioned (not "shape")
    max_factors : int >= 0, most factors named in one caption
    prefix : str, first word(s), e.g. "a photo of a"

    Returns
    -------
    list of str, without duplicates, the bare caption first
    """
    from failwidgets._validation import check_choice, check_positive_int

    check_positive_int(max_factors, "max_factors", minimum=0)
    for f in factors:
        check_choice(f, "factors", [n for n in FACTOR_NAMES if n != "shape"])
    out: list[str] = []
    for k in range(0, max_factors + 1):
        for combo in itertools.combinations(factors, k):
            for values in itertools.product(*[FACTOR_VALUES[f] for f in combo]):
                text = make_caption(shape=shape, prefix=prefix, **dict(zip(combo, values)))
                if text not in out:
                    out.append(text)
    return out
