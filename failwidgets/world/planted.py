"""Ground truth of the planted biases: what was planted, the level measured in the data, and the
boolean "minority cell" / "majority cell" masks of any split.

For a :class:`Correlation` ``a -> b`` the *minority cells* are the images whose ``a`` is mapped and
whose ``b != mapping[a]`` (the images a model that learned the shortcut gets wrong); the *majority
cells* are the images with ``b == mapping[a]``. Images with an unmapped ``a`` are in neither.
For a :class:`Minority` the minority cells are the images of a listed class with the rare value; the
majority cells are the other images of the listed classes.
"""

from __future__ import annotations

import numpy as np

from failwidgets.world.captions import make_caption
from failwidgets.world.config import Correlation, Minority, WorldConfig
from failwidgets.world.factors import CLASS_FACTOR, FACTOR_VALUES
from failwidgets.world.sampling import mapping_codes

__all__ = ["cell_masks", "describe_plants"]


def cell_masks(plant: Correlation | Minority, factors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(minority bool (N,), majority bool (N,)) of one plant for images with the given factors."""
    if isinstance(plant, Correlation):
        target = mapping_codes(plant)[factors[plant.factor_a]]
        mapped = target >= 0
        hit = factors[plant.factor_b] == target
        return mapped & ~hit, mapped & hit
    if isinstance(plant, Minority):
        n_classes = len(FACTOR_VALUES[CLASS_FACTOR])
        rare = np.full(n_classes, -1, np.int64)
        for cls, val in plant.values_by_class.items():
            rare[FACTOR_VALUES[CLASS_FACTOR].index(cls)] = FACTOR_VALUES[plant.factor].index(val)
        target = rare[factors[CLASS_FACTOR]]
        listed = target >= 0
        hit = factors[plant.factor] == target
        return listed & hit, listed & ~hit
    raise TypeError(f"plant: expected a Correlation or Minority, got {type(plant).__name__}")


def _conditional_share(config: WorldConfig, factor: str, value: int, cls: int, train: dict[str, np.ndarray]) -> float:
    """P(factor = value | class = cls) under the training generator *without* minorities on ``factor``.

    Exact when ``factor`` is uniform or driven by the class; when it is driven by another factor
    ``a``, uses the measured distribution of ``a`` within the class (times the exact P(b | a)).
    """
    k = len(FACTOR_VALUES[factor])
    corr = next((c for c in config.correlations if c.factor_b == factor), None)
    if corr is None:
        return 1.0 / k
    codes = mapping_codes(corr)
    p_given_a = np.where(codes == value, corr.tau, 0.0) + np.where(codes >= 0, (1 - corr.tau) / k, 1.0 / k)
    if corr.factor_a == CLASS_FACTOR:
        return float(p_given_a[cls])
    a = train[corr.factor_a][train[CLASS_FACTOR] == cls]
    if a.size == 0:
        return float(p_given_a.mean())
    pa = np.bincount(a, minlength=len(codes)) / a.size
    return float(pa @ p_given_a)


def describe_plants(config: WorldConfig, factors_by_split: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """The ground truth of every plant with its level measured in each given split.

    Returns
    -------
    list of dict. Correlation: ``kind="correlation", factors=(a, b), factor_a, factor_b, tau, mapping,
    expected_p`` (= tau + (1 - tau)/|b|) and ``measured[split] = {n, p, tau, stderr}`` where ``p`` is
    P(b = mapping[a]) among mapped images and ``tau`` = (p - 1/|b|) / (1 - 1/|b|).
    Minority: ``kind="minority", factors=("shape", factor), factor, values_by_class, fraction`` and
    ``groups``: one dict per class with ``class, value, normal_share, expected_share`` and, per split,
    ``measured[split] = {n_class, n_minority, share, fraction}``.
    """
    out: list[dict] = []
    train = factors_by_split.get("train")
    for i, c in enumerate(config.correlations):
        k = len(FACTOR_VALUES[c.factor_b])
        measured = {}
        for split, f in factors_by_split.items():
            minority, majority = cell_masks(c, f)
            n = int(minority.sum() + majority.sum())
            p = float(majority.sum() / n) if n else float("nan")
            measured[split] = {
                "n": n,
                "p": p,
                "tau": (p - 1 / k) / (1 - 1 / k) if n else float("nan"),
                "stderr": float(np.sqrt(p * (1 - p) / n)) if n else float("nan"),
            }
        out.append(
            {
                "kind": "correlation",
                "index": i,
                "factors": (c.factor_a, c.factor_b),
                "factor_a": c.factor_a,
                "factor_b": c.factor_b,
                "tau": c.tau,
                "mapping": c.resolved_mapping(),
                "expected_p": c.tau + (1 - c.tau) / k,
                "measured": measured,
                "plant": c,
                "description": (
                    f"train: {c.factor_b} follows {c.factor_a} at tau={c.tau:g} "
                    + ", ".join(f"{a}->{b}" for a, b in c.resolved_mapping().items())
                ),
            }
        )
    for i, m in enumerate(config.minorities):
        groups = []
        for cls, val in m.values_by_class.items():
            ci, vi = FACTOR_VALUES[CLASS_FACTOR].index(cls), FACTOR_VALUES[m.factor].index(val)
            normal = _conditional_share(config, m.factor, vi, ci, train) if train is not None else float("nan")
            measured = {}
            for split, f in factors_by_split.items():
                in_cls = f[CLASS_FACTOR] == ci
                n_cls = int(in_cls.sum())
                n_min = int((in_cls & (f[m.factor] == vi)).sum())
                share = n_min / n_cls if n_cls else float("nan")
                measured[split] = {
                    "n_class": n_cls,
                    "n_minority": n_min,
                    "share": share,
                    "fraction": share / normal if n_cls and normal > 0 else float("nan"),
                }
            groups.append(
                {
                    "class": cls,
                    "value": val,
                    "normal_share": normal,
                    "expected_share": m.fraction * normal,
                    "measured": measured,
                    "caption": make_caption(shape=cls, **{m.factor: val}),
                }
            )
        out.append(
            {
                "kind": "minority",
                "index": len(config.correlations) + i,
                "factors": (CLASS_FACTOR, m.factor),
                "factor": m.factor,
                "values_by_class": dict(m.values_by_class),
                "fraction": m.fraction,
                "groups": groups,
                "plant": m,
                "description": f"train: {m.factor} value rare within class (fraction {m.fraction:g}): "
                + ", ".join(f"{c}:{v}" for c, v in m.values_by_class.items()),
            }
        )
    return out
