"""No import circle among the py_tasks modules; the cross-check's layers. No database.

Every ``import``/``from ... import`` of a py_tasks module counts, at module level or
inside a function (a deferred import hides a circle, it does not remove it). Imports
by name through importlib (the cross-check dispatcher reaching the family modules
named by the registry) are not edges: they are how a module is reached without
being imported back.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "py_tasks"
FAMILY_MODULES = ("crosscheck_bars", "crosscheck_correlation", "crosscheck_technical")


def imports(package: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in its text)."""
    own = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 0 and not (node.module or "").startswith(package.name):
                    continue
                parts = (node.module or "").split(".")[0 if node.level else 1:]
                if parts and parts[0]:
                    found.add(parts[0])  # from .x import y / from py_tasks.x import y
                else:
                    found.update(a.name for a in node.names)  # from . import x
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == package.name and len(parts) > 1:
                        found.add(parts[1])
        graph[path.stem] = (found & own) - {path.stem}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path per circle, e.g. ['a', 'b', 'a'] (empty: none)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_no_import_circle() -> None:
    assert circles(imports(PACKAGE)) == []


def test_the_cross_check_layers() -> None:
    graph = imports(PACKAGE)
    # the shared machinery imports no family module and not the dispatcher
    assert not graph["crosscheck_common"] & {"crosscheck", *FAMILY_MODULES}
    for module in FAMILY_MODULES:
        # a family module imports the shared machinery, no other family, not the dispatcher
        assert "crosscheck_common" in graph[module], module
        assert not graph[module] & {"crosscheck", *FAMILY_MODULES}, module
    # the dispatcher reaches the family modules through the registry only
    assert not graph["crosscheck"] & set(FAMILY_MODULES)


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("crosscheck_common", "    from .crosscheck import run_crosscheck\n"),  # deferred
        ("config", "from py_tasks import families\n"),  # families -> config -> families
    ],
)
def test_a_planted_circle_is_found(tmp_path: Path, module: str, line: str) -> None:
    copy = tmp_path / "py_tasks"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / f"{module}.py"
    text = path.read_text(encoding="utf-8")
    if line.startswith(" "):
        text += f"\n\ndef _planted() -> None:\n{line}"
    else:
        text += f"\n{line}"
    path.write_text(text, encoding="utf-8")
    found = circles(imports(copy))
    assert found, "the planted circle was not found"
    assert any(module in c for c in found), found
