"""One registry of the methods: name, paper, estimator, widget and demo recipe of each.

The README table, the tour and the shared contract checks (:mod:`failwidgets.testing`) read this list,
so a fifth method is documented and checked the day it is registered::

    from failwidgets.registry import MethodSpec, register_method
    register_method(MethodSpec(name="mine", paper="Me et al. 2027", estimator="mypkg.methods:Mine",
                               widget="mypkg.widgets:MineView", recipe="mypkg.demo.recipes.mine",
                               estimator_case="mypkg.testing:mine_case"))

Objects are named by ``"module:attribute"`` strings and imported on first use, so importing the
registry loads no method, widget or demo code (and no layer imports a higher one through it).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["MethodSpec", "METHODS", "register_method", "list_methods", "get_method"]


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class MethodSpec:
    """One method of the library.

    Attributes
    ----------
    name : str, short identifier (``"directions"``)
    paper : str, citation of the paper the method implements
    estimator : str, ``"module:Class"`` of the widget-free estimator
    widget : str, ``"module:Class"`` of the widget that holds a fitted estimator
    recipe : str, module of the demo glue (what ``Widget.from_demo`` needs)
    title : str, one line for tables
    estimator_case : str, ``"module:function"`` returning the tiny
        :class:`~failwidgets.testing._cases.EstimatorCase` that :func:`failwidgets.testing.check_failure_estimator`
        runs (empty: the method is not checked)
    widget_case : str, ``"module:function"`` returning a fresh widget built on tiny data (for the
        shared widget checks of :mod:`failwidgets.testing.widget_checks`); empty: not checked
    """

    name: str
    paper: str
    estimator: str
    widget: str
    recipe: str
    title: str = ""
    estimator_case: str = ""
    widget_case: str = ""

    def load_estimator(self) -> type:
        """The estimator class (imported now)."""
        return _resolve(self.estimator)

    def load_widget(self) -> type:
        """The widget class (imported now)."""
        return _resolve(self.widget)

    def load_widget_case(self):
        """The function building this method's test widget (imported now); ValueError when none is set."""
        if not self.widget_case:
            raise ValueError(f"widget_case: method {self.name!r} registers no widget case")
        return _resolve(self.widget_case)

    def load_recipe(self):
        """The demo recipe module (imported now)."""
        return _resolve(self.recipe)

    def load_estimator_case(self):
        """The function that builds this method's contract-check case (imported now)."""
        if not self.estimator_case:
            raise ValueError(f"estimator_case: method {self.name!r} names no estimator case")
        return _resolve(self.estimator_case)


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to the registry (a warning when it replaces a method of the same name)."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"spec: expected a MethodSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] != spec:
        warnings.warn(f"register_method: replacing the registered method {spec.name!r}", stacklevel=2)
    _REGISTRY[spec.name] = spec
    return spec


def list_methods() -> list[MethodSpec]:
    """Every registered method, in registration order."""
    return list(_REGISTRY.values())


def get_method(name: str) -> MethodSpec:
    """The registered method called ``name``; ``KeyError`` listing the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"name: no method {name!r} is registered; registered: {sorted(_REGISTRY)}") from None


METHODS = tuple(
    register_method(s)
    for s in (
        MethodSpec(
            name="relations",
            paper='Zhang, Wang & Zhu, "Examining CNN Representations with respect to Dataset Bias", AAAI 2018',
            estimator="failwidgets.methods.relations:RelationMiner",
            widget="failwidgets.widgets:RelationshipAnnotator",
            recipe="failwidgets.demo.recipes.relations",
            estimator_case="failwidgets.testing._cases:relations_case",
            title="attribute relation mining, blind spots and failure modes",
            widget_case="failwidgets.testing._widget_cases:relationship_annotator",
        ),
        MethodSpec(
            name="barlow",
            paper='Singla et al., "Understanding Failures of Deep Networks via Robust Feature Extraction", CVPR 2021',
            estimator="failwidgets.methods.barlow:BarlowTree",
            widget="failwidgets.widgets:TreeBrowser",
            recipe="failwidgets.demo.recipes.barlow",
            estimator_case="failwidgets.testing._cases:barlow_case",
            title="failure trees on robust features",
            widget_case="failwidgets.testing._widget_cases:tree_browser",
        ),
        MethodSpec(
            name="lavise",
            paper='Yang, Kim & Joo, "Explaining Deep CNNs via Latent Visual-Semantic Filter Attention", CVPR 2022',
            estimator="failwidgets.methods.lavise:LaViSE",
            widget="failwidgets.widgets:FilterWordExplorer",
            recipe="failwidgets.demo.recipes.lavise",
            estimator_case="failwidgets.testing._cases:lavise_case",
            title="conv filters explained with words",
            widget_case="failwidgets.testing._widget_cases:filter_word_explorer",
        ),
        MethodSpec(
            name="directions",
            paper='Jain et al., "Distilling Model Failures as Directions in Latent Space", ICLR 2023',
            estimator="failwidgets.methods.directions:FailureDirections",
            widget="failwidgets.widgets:DirectionSlider",
            recipe="failwidgets.demo.recipes.directions",
            estimator_case="failwidgets.testing._cases:directions_case",
            title="failure directions in vision-language space",
            widget_case="failwidgets.testing._widget_cases:direction_slider",
        ),
    )
)
