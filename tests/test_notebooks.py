"""Every notebook in notebooks/ runs top to bottom in a real kernel (nbclient)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert "00_tour" in names, names


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: outputs must not be committed"
    env_backup = dict(os.environ)
    os.environ["FAILWIDGETS_NOTEBOOK_TEST"] = "1"  # notebooks may pick smaller settings, never skip cells
    try:
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            store_widget_state=True,
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, errors
    # a real kernel built the widgets: their state is stored in the notebook metadata
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    if any("fw." in c.source or "failwidgets" in c.source for c in nb.cells if c.cell_type == "code"):
        assert state, f"{path.name}: expected widget state from a real kernel"
    (tmp_path / path.name).write_text(nbformat.writes(nb))


@pytest.mark.parametrize("stem", ["01_relations", "02_barlow", "03_lavise", "04_directions"])
def test_teaching_notebook_shows_the_failure_map_linked_to_its_widget(stem):
    nb = nbformat.read(NOTEBOOKS[0].parent / f"{stem}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # a map, linked to the method's widget, a selection set from Python read back, a typed hypothesis
    for needle in ("FailureMap", "link(", ".selection = ", ".selection_frame()", ".test_phrase("):
        assert needle in code, f"{stem}: no {needle!r} in its code cells"
