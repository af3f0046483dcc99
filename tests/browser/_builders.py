"""The browser tests' widget builders: those of :mod:`failwidgets.testing._widget_cases` (one place)."""

from failwidgets.testing._widget_cases import (  # noqa: F401
    BUILDERS,
    CLASS_NAMES,
    N_FILTERS,
    N_PAIRS,
    PLANTED_WORD,
    PLANTED_WORD_FILTER,
    TREE_SPLIT_FEATURE,
    build,
)

__all__ = [
    "build",
    "BUILDERS",
    "PLANTED_WORD",
    "PLANTED_WORD_FILTER",
    "N_FILTERS",
    "N_PAIRS",
    "CLASS_NAMES",
    "TREE_SPLIT_FEATURE",
]
