"""The procedural planted-bias world: offline, deterministic images with known truth.

>>> from failwidgets.world import WorldConfig, Correlation, Minority, make_world
>>> world = make_world(WorldConfig.demo())
>>> world["train"].images.shape      # uint8 (6000, 64, 64, 3)
>>> world.planted                    # what was planted, and the level measured in each split

Factors: shape (= class), colour, size, texture, background, position; see :data:`FACTOR_VALUES`.
"""

from failwidgets.world.attributes import ATTRIBUTE_GROUPS, ATTRIBUTE_NAMES, RELATION_SCORES, compute_attributes
from failwidgets.world.captions import caption_candidates, captions_from_factors, make_caption
from failwidgets.world.config import GENERATOR_VERSION, Correlation, Minority, WorldConfig
from failwidgets.world.factors import CLASS_FACTOR, FACTOR_NAMES, FACTOR_VALUES
from failwidgets.world.render import Rendering, render_image
from failwidgets.world.world import CONCEPTS, SPLITS, Split, SplitDataset, World, make_world

__all__ = [
    "WorldConfig",
    "Correlation",
    "Minority",
    "make_world",
    "World",
    "Split",
    "SplitDataset",
    "render_image",
    "Rendering",
    "make_caption",
    "captions_from_factors",
    "caption_candidates",
    "compute_attributes",
    "FACTOR_VALUES",
    "FACTOR_NAMES",
    "CLASS_FACTOR",
    "ATTRIBUTE_NAMES",
    "ATTRIBUTE_GROUPS",
    "RELATION_SCORES",
    "CONCEPTS",
    "SPLITS",
    "GENERATOR_VERSION",
]
