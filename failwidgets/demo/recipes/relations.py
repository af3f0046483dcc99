"""Demo glue for the relationship annotator (Zhang et al. 2018): what ``RelationshipAnnotator.from_demo`` needs.

The demo target's 20 attribute outputs are mined at one conv layer on the first training images, through
the demo's :class:`~failwidgets.compute.EmbeddingCache` (key: the target's fingerprint, the world's
fingerprint, the layer, the image count and the mask parameters), so a second call computes no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DEFAULT_LAYER", "mine_demo", "widget_inputs"]

#: ``conv4`` is useless here (the attribute head is linear on its global average, so dY_i/dx is the same
#: for every image and every r_ij a constant); ``conv3`` is the deepest layer with image-dependent patterns.
DEFAULT_LAYER = "conv3"


def mine_demo(
    demo: Any, *, layer: str = DEFAULT_LAYER, n_images: int = 1000, mask_images: int = 256, progress: bool = False
):
    """A :class:`~failwidgets.methods.relations.RelationMiner` fitted on the demo target's attribute head.

    Returns
    -------
    miner : RelationMiner, fitted on the first ``n_images`` training images at ``layer``
    model : the attribute model the relations were mined on (eval mode)
    """
    from failwidgets.methods.relations import RelationMiner

    world = demo.world
    train = world["train"]
    n = min(len(train.labels), int(n_images))
    miner = RelationMiner(mask_images=mask_images, progress=progress)
    model = demo.target.attribute_model().eval()  # a new view starts in train mode (BatchNorm!)
    miner.fit_model(
        model,
        train.images[:n],
        layer,
        train.attributes[:n],
        list(world.attribute_names),
        cache=demo.cache,
        data_id=f"{world.fingerprint}/train[:{n}]",
    )
    return miner, model


def widget_inputs(
    demo: Any,
    *,
    small: bool,
    layer: str | None = None,
    n_images: int | None = None,
    mask_images: int | None = None,
    graph: Any = "truth",
    n_example_images: int | None = None,
    progress: bool = False,
) -> dict:
    """Keyword arguments of :meth:`RelationshipAnnotator.from_model` on the demo world.

    Parameters
    ----------
    demo : failwidgets.demo.Demo
    small : fewer images (400 mined, 200 for the masks, 24 examples) so a notebook runs fast in CI
    layer : conv layer of the target (default :data:`DEFAULT_LAYER`)
    n_images, mask_images, n_example_images : default 1000, 256, 64 (small: 400, 200, 24)
    graph : ``"truth"`` (the world's true relations), None or a RelationGraph
    progress : progress bars while mining

    Returns
    -------
    dict: ``miner, model, layer, images, example_attributes, n_images, graph, test_predictions,
    test_attributes`` and ``extras`` (``demo``).
    """
    from failwidgets.methods.relations import RelationGraph

    world = demo.world
    train, test = world["train"], world["test"]
    names = list(world.attribute_names)
    layer = DEFAULT_LAYER if layer is None else layer
    miner, model = mine_demo(
        demo,
        layer=layer,
        n_images=n_images if n_images is not None else (400 if small else 1000),
        mask_images=mask_images if mask_images is not None else (200 if small else 256),
        progress=progress,
    )
    if isinstance(graph, str):
        if graph != "truth":
            raise ValueError(f"graph: expected 'truth', None or a RelationGraph, got {graph!r}")
        graph = RelationGraph.from_relations(names, world.attribute_relations())
    test_pred = (demo.attribute_logits("test", progress=progress) > 0).astype(np.float32)
    k = n_example_images if n_example_images is not None else (24 if small else 64)
    return {
        "miner": miner,
        "model": model,
        "layer": layer,
        "images": train.images[:k],
        "example_attributes": train.attributes[:k],
        "n_images": k,
        "graph": graph,
        "test_predictions": test_pred,
        "test_attributes": test.attributes,
        "extras": {"demo": demo},
    }
