"""The Ray engine: the same embedding and per-class fitting jobs on a Ray cluster.

Two entry points, both reached through one argument of the local API:

- ``embed(source, encoder, engine="ray")`` (:func:`embed_shards`): a Ray Data pipeline over the
  pending shards of the embedding store. ``ray.data.from_items`` holds one row per pending shard (a
  block of image indices); ``map_batches`` runs a callable class in an actor pool (the encoder is
  shipped to and loaded on each actor once; ``num_gpus=1`` per actor when the cluster has GPUs, CPU
  actors otherwise). Each actor reads and decodes its shard's images through the source (files,
  Hugging Face rows, tar shards, an in-memory array, a world split: whatever
  :func:`failwidgets.data.as_source` accepts and can pickle), resizes and encodes them with exactly the
  local engine's code, and writes the *whole shard* through :class:`~failwidgets.compute.store.ShardedStore`
  (rows, fsync, then its marker). The store is the same content-addressed ``<key>.shards`` directory
  the local engine writes, so its output is read the same way by every method and widget, and a
  rerun after any failure computes only the shards without a marker.
- :func:`map_items` (used by ``FailureDirections(engine="ray")`` and
  :func:`failwidgets.methods.barlow.fit_class_trees`): per-class jobs as Ray tasks, the shared arrays
  put in the object store once, the classes sent in chunks; results come back in order and equal the
  local ones exactly (the same function runs on the same inputs).

Storage: the store root must be a path every Ray worker sees (a local directory for a one-machine
cluster, a shared file system such as NFS / Lustre / a FUSE-mounted bucket for a multi-node one).
Object-store URIs (``s3://``) are not written directly.

Cluster: ``ray_address=None`` uses the Ray instance this process already started (``ray.init``), or
starts a local one; ``ray_address="auto"`` or ``"ray://host:10001"`` connects to an existing cluster
(see ``ray.init(address=...)``). Workers must be able to import ``failwidgets``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["ENGINES", "embed_shards", "map_items", "require_ray"]

ENGINES = ("local", "ray")
_INSTALL = "pip install 'failwidgets[ray]'"


def require_ray():
    """Import and return ``ray`` (with ``ray.data``); ImportError naming the extra when it is missing."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(f"engine='ray' needs Ray Data, which is not installed; install it with {_INSTALL}") from exc
    return ray


def _connect(ray_address: str | None):
    ray = require_ray()
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if ray_address is not None:
            kwargs["address"] = ray_address
        ray.init(**kwargs)
    return ray


def _cluster_gpus(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0))


class _EmbedShards:
    """Ray Data callable class: one actor holds one encoder; each call computes whole shards and
    writes them to the store."""

    def __init__(
        self,
        encoder: Any,
        source: Any,
        store_path: str,
        *,
        size,
        batch_size: int,
        num_workers: int,
        on_error: str,
        device: str | None,
    ):
        import torch

        from failwidgets.compute.store import ShardedStore
        from failwidgets.compute.streaming import _model_device

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        self.store = ShardedStore(store_path)
        self.source, self.size = source, size
        self.batch_size, self.num_workers, self.on_error = batch_size, num_workers, on_error
        self.dev = _model_device(encoder, device)
        if self.dev.type == "cuda" and not torch.cuda.is_available():
            self.dev = torch.device("cpu")
        self.encoder = _place(encoder, self.dev)

    def __call__(self, batch: dict) -> dict:
        import time

        from failwidgets.compute.streaming import _run

        shards = [int(k) for k in batch["shard"]]
        written, n_missing, seconds = [], [], []
        for k in shards:
            got: dict = {}
            start = time.perf_counter()

            def write(k_, rows, miss, got=got):
                self.store.write_shard(k_, rows, miss)
                got["missing"] = len(miss)

            _run(
                self.source,
                self.encoder,
                self.dev,
                [k],
                self.store.shard_range,
                write,
                dim=self.store.row_shape[0],
                size=self.size,
                batch_size=self.batch_size,
                num_workers=self.num_workers,
                on_error=self.on_error,
                progress=False,
                done_rows=0,
            )
            seconds.append(time.perf_counter() - start)
            written.append(k)
            n_missing.append(got.get("missing", 0))
        return {
            "shard": np.asarray(written, np.int64),
            "n_missing": np.asarray(n_missing, np.int64),
            "seconds": np.asarray(seconds, np.float64),
            "pid": np.full(len(written), os.getpid(), np.int64),
        }


def _place(encoder: Any, dev) -> Any:
    """Move the actor's copy of the encoder to ``dev``: a module itself, or an encoder holding a
    ``model`` module and a ``device`` (the library's encoders)."""
    import torch

    if isinstance(encoder, torch.nn.Module):
        return encoder.to(dev)
    model = getattr(encoder, "model", None)
    if isinstance(model, torch.nn.Module) and hasattr(encoder, "device"):
        encoder.model = model.to(dev)
        encoder.device = dev
    return encoder


def embed_shards(
    src: Any,
    encoder: Any,
    store: Any,
    shards: Sequence[int],
    *,
    size,
    batch_size: int,
    num_workers: int | None,
    on_error: str,
    device: Any = None,
    progress: bool = True,
    ray_address: str | None = None,
    num_actors: int | None = None,
    num_gpus: float | None = None,
    max_attempts: int = 3,
) -> list[dict]:
    """Compute ``shards`` of ``store`` on Ray (what ``embed(..., engine="ray")`` runs).

    Parameters
    ----------
    src : ImageSource, picklable (it is sent to each actor once).
    encoder : the Encoder, picklable; each actor receives one copy and keeps it.
    store : ShardedStore whose ``path`` every worker can open.
    shards : shard indices to compute.
    size, batch_size, on_error : as for the local engine.
    num_workers : DataLoader workers inside each actor (default 0: the actor decodes in its own
        process); each actor reserves ``1 + num_workers`` CPUs. A GPU actor needs enough of them to
        keep its GPU fed (see the decode-bound ceiling in the benchmarks).
    device : where each actor runs the encoder (default: ``cuda`` when the actor has a GPU, else CPU).
    ray_address : cluster to connect to when Ray is not initialised yet (``None``: start a local one).
    num_actors : actor pool size (default: the cluster's GPUs when it has some, else its CPUs, at most
        the number of shards).
    num_gpus : GPUs per actor (default 1 when the cluster has GPUs, else 0).
    max_attempts : passes over the shards still pending; Ray already restarts a dead actor and retries
        its shard, this is the fallback when a whole pass fails.

    Returns
    -------
    list of dict, one per shard computed: ``shard``, ``seconds`` (in the actor, decode + encode +
    write) and ``pid`` of the actor process.
    """
    ray = _connect(ray_address)
    from tqdm.auto import tqdm

    shards = [int(k) for k in shards]
    stats: list[dict] = []
    if not shards:
        return stats
    gpus = _cluster_gpus(ray)
    per_actor_gpus = (1.0 if gpus >= 1 else 0.0) if num_gpus is None else float(num_gpus)
    if num_actors is None:
        slots = int(gpus // per_actor_gpus) if per_actor_gpus else int(ray.cluster_resources().get("CPU", 1))
        num_actors = max(1, min(slots, len(shards)))
    dev = device
    if dev is None:
        dev = "cuda" if per_actor_gpus > 0 else "cpu"
    ctor = {
        "encoder": encoder,
        "source": src,
        "store_path": str(store.path),
        "size": size,
        "batch_size": batch_size,
        "num_workers": 0 if num_workers is None else int(num_workers),
        "on_error": on_error,
        "device": str(dev),
    }
    bar = tqdm(
        total=store.n_shards,
        initial=store.n_shards - len(shards),
        desc="embed (ray)",
        unit="shard",
        disable=not progress,
    )
    last_exc: BaseException | None = None
    try:
        for _ in range(max(1, int(max_attempts))):
            todo = [k for k in store.pending_shards() if k in set(shards)]
            if not todo:
                return stats
            ds = ray.data.from_items([{"shard": k} for k in todo], override_num_blocks=len(todo))
            pool = ray.data.ActorPoolStrategy(size=min(num_actors, len(todo)))
            out = ds.map_batches(
                _EmbedShards,
                batch_size=1,
                fn_constructor_kwargs=ctor,
                compute=pool,
                num_gpus=per_actor_gpus,
                num_cpus=1 + ctor["num_workers"],
                batch_format="numpy",
            )
            try:
                for batch in out.iter_batches(batch_size=1, batch_format="numpy"):
                    stats += [
                        {"shard": int(k), "seconds": float(t), "pid": int(p)}
                        for k, t, p in zip(batch["shard"], batch["seconds"], batch["pid"])
                    ]
                    bar.update(len(batch["shard"]))
                last_exc = None
            except ray.exceptions.RayError as exc:  # a pass failed (e.g. a node died): rerun what is pending
                if isinstance(exc, _user_errors(ray)):
                    raise  # the encoder or the source raised: not a failure a rerun fixes
                last_exc = exc
        left = [k for k in store.pending_shards() if k in set(shards)]
        if left:
            raise RuntimeError(
                f"embed (ray): {len(left)} shards are still missing after {max_attempts} "
                f"attempts; rerun to compute only those"
            ) from last_exc
        return stats
    finally:
        bar.close()


def _user_errors(ray) -> tuple:
    return tuple(
        c
        for c in (getattr(ray.exceptions, "UserCodeException", None), getattr(ray.exceptions, "RayTaskError", None))
        if isinstance(c, type)
    )


def map_items(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    shared: Sequence[Any] = (),
    engine: str = "local",
    ray_address: str | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    desc: str | None = None,
) -> list:
    """``[fn(*shared, item) for item in items]``, locally or as Ray tasks.

    Parameters
    ----------
    fn : picklable function (module level), ``fn(*shared, item)``.
    items : the jobs (e.g. class indices).
    shared : large arguments every job reads (arrays); on Ray they are put in the object store once.
    engine : ``"local"`` or ``"ray"``.
    ray_address : cluster to connect to when Ray is not initialised yet.
    chunk_size : items per Ray task (default: about four tasks per CPU of the cluster).
    progress : a ``tqdm`` bar over items.

    Returns
    -------
    list, the results in the order of ``items``.
    """
    from tqdm.auto import tqdm

    from failwidgets._validation import check_choice

    check_choice(engine, "engine", ENGINES)
    items = list(items)
    if engine == "local":
        return [fn(*shared, it) for it in tqdm(items, desc=desc, disable=not progress)]
    ray = _connect(ray_address)
    if not items:
        return []
    if chunk_size is None:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        chunk_size = max(1, math.ceil(len(items) / (4 * cpus)))
    refs = [ray.put(a) for a in shared]
    task = ray.remote(num_cpus=1)(_run_chunk)
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    pending = {task.remote(fn, refs, chunk): j for j, chunk in enumerate(chunks)}
    results: list = [None] * len(chunks)
    with tqdm(total=len(items), desc=desc, disable=not progress) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            j = pending.pop(ready[0])
            results[j] = ray.get(ready[0])
            bar.update(len(chunks[j]))
    return [r for chunk in results for r in chunk]


def _run_chunk(fn, shared_refs, chunk):
    import ray

    shared = ray.get(list(shared_refs)) if shared_refs else []
    return [fn(*shared, it) for it in chunk]
