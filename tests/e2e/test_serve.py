"""`palisade serve` as a user runs it: real processes, real sockets, real signals."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import databases
from tests.support.processes import (
    clean_env,
    free_port,
    palisade,
    pid_alive,
    running,
    wait_ready,
)

pytestmark = pytest.mark.e2e


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_zero_setup_serve_is_ready_and_leaves_no_postgres_behind(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port, sim_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = clean_env({"PALISADE_DATA_DIR": str(data_dir)})
    log = tmp_path / "serve.log"
    command = palisade("serve", "--port", str(port), "--simulator-port", str(sim_port))
    with running(command, env, tmp_path, log) as process:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
        postmaster = _postmaster_pid(data_dir / "pgdata")
        assert pid_alive(postmaster)
        simulator = httpx.get(f"http://127.0.0.1:{sim_port}/_sim/state", timeout=5)
        assert simulator.status_code == 200

        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0, log.read_text()

    assert not pid_alive(postmaster), "embedded PostgreSQL still running"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    output = log.read_text()
    assert "SIMULATOR" in output
    # The demo key printed is the one kept for the next start.
    assert (data_dir / "demo-api-key").read_text().strip() in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{sim_port}/_sim/state", timeout=2)


def test_external_database_behind_head_is_refused_then_migrated(
    tmp_path: Path, postgres_server_url: str
) -> None:
    name = databases.unique_name("palisade_cli")
    url = asyncio.run(databases.create_database(postgres_server_url, name))
    try:
        env = clean_env({"DATABASE_URL": url, "PALISADE_MODE": "dev", "TAVUS_API_KEY": "tk"})
        refused = subprocess.run(
            palisade("serve", "--port", str(free_port())),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2
        assert "palisade migrate" in refused.stderr

        migrated = subprocess.run(
            palisade("migrate"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "database at revision" in migrated.stdout
    finally:
        asyncio.run(databases.drop_database(postgres_server_url, name))


def test_production_without_secrets_refuses_with_one_line(tmp_path: Path) -> None:
    env = clean_env({"DATABASE_URL": "postgresql://u@127.0.0.1:1/x", "TAVUS_API_KEY": "tk"})
    result = subprocess.run(
        palisade("serve"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "ADMIN_TOKEN" in lines[0]
    assert "SECRET_KEY" in lines[0]


DEV_MODE = {"PALISADE_MODE": "dev"}


@pytest.mark.parametrize(
    ("command", "host"),
    [("serve", "0.0.0.0"), ("serve", "::"), ("serve", "192.168.1.10"), ("worker", "0.0.0.0")],
)
def test_dev_mode_refuses_a_public_bind_with_one_line(
    tmp_path: Path, command: str, host: str
) -> None:
    result = subprocess.run(
        palisade(command, "--host", host, "--port", str(free_port())),
        env=clean_env({**DEV_MODE, "PALISADE_DATA_DIR": str(tmp_path / "data")}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert host in lines[0]
    assert "--allow-public-dev" in lines[0]
    assert "PALISADE_MODE=production" in lines[0]
    # Refused before anything started: no embedded database was created.
    assert not (tmp_path / "data").exists()


def test_dev_mode_binds_every_interface_when_told_to(
    tmp_path: Path, postgres_server_url: str
) -> None:
    name = databases.unique_name("palisade_public_dev")
    url = asyncio.run(databases.create_migrated_database(postgres_server_url, name))
    try:
        port = free_port()
        env = clean_env({**DEV_MODE, "DATABASE_URL": url, "TAVUS_API_KEY": "tk"})
        command = palisade("worker", "--host", "0.0.0.0", "--port", str(port), "--allow-public-dev")
        log = tmp_path / "worker.log"
        with running(command, env, tmp_path, log) as process:
            wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
    finally:
        asyncio.run(databases.drop_database(postgres_server_url, name))


def _as_in_the_image(*args: str) -> list[str]:
    """`palisade ARGS` where, as in the production image, neither the embedded PostgreSQL
    nor the Tavus simulator is installed."""
    hide = "import sys; sys.modules['pgserver'] = sys.modules['tavus_simulator'] = None"
    run = "from app.cli import main; sys.argv = ['palisade', *sys.argv[1:]]; main()"
    return [sys.executable, "-c", f"{hide}; {run}", *args]


def test_without_the_embedded_postgres_serve_says_what_to_set(tmp_path: Path) -> None:
    result = subprocess.run(
        _as_in_the_image("serve", "--port", str(free_port())),
        env=clean_env({"PALISADE_DATA_DIR": str(tmp_path / "data")}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "embedded PostgreSQL is not installed" in line
    assert "DATABASE_URL" in line
    assert "requirements/local.txt" in line
    assert not (tmp_path / "data").exists()


def test_without_the_simulator_serve_and_simulator_say_so(
    tmp_path: Path, postgres_server_url: str
) -> None:
    name = databases.unique_name("palisade_no_simulator")
    url = asyncio.run(databases.create_migrated_database(postgres_server_url, name))
    try:
        env = clean_env({"DATABASE_URL": url, "PALISADE_MODE": "dev"})
        for args in (("serve", "--port", str(free_port())), ("simulator", "--port", "1")):
            result = subprocess.run(
                _as_in_the_image(*args),
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 2, result.stderr
            [line] = [line for line in result.stderr.splitlines() if line.strip()]
            assert "Tavus simulator" in line
            assert "not installed" in line
    finally:
        asyncio.run(databases.drop_database(postgres_server_url, name))
