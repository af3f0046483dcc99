"""Item "data": image sources, the streaming ``embed`` and its resumable sharded store.

- rss: a lazily generated source of N 64-px images (1,000,000 in the full profile) embedded by a small
  CNN (``TorchvisionFeatureEncoder``, 128-d) into the store, in a fresh process; reports the peak
  resident memory above the process's baseline (target < 1 GB: the result lives on disk) and images/s.
- resume: a job of N images (100k full) is SIGKILLed at K random moments (20 full), resumed each time,
  then finished; reports the most rows any resumed run had to recompute (target: at most one shard --
  one writer), whether any shard ever failed its checksum, and whether the result equals an
  uninterrupted run bit for bit.
- loader: the DataLoader path (an ImageFolder of PNG files, decoded in one worker) against today's
  in-memory path (``encoder.encode_images`` on the uint8 array) on the demo world's val split with the
  demo VL encoder: max |difference| (target <= 1e-5) and images/s of both.

Children: ``python -m benchmarks.bench_data rss N`` and ``python -m benchmarks.bench_data job ROOT N
SHARD``, each printing JSON lines.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._common import Row, not_available, pick, run_child

ITEM = "data"
_TILE = None


def _image(i: int) -> np.ndarray:
    """A deterministic 64x64 image for index ``i`` (cheap: a window of a fixed random tile, shifted)."""
    global _TILE
    if _TILE is None:
        _TILE = np.random.default_rng(0).integers(0, 200, (64, 128, 3), dtype=np.uint8)
    s = i % 64
    return _TILE[:, s : s + 64] + np.uint8((i * 31) % 56)


def _encoder():
    import torch
    from torch import nn

    from failwidgets.compute import TorchvisionFeatureEncoder

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 4, stride=4),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    return TorchvisionFeatureEncoder(net, mean=(0, 0, 0), std=(1, 1, 1), name="bench-small-cnn", device="cpu")


def _source(n: int):
    from failwidgets.data import GeneratedSource

    return GeneratedSource(n, _image, identity=f"bench-generated-64px-v1-{n}")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------- children
def _child_rss(n: int) -> None:
    from failwidgets.compute import EmbeddingCache, embed

    enc, src = _encoder(), _source(n)
    with tempfile.TemporaryDirectory() as root:
        base = _rss_mb()
        base_hwm = _hwm_mb()
        start = time.perf_counter()
        out = embed(src, enc, cache=EmbeddingCache(root), batch_size=256, shard_size=8192, progress=False)
        took = time.perf_counter() - start
        peak = _hwm_mb()
        ok = bool(np.isfinite(out[[0, n // 2, n - 1]]).all())
        disk = sum(e.size_bytes for e in EmbeddingCache(root).entries())
        print(
            json.dumps(
                {
                    "n": n,
                    "baseline_rss_mb": base,
                    "baseline_hwm_mb": base_hwm,
                    "peak_hwm_mb": peak,
                    "delta_mb": peak - max(base, base_hwm),
                    "time_s": took,
                    "images_per_s": n / took,
                    "finite": ok,
                    "dim": int(out.shape[1]),
                    "disk_mb": disk / 2**20,
                }
            ),
            flush=True,
        )


def _child_job(root: str, n: int, shard: int) -> None:
    """Embed into ``root``, printing the rows encoded so far after every batch (the parent kills us)."""
    from failwidgets.compute import EmbeddingCache, embed

    enc = _encoder()
    inner = enc.encode_images
    done = {"rows": 0}

    def counting(images, **kw):
        out = inner(images, **kw)
        done["rows"] += len(out)
        print(json.dumps({"encoded": done["rows"]}), flush=True)
        return out

    enc.encode_images = counting
    embed(_source(n), enc, cache=EmbeddingCache(root), batch_size=256, shard_size=shard, progress=False)
    print(json.dumps({"finished": True, "encoded": done["rows"]}), flush=True)


# ---------------------------------------------------------------------------------------------- rows
def run(profile: str = "quick", device: str = "cpu") -> list[Row]:
    try:
        from failwidgets.compute import embed  # noqa: F401
        from failwidgets.data import GeneratedSource  # noqa: F401
    except ImportError as exc:
        return [not_available(ITEM, "streaming embed", "-", "-", f"data / streaming layer missing ({exc})")]
    return [_rss(profile), _resume(profile), _loader(profile)]


def _rss(profile: str) -> Row:
    n = pick(profile, 2000, 50_000, 1_000_000)
    (res,) = run_child("benchmarks.bench_data", ["rss", str(n)], timeout=7200)
    row = Row(
        ITEM,
        "embed a lazily generated source, peak RSS above baseline",
        "< 1 GB above baseline",
        f"{n} images 64px -> 128-d (small CNN), store on disk",
        "cpu",
        ours="embed (store)",
        ours_s=res["time_s"],
    )
    row.met = res["delta_mb"] < 1024 and res["finite"]
    row.extra = {
        "rss_delta_mb": round(res["delta_mb"], 1),
        "baseline_mb": round(res["baseline_rss_mb"], 1),
        "images_per_s": round(res["images_per_s"]),
        "disk_mb": round(res["disk_mb"], 1),
    }
    return row


def _resume(profile: str) -> Row:
    from failwidgets.compute import EmbeddingCache, ShardedStore, embed

    n = pick(profile, 3000, 20_000, 100_000)
    kills = pick(profile, 1, 5, 20)
    shard = pick(profile, 512, 2048, 4096)
    root = Path(__file__).resolve().parent.parent
    rng = random.Random(0)
    worst, lost_rows, corrupt, kill_log = 0, [], 0, []
    with tempfile.TemporaryDirectory() as cache_dir:

        def done_rows() -> int:
            stores = list(Path(cache_dir).glob("*.shards"))
            if not stores:
                return 0
            st = ShardedStore(stores[0])
            return sum(st.shard_range(k)[1] - st.shard_range(k)[0] for k in st.done_shards())

        for _ in range(kills):
            before = done_rows()
            if before >= n:
                break
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_data", "job", cache_dir, str(n), str(shard)],
                cwd=root,
                stdout=subprocess.PIPE,
                text=True,
            )
            # wait for the first encoded batch, then a random moment within the next few shards
            first = proc.stdout.readline()
            if not first.startswith("{"):
                proc.wait()
                raise RuntimeError("resume child failed to start")
            time.sleep(rng.uniform(0.0, 3.0))
            os.kill(proc.pid, signal.SIGKILL)
            rest = proc.stdout.read()
            proc.wait()
            lines = [first] + [ln for ln in rest.splitlines() if ln.startswith("{")]
            encoded = json.loads(lines[-1]).get("encoded", 0)
            after = done_rows()
            lost = encoded - (after - before)  # rows this run encoded that no finished shard kept
            lost_rows.append(lost)
            kill_log.append((before, after))
            stores = list(Path(cache_dir).glob("*.shards"))
            if stores:
                corrupt += len(ShardedStore(stores[0]).verify())
        # the next run: rows it recomputes beyond the shards left
        enc = _encoder()
        inner, count = enc.encode_images, {"rows": 0}

        def counting(images, **kw):
            out = inner(images, **kw)
            count["rows"] += len(out)
            return out

        enc.encode_images = counting
        left = n - done_rows()
        start = time.perf_counter()
        final = embed(
            _source(n), enc, cache=EmbeddingCache(cache_dir), batch_size=256, shard_size=shard, progress=False
        )
        resume_s = time.perf_counter() - start
        worst = max(lost_rows + [count["rows"] - left])
        ref_start = time.perf_counter()
        ref = embed(_source(n), _encoder(), cache=False, batch_size=256, progress=False)
        ref_s = time.perf_counter() - ref_start
        identical = bool(np.array_equal(np.asarray(final), ref, equal_nan=True))
    row = Row(
        ITEM,
        f"SIGKILL at {len(lost_rows)} random moments, resume",
        "recompute <= 1 shard per worker; identical",
        f"{n} images, shard {shard} rows, 1 writer",
        "cpu",
        "uninterrupted (in memory)",
        "final resume",
        ref_s,
        resume_s,
    ).finish()
    row.met = identical and worst <= shard and corrupt == 0
    row.agreement = {"identical": identical, "corrupt_shards": corrupt}
    row.extra = {"max_rows_recomputed": worst, "lost_rows_per_kill": lost_rows}
    return row


def _loader(profile: str) -> Row:
    import torchvision
    from PIL import Image

    import failwidgets as fw
    from failwidgets.compute import EmbeddingCache, embed
    from failwidgets.demo.loading import load_model

    n_val = pick(profile, 120, 600, 2000)
    world = fw.make_world(fw.WorldConfig.demo(n_train=60, n_val=n_val, n_test=60, n_pool=60))
    split = world["val"]
    enc = load_model("vl")
    enc.identity()  # load the text side outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        for i, (img, y) in enumerate(zip(split.images, split.labels)):
            d = os.path.join(tmp, "val", world.class_names[y])
            os.makedirs(d, exist_ok=True)
            Image.fromarray(img).save(os.path.join(d, f"{i:05d}.png"))
        folder = torchvision.datasets.ImageFolder(os.path.join(tmp, "val"))
        order = [int(os.path.basename(p)[:5]) for p, _ in folder.samples]
        start = time.perf_counter()
        ref = enc.encode_images(split.images, batch_size=256, progress=False)
        mem_s = time.perf_counter() - start
        start = time.perf_counter()
        got = embed(
            folder, enc, cache=EmbeddingCache(os.path.join(tmp, "cache")), batch_size=256, num_workers=1, progress=False
        )
        stream_s = time.perf_counter() - start
        diff = float(np.abs(np.asarray(got) - ref[order]).max())
    row = Row(
        ITEM,
        "DataLoader path (PNG ImageFolder, 1 worker) vs in-memory",
        "same embeddings (<= 1e-5)",
        f"demo world val, {len(split)} images 64px, demo VL encoder",
        "cpu",
        "in-memory encode_images",
        "embed (decode PNGs + store)",
        mem_s,
        stream_s,
    ).finish()
    row.met = diff <= 1e-5
    row.agreement = {"max_abs_diff": diff}
    row.extra = {
        "in_memory_images_per_s": round(len(split) / mem_s),
        "loader_images_per_s": round(len(split) / stream_s),
    }
    return row


if __name__ == "__main__":
    if sys.argv[1] == "rss":
        _child_rss(int(sys.argv[2]))
    elif sys.argv[1] == "job":
        _child_job(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown child {sys.argv[1]!r}")
