"""failwidgets: Jupyter widgets for finding where and why image models fail.

Layers: ``failwidgets.compute`` (devices, hooks, gradients, encoders, cache) <- ``failwidgets.methods``
(the four papers, widget-free) <- ``failwidgets.widgets`` (views). ``failwidgets.world`` is the
procedural planted-bias world and ``failwidgets.demo`` its trained demo models.
"""

__version__ = "0.1.0"

from failwidgets import compute, demo, methods, widgets, world
from failwidgets.compute import EmbeddingCache, OpenClipEncoder, TorchvisionFeatureEncoder, get_device
from failwidgets.methods import BarlowTree, FailureDirections, LaViSE, RelationGraph, RelationMiner
from failwidgets.widgets import (
    DirectionSlider,
    FailureMap,
    FilterWordExplorer,
    RelationshipAnnotator,
    TreeBrowser,
    link,
)
from failwidgets.world import Correlation, Minority, WorldConfig, make_world

__all__ = [
    "compute",
    "demo",
    "methods",
    "widgets",
    "world",
    "get_device",
    "EmbeddingCache",
    "OpenClipEncoder",
    "TorchvisionFeatureEncoder",
    "FailureDirections",
    "BarlowTree",
    "LaViSE",
    "RelationMiner",
    "RelationGraph",
    "DirectionSlider",
    "TreeBrowser",
    "FilterWordExplorer",
    "RelationshipAnnotator",
    "FailureMap",
    "link",
    "WorldConfig",
    "Correlation",
    "Minority",
    "make_world",
]
