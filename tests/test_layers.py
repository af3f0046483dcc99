"""The arrows point one way: compute <- methods <- widgets; world/compute never import methods or widgets."""
import ast
from pathlib import Path

import failwidgets

PKG = Path(failwidgets.__file__).parent
WIDGET_LIBS = {"ipywidgets", "bqplot", "ipyplot", "IPython"}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved against the package)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                if not node.module:
                    out |= {f"{mod}.{a.name}" for a in node.names}
            else:
                out.add(node.module)
    return out


def _files(sub: str):
    return sorted((PKG / sub).rglob("*.py"))


def _violations(sub: str, forbidden) -> list[str]:
    bad = []
    for f in _files(sub):
        for mod in _imports(f):
            if any(mod == x or mod.startswith(x + ".") for x in forbidden):
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
    return bad


def test_import_resolution_sees_relative_imports():
    mods = _imports(PKG / "methods" / "_failures.py")
    assert "failwidgets._validation" in mods


def test_compute_and_world_import_no_higher_layer():
    forbidden = {"failwidgets.methods", "failwidgets.widgets", "failwidgets.demo"}
    assert _files("compute") and _files("world")
    assert _violations("compute", forbidden) == []
    assert _violations("world", forbidden) == []


def test_methods_never_import_widget_libraries():
    assert _files("methods")
    assert _violations("methods", WIDGET_LIBS | {"failwidgets.widgets"}) == []
