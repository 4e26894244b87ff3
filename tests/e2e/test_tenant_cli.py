"""`palisade tenant ...` and `palisade key ...` as an operator runs them: real processes,
a real database, the simulator over a real socket."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.domain.webhooks.signing import new_secret
from app.main import create_app
from app.settings import Settings, normalise_database_url
from tests.support.processes import (
    REPO,
    clean_env,
    free_port,
    palisade,
    running,
    wait_ready,
)
from tests.support.stack import PAL_TEMPLATE

pytestmark = pytest.mark.e2e

TENANT_TAVUS_KEY = "acme-own-tavus-key-7f3a9c"
KEY_VARIABLE = "ACME_TAVUS_KEY"


@pytest.fixture(scope="module")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    command = palisade("simulator", "--port", str(port), "--seed", "7")
    with running(command, clean_env(), REPO, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/_sim/healthz", process, log)
        yield url


@dataclass
class Operator:
    """Runs the CLI the way an operator's shell or CI job would."""

    env: dict[str, str]
    cwd: Path
    database_url: str
    simulator_url: str

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            palisade(*args),
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def apply(
        self, document: dict[str, Any], *flags: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        path = self.cwd / "tenants.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.run("tenant", "apply", "-f", str(path), *flags, env=env)

    def show(self, tenant_id: str = "acme") -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.ok("tenant", "show", tenant_id))
        return shown

    def timestamps(self) -> dict[str, datetime]:
        """updated_at of every tenant (by id) and profile (by tenant/name)."""
        return dict(
            self.sql(
                "SELECT id, updated_at FROM tenant UNION ALL "
                "SELECT tenant_id || '/' || name, updated_at FROM profile"
            )
        )

    def profiles(self, tenant_id: str = "acme") -> dict[str, dict[str, Any]]:
        rows = self.sql(f"SELECT name, config FROM profile WHERE tenant_id = '{tenant_id}'")
        return dict(rows)

    def sql(self, query: str) -> list[tuple[Any, Any]]:
        # Read straight from the database: each CLI run costs a process start.
        async def read() -> list[tuple[Any, Any]]:
            engine = create_async_engine(normalise_database_url(self.database_url))
            try:
                async with engine.connect() as connection:
                    rows = await connection.execute(text(query))
                    return [(row[0], row[1]) for row in rows]
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def sessions_status(self, api_key: str) -> int:
        """The status of GET /sessions with this key, asked of a Palisade on this database."""

        async def ask() -> int:
            settings = Settings.model_validate(
                {
                    "DATABASE_URL": self.database_url,
                    "PALISADE_MODE": "dev",
                    "TAVUS_BASE_URL": self.simulator_url,
                }
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    headers = {"Authorization": f"Bearer {api_key}"}
                    return (await client.get("/sessions", headers=headers)).status_code

        return asyncio.run(ask())

    def make_pal(self, api_key: str) -> str:
        body = {"default_face_id": "r90bbd427f71", "pal_name": "Coach", "system_prompt": "hi"}
        response = httpx.post(
            f"{self.simulator_url}/v2/pals", json=body, headers={"x-api-key": api_key}
        )
        assert response.status_code == 200, response.text
        pal_id: str = response.json()["pal_id"]
        return pal_id


@pytest.fixture
def operator(tmp_path: Path, fresh_database_url: str, simulator_url: str) -> Operator:
    assert httpx.post(f"{simulator_url}/_sim/reset", json={}).status_code == 200
    env = clean_env(
        {
            "DATABASE_URL": fresh_database_url,
            "PALISADE_MODE": "dev",
            "TAVUS_API_KEY": "global-tavus-key",
            "TAVUS_BASE_URL": simulator_url,
            KEY_VARIABLE: TENANT_TAVUS_KEY,
        }
    )
    return Operator(env, tmp_path, fresh_database_url, simulator_url)


def tenants_file(pal_id: str) -> dict[str, Any]:
    return {
        "tenants": [
            {
                "id": "acme",
                "name": "Acme",
                "max_concurrent_sessions": 5,
                "tavus_api_key_env": KEY_VARIABLE,
                "default_profile": "coach",
                "profiles": {
                    "coach": {"strategy": "reuse", "pal_id": pal_id},
                    "interview": {
                        "strategy": "ephemeral",
                        "pal_template": copy.deepcopy(PAL_TEMPLATE),
                        "allowed_overrides": ["system_prompt"],
                    },
                    "smart": {
                        "strategy": "auto",
                        "pal_id": pal_id,
                        "pal_template": copy.deepcopy(PAL_TEMPLATE),
                        "allowed_overrides": ["layers.tts.external_voice_id"],
                    },
                },
            }
        ]
    }


def test_apply_creates_then_changes_only_what_the_file_changes(operator: Operator) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))

    first = operator.apply(document)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "acme: created\n"
    listed = operator.ok("tenant", "list")
    shown = operator.ok("tenant", "show", "acme")
    assert json.loads(listed) == [
        {
            "id": "acme",
            "name": "Acme",
            "max_concurrent_sessions": 5,
            "profiles": ["coach", "interview", "smart"],
            "default_profile": "coach",
        }
    ]
    tenant = json.loads(shown)
    assert sorted(tenant["profiles"]) == ["coach", "interview", "smart"]
    assert tenant["has_tavus_api_key"] is True
    assert TENANT_TAVUS_KEY not in listed + shown
    before = operator.timestamps()

    again = operator.apply(document)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "acme: unchanged\n"
    assert operator.timestamps() == before

    document["tenants"][0]["profiles"]["interview"]["pal_template"]["system_prompt"] = "Be kind."
    edited = operator.apply(document)
    assert edited.returncode == 0, edited.stderr
    assert edited.stdout == "acme: updated (profiles.interview)\n"
    after = operator.timestamps()
    assert after.pop("acme/interview") > before.pop("acme/interview")
    assert after == before
    assert operator.profiles()["interview"]["pal_template"]["system_prompt"] == "Be kind."


def test_prune_profiles_removes_what_the_file_no_longer_lists(operator: Operator) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))
    assert operator.apply(document).returncode == 0
    del document["tenants"][0]["profiles"]["smart"]

    kept = operator.apply(document)
    assert kept.stdout == "acme: unchanged\n", kept.stderr
    assert sorted(operator.profiles()) == ["coach", "interview", "smart"]

    pruned = operator.apply(document, "--prune-profiles")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout == "acme: updated (profiles.smart)\n"
    assert sorted(operator.profiles()) == ["coach", "interview"]


def test_a_missing_variable_stops_the_run_with_one_line(operator: Operator) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))

    result = operator.apply(document, env={KEY_VARIABLE: ""})

    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"palisade: missing_environment_variable: tenant 'acme': {KEY_VARIABLE} is not set"
    ]
    assert operator.sql("SELECT id, name FROM tenant") == []


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        ({"strategy": "reuse"}, "pal_id_required"),
        ({"strategy": "reuse", "pal_id": "pdoesnotexist"}, "pal_not_found"),
    ],
)
def test_an_invalid_profile_is_refused_naming_the_code(
    operator: Operator, profile: dict[str, Any], code: str
) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))
    document["tenants"][0]["profiles"]["broken"] = profile

    result = operator.apply(document)

    assert result.returncode == 2
    assert result.stdout == ""
    assert code in result.stderr
    assert "broken" in result.stderr
    assert operator.sql("SELECT id, name FROM tenant") == []


def test_a_misplaced_secret_is_refused_without_being_echoed(operator: Operator) -> None:
    secret = "sk-pasted-in-the-wrong-place"
    document = tenants_file("p0")
    document["tenants"][0]["tavus_api_key"] = secret

    result = operator.apply(document)

    assert result.returncode == 2
    assert "tenants.0.tavus_api_key: Extra inputs are not permitted" in result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "nan is not a JSON number"),
        (-math.inf, "-inf is not a JSON number"),
        (date(2026, 1, 1), "a date is not a JSON value"),
    ],
    ids=["nan", "-inf", "date"],
)
def test_a_value_json_cannot_carry_is_refused_where_it_is(
    operator: Operator, value: object, reason: str
) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))
    template = document["tenants"][0]["profiles"]["interview"]["pal_template"]
    template["layers"]["llm"] = {"extra_body": {"temperature": value}}

    result = operator.apply(document)

    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    where = "tenants.0.profiles.interview.pal_template.layers.llm.extra_body.temperature"
    assert f"{where}: {reason}" in result.stderr
    assert "Traceback" not in result.stderr
    assert operator.sql("SELECT id, name FROM tenant") == []


def test_a_value_that_contains_itself_is_refused(operator: Operator) -> None:
    path = operator.cwd / "tenants.yaml"
    path.write_text("tenants:\n  - id: acme\n    name: Acme\n    profiles: &loop {p: *loop}\n")

    result = operator.run("tenant", "apply", "-f", str(path))

    assert result.returncode == 2, result.stdout
    assert "deeper than 64 levels" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_tenant_listed_twice_is_refused(operator: Operator) -> None:
    document = tenants_file("p0")
    document["tenants"].append(copy.deepcopy(document["tenants"][0]))

    result = operator.apply(document)

    assert result.returncode == 2
    assert "tenants listed more than once: acme" in result.stderr


def test_a_created_key_authenticates_until_revoked(operator: Operator) -> None:
    assert operator.apply(tenants_file(operator.make_pal(TENANT_TAVUS_KEY))).returncode == 0

    created = json.loads(operator.ok("key", "create", "acme", "--label", "web"))
    assert set(created) == {
        "id",
        "key",
        "prefix",
        "label",
        "scopes",
        "profiles",
        "start_rate",
        "start_burst",
        "created_at",
    }
    # Unrestricted: a backend's key.
    assert (created["profiles"], created["start_rate"]) == (None, None)
    assert len(created["scopes"]) == 4
    assert created["key"].startswith(created["prefix"])
    assert created["label"] == "web"
    assert operator.sessions_status(created["key"]) == 200
    stored = operator.sql("SELECT id, key_hash FROM tenant_api_key")
    assert [row[0] for row in stored] == [created["id"]]
    assert created["key"] not in str(stored)

    revoked = operator.run("key", "revoke", "acme", created["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == f"revoked {created['id']}\n"
    assert operator.sessions_status(created["key"]) == 401

    unknown = operator.run("key", "revoke", "acme", "key_nope")
    assert unknown.returncode == 2
    assert "api_key_not_found" in unknown.stderr


WEBHOOK_SECRET_VARIABLE = "ACME_WEBHOOK_SECRET"


def test_apply_manages_webhook_endpoints_with_secrets_from_the_environment(
    operator: Operator,
) -> None:
    secret = new_secret()
    env = {WEBHOOK_SECRET_VARIABLE: secret}
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))
    endpoint = {
        "url": "https://hooks.example.com/palisade",
        "events": ["session.ended"],
        "secret_env": WEBHOOK_SECRET_VARIABLE,
    }
    document["tenants"][0]["webhook_endpoints"] = [endpoint]

    first = operator.apply(document, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "acme: created\n"
    assert secret not in first.stdout + first.stderr
    stored = operator.sql("SELECT url, event_types FROM webhook_endpoint")
    assert stored == [("https://hooks.example.com/palisade", ["session.ended"])]

    again = operator.apply(document, env=env)
    assert again.stdout == "acme: unchanged\n", again.stderr

    # A new secret is a rotation: the old one signs too for the overlap.
    rotated = operator.apply(document, env={WEBHOOK_SECRET_VARIABLE: new_secret()})
    assert (
        rotated.stdout == "acme: updated (webhook_endpoints[https://hooks.example.com/palisade])\n"
    )
    [(previous, _)] = operator.sql("SELECT previous_secret_expires_at, 1 FROM webhook_endpoint")
    assert previous is not None

    document["tenants"][0]["webhook_endpoints"] = []
    emptied = operator.apply(document, env=env)
    assert emptied.returncode == 0, emptied.stderr
    assert operator.sql("SELECT url, 1 FROM webhook_endpoint") == []


@pytest.mark.parametrize(
    ("value", "code"),
    [("", "missing_environment_variable"), ("not-a-secret", "invalid_webhook_secret")],
)
def test_a_webhook_secret_that_is_missing_or_wrong_stops_the_run(
    operator: Operator, value: str, code: str
) -> None:
    document = tenants_file(operator.make_pal(TENANT_TAVUS_KEY))
    document["tenants"][0]["webhook_endpoints"] = [
        {"url": "https://hooks.example.com/x", "secret_env": WEBHOOK_SECRET_VARIABLE}
    ]

    result = operator.apply(document, env={WEBHOOK_SECRET_VARIABLE: value})

    assert result.returncode == 2
    assert code in result.stderr
    assert "not-a-secret" not in result.stderr
    assert operator.sql("SELECT id, name FROM tenant") == []
