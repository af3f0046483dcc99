"""The widgets: each holds a method object and renders it (ipywidgets + bqplot)."""
from .direction_slider import DirectionSlider
from .filter_word_explorer import FilterWordExplorer
from .relationship_annotator import RelationshipAnnotator
from .tree_browser import TreeBrowser

__all__ = ["DirectionSlider", "TreeBrowser", "FilterWordExplorer", "RelationshipAnnotator"]
