"""The dev loop as a newcomer runs it: `palisade serve` with nothing set, the admin commands
beside it, restarts in between. Real processes on a fresh data directory."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import REPO, clean_env, free_port, palisade, running, wait_ready

pytestmark = pytest.mark.e2e

ADMIN_DOC = REPO / "docs" / "admin-api.md"


def docs_tenants_file() -> str:
    """The tenants file docs/admin-api.md shows for `palisade tenant apply`, verbatim."""
    blocks = re.findall(r"```yaml\n(.*?)```", ADMIN_DOC.read_text(), flags=re.S)
    [example] = [block for block in blocks if block.startswith("tenants:")]
    return str(example)


@dataclass
class DevStack:
    """`palisade serve` as the README runs it, on ports of its own and a fresh data directory."""

    workdir: Path
    port: int
    simulator_port: int
    runs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return clean_env({"PALISADE_DATA_DIR": str(self.workdir / ".palisade")})

    @contextmanager
    def serving(self) -> Iterator[Path]:
        self.runs += 1
        log = self.workdir / f"serve-{self.runs}.log"
        command = palisade(
            "serve", "--port", str(self.port), "--simulator-port", str(self.simulator_port)
        )
        with running(command, self.env(), self.workdir, log) as process:
            wait_ready(f"{self.url}/readyz", process, log)
            yield log
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0, log.read_text()

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            palisade(*args),
            env=self.env(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def stack(tmp_path: Path) -> DevStack:
    return DevStack(tmp_path, free_port(), free_port())


def start_session(url: str, api_key: str, body: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{url}/sessions",
        json=body,
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"t-{time.time()}"},
        timeout=30,
    )


def test_the_docs_tenant_applied_before_a_restart_starts_sessions_after_it(
    stack: DevStack,
) -> None:
    (stack.workdir / "tenants.yaml").write_text(docs_tenants_file())

    with stack.serving():
        assert stack.cli("tenant", "apply", "-f", "tenants.yaml").strip() == "acme: created"
        api_key = json.loads(stack.cli("key", "create", "acme", "--label", "web"))["key"]
        reused = start_session(stack.url, api_key, {})
        assert reused.status_code == 201, reused.text
        ended = httpx.post(
            f"{stack.url}/sessions/{reused.json()['id']}/end",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=30,
        )
        assert ended.status_code == 202, ended.text

    assert not (stack.workdir / ".palisade" / "runtime.json").exists()

    with stack.serving():
        for body in ({}, {"profile": "interview"}, {"profile": "demo"}):
            started = start_session(stack.url, api_key, body)
            assert started.status_code == 201, started.text
            assert started.json()["status"] == "active"
        [listed] = json.loads(stack.cli("key", "list", "acme"))
        assert listed["label"] == "web"
        # The conversation that ended before the restart is still over on the simulator.
        conversations = httpx.get(
            f"http://127.0.0.1:{stack.simulator_port}/_sim/state", timeout=10
        ).json()["conversations"]
        before = next(
            c for c in conversations if c["conversation_id"] == reused.json()["conversation_id"]
        )
        assert before["status"] == "ended"


def test_every_process_logs_in_one_format(stack: DevStack) -> None:
    with stack.serving() as log:
        pass
    lines = log.read_text().splitlines()
    palisade_line = f"Uvicorn running on http://127.0.0.1:{stack.port} "
    simulator_line = f"Uvicorn running on http://127.0.0.1:{stack.simulator_port} "
    dev_format = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[info\s*\] ")
    for wanted in (palisade_line, simulator_line):
        [line] = [line for line in lines if wanted in line]
        assert dev_format.match(line), line


def test_without_a_stack_an_admin_command_needing_tavus_says_what_to_do(
    stack: DevStack,
) -> None:
    (stack.workdir / "tenants.yaml").write_text(docs_tenants_file())
    began = time.monotonic()
    result = subprocess.run(
        palisade("tenant", "apply", "-f", "tenants.yaml"),
        env=stack.env(),
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "palisade serve" in result.stderr
    assert "TAVUS_API_KEY" in result.stderr
    assert time.monotonic() - began < 15
