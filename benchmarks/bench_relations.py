"""Item 6: relation mining (Zhang et al. 2018), images per second with n attributes.

ours: ``RelationMiner().fit_model(model, images, layer, attributes)`` end to end (batched per-image
gradients of all n attribute outputs, Lasso-path masks, batched cosine relations).
baseline: the same mining fed by n single-output backward passes per batch (``bench_gradients``'s loop)
then ``RelationMiner().fit``. Model: the demo ``TargetCNN`` attribute view (random weights), layer
``conv3`` (64 x 8 x 8 = 4,096 units at 64 px; the paper's first conv layer, 16 x 64 x 64, would hold
n x 65,536 floats of gradients per image), 64 px images, n = 12 and 40. Target: none in the issue (throughput reported); both sides must
give the same relations.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import Row, not_available, pick, timed

ITEM = "relations"
LAYER = "conv3"


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.methods.relations import RelationMiner

        from .bench_gradients import _model, loop_gradients
    except ImportError as exc:
        return [not_available(ITEM, "relation mining", "images/s", "-", f"missing code ({exc})")]
    m = pick(profile, 4, 16, 64)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((m, 3, 64, 64), dtype=np.float32))
    rows = []
    for n in pick(profile, (3, 5), (12, 40), (12, 40)):  # toy: code paths only
        attributes = (rng.random((m, n)) < 0.4).astype(np.float32)
        attributes[0], attributes[1] = 1.0, 0.0  # every attribute has a positive and a negative image
        model = _model(n)
        miner = lambda: RelationMiner(progress=False, batch_size=32, device=device)  # noqa: E731

        def baseline():
            acts, grads = loop_gradients(model, images, LAYER, 32, device)
            return miner().fit(acts, grads, attributes)

        base_s, ref = timed(baseline)
        ours_s, ours = timed(lambda: miner().fit_model(model, images, LAYER, attributes))
        grads_s, (acts, grads) = timed(
            lambda: __import__("failwidgets.compute", fromlist=["x"]).output_gradients(
                model, images, LAYER, batch_size=32, device=device, progress=False
            )
        )
        fit_s, _ = timed(lambda: miner().fit(acts, grads, attributes))
        diff = np.nanmax(np.abs(ref.relations_ - ours.relations_))
        row = Row(
            ITEM,
            f"mine relations, n={n}",
            "report images/s; same relations",
            f"{m} images 64px, layer {LAYER} {tuple(acts.shape[1:])}",
            device,
            "loop gradients + fit",
            "fit_model",
            base_s,
            ours_s,
        ).finish()
        row.agreement = {
            "relations_max_abs_diff": float(diff),
            "same_masks": bool(np.array_equal(ref.masks_, ours.masks_)),
        }
        row.extra = {
            "images_per_s_ours": m / ours_s,
            "images_per_s_baseline": m / base_s,
            "share_gradients": grads_s / (grads_s + fit_s),
            "share_masks_relations": fit_s / (grads_s + fit_s),
        }
        row.met = bool(diff <= 1e-4) and row.agreement["same_masks"]
        rows.append(row)
    return rows
