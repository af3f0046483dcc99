"""The benchmark layer is widget-free (it may use methods, world, demo and compute)."""

from tests.test_layers import WIDGET_LIBS, _files, _violations


def test_slices_import_no_widget_code():
    assert _files("slices")
    assert _violations("slices", WIDGET_LIBS | {"failwidgets.widgets"}) == []
