"""Item "ray": the Ray engine of ``embed`` against the local engine on this machine.

- decode: the pipeline's decode-only rate (PNG files read, decoded and converted to float tensors by
  the same code the actors run, one process): the per-core ceiling of a decode-bound node.
- local vs Ray: the same PNG files embedded by the small CNN of the "data" item into a fresh store by
  the local engine (one process, no DataLoader workers) and by ``engine="ray"`` with one CPU actor and
  with two, then one again on the warm cluster; reports the ratio of wall times, the time the actor
  was busy (decode + encode + write, summed over its shards), the fixed cost per job (wall - busy:
  actor start-up, loading the encoder, Ray Data planning), the overhead per shard
  ``(busy - t_local) / shards``, the per-actor rate ``N / busy``, Ray's start-up (``ray.init``, excluded
  from the timings) and max |difference| (target <= 1e-5). The Ray instance is local (``num_cpus=2``), started and shut down here.

The toy profile (the smoke test) measures decode and the local engine only: starting Ray takes about a
minute on the shared 2-core machine.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from ._common import Row, not_available, pick

ITEM = "ray"


def _files(root: str, n: int) -> list[str]:
    from PIL import Image

    from .bench_data import _image

    paths = []
    for i in range(n):
        p = os.path.join(root, f"{i:06d}.png")
        Image.fromarray(_image(i)).save(p)
        paths.append(p)
    return paths


def _decode_rate(paths) -> float:
    from failwidgets.compute.streaming import _Rows
    from failwidgets.data import as_source

    rows = _Rows(as_source(paths), None)
    start = time.perf_counter()
    for i in range(len(paths)):
        rows[i]
    return len(paths) / (time.perf_counter() - start)


def _decode_rate_224(root: str, n: int) -> float:
    """Decode-only rate for 256 x 256 JPEG files resized to 224 (closer to a real photo dataset)."""
    from PIL import Image

    from failwidgets.compute.streaming import _Rows
    from failwidgets.data import as_source

    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 256, (32, 32, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # smooth-ish blocks
    os.makedirs(os.path.join(root, "jpg"))
    paths = []
    for i in range(n):
        p = os.path.join(root, "jpg", f"{i:06d}.jpg")
        Image.fromarray(np.roll(base, i, axis=1)).save(p, quality=90)
        paths.append(p)
    rows = _Rows(as_source(paths), (224, 224))
    start = time.perf_counter()
    for i in range(n):
        rows[i]
    return n / (time.perf_counter() - start)


def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.compute import EmbeddingCache, embed
        from failwidgets.compute.ray_engine import require_ray
    except ImportError as exc:
        return [not_available(ITEM, "ray engine", "-", "-", f"ray engine missing ({exc})")]
    from .bench_data import _encoder

    n = pick(profile, 64, 1024, 8192)
    shard = pick(profile, 16, 128, 512)
    n_shards = -(-n // shard)
    size = f"{n} PNG 64 px, {n_shards} shards of {shard}"
    rows = []
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "img"))
        paths = _files(os.path.join(root, "img"), n)
        decode = _decode_rate(paths)
        enc = _encoder()
        start = time.perf_counter()
        local = np.asarray(
            embed(
                paths,
                enc,
                cache=EmbeddingCache(os.path.join(root, "local")),
                batch_size=64,
                shard_size=shard,
                num_workers=0,
                progress=False,
            )
        )
        t_local = time.perf_counter() - start
        n_jpg = pick(profile, 16, 256, 1024)
        decode_224 = _decode_rate_224(root, n_jpg)
        rows.append(
            Row(
                ITEM,
                "decode-only rate of the pipeline (1 process)",
                "-",
                size,
                "cpu",
                ours="decode",
                ours_s=n / decode,
                extra={
                    "decode_images_per_s_per_core": decode,
                    f"decode_jpeg256_to_224_images_per_s_per_core_n{n_jpg}": decode_224,
                    "local_engine_images_per_s": n / t_local,
                },
            )
        )
        if profile == "toy":  # the smoke test: no Ray start-up (about a minute here); --quick measures Ray
            return rows
        try:
            ray = require_ray()
        except ImportError as exc:
            rows.append(not_available(ITEM, "local vs Ray engine", "same embeddings (<= 1e-5)", size, str(exc)))
            return rows
        os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")  # agents start slowly on a loaded machine
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        t_init = time.perf_counter() - start
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            from failwidgets.compute.ray_engine import embed_shards
            from failwidgets.data import as_source

            src = as_source(paths)
            timings, stats, diff = {}, {}, 0.0
            for run_name, actors in (("1 actor", 1), ("2 actors", 2), ("1 actor, warm", 1)):
                store = EmbeddingCache(os.path.join(root, run_name)).sharded(
                    {"bench": "ray", "run": run_name}, n_rows=n, row_shape=(enc.embed_dim,), shard_size=shard
                )
                start = time.perf_counter()
                stats[run_name] = embed_shards(
                    src,
                    enc,
                    store,
                    store.pending_shards(),
                    size=None,
                    batch_size=64,
                    num_workers=0,
                    on_error="raise",
                    progress=False,
                    num_actors=actors,
                )
                timings[run_name] = time.perf_counter() - start
                diff = max(diff, float(np.abs(np.asarray(store.read()) - local).max()))
        finally:
            ray.shutdown()
    busy = sum(s["seconds"] for s in stats["1 actor"])  # in the actor: decode + encode + write, per shard
    row = Row(
        ITEM,
        "local engine vs Ray engine (1 CPU actor)",
        "same embeddings (<= 1e-5)",
        size,
        "cpu",
        baseline="local engine (1 process)",
        ours="Ray, 1 CPU actor",
        baseline_s=t_local,
        ours_s=timings["1 actor"],
        agreement={"max_abs_diff": diff},
        met=diff <= 1e-5,
        extra={
            "ray_init_s": t_init,
            "ray_1_actor_s": timings["1 actor"],
            "ray_2_actors_s": timings["2 actors"],
            "ray_1_actor_warm_cluster_s": timings["1 actor, warm"],
            "actor_busy_s": busy,
            "fixed_overhead_per_job_s": timings["1 actor"] - busy,
            "overhead_per_shard_s": (busy - t_local) / n_shards,
            "per_actor_images_per_s": n / busy,
            "local_images_per_s": n / t_local,
            "ray_2_actors_images_per_s_wall": n / timings["2 actors"],
            "actors_used_2": len({s["pid"] for s in stats["2 actors"]}),
            "decode_images_per_s_per_core": decode,
            "cpu_count": os.cpu_count(),
            "gpu": "none on this machine",
        },
    )
    rows.append(row.finish())
    return rows
