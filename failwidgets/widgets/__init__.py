"""The widgets: each holds a method object and renders it (ipywidgets + bqplot)."""

from failwidgets.widgets.direction_slider import DirectionSlider
from failwidgets.widgets.failure_map import FailureMap
from failwidgets.widgets.filter_word_explorer import FilterWordExplorer
from failwidgets.widgets.parts.selection import link
from failwidgets.widgets.relationship_annotator import RelationshipAnnotator
from failwidgets.widgets.tree_browser import TreeBrowser

__all__ = ["DirectionSlider", "TreeBrowser", "FilterWordExplorer", "RelationshipAnnotator", "FailureMap", "link"]
