"""Helpers for the real-browser tests: a Voilà server, headless Debian Chromium, a recording tab.

Plain functions and a class (no fixtures) so any test module can use them; the fixtures that use
them live in ``tests/browser/conftest.py``.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Without these Chromium tries to reach Google at every start (updates, sync, field trials).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 2600}  # tall: a whole widget fits in one screenshot
PAGE_TIMEOUT_MS = 180_000  # a kernel importing torch on 2 busy cores can take a minute or two

# Console errors diagnosed as harmless. bqplot draws a figure that sits in a hidden Tab panel
# (FilterWordExplorer's "Groups" tab) at size 0, so its plot area is 0 minus the margins (80 px wide,
# 90 px high) and Chromium rejects the negative <rect> sizes. The figure is laid out again when the tab
# is shown; tests/browser/test_widgets_in_voila.py checks its bars then have a real size.
BQPLOT_HIDDEN_FIGURE_NOISE = (
    '<rect> attribute width: A negative value is not valid. ("-80")',
    '<rect> attribute height: A negative value is not valid. ("-90")',
)

# Notebook 7's JupyterLab extension (installed with ``notebook>=7``) expects shared modules that only
# JupyterLab / Notebook provide (``@jupyterlab/docregistry``); Voila would load it and log
# module-federation errors (RUNTIME-012). It has nothing for Voila, so Voila is told to skip it.
VOILA_DENY_EXTENSIONS = "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']"

__all__ = [
    "VOILA_DENY_EXTENSIONS",
    "REPO",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "VIEWPORT",
    "PAGE_TIMEOUT_MS",
    "BQPLOT_HIDDEN_FIGURE_NOISE",
    "playwright",
    "launch_chromium",
    "start_voila",
    "stop_voila",
    "PageRecord",
]

_PLAYWRIGHT = None


def playwright():
    """The process's one running Playwright (sync API), started on first use, stopped at exit.

    The sync API cannot run twice in one thread (the first instance's event loop is still running), so
    every browser test of the session shares this one. Fails loudly (never skips) with the command that
    installs what is missing.
    """
    global _PLAYWRIGHT
    if _PLAYWRIGHT is None:
        _PLAYWRIGHT = _require_playwright()().start()
        atexit.register(_PLAYWRIGHT.stop)
    return _PLAYWRIGHT


def _require_playwright():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_browser.sh (browser tests never skip)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"playwright is not installed ({exc}): pip install -e '.[test]'", pytrace=False)
    return sync_playwright


def launch_chromium(playwright, profile_dir: Path):
    """A headless Chromium context with a fresh ``--user-data-dir`` (``profile_dir``, must be new).

    Playwright's ``launch()`` refuses a ``--user-data-dir`` argument; ``launch_persistent_context``
    is how it takes one.
    """
    return playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_voila(target: Path, cwd: Path, log_path: Path, timeout: float = 120.0, extra_env: dict | None = None):
    """Start ``voila <target>`` (a notebook or a folder of notebooks) on 127.0.0.1 and a free port.

    Returns ``(process, base_url)`` once the server answers HTTP. A folder's notebooks are at
    ``<base_url>voila/render/<name>.ipynb``. ``extra_env`` is added to the environment the server and
    its kernels get. Stop it with :func:`stop_voila`.
    """
    port = _free_port()
    # Kernels inherit this environment: the notebooks import this checkout's failwidgets and
    # tests.browser._builders; callback errors go to the widgets' log areas (not raised), as for a user.
    env = {k: v for k, v in os.environ.items() if k not in ("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True",
            VOILA_DENY_EXTENSIONS,
            str(target),
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.fw_log = log
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "api", timeout=2)
            break
        except urllib.error.HTTPError:  # any HTTP answer means the server is up
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                stop_voila(proc)
                raise RuntimeError(f"voila did not start: {Path(log_path).read_text()[-2000:]}") from None
            time.sleep(0.5)
    return proc, url


def stop_voila(proc) -> None:
    """Terminate the server started by :func:`start_voila` (kill it if it hangs)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    proc.fw_log.close()


class PageRecord:
    """A tab that refuses every request outside ``allowed`` and records what the page logged.

    Attributes
    ----------
    page : playwright Page
    errors : list of str, console errors and uncaught exceptions (minus ``ignore`` and our own aborts)
    refused : list of str, URLs of refused (aborted) requests
    """

    def __init__(self, page, allowed: tuple[str, ...] = ("http://127.0.0.1",), ignore: tuple[str, ...] = ()):
        self.page, self.allowed, self.ignore = page, tuple(allowed), tuple(ignore)
        self.errors: list[str] = []
        self.refused: list[str] = []
        page.route("**/*", self._route)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("console", self._console)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:  # offline: nothing may come from outside
            self.refused.append(url)
            route.abort()

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        # Noise we cause ourselves: Chromium logs "Failed to load resource" for each request aborted in
        # _route (Voilà links a font-awesome CSS from a CDN). A failed load of anything we allow (a 404
        # from the server, a missing widget bundle) stays an error.
        if "Failed to load resource" in msg.text and where in self.refused:
            return
        if any(s in msg.text for s in self.ignore):
            return
        self.errors.append(f"console: {msg.text} ({where})")

    def goto(self, url: str, wait_until: str = "load") -> PageRecord:
        self.page.goto(url, timeout=PAGE_TIMEOUT_MS, wait_until=wait_until)
        return self

    def check_no_errors(self) -> None:
        """Fail with the page's JavaScript errors, if any."""
        if self.errors:
            pytest.fail("JavaScript errors in the page:\n" + "\n".join(self.errors), pytrace=False)
