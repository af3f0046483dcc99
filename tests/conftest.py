"""Suite-wide settings: an isolated embedding cache, callback errors raised, no network."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache directory (the user's cache is never touched)."""
    root = tmp_path_factory.mktemp("failwidgets-cache")
    old = os.environ.get("FAILWIDGETS_CACHE")
    os.environ["FAILWIDGETS_CACHE"] = str(root)
    os.environ.setdefault("FAILWIDGETS_RAISE_CALLBACK_ERRORS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield root
    if old is None:
        os.environ.pop("FAILWIDGETS_CACHE", None)
    else:
        os.environ["FAILWIDGETS_CACHE"] = old
