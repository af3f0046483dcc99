"""The failure map in headless Chromium: time to first draw of N points, and frame times while panning.

Not part of ``benchmarks.run`` (it needs Voilà, Chromium and minutes): run it from the repository root,

    python -m benchmarks.browser_map --n 1000000

A temporary notebook builds a ``FailureMap`` of N random points (jupyter-scatter backend, no images),
Voilà serves it, headless Debian Chromium (software WebGL: ``--disable-gpu``) opens it. Reported:

- ``kernel_to_canvas_s``: from the request of the page to the map's canvas in the DOM (kernel start,
  building the widget, sending the points);
- ``first_draw_s``: from the request of the page to the first screenshot of the canvas with drawn points;
- ``pan_frame_ms``: median and 90th percentile interval between animation frames while the mouse drags
  the map for two seconds (``requestAnimationFrame`` in the page).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_NOTEBOOK_CODE = """import sys
sys.path.insert(0, {repo!r})
import numpy as np
from failwidgets.widgets import FailureMap
rng = np.random.default_rng(0)
n = {n}
labels = rng.integers(0, 10, n)
preds = np.where(rng.random(n) < 0.2, (labels + 1) % 10, labels)
w = FailureMap(labels=labels, preds=preds, xy=rng.standard_normal((n, 2)).astype(np.float32), backend="jscatter",
               previews=False)
w.plot.layout.width = "800px"
w.add_class("fw-bench-root")
w"""

# starts recording animation-frame times into window.__fwFrames and returns at once (the drag follows)
_FRAMES = """() => {
    window.__fwFrames = []; window.__fwRecording = true;
    function f(now) { window.__fwFrames.push(now); if (window.__fwRecording) requestAnimationFrame(f); }
    requestAnimationFrame(f);
}"""


def _drawn(png: bytes) -> float:
    """Share of pixels of a screenshot that are not the white background."""
    import io

    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return float(np.mean(a.sum(-1) < 720))


def measure(n: int) -> dict:
    import numpy as np
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO))
    from tests.browser._voila import launch_chromium, start_voila, stop_voila

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": _NOTEBOOK_CODE.format(repo=str(REPO), n=n),
                }
            ],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (tmp / "map.ipynb").write_text(json.dumps(nb))
        proc, url = start_voila(tmp / "map.ipynb", tmp, tmp / "voila.log", timeout=180)
        try:
            with sync_playwright() as p:
                ctx = launch_chromium(p, tmp / "profile")
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(url, wait_until="commit", timeout=600_000)
                page.wait_for_selector(".fw-bench-root canvas", timeout=600_000)
                t_canvas = time.perf_counter() - t0
                canvas = page.locator(".fw-bench-root canvas").first
                while True:
                    share = _drawn(canvas.screenshot())
                    if share > 0.01:
                        break
                    if time.perf_counter() - t0 > 600:
                        raise RuntimeError("no points drawn after 600 s")
                    time.sleep(0.05)
                t_draw = time.perf_counter() - t0
                box = canvas.bounding_box()
                cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                before = canvas.screenshot()
                page.mouse.move(cx, cy)
                page.mouse.down()
                page.evaluate(_FRAMES)
                t_pan = time.perf_counter()
                for k in range(40):  # drag for about two seconds while frames are recorded
                    page.mouse.move(cx + 150 * np.sin(k / 6), cy + 100 * np.cos(k / 6))
                    time.sleep(0.05)
                page.mouse.up()
                pan_wall = time.perf_counter() - t_pan
                t = np.diff(
                    np.asarray(page.evaluate("() => { window.__fwRecording = false; return window.__fwFrames; }"))
                )
                changed = canvas.screenshot() != before
                ctx.close()
        finally:
            stop_voila(proc)
    return {
        "n_points": n,
        "kernel_to_canvas_s": round(t_canvas, 2),
        "first_draw_s": round(t_draw, 2),
        "drawn_share": round(share, 3),
        "pan_frame_ms_median": round(float(np.median(t)), 1),
        "pan_frame_ms_p90": round(float(np.percentile(t, 90)), 1),
        "pan_frames": int(len(t)),
        "pan_wall_s": round(pan_wall, 2),
        "view_changed": bool(changed),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.n)))


if __name__ == "__main__":
    main()
