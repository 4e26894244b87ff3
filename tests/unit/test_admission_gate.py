"""The admission gate is SQL in a migration: keep it in step with the Python around it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from app.db.models.session import NON_TERMINAL_STATES_SQL
from app.db.repositories import session_statements
from app.db.repositories.session_writes import AdmissionOutcome

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def _latest_gate_migration() -> ModuleType:
    defining = sorted(
        path
        for path in MIGRATIONS.glob("*.py")
        if "FUNCTION session_admission_gate" in path.read_text()
    )
    assert defining, "no migration defines session_admission_gate"
    spec = importlib.util.spec_from_file_location("gate_migration", defining[-1])
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gate_counts_live_sessions_as_the_models_define_them() -> None:
    assert NON_TERMINAL_STATES_SQL in _latest_gate_migration().GATE


def test_every_outcome_the_gate_returns_is_one_python_knows() -> None:
    returned = set(re.findall(r"SELECT '([a-z_]+)'::text", _latest_gate_migration().GATE))
    assert returned == {outcome.value for outcome in AdmissionOutcome}


def test_the_statement_passes_the_gate_its_parameters_in_order() -> None:
    gate = _latest_gate_migration().GATE
    declared = re.search(r"session_admission_gate\((.*?)\) RETURNS", gate, re.S)
    assert declared is not None
    names = [line.split()[0] for line in declared.group(1).strip().splitlines()]
    passed = [name.replace("claim_", "p_claim_") for name, _ in session_statements._GATE_PARAMETERS]
    assert names == passed
