"""The browser harness itself: console errors are caught, outside requests refused, our noise only filtered.

Without this a broken listener would let every browser test pass on a page full of errors.
"""

from __future__ import annotations

import pytest

from tests.browser._voila import PageRecord

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="https://cdn.example.invalid/font-awesome.css">
</head><body><p id="ok">loaded</p>
<script>
console.error("planted console error");
console.error("known noise: harmless");
console.warn("a warning is not an error");
setTimeout(() => { throw new Error("planted uncaught exception"); }, 0);
</script></body></html>"""


def test_page_record_catches_errors_and_refuses_the_network(chromium, tmp_path):
    path = tmp_path / "page.html"
    path.write_text(_PAGE)
    rec = PageRecord(chromium.new_page(), allowed=("file://",), ignore=("known noise",))
    try:
        rec.goto(path.as_uri())
        rec.page.wait_for_selector("#ok")
        rec.page.wait_for_function("() => true")  # let the timer's exception fire
        rec.page.wait_for_timeout(200)
    finally:
        rec.page.close()
    assert rec.refused == ["https://cdn.example.invalid/font-awesome.css"]
    assert any("planted console error" in e for e in rec.errors), rec.errors
    assert any(e.startswith("uncaught:") and "planted uncaught exception" in e for e in rec.errors), rec.errors
    assert not any("known noise" in e or "warning" in e for e in rec.errors), rec.errors
    assert not any("Failed to load resource" in e for e in rec.errors), rec.errors  # our own abort: noise
    assert len(rec.errors) == 2
    with pytest.raises(pytest.fail.Exception, match="planted console error"):
        rec.check_no_errors()
