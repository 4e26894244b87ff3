"""The runtime file through which the admin commands find a running dev-mode `palisade serve`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.admin import admin_settings
from app.cli.dev_stack import RUNTIME_FILE, RunningStack, RuntimeFile
from app.settings import SIMULATOR_DEFAULT_URL
from tests.support.processes import clean_env

EMBEDDED_DSN = "postgresql+asyncpg://postgres@/palisade?host=/tmp/data/pgdata"


def stack(pid: int) -> RunningStack:
    return RunningStack(
        pid=pid,
        api_url="http://127.0.0.1:8000",
        database_url=EMBEDDED_DSN,
        tavus_base_url="http://127.0.0.1:18100",
    )


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


class TestRuntimeFile:
    def test_kept_while_the_stack_runs_and_removed_after(self, tmp_path: Path) -> None:
        runtime = RuntimeFile(tmp_path / "data")
        with runtime.kept(stack(os.getpid())):
            assert runtime.read() == stack(os.getpid())
            assert stat.S_IMODE(runtime.path.stat().st_mode) == 0o600
        assert not runtime.path.exists()
        assert runtime.read() is None

    def test_a_file_left_by_a_dead_process_is_ignored(self, tmp_path: Path) -> None:
        (tmp_path / RUNTIME_FILE).write_text(json.dumps(vars(stack(dead_pid()))))
        assert RuntimeFile(tmp_path).read() is None

    @pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": 1}'])
    def test_a_damaged_file_is_ignored(self, tmp_path: Path, text: str) -> None:
        (tmp_path / RUNTIME_FILE).write_text(text)
        assert RuntimeFile(tmp_path).read() is None

    def test_a_file_another_serve_wrote_since_is_left_alone(self, tmp_path: Path) -> None:
        runtime = RuntimeFile(tmp_path)
        with runtime.kept(stack(os.getpid())):
            newer = {**vars(stack(os.getpid())), "api_url": "http://127.0.0.1:9000"}
            runtime.path.write_text(json.dumps(newer))
        assert runtime.path.exists()


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Palisade variable set and no `.env`, as on a fresh checkout; the data directory."""
    for name in set(os.environ) - set(clean_env()):
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PALISADE_DATA_DIR", str(data_dir))
    return data_dir


class TestAdminCommandsFindTheStack:
    def test_they_use_the_running_stacks_database_and_simulator(self, environment: Path) -> None:
        with RuntimeFile(environment).kept(stack(os.getpid())):
            settings = admin_settings()
        assert settings.database_url == EMBEDDED_DSN
        assert settings.tavus_url == "http://127.0.0.1:18100"
        assert settings.is_dev

    def test_without_a_running_stack_nothing_changes(self, environment: Path) -> None:
        (environment / RUNTIME_FILE).parent.mkdir(parents=True)
        (environment / RUNTIME_FILE).write_text(json.dumps(vars(stack(dead_pid()))))
        settings = admin_settings()
        assert settings.database_url is None
        assert settings.tavus_url == SIMULATOR_DEFAULT_URL

    def test_a_tavus_set_by_the_operator_wins(
        self, environment: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TAVUS_BASE_URL", "http://127.0.0.1:7777")
        with RuntimeFile(environment).kept(stack(os.getpid())):
            settings = admin_settings()
        assert settings.database_url == EMBEDDED_DSN
        assert settings.tavus_url == "http://127.0.0.1:7777"

    def test_a_database_set_by_the_operator_wins(
        self, environment: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/p")
        monkeypatch.setenv("PALISADE_MODE", "dev")
        with RuntimeFile(environment).kept(stack(os.getpid())):
            settings = admin_settings()
        assert settings.database_url == "postgresql+asyncpg://u@db.example:5432/p"
        assert settings.tavus_url == SIMULATOR_DEFAULT_URL
