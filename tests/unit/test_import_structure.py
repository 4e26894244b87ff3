"""The import structure of ``app``: no circle, and no arrow from a lower layer up.

Every import counts, wherever it is written (module level, inside a function, under
``TYPE_CHECKING``): a circle held together by a function-local import is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# From the ground up: a module may import its own layer and those below, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    # ``app`` itself is the package's face: its version.
    ("app", "app.settings", "app.errors", "app.crashpoints"),
    ("app.db", "app.tavus"),
    ("app.observability",),
    ("app.security",),
    ("app.domain",),
    ("app.runtime",),
    # The console is HTTP too: pages beside the API, on the same services.
    ("app.api", "app.console"),
    ("app.main",),
    ("app.cli", "app.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in APP.rglob("*.py")}


def imports_of(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of ``app`` that ``path`` imports, resolved to modules that exist."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
            # ``from pkg import name`` depends on the package itself unless ``name`` is a
            # submodule of it.
            if any(f"{base}.{alias.name}" not in known for alias in node.names):
                names.append(base)
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("app"):
                yield name


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {target for target in imports_of(path, known) if target != name}
        for name, path in known.items()
    }


def layer_of(module: str) -> int:
    # The longest prefix names the layer: ``app`` alone is the package face.
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "app" and module.startswith(prefix + "."))
    ]
    if matches:
        return max(matches)[1]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_no_import_runs_up_a_layer() -> None:
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(source)
    ]
    assert upward == []


def test_the_checks_see_a_circle_and_an_upward_arrow() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("app.db.models") < layer_of("app.domain.sessions.start")


@pytest.mark.parametrize("module", ["app.domain.sessions.start", "app.db.session_store"])
def test_the_graph_reads_real_imports(module: str) -> None:
    assert graph()[module], f"{module} imports nothing of app?"
