"""The session store's functions are SQL in migrations: keep them in step with the Python
around them (``app/db/session_store.py``)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from app.db import session_store
from app.db.models.session import NON_TERMINAL_STATES_SQL
from app.db.session_store import SETTABLE, AdmissionOutcome

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def _latest_migration_defining(function: str) -> ModuleType:
    defining = sorted(
        path for path in MIGRATIONS.glob("*.py") if f"FUNCTION {function}(" in path.read_text()
    )
    assert defining, f"no migration defines {function}"
    spec = importlib.util.spec_from_file_location("migration", defining[-1])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _declared_parameters(sql: str, function: str) -> list[tuple[str, str]]:
    declared = re.search(rf"{function}\((.*?)\) RETURNS", sql, re.S)
    assert declared is not None
    return [
        (line.split()[0], line.split()[1].rstrip(","))
        for line in declared.group(1).strip().splitlines()
    ]


class TestAdmissionGate:
    def test_it_counts_live_sessions_as_the_models_define_them(self) -> None:
        assert NON_TERMINAL_STATES_SQL in _latest_migration_defining("session_admission_gate").GATE

    def test_every_outcome_it_returns_is_one_python_knows(self) -> None:
        gate = _latest_migration_defining("session_admission_gate").GATE
        returned = set(re.findall(r"SELECT '([a-z_]+)'::text", gate))
        assert returned == {outcome.value for outcome in AdmissionOutcome}

    def test_the_statement_passes_it_its_parameters_in_order(self) -> None:
        gate = _latest_migration_defining("session_admission_gate").GATE
        declared = _declared_parameters(gate, "session_admission_gate")
        passed = [(f"p_{name}", type_) for name, type_ in session_store._GATE_PARAMETERS]
        assert declared == passed
        call = re.search(r"session_admission_gate\((.*?)\)", session_store.ADMIT, re.S)
        assert call is not None
        casts = [arg.strip().split("::")[1] for arg in call.group(1).split(",")]
        assert casts == [type_ for _, type_ in session_store._GATE_PARAMETERS]


class TestSessionMove:
    def test_it_sets_exactly_the_columns_python_may_ask_for(self) -> None:
        move = _latest_migration_defining("session_move").MOVE
        named = set(re.findall(r"WHEN p_changes \? '([a-z_]+)'", move))
        assert named == SETTABLE

    def test_the_statement_passes_its_parameters_in_order(self) -> None:
        move = _latest_migration_defining("session_move").MOVE
        declared = [type_ for _, type_ in _declared_parameters(move, "session_move")]
        call = re.search(r"session_move\((.*?)\)", session_store.MOVE, re.S)
        assert call is not None
        casts = [arg.strip().split("::")[1] for arg in call.group(1).split(",")]
        assert casts == declared
