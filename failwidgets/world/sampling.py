"""Drawing the factors of a split, with the planted biases in the training split.

Factors are drawn one at a time in dependency order (:func:`~failwidgets.world.config.generation_order`):

1. every factor starts uniform;
2. if it is the dependent side of a :class:`Correlation` ``(a -> b, tau, mapping)``: for images whose
   ``a`` is mapped, with probability ``tau`` set ``b = mapping[a]`` (so
   ``P(b = mapping[a]) = tau + (1 - tau) / |b|``); unmapped values of ``a`` leave ``b`` uniform;
3. if a :class:`Minority` makes value ``v`` rare in class ``c``: an image of class ``c`` that drew ``v``
   keeps it with probability ``fraction`` and otherwise redraws (steps 1-2) until it gets another
   value, so ``v`` keeps exactly ``fraction`` of its normal share and the other values share the rest in
   their normal proportions. (If the normal share of ``v`` is 1, e.g. a tau-1 correlation, the redraw
   falls back to a uniform other value after a bounded number of tries.)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from failwidgets.world.config import Correlation, Minority, generation_order
from failwidgets.world.factors import CLASS_FACTOR, FACTOR_NAMES, FACTOR_VALUES

__all__ = ["sample_factors", "mapping_codes"]

_MAX_REDRAWS = 64


def mapping_codes(corr: Correlation) -> np.ndarray:
    """int64 (|values of a|,): code of ``mapping[a]`` in ``b`` for each value of ``a``, -1 if unmapped."""
    va, vb = FACTOR_VALUES[corr.factor_a], FACTOR_VALUES[corr.factor_b]
    codes = np.full(len(va), -1, np.int64)
    for a, b in corr.resolved_mapping().items():
        codes[va.index(a)] = vb.index(b)
    return codes


def _draw(rng, n, k, parent_codes, corr):
    """Uniform codes, then the correlation applied (all random draws made for all n, fixed stream)."""
    base = rng.integers(0, k, n)
    if corr is None:
        return base
    apply = rng.random(n) < corr.tau
    target = mapping_codes(corr)[parent_codes]
    return np.where(apply & (target >= 0), target, base)


def sample_factors(
    n: int,
    rng: np.random.Generator,
    correlations: Sequence[Correlation] = (),
    minorities: Sequence[Minority] = (),
) -> dict[str, np.ndarray]:
    """Draw the factors of ``n`` images.

    Parameters
    ----------
    n : int
    rng : numpy Generator
    correlations, minorities : the plants (empty for balanced splits)

    Returns
    -------
    dict factor name -> int64 (n,), in :data:`FACTOR_NAMES` order
    """
    by_dependent = {c.factor_b: c for c in correlations}
    out: dict[str, np.ndarray] = {}
    n_classes = len(FACTOR_VALUES[CLASS_FACTOR])
    for name in generation_order(correlations, minorities):
        k = len(FACTOR_VALUES[name])
        corr = by_dependent.get(name)
        parent = out[corr.factor_a] if corr is not None else None
        codes = _draw(rng, n, k, parent, corr)
        rare = np.full(n_classes, -1, np.int64)
        keep = np.ones(n_classes)
        for m in minorities:
            if m.factor != name:
                continue
            for cls, val in m.values_by_class.items():
                ci = FACTOR_VALUES[CLASS_FACTOR].index(cls)
                rare[ci] = FACTOR_VALUES[name].index(val)
                keep[ci] = m.fraction
        if (rare >= 0).any():
            cls_codes = out[CLASS_FACTOR]
            target = rare[cls_codes]
            redraw = (codes == target) & (rng.random(n) >= keep[cls_codes])
            for _ in range(_MAX_REDRAWS):
                idx = np.flatnonzero(redraw)
                if idx.size == 0:
                    break
                new = _draw(rng, idx.size, k, parent[idx] if parent is not None else None, corr)
                codes[idx] = new
                redraw[idx] = new == target[idx]
            idx = np.flatnonzero(redraw)
            if idx.size:  # the normal share of the rare value is ~1: pick a uniform other value
                shift = rng.integers(1, k, idx.size)
                codes[idx] = (target[idx] + shift) % k
        out[name] = codes.astype(np.int64)
    return {name: out[name] for name in FACTOR_NAMES}
