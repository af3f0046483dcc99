"""Item 5: LaViSE inference for all filters of a layer, batched filter attention versus the naive loop.

Both sides run ``LaViSE.explain(features=..., methods=("attention",))`` on the same fitted explainer:
``naive=True`` calls ``filter_attention`` once per (filter, top image) pair (the reference's loop);
``naive=False`` computes all pairs batched. Features are synthetic ReLU maps of a ResNet-like layer
(full profile: 2,000 images x 512 filters x 7 x 7, p = 25 top images per filter), the word space 5,000
random 50-d words. Target: the same attended inputs (max |diff| < 1e-5), the same top word for >= 99% of
filters (near-ties of cosine scores may swap under float rounding), and faster than the loop (the issue
gives no factor). The attention step alone is timed too (extra: ``attention_only_ratio``).
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import Row, not_available, pick, timed

ITEM = "lavise"


def _fitted(n: int, d: int, hw: int, n_words: int, seed: int = 0):
    from failwidgets.compute.words import WordSpace
    from failwidgets.methods.lavise import LaViSE

    rng = np.random.default_rng(seed)
    feats = np.maximum(rng.standard_normal((n, d, hw, hw), dtype=np.float32), 0.0)
    words = [f"w{i}" for i in range(n_words)]
    space = WordSpace(words, rng.standard_normal((n_words, 50)).astype(np.float32), name="bench-random")
    concepts = {f"w{i}": rng.random((n, hw, hw)) < 0.3 for i in range(8)}
    lav = LaViSE(word_space=space, epochs=1, batch_size=256, p=25, progress=False, random_state=seed)
    lav.fit(feats, concepts, layer="0")  # precomputed features: no model needed
    return lav, torch.from_numpy(feats)


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.methods.lavise import LaViSE  # noqa: F401
        from failwidgets.methods.lavise.attention import _naive_attended_pooled, attended_pooled
    except ImportError as exc:
        return [not_available(ITEM, "explain all filters", "same words", "-", f"LaViSE missing ({exc})")]
    n, d, hw, n_words = pick(profile, (40, 16, 7, 200), (500, 128, 7, 2000), (2000, 512, 7, 5000))
    lav, feats = _fitted(n, d, hw, n_words)
    explain = lambda naive: lav.explain(features=feats, methods=("attention",), naive=naive)  # noqa: E731
    base_s, ref = timed(lambda: explain(True))
    ours_s, ours = timed(lambda: explain(False), repeats=pick(profile, 1, 3, 3))
    p = ours.p
    img = torch.as_tensor(ours.top_images.reshape(-1))
    flt = torch.arange(d).repeat_interleave(p)
    att_base_s, a0 = timed(lambda: _naive_attended_pooled(feats, img, flt))
    att_ours_s, a1 = timed(lambda: attended_pooled(feats, img, flt), repeats=3)
    same = [ref.words["attention"][u] == ours.words["attention"][u] for u in range(d)]
    same_words = all(same)
    # words of one filter can differ only through near-ties of cosine scores (float rounding of the
    # attention, ~1e-7): report the share of filters with the identical ranked list and the top word
    same_top = np.mean([ref.words["attention"][u][:1] == ours.words["attention"][u][:1] for u in range(d)])
    row = Row(
        ITEM,
        "explain all filters (attention)",
        "same inputs and top words; faster than loop",
        f"{n} images x {d} filters x {hw}x{hw}, p={p}, {n_words} words",
        "cpu",
        "per-pair filter_attention loop",
        "batched attended_pooled",
        base_s,
        ours_s,
    ).finish()
    row.agreement = {
        "same_words_all_filters": same_words,
        "share_filters_same_words": float(np.mean(same)),
        "share_filters_same_top_word": float(same_top),
        "attention_max_abs_diff": float((a0 - a1).abs().max()),
    }
    row.extra = {"attention_only_ratio": att_base_s / att_ours_s, "attention_only_ours_s": att_ours_s}
    row.met = bool(row.agreement["attention_max_abs_diff"] < 1e-5 and same_top >= 0.99 and row.ratio > 1)
    return [row]
