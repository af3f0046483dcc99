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
    mods = _imports(PKG / "methods" / "_base.py")
    assert "failwidgets._validation" in mods


def test_compute_and_world_import_no_higher_layer():
    forbidden = {"failwidgets.methods", "failwidgets.widgets", "failwidgets.demo"}
    assert _files("compute") and _files("world")
    assert _violations("compute", forbidden) == []
    assert _violations("world", forbidden) == []


def test_methods_never_import_widget_libraries():
    assert _files("methods")
    assert _violations("methods", WIDGET_LIBS | {"failwidgets.widgets"}) == []


def test_methods_import_neither_world_nor_demo():
    assert _violations("methods", {"failwidgets.world", "failwidgets.demo"}) == []


def _private_violations(paths, root_pkg=None) -> list[str]:
    """Imports of an underscored module from outside the package that holds it.

    ``failwidgets.methods.directions._svm`` may be imported from inside ``failwidgets.methods.directions``
    only; ``failwidgets._validation`` (top level) from anywhere inside ``failwidgets``.
    """
    bad = []
    for f in paths:
        try:
            mods = _imports(f) if PKG.parent in f.parents else _imports_outside(f)
        except SyntaxError:
            continue
        here = f.relative_to(PKG.parent).with_suffix("").parts if PKG.parent in f.parents else ()
        for mod in sorted(m for m in mods if m.startswith("failwidgets")):
            parts = mod.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = parts[:i]
                    if tuple(here[: len(owner)]) != tuple(owner):
                        bad.append(f"{f} imports {mod}")
                    break
    return bad


def _imports_outside(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return {m for m in out if m.startswith("failwidgets")}


def _notebook_sources(tmp_path) -> list[Path]:
    import json

    out = []
    for nb in sorted((PKG.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        f = tmp_path / (nb.stem + ".py")
        f.write_text(code)
        out.append(f)
    return out


def test_no_private_module_is_imported_from_outside_its_package(tmp_path):
    paths = list(PKG.rglob("*.py")) + sorted((PKG.parent / "benchmarks").glob("*.py"))
    paths += _notebook_sources(tmp_path)
    assert len(paths) > 50
    assert _private_violations(paths) == []


def test_private_rule_catches_an_outside_import(tmp_path):
    f = tmp_path / "user.py"
    f.write_text("from failwidgets.methods.directions._svm import cv_linear_svm\nimport failwidgets._validation\n")
    assert len(_private_violations([f])) == 2


def test_import_failwidgets_does_not_load_captum():
    import subprocess
    import sys

    code = "import sys, failwidgets; print('captum' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PKG.parent)
    assert out.stdout.strip() == "False"
    code = "import sys, failwidgets.compute as c; c.attribution_maps; print('captum' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PKG.parent)
    assert out.stdout.strip() == "True"
