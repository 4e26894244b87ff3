"""The simulator is a separate Tavus: it shares no code with the client it checks, and the
application never needs it (the production image does not have it)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SIMULATOR = REPO / "tavus_simulator"
APPLICATION = REPO / "app"
# Runs the simulator's own command line when asked to, and says so when it is missing.
MAY_IMPORT_THE_SIMULATOR = {APPLICATION / "cli" / "simulator.py"}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, wherever the import statement is (functions and
    ``TYPE_CHECKING`` blocks included)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def imports_of(package: Path, top_level: str) -> list[str]:
    return [
        f"{path.relative_to(package.parent)}:{line}: {module}"
        for path in sorted(package.rglob("*.py"))
        for line, module in imported_modules(path)
        if module == top_level or module.startswith(f"{top_level}.")
    ]


def test_the_finder_sees_imports_anywhere_in_a_file(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from app.settings import Settings\n"
        "def f():\n    import app.crashpoints\n"
        "from .sibling import x\nimport application\n"
    )
    found = imports_of(package, "app")
    assert [entry.rsplit(": ", 1)[1] for entry in found] == ["app.settings", "app.crashpoints"]


def test_the_simulator_imports_nothing_of_palisade() -> None:
    assert imports_of(SIMULATOR, "app") == []


def test_the_application_imports_the_simulator_only_to_run_it() -> None:
    found = [
        entry
        for entry in imports_of(APPLICATION, "tavus_simulator")
        if REPO / entry.split(":", 1)[0] not in MAY_IMPORT_THE_SIMULATOR
    ]
    assert found == []
