"""Palisade and the Tavus simulator as real processes, for end-to-end tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import clean_env, free_port, palisade, running, wait_ready

ADMIN_TOKEN = "e2e-admin-token-0123456789"
SECRET_KEY = "e2e-secret-key-0123456789-0123456789"
# Palisade's global Tavus key; the simulator makes each key its own account.
TAVUS_API_KEY = "e2e-tavus-key"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# In production mode /metrics answers only a scrape bearing it.
METRICS_TOKEN = "e2e-metrics-token-0123456789"
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass
class Proc:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def simulator_process(tmp_path: Path, *args: str) -> Iterator[Proc]:
    port = free_port()
    log = tmp_path / f"simulator-{port}.log"
    command = palisade("simulator", "--port", str(port), "--replica-join-delay", "0", *args)
    with running(command, clean_env(), tmp_path, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/_sim/healthz", process, log)
        yield Proc(url, process, log)


@dataclass
class PalisadeProcess:
    database_url: str
    simulator_url: str
    tmp_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return clean_env(
            {
                "DATABASE_URL": self.database_url,
                "TAVUS_API_KEY": TAVUS_API_KEY,
                "TAVUS_BASE_URL": self.simulator_url,
                "PUBLIC_BASE_URL": self.url,
                "ADMIN_TOKEN": ADMIN_TOKEN,
                "SECRET_KEY": SECRET_KEY,
                "PALISADE_METRICS_TOKEN": METRICS_TOKEN,
                "PALISADE_MODE": "production",
                "PALISADE_TAVUS_TIMEOUT_SECONDS": "2",
                **self.env,
            }
        )

    @contextmanager
    def run(self, **extra_env: str) -> Iterator[Proc]:
        log = (
            self.tmp_path
            / f"palisade-{self.port}-{len(list(self.tmp_path.glob('palisade-*')))}.log"
        )
        env = {**self.environment(), **extra_env}
        command = palisade("serve", "--port", str(self.port))
        with running(command, env, self.tmp_path, log) as process:
            wait_ready(f"{self.url}/readyz", process, log)
            yield Proc(self.url, process, log)


def admin(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url + path, headers=ADMIN_HEADERS, timeout=30, **kwargs)


def make_tenant(
    palisade_url: str, simulator_url: str, *, tenant_id: str = "acme", cap: int = 50
) -> tuple[str, str]:
    """A tenant with a reuse and an ephemeral profile; returns (api key, persistent PAL)."""
    pal = httpx.post(
        f"{simulator_url}/v2/pals",
        headers={"x-api-key": TAVUS_API_KEY},
        json={"pal_name": "Persistent", "default_face_id": "r1", "system_prompt": "hi"},
        timeout=10,
    ).json()["pal_id"]
    body = {
        "id": tenant_id,
        "name": tenant_id,
        "max_concurrent_sessions": cap,
        "profiles": {
            "coach": {"strategy": "reuse", "pal_id": pal},
            "voices": {
                "strategy": "ephemeral",
                "pal_template": {
                    "pal_name": "Coach",
                    "default_face_id": "r1",
                    "system_prompt": "Be kind.",
                },
                "allowed_overrides": ["system_prompt"],
            },
        },
        "default_profile": "coach",
    }
    created = admin(palisade_url, "POST", "/tenants", json=body)
    assert created.status_code == 201, created.text
    key = admin(palisade_url, "POST", f"/tenants/{tenant_id}/api-keys", json={})
    assert key.status_code == 201, key.text
    return key.json()["key"], pal


def sim_state(simulator_url: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{simulator_url}/_sim/state", timeout=10).json()
    return state
