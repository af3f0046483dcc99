"""The factors of variation of the world and their value names.

Every image is described by one value of each factor. The class label is the ``shape`` factor.
Factor values are stored as integer indices into the lists below.
"""

from __future__ import annotations

__all__ = ["FACTOR_VALUES", "FACTOR_NAMES", "CLASS_FACTOR", "factor_index", "value_index"]

#: factor name -> ordered list of value names (index = stored integer code)
FACTOR_VALUES: dict[str, list[str]] = {
    "shape": ["circle", "square", "triangle", "cross", "star", "diamond"],
    "colour": ["red", "green", "blue", "yellow"],
    "size": ["small", "large"],
    "texture": ["plain", "striped"],
    "background": ["grass", "sand", "water", "snow"],
    "position": ["left", "right"],
}

#: factor names in generation/storage order
FACTOR_NAMES: list[str] = list(FACTOR_VALUES)

#: the factor that is the class label
CLASS_FACTOR = "shape"


def factor_index(name: str) -> int:
    """Position of a factor in :data:`FACTOR_NAMES` (raises a clear ``ValueError`` if unknown)."""
    from failwidgets._validation import check_choice

    check_choice(name, "factor", FACTOR_NAMES)
    return FACTOR_NAMES.index(name)


def value_index(factor: str, value: str, name: str = "value") -> int:
    """Integer code of ``value`` within ``factor``; errors name the argument and the allowed values."""
    from failwidgets._validation import check_choice

    check_choice(factor, "factor", FACTOR_NAMES)
    check_choice(value, f"{name} (a value of factor {factor!r})", FACTOR_VALUES[factor])
    return FACTOR_VALUES[factor].index(value)
