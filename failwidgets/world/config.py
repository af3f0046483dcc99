"""Configuration of the world: split sizes, seed, and the biases planted in the training split.

Two kinds of plant:

* :class:`Correlation` ``(factor_a, factor_b, tau, mapping)``: in the training split only,
  ``P(b = mapping[a]) = tau + (1 - tau) / |values of b|`` and otherwise ``b`` is uniform.
* :class:`Minority` ``(factor, values_by_class, fraction)``: in the training split only, within each
  listed class the given factor value gets ``fraction`` of its normal share.

Validation, test and pool splits are always balanced (every factor uniform and independent).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

from failwidgets._validation import check_choice, check_number, check_positive_int, check_probability
from failwidgets.world.factors import CLASS_FACTOR, FACTOR_NAMES, FACTOR_VALUES

__all__ = ["Correlation", "Minority", "WorldConfig", "GENERATOR_VERSION"]

#: bump whenever the generator changes the pixels or factors it produces for a given config
GENERATOR_VERSION = "failwidgets-world-2"


@dataclass(frozen=True)
class Correlation:
    """A spurious correlation planted in the training split: ``factor_b`` follows ``factor_a``.

    Parameters
    ----------
    factor_a : str
        The driving factor (e.g. ``"shape"``).
    factor_b : str
        The dependent factor (e.g. ``"background"``). A factor may be the dependent side of at most one
        correlation.
    tau : float in [0, 1]
        Strength: ``P(b = mapping[a]) = tau + (1 - tau) / |values of b|``; ``tau = 0`` is independence,
        ``tau = 1`` makes ``b`` a function of ``a``.
    mapping : dict value name of a -> value name of b, optional
        Default: the i-th value of ``a`` maps to value ``i mod |b|`` of ``b`` (covers every value of
        ``a``). A partial mapping leaves the unmapped values of ``a`` unaffected (``b`` uniform there).
    """

    factor_a: str
    factor_b: str
    tau: float
    mapping: dict[str, str] | None = None

    def __post_init__(self):
        check_choice(self.factor_a, "factor_a", FACTOR_NAMES)
        check_choice(self.factor_b, "factor_b", FACTOR_NAMES)
        if self.factor_a == self.factor_b:
            raise ValueError(f"factor_b: expected a factor other than factor_a, got {self.factor_b!r} twice")
        object.__setattr__(self, "tau", check_probability(self.tau, "tau"))
        if self.mapping is not None:
            if not isinstance(self.mapping, Mapping) or not self.mapping:
                raise TypeError(
                    f"mapping: expected a non-empty dict from values of {self.factor_a!r} to values of "
                    f"{self.factor_b!r}, got {self.mapping!r}"
                )
            for a, b in self.mapping.items():
                check_choice(a, f"mapping key (a value of {self.factor_a!r})", FACTOR_VALUES[self.factor_a])
                check_choice(b, f"mapping[{a!r}] (a value of {self.factor_b!r})", FACTOR_VALUES[self.factor_b])
            object.__setattr__(self, "mapping", dict(self.mapping))

    def resolved_mapping(self) -> dict[str, str]:
        """The mapping actually used (the default one when ``mapping`` is None)."""
        if self.mapping is not None:
            return dict(self.mapping)
        va, vb = FACTOR_VALUES[self.factor_a], FACTOR_VALUES[self.factor_b]
        return {a: vb[i % len(vb)] for i, a in enumerate(va)}


@dataclass(frozen=True)
class Minority:
    """Underrepresented subclasses planted in the training split.

    Parameters
    ----------
    factor : str
        A factor other than the class factor ``"shape"``.
    values_by_class : dict class name -> value name of ``factor``
        Within each listed class, that value of ``factor`` is made rare.
    fraction : float in [0, 1]
        The value keeps ``fraction`` of its normal share within the class (0.25 = a quarter as often).
    """

    factor: str
    values_by_class: dict[str, str]
    fraction: float = 0.25

    def __post_init__(self):
        choices = [f for f in FACTOR_NAMES if f != CLASS_FACTOR]
        check_choice(self.factor, "factor", choices)
        if not isinstance(self.values_by_class, Mapping) or not self.values_by_class:
            raise TypeError(
                f"values_by_class: expected a non-empty dict class name -> value of {self.factor!r}, "
                f"got {self.values_by_class!r}"
            )
        for cls, val in self.values_by_class.items():
            check_choice(cls, "values_by_class key (a class name)", FACTOR_VALUES[CLASS_FACTOR])
            check_choice(val, f"values_by_class[{cls!r}] (a value of {self.factor!r})", FACTOR_VALUES[self.factor])
        object.__setattr__(self, "values_by_class", dict(self.values_by_class))
        object.__setattr__(self, "fraction", check_probability(self.fraction, "fraction"))


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world; the same config gives byte-identical images.

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    image_size : int
        Height = width of the images in pixels (>= 32).
    n_train, n_val, n_test, n_pool : int
        Split sizes.
    correlations : sequence of Correlation
        Planted in the training split only.
    minorities : sequence of Minority
        Planted in the training split only.
    brightness_jitter : float in [0, 1]
        Per-image brightness factor drawn from ``U(1 - j, 1 + j)``.
    pixel_noise : float >= 0
        Standard deviation of per-pixel Gaussian noise, in 0..255 units.
    """

    seed: int = 0
    image_size: int = 64
    n_train: int = 6000
    n_val: int = 2000
    n_test: int = 2000
    n_pool: int = 4000
    correlations: tuple[Correlation, ...] = field(default_factory=tuple)
    minorities: tuple[Minority, ...] = field(default_factory=tuple)
    brightness_jitter: float = 0.15
    pixel_noise: float = 5.0

    def __post_init__(self):
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise TypeError(f"seed: expected a non-negative int, got {self.seed!r}")
        check_positive_int(self.image_size, "image_size", minimum=32)
        for name in ("n_train", "n_val", "n_test", "n_pool"):
            check_positive_int(getattr(self, name), name, minimum=0)
        object.__setattr__(self, "brightness_jitter", check_probability(self.brightness_jitter, "brightness_jitter"))
        check_number(self.pixel_noise, "pixel_noise")  # a str / None / inf is not a noise level
        if not (float(self.pixel_noise) >= 0):
            raise ValueError(f"pixel_noise: expected a number >= 0, got {self.pixel_noise!r}")
        object.__setattr__(self, "pixel_noise", float(self.pixel_noise))
        corrs = tuple(self.correlations)
        for i, c in enumerate(corrs):
            if not isinstance(c, Correlation):
                raise TypeError(f"correlations[{i}]: expected a Correlation, got {type(c).__name__}")
        mins = tuple(self.minorities)
        for i, m in enumerate(mins):
            if not isinstance(m, Minority):
                raise TypeError(f"minorities[{i}]: expected a Minority, got {type(m).__name__}")
        object.__setattr__(self, "correlations", corrs)
        object.__setattr__(self, "minorities", mins)
        _check_plants(corrs, mins)

    # ----------------------------------------------------------------------------------------------
    @classmethod
    def demo(cls, seed: int = 0, **kwargs) -> WorldConfig:
        """The plants the demo models are trained on.

        * shape -> background at tau 0.95 (default mapping: circle->grass, square->sand,
          triangle->water, cross->snow, star->grass, diamond->sand);
        * texture -> size at tau 1.0 (plain->small, striped->large): in training every striped object is
          large, although the ground-truth attribute relation of ``striped`` and ``large`` is
          "independent".
        """
        plants = (
            Correlation("shape", "background", 0.95),
            Correlation("texture", "size", 1.0, {"plain": "small", "striped": "large"}),
        )
        kwargs.setdefault("correlations", plants)
        return cls(seed=seed, **kwargs)

    @classmethod
    def control(cls, seed: int = 0, **kwargs) -> WorldConfig:
        """The demo world with every tau set to 0 and no minorities (the unbiased control)."""
        demo = cls.demo(seed=seed, **kwargs)
        corrs = tuple(Correlation(c.factor_a, c.factor_b, 0.0, c.mapping) for c in demo.correlations)
        return cls(**{**_fields(demo), "correlations": corrs, "minorities": ()})

    @property
    def split_sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test, "pool": self.n_pool}

    def to_dict(self) -> dict:
        """JSON-compatible description (used for the fingerprint)."""
        d = asdict(self)
        d["correlations"] = [dict(asdict(c), mapping=c.resolved_mapping()) for c in self.correlations]
        d["minorities"] = [asdict(m) for m in self.minorities]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _fields(cfg: WorldConfig) -> dict:
    return {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}


def _check_plants(corrs: Sequence[Correlation], mins: Sequence[Minority]) -> None:
    """A factor is dependent at most once; the plants form no cycle; no (factor, class) made rare twice."""
    dependent: dict[str, int] = {}
    for i, c in enumerate(corrs):
        if c.factor_b in dependent:
            raise ValueError(
                f"correlations[{i}]: factor {c.factor_b!r} is already the dependent side (factor_b) of "
                f"correlations[{dependent[c.factor_b]}]; a factor may depend on at most one other factor"
            )
        dependent[c.factor_b] = i
    # the dependency graph a -> b (minorities add shape -> factor) must have no cycle
    try:
        generation_order(corrs, mins)
    except ValueError as exc:
        raise ValueError(f"correlations: {exc}") from None
    seen: dict[tuple[str, str], int] = {}
    for i, m in enumerate(mins):
        for cls in m.values_by_class:
            if (m.factor, cls) in seen:
                raise ValueError(
                    f"minorities[{i}]: class {cls!r} already has a minority value of {m.factor!r} in "
                    f"minorities[{seen[(m.factor, cls)]}]; give each (factor, class) at most one"
                )
            seen[(m.factor, cls)] = i


def generation_order(corrs: Sequence[Correlation], mins: Sequence[Minority]) -> list:
    """Factors in an order where every factor comes after the ones it depends on (topological order).

    Raises ``ValueError`` naming the factors of a dependency cycle.
    """
    parents = {f: set() for f in FACTOR_NAMES}
    for c in corrs:
        parents[c.factor_b].add(c.factor_a)
    for m in mins:
        parents[m.factor].add(CLASS_FACTOR)
    order, done = [], set()
    remaining = list(FACTOR_NAMES)
    while remaining:
        ready = [f for f in remaining if parents[f] <= done]
        if not ready:
            raise ValueError(f"the planted dependencies form a cycle among factors {sorted(remaining)}")
        for f in ready:
            order.append(f)
            done.add(f)
        remaining = [f for f in remaining if f not in done]
    return order
