"""Admin API for tenants, profiles and keys, against a real database and the simulator."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from app.domain.tenants.apply import TenantsFile, apply_tenants
from app.security.secret_box import SecretBox
from tests.conftest import PalisadeFactory
from tests.support.stack import ADMIN_HEADERS, PAL_TEMPLATE, Palisade, SimulatorHandle


async def persistent_pal(palisade: Palisade) -> str:
    pal = await palisade.runtime.tavus.create_pal(
        __import__("app.tavus.models", fromlist=["PalCreate"]).PalCreate.model_validate(
            {"pal_name": "Persistent", "default_face_id": "r90bbd427f71", "system_prompt": "hi"}
        )
    )
    return pal.pal_id


def tenant_body(pal_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "acme",
        "name": "Acme",
        "max_concurrent_sessions": 3,
        "profiles": {
            "coach": {"strategy": "reuse", "pal_id": pal_id},
            "voices": {
                "strategy": "ephemeral",
                "pal_template": copy.deepcopy(PAL_TEMPLATE),
                "allowed_overrides": ["layers.tts.external_voice_id"],
            },
            "smart": {
                "strategy": "auto",
                "pal_id": pal_id,
                "pal_template": copy.deepcopy(PAL_TEMPLATE),
                "allowed_overrides": ["system_prompt"],
            },
        },
        "default_profile": "coach",
    }
    body.update(changes)
    return body


class TestAdminAuth:
    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    )
    async def test_admin_endpoints_need_the_admin_token(
        self, palisade: Palisade, headers: dict[str, str]
    ) -> None:
        response = await palisade.client.get("/tenants", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_a_tenant_key_is_not_an_admin_token(self, palisade: Palisade) -> None:
        key = await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        response = await palisade.client.get("/tenants", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401


class TestCreateAndRead:
    async def test_create_read_list(self, palisade: Palisade) -> None:
        pal_id = await persistent_pal(palisade)
        created = await palisade.admin("POST", "/tenants", json=tenant_body(pal_id))
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["id"] == "acme"
        assert set(tenant["profiles"]) == {"coach", "voices", "smart"}
        assert tenant["profiles"]["coach"]["pal_id"] == pal_id
        assert tenant["has_tavus_api_key"] is False

        read = await palisade.admin("GET", "/tenants/acme")
        assert read.json() == tenant
        listed = await palisade.admin("GET", "/tenants")
        assert [t["id"] for t in listed.json()["items"]] == ["acme"]

    async def test_duplicate_id_is_409(self, palisade: Palisade) -> None:
        body = tenant_body(await persistent_pal(palisade))
        assert (await palisade.admin("POST", "/tenants", json=body)).status_code == 201
        again = await palisade.admin("POST", "/tenants", json=body)
        assert again.status_code == 409
        assert again.json()["code"] == "tenant_exists"

    async def test_unknown_tenant_is_404(self, palisade: Palisade) -> None:
        response = await palisade.admin("GET", "/tenants/nobody")
        assert response.status_code == 404
        assert response.json()["code"] == "tenant_not_found"

    async def test_list_pages_by_cursor(self, palisade: Palisade) -> None:
        for i in range(5):
            body = {"id": f"t{i}", "name": f"T{i}", "profiles": {}}
            assert (await palisade.admin("POST", "/tenants", json=body)).status_code == 201
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await palisade.admin("GET", "/tenants", params=params)).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["t0", "t1", "t2", "t3", "t4"]


class TestProfileValidation:
    @pytest.mark.parametrize(
        ("profile", "code"),
        [
            ({"strategy": "reuse"}, "pal_id_required"),
            ({"strategy": "ephemeral"}, "pal_template_required"),
            ({"strategy": "auto", "pal_id": "p1"}, "pal_template_required"),
            (
                {"strategy": "ephemeral", "pal_template": {"system_prompt": "x"}},
                "pal_template_invalid",
            ),
            (
                {"strategy": "ephemeral", "pal_template": {"default_face_id": "r1"}},
                "pal_template_invalid",
            ),
            (
                {
                    "strategy": "ephemeral",
                    "pal_template": PAL_TEMPLATE,
                    "allowed_overrides": ["layers.nope"],
                },
                "unknown_override_path",
            ),
            (
                {
                    "strategy": "ephemeral",
                    "pal_template": PAL_TEMPLATE,
                    "caps": {"max_call_duration": 99999},
                },
                "property_out_of_range",
            ),
            ({"strategy": "sometimes"}, "invalid_choice"),
        ],
    )
    async def test_invalid_profiles_are_422_with_a_code(
        self, palisade: Palisade, profile: dict[str, Any], code: str
    ) -> None:
        body = {"id": "bad", "name": "Bad", "profiles": {"p": profile}}
        response = await palisade.admin("POST", "/tenants", json=body)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "invalid_profile"
        assert code in {e["code"] for e in problem["errors"]}
        assert (await palisade.admin("GET", "/tenants/bad")).status_code == 404

    async def test_reuse_pal_must_exist_on_tavus(self, palisade: Palisade) -> None:
        body = {
            "id": "ghost",
            "name": "Ghost",
            "profiles": {"p": {"strategy": "reuse", "pal_id": "pdoesnotexist"}},
        }
        response = await palisade.admin("POST", "/tenants", json=body)
        assert response.status_code == 422
        assert response.json()["code"] == "pal_not_found"

    async def test_default_profile_must_exist(self, palisade: Palisade) -> None:
        body = tenant_body(await persistent_pal(palisade), default_profile="missing")
        response = await palisade.admin("POST", "/tenants", json=body)
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_profile"


class TestBadInput:
    async def test_malformed_json(self, palisade: Palisade) -> None:
        response = await palisade.client.post(
            "/tenants",
            content=b'{"id": "x",',
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"

    async def test_unknown_fields_refused(self, palisade: Palisade) -> None:
        response = await palisade.admin(
            "POST", "/tenants", json={"id": "x", "name": "X", "colour": "red"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "unknown_field"

    async def test_one_megabyte_template_is_413(self, palisade: Palisade) -> None:
        template = {**PAL_TEMPLATE, "system_prompt": "x" * (1024 * 1024)}
        body = {
            "id": "big",
            "name": "Big",
            "profiles": {"p": {"strategy": "ephemeral", "pal_template": template}},
        }
        response = await palisade.admin("POST", "/tenants", json=body)
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    @pytest.mark.parametrize("tenant_id", ["Upper", "has space", "", "x" * 65, "-lead"])
    async def test_bad_tenant_ids(self, palisade: Palisade, tenant_id: str) -> None:
        response = await palisade.admin("POST", "/tenants", json={"id": tenant_id, "name": "n"})
        assert response.status_code == 422

    @pytest.mark.parametrize("value", ["10", True, 2.5])
    async def test_a_cap_that_is_not_an_integer_is_refused(
        self, palisade: Palisade, value: object
    ) -> None:
        await palisade.admin("POST", "/tenants", json={"id": "acme", "name": "Acme"})
        response = await palisade.admin(
            "PATCH", "/tenants/acme", json={"max_concurrent_sessions": value}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "max_concurrent_sessions"]
        tenant = (await palisade.admin("GET", "/tenants/acme")).json()
        assert tenant["max_concurrent_sessions"] == 10


class TestTextPostgresqlCannotStore:
    """NUL and unpaired surrogates are valid JSON escapes but neither text nor jsonb can
    hold them: they are a 422 where they enter, never a 500 from the database."""

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"id": "acme", "name": "A\u0000"}, ["body", "name"]),
            ({"id": "acme", "name": "\ud800"}, ["body", "name"]),
            (
                {
                    "id": "acme",
                    "name": "Acme",
                    "profiles": {
                        "voices": {
                            "strategy": "ephemeral",
                            "pal_template": {**PAL_TEMPLATE, "system_prompt": "\udc00"},
                        }
                    },
                },
                ["body", "profiles", "voices", "pal_template", "system_prompt"],
            ),
        ],
    )
    async def test_in_a_tenant_body(
        self, palisade: Palisade, body: dict[str, Any], loc: list[str]
    ) -> None:
        response = await palisade.client.post(
            "/tenants",
            content=json.dumps(body).encode(),
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [
            {
                "loc": loc,
                "code": "invalid_character",
                "msg": "text must not contain U+0000 or an unpaired surrogate",
            }
        ]
        assert (await palisade.admin("GET", "/tenants")).json()["items"] == []

    async def test_in_a_key_label(self, palisade: Palisade) -> None:
        await palisade.admin("POST", "/tenants", json={"id": "acme", "name": "Acme"})
        response = await palisade.admin(
            "POST", "/tenants/acme/api-keys", json={"label": "front\x00end"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "label"]

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/tenants/ac%00me"),
            ("PATCH", "/tenants/ac%00me"),
            ("GET", "/tenants/ac%00me/api-keys"),
            ("DELETE", "/tenants/acme/api-keys/k%00"),
            ("POST", "/tenants/acme/profiles/vo%00ices/check"),
            ("GET", "/tenants?cursor=a%00"),
        ],
    )
    async def test_in_the_url(self, palisade: Palisade, method: str, path: str) -> None:
        await palisade.admin("POST", "/tenants", json={"id": "acme", "name": "Acme"})
        body = {"json": {"name": "n"}} if method == "PATCH" else {}
        response = await palisade.admin(method, path, **body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["code"] == "invalid_character"


class TestUpdate:
    async def test_patch_merges_profiles_and_removes_with_null(self, palisade: Palisade) -> None:
        pal_id = await persistent_pal(palisade)
        await palisade.create_tenant(tenant_body(pal_id))
        patch = {
            "max_concurrent_sessions": 7,
            "profiles": {"voices": None, "new": {"strategy": "reuse", "pal_id": pal_id}},
        }
        response = await palisade.admin("PATCH", "/tenants/acme", json=patch)
        assert response.status_code == 200, response.text
        tenant = response.json()
        assert tenant["max_concurrent_sessions"] == 7
        assert set(tenant["profiles"]) == {"coach", "smart", "new"}

    async def test_removing_the_default_profile_clears_it(self, palisade: Palisade) -> None:
        pal_id = await persistent_pal(palisade)
        await palisade.create_tenant(tenant_body(pal_id))
        response = await palisade.admin(
            "PATCH", "/tenants/acme", json={"profiles": {"coach": None}}
        )
        assert response.json()["default_profile"] is None

    async def test_patch_unknown_tenant(self, palisade: Palisade) -> None:
        response = await palisade.admin("PATCH", "/tenants/nobody", json={"name": "x"})
        assert response.status_code == 404


class TestApiKeys:
    async def test_key_shown_once_hashed_and_revocable(self, palisade: Palisade) -> None:
        key = await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        assert key.startswith("psk_")
        ok = await palisade.as_tenant(key, "GET", "/sessions")
        assert ok.status_code == 200

        listed = (await palisade.admin("GET", "/tenants/acme/api-keys")).json()
        assert listed["next_cursor"] is None
        keys = listed["items"]
        assert len(keys) == 1
        assert "key" not in keys[0]
        assert keys[0]["last_used_at"] is not None
        assert key.startswith(keys[0]["prefix"])

        revoked = await palisade.admin("DELETE", f"/tenants/acme/api-keys/{keys[0]['id']}")
        assert revoked.status_code == 204
        assert (await palisade.as_tenant(key, "GET", "/sessions")).status_code == 401
        again = await palisade.admin("DELETE", f"/tenants/acme/api-keys/{keys[0]['id']}")
        assert again.status_code == 204

    async def test_another_process_refuses_a_revoked_key_within_its_window_and_never_starts(
        self, palisade: Palisade, palisade_factory: PalisadeFactory
    ) -> None:
        # The other process remembers keys for a minute: the revocation reaches its reads
        # only after that, but its starts at once (admission checks the key again).
        other = await palisade_factory(PALISADE_API_KEY_CACHE_SECONDS=60)
        key = await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        assert (await other.as_tenant(key, "GET", "/sessions")).status_code == 200
        [listed] = (await palisade.admin("GET", "/tenants/acme/api-keys")).json()["items"]
        revoked = await palisade.admin("DELETE", f"/tenants/acme/api-keys/{listed['id']}")
        assert revoked.status_code == 204
        assert (await palisade.as_tenant(key, "GET", "/sessions")).status_code == 401
        assert (await other.as_tenant(key, "GET", "/sessions")).status_code == 200
        start = await other.as_tenant(key, "POST", "/sessions", json={})
        assert start.status_code == 401, start.text
        assert start.json()["code"] == "unauthorized"

    async def test_without_a_window_every_request_looks_its_key_up(
        self, palisade_factory: PalisadeFactory
    ) -> None:
        palisade = await palisade_factory(PALISADE_API_KEY_CACHE_SECONDS=0)
        other = await palisade_factory(PALISADE_API_KEY_CACHE_SECONDS=0)
        key = await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        assert (await other.as_tenant(key, "GET", "/sessions")).status_code == 200
        [listed] = (await palisade.admin("GET", "/tenants/acme/api-keys")).json()["items"]
        await palisade.admin("DELETE", f"/tenants/acme/api-keys/{listed['id']}")
        assert (await other.as_tenant(key, "GET", "/sessions")).status_code == 401

    async def test_keys_are_listed_a_page_at_a_time_in_the_order_issued(
        self, palisade: Palisade
    ) -> None:
        await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        for label in ("second", "third", "fourth", "fifth"):
            created = await palisade.admin("POST", "/tenants/acme/api-keys", json={"label": label})
            assert created.status_code == 201, created.text
        issued = [None, "second", "third", "fourth", "fifth"]
        first = (await palisade.admin("GET", "/tenants/acme/api-keys?limit=2")).json()
        pages, cursor = [first["items"]], first["next_cursor"]
        while cursor is not None:
            page = (
                await palisade.admin("GET", f"/tenants/acme/api-keys?limit=2&cursor={cursor}")
            ).json()
            pages.append(page["items"])
            cursor = page["next_cursor"]
        assert [len(page) for page in pages] == [2, 2, 1]
        assert [key["label"] for page in pages for key in page] == issued

    async def test_a_cursor_that_is_not_one_of_the_keys_is_refused(
        self, palisade: Palisade
    ) -> None:
        await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        response = await palisade.admin("GET", "/tenants/acme/api-keys?cursor=key_nope")
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_cursor"

    async def test_revoking_an_unknown_key_is_404(self, palisade: Palisade) -> None:
        await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        response = await palisade.admin("DELETE", "/tenants/acme/api-keys/key_nope")
        assert response.status_code == 404
        assert response.json()["code"] == "api_key_not_found"

    async def test_database_holds_only_a_hash(self, palisade: Palisade) -> None:
        from sqlalchemy import text

        key = await palisade.create_tenant(tenant_body(await persistent_pal(palisade)))
        async with palisade.runtime.engine.connect() as conn:
            dump = (
                (await conn.execute(text("SELECT row_to_json(k)::text FROM tenant_api_key k")))
                .scalars()
                .all()
            )
        assert dump
        assert all(key not in row and key[8:] not in row for row in dump)


class TestTavusKeys:
    async def test_tenant_tavus_key_is_encrypted_never_returned_never_logged(
        self, palisade: Palisade, simulator: SimulatorHandle, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        secret = "tavus-secret-key-0123456789"
        pal_id = await persistent_pal(palisade)
        # The simulator keeps objects per account: make the PAL under the tenant's key.
        from app.tavus.models import PalCreate

        own_pal = await palisade.runtime.tavus.with_api_key(secret).create_pal(
            PalCreate(default_face_id="r1", pal_name="own", system_prompt="x")
        )
        body = tenant_body(pal_id, tavus_api_key=secret)
        body["profiles"] = {"coach": {"strategy": "reuse", "pal_id": own_pal.pal_id}}
        body["default_profile"] = "coach"
        created = await palisade.admin("POST", "/tenants", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["has_tavus_api_key"] is True
        responses = [
            created.text,
            (await palisade.admin("GET", "/tenants/acme")).text,
            (await palisade.admin("GET", "/tenants")).text,
            (await palisade.admin("PATCH", "/tenants/acme", json={"name": "Acme 2"})).text,
        ]
        assert all(secret not in r for r in responses)
        from sqlalchemy import text

        async with palisade.runtime.engine.connect() as conn:
            stored = (
                await conn.execute(text("SELECT tavus_api_key_encrypted FROM tenant"))
            ).scalar_one()
        assert secret.encode() not in stored
        assert palisade.runtime.secret_box.decrypt(stored) == secret
        assert secret not in caplog.text


class TestApplyAfterSecretKeyChange:
    async def test_apply_reseals_a_key_stored_under_an_earlier_secret_key(
        self, palisade: Palisade, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ACME_TAVUS_KEY", "tavus-key-of-acme")
        document = TenantsFile.model_validate(
            {"tenants": [{"id": "acme", "name": "Acme", "tavus_api_key_env": "ACME_TAVUS_KEY"}]}
        )
        old_box, new_box = (
            SecretBox("an earlier secret key " * 2),
            SecretBox("the current one " * 3),
        )
        pals = palisade.runtime.pals
        async with palisade.runtime.sessionmaker.begin() as db:
            [created] = await apply_tenants(db, document, box=old_box, pals=pals)
        async with palisade.runtime.sessionmaker.begin() as db:
            [resealed] = await apply_tenants(db, document, box=new_box, pals=pals)
        async with palisade.runtime.sessionmaker.begin() as db:
            [again] = await apply_tenants(db, document, box=new_box, pals=pals)
        assert (created.action, resealed.action, again.action) == (
            "created",
            "updated",
            "unchanged",
        )
        assert resealed.changes == ["tavus_api_key"]
