"""Helpers for the JupyterLab 4 / Notebook 7 browser tests: a token-protected server on loopback.

The server runs from ``sys.executable`` (so it sees the widget front ends that ipywidgets, bqplot and
ipyevents install as prebuilt labextensions under ``sys.prefix/share/jupyter/labextensions``) with
every Jupyter directory (config, data, runtime, settings, workspaces) set to a fresh temporary folder,
so neither a user's settings nor an earlier run change what the test sees; news and update checks are
off (the machine is offline and the test page refuses outside requests anyway).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.browser._voila import REPO, _free_port, stop_voila

__all__ = ["start_jupyter", "stop_jupyter", "JupyterServer", "APPS"]

APPS = {"lab": "jupyterlab", "notebook": "notebook"}


class JupyterServer:
    """A running server: ``proc``, ``url`` (base, ends with ``/``), ``token``, ``root`` (its root dir)."""

    def __init__(self, proc, url: str, token: str, root: Path, app: str):
        self.proc, self.url, self.token, self.root, self.app = proc, url, token, root, app

    def kernels(self) -> list[dict]:
        """The server's running kernels (``/api/kernels``: id, execution_state, ...)."""
        import json

        with urllib.request.urlopen(f"{self.url}api/kernels?token={self.token}", timeout=10) as r:
            return json.loads(r.read())

    def wait_for_idle_kernel(self, page, timeout: float = 180.0) -> dict:
        """Wait until one kernel runs and is idle (started and connected); returns its model.

        Waits with ``page.wait_for_timeout``: Playwright's sync API serves the page's routed requests
        only while Python is inside a Playwright call, so a ``time.sleep`` here would stall the page.
        """
        deadline = time.time() + timeout
        while time.time() < deadline:
            idle = [k for k in self.kernels() if k.get("execution_state") == "idle"]
            if idle:
                return idle[0]
            page.wait_for_timeout(1000)
        raise TimeoutError(f"no idle kernel after {timeout:.0f} s: {self.kernels()}")

    def notebook_url(self, name: str) -> str:
        """The URL that opens notebook ``name`` (relative to ``root``) in this server's app."""
        path = "lab/tree" if self.app == "lab" else "notebooks"
        return f"{self.url}{path}/{name}?token={self.token}"


def start_jupyter(
    app: str, root: Path, home: Path, log_path: Path, timeout: float = 180.0, extra_env: dict | None = None
) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` (``app``: ``"lab"`` / ``"notebook"``) on 127.0.0.1.

    ``root`` is the server's root directory (the notebooks it serves), ``home`` a fresh folder for its
    config, data, runtime, settings and workspaces. Returns once ``/api/status`` answers with the token.
    """
    if app not in APPS:
        raise ValueError(f"app: expected one of {sorted(APPS)}, got {app!r}")
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        env[name] = str(home / sub)
        (home / sub).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.update(extra_env or {})
    app_cls = "LabApp" if app == "lab" else "JupyterNotebookApp"
    args = [
        sys.executable,
        "-m",
        APPS[app],
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--allow-root",
        f"--{app_cls}.user_settings_dir={home / 'settings'}",
        f"--{app_cls}.workspaces_dir={home / 'workspaces'}",
        f"--{app_cls}.news_url=",
        f"--{app_cls}.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--{app_cls}.extension_manager=readonly",
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.fw_log = log
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2)
            break
        except urllib.error.HTTPError as exc:
            stop_voila(proc)
            raise RuntimeError(f"jupyter {app} answered {exc.code}: {Path(log_path).read_text()[-2000:]}") from exc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                stop_voila(proc)
                raise RuntimeError(f"jupyter {app} did not start: {Path(log_path).read_text()[-2000:]}") from None
            time.sleep(0.5)
    return JupyterServer(proc, url, token, root, app)


def stop_jupyter(server: JupyterServer) -> None:
    """Stop the server (its kernels go with it)."""
    stop_voila(server.proc)
