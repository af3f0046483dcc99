"""Shared pieces of the benchmark suite: the result row, timing, memory, the environment line, output.

Every comparison runs both sides in this process and reports ``ratio = baseline_s / ours_s`` (> 1 means
ours is faster). Timings are the *median* of ``repeats`` runs of ``time.perf_counter`` (the median, not
the minimum, because the machine is shared and we want a typical wait, not a lucky one).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

from failwidgets.files import atomic_write

PROFILES = ("toy", "quick", "full")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass
class Row:
    """One line of the table.

    Attributes
    ----------
    item : str, the suite item ("cache", "gradients", ...).
    name : str, what was measured.
    target : str, the goal the row is measured against, in words.
    size : str, the data size.
    device : str, "cpu" or "cuda".
    baseline, ours : str, what each side is.
    baseline_s, ours_s : float or None, seconds (median over repeats); None where not measured.
    ratio : float or None, ``baseline_s / ours_s``.
    met : bool or None, whether the target is met (None: no target or not available).
    agreement : dict, numbers that check both sides agree (e.g. ``{"max_abs_diff": 1e-7}``).
    extra : dict, anything else measured (peak memory, steps, throughput, ...).
    available : bool, False when the code to benchmark is missing; ``note`` then says why.
    note : str
    """

    item: str
    name: str
    target: str
    size: str
    device: str = "cpu"
    baseline: str = ""
    ours: str = ""
    baseline_s: float | None = None
    ours_s: float | None = None
    ratio: float | None = None
    met: bool | None = None
    agreement: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)
    available: bool = True
    note: str = ""

    def finish(self) -> Row:
        """Fill ``ratio`` from the two timings."""
        if self.baseline_s is not None and self.ours_s is not None and self.ours_s > 0:
            self.ratio = self.baseline_s / self.ours_s
        return self


def not_available(item: str, name: str, target: str, size: str, why: str, device: str = "cpu") -> Row:
    """A row for something that cannot be measured here; no numbers are invented."""
    return Row(item, name, target, size, device=device, available=False, note=f"not available: {why}")


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Median wall time (s) of ``repeats`` calls of ``fn`` and the last call's result."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def peak_traced_mb(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Peak Python/numpy heap allocation (MiB) during ``fn`` via ``tracemalloc`` (numpy reports to it;
    torch's allocator does not), and ``fn``'s result."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, out


def maxrss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(module: str, args: list[str], timeout: float = 900) -> list[dict]:
    """Run ``python -m <module> <args>`` in a fresh process (so its peak RSS is its own) and parse the
    JSON objects it prints, one per stdout line starting with ``{``."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=root, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {args} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def environment() -> dict:
    """What the numbers were measured on, including the load average (the machine is shared)."""
    import numpy as np
    import torch

    load = os.getloadavg()
    return {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def format_table(rows: list[Row], env: dict) -> str:
    """A fixed-width text table (also valid Markdown)."""
    head = ["item", "measure", "size", "dev", "baseline", "ours", "ratio", "target", "met", "notes"]
    lines = []
    for r in rows:
        notes = [r.note] if r.note else []
        notes += [f"{k}={_fmt_v(v)}" for k, v in r.agreement.items()]
        notes += [f"{k}={_fmt_v(v)}" for k, v in r.extra.items()]
        lines.append(
            [
                r.item,
                r.name,
                r.size,
                r.device,
                f"{r.baseline}: {_fmt_s(r.baseline_s)}" if r.baseline else "-",
                f"{r.ours}: {_fmt_s(r.ours_s)}" if r.ours else "-",
                "-" if r.ratio is None else f"{r.ratio:.1f}x",
                r.target,
                {True: "yes", False: "NO", None: "-"}[r.met],
                "; ".join(notes),
            ]
        )
    out = [
        f"failwidgets benchmarks, {env['time_utc']}, load average {env['loadavg_1_5_15']} on "
        f"{env['host_cpus']} CPUs, torch {env['torch']} ({env['torch_threads']} threads), "
        f"GPU: {env['cuda'] or 'none'}",
        "",
    ]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in line) + " |" for line in lines]
    return "\n".join(out)


def _fmt_v(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_v(x) for x in v) + "]"
    return str(v)


def write_json(rows: list[Row], env: dict, profile: str, path: Path | None = None, latest: bool = True) -> Path:
    """Write ``{"environment", "profile", "rows"}`` to ``path`` (default ``results/<profile>-<time>.json``)
    and, with ``latest``, a copy to ``results/latest.json``."""
    stamp = env["time_utc"].replace(":", "").replace("+0000", "Z")
    path = Path(path) if path is not None else RESULTS_DIR / f"{profile}-{stamp}.json"
    if latest:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "profile": profile, "rows": [dataclasses.asdict(r) for r in rows]}
    text = json.dumps(payload, indent=1, default=_json_default)
    atomic_write(path, text)
    if latest:
        atomic_write(RESULTS_DIR / "latest.json", text)
    return path


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def pick(profile: str, toy: Any, quick: Any, full: Any) -> Any:
    """The value of a size parameter for ``profile``."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {PROFILES}, got {profile!r}")
    return {"toy": toy, "quick": quick, "full": full}[profile]
