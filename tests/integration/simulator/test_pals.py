from __future__ import annotations

import re

from tests.integration.simulator.conftest import API_KEY, PAL_BODY, Harness, HarnessFactory

PAL_ID = re.compile(r"^p[0-9a-f]{11}$")
PAL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


class TestCreatePal:
    async def test_returns_documented_fields(self, harness: Harness) -> None:
        response = await harness.client.post("/v2/pals", json=PAL_BODY)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"pal_id", "pal_name", "conferencing_email", "created_at"}
        assert PAL_ID.match(body["pal_id"])
        assert body["pal_name"] == "Life Coach"
        assert body["conferencing_email"].endswith("@tavusinvite.com")
        assert PAL_TIMESTAMP.match(body["created_at"])

    async def test_requires_default_face_id(self, harness: Harness) -> None:
        body = {k: v for k, v in PAL_BODY.items() if k != "default_face_id"}
        response = await harness.client.post("/v2/pals", json=body)
        assert response.status_code == 400
        assert response.json() == {"message": "default_face_id is required"}

    async def test_requires_system_prompt_unless_echo(self, harness: Harness) -> None:
        body = {k: v for k, v in PAL_BODY.items() if k != "system_prompt"}
        missing = await harness.client.post("/v2/pals", json=body)
        echo = await harness.client.post("/v2/pals", json={**body, "pipeline_mode": "echo"})

        assert missing.status_code == 400
        assert missing.json() == {"message": "system_prompt is required"}
        assert echo.status_code == 200

    async def test_rejects_a_body_that_is_not_json(self, harness: Harness) -> None:
        response = await harness.client.post("/v2/pals", content=b"{nope")
        assert response.status_code == 400
        assert response.json() == {"message": "Invalid JSON body"}


class TestGetPal:
    async def test_flat_by_default_with_documented_fields(self, harness: Harness) -> None:
        layers = {"llm": {"model": "tavus-glm-4.7"}}
        pal_id = await harness.create_pal(layers=layers, document_ids=["d1234567890"])

        response = await harness.client.get(f"/v2/pals/{pal_id}")

        assert response.status_code == 200
        body = response.json()
        assert body["pal_id"] == pal_id
        assert body["pal_name"] == "Life Coach"
        assert body["system_prompt"] == PAL_BODY["system_prompt"]
        assert body["default_face_id"] == PAL_BODY["default_face_id"]
        assert body["layers"] == layers
        assert body["document_ids"] == ["d1234567890"]
        assert body["document_tags"] == []
        assert PAL_TIMESTAMP.match(body["updated_at"])

    async def test_wrapped_shape_when_configured(self, make_harness: HarnessFactory) -> None:
        harness = make_harness(pal_get_shape="wrapped")
        pal_id = await harness.create_pal()

        body = (await harness.client.get(f"/v2/pals/{pal_id}")).json()

        assert list(body) == ["data"]
        assert body["data"][0]["pal_id"] == pal_id

    async def test_unknown_id_is_400_invalid_pal_id(self, harness: Harness) -> None:
        response = await harness.client.get("/v2/pals/p00000000000")
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid pal_id"}


class TestListPals:
    async def test_pages_newest_first_with_total_count(self, harness: Harness) -> None:
        ids = [await harness.create_pal(pal_name=f"pal-{n}") for n in range(3)]

        first = (await harness.client.get("/v2/pals?pal_type=user&limit=2&page=1")).json()
        second = (await harness.client.get("/v2/pals?pal_type=user&limit=2&page=2")).json()

        assert first["total_count"] == 3
        assert [p["pal_id"] for p in first["data"]] == [ids[2], ids[1]]
        assert [p["pal_id"] for p in second["data"]] == [ids[0]]

    async def test_filters_by_pal_type(self, harness: Harness) -> None:
        await harness.create_pal()

        everything = (await harness.client.get("/v2/pals")).json()
        system = (await harness.client.get("/v2/pals?pal_type=system")).json()

        assert everything["total_count"] == 2
        assert [p["pal_id"] for p in system["data"]] == ["pb87e71797da"]

    async def test_rejects_bad_paging(self, harness: Harness) -> None:
        response = await harness.client.get("/v2/pals?limit=0")
        assert response.status_code == 400
        assert response.json() == {"message": "limit must be a positive integer"}

    async def test_deleted_pals_are_not_listed(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        await harness.client.delete(f"/v2/pals/{pal_id}")

        body = (await harness.client.get("/v2/pals?pal_type=user")).json()

        assert body == {"data": [], "total_count": 0}


class TestDeletePal:
    async def test_204_then_400_on_repeat_and_counts_calls(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()

        first = await harness.client.delete(f"/v2/pals/{pal_id}")
        second = await harness.client.delete(f"/v2/pals/{pal_id}")
        after = await harness.client.get(f"/v2/pals/{pal_id}")

        assert first.status_code == 204
        assert first.content == b""
        assert second.status_code == 400
        assert second.json() == {"error": "Invalid pal_id"}
        assert after.json() == {"error": "Invalid pal_id"}
        record = harness.sim.pal(pal_id)
        assert record.delete_calls == 2
        assert record.deleted_at is not None

    async def test_stock_pal_cannot_be_deleted(self, harness: Harness) -> None:
        response = await harness.client.delete("/v2/pals/pb87e71797da")
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid pal_id"}


class TestPersonaAliases:
    async def test_legacy_paths_use_persona_names(self, harness: Harness) -> None:
        created = await harness.client.post(
            "/v2/personas",
            json={"persona_name": "Legacy", "system_prompt": "Hi.", "default_replica_id": "r1"},
        )
        persona_id = created.json()["persona_id"]

        got = (await harness.client.get(f"/v2/personas/{persona_id}")).json()
        listed = (await harness.client.get("/v2/personas?persona_type=user")).json()
        same_via_pals = (await harness.client.get(f"/v2/pals/{persona_id}")).json()

        assert set(created.json()) == {
            "persona_id",
            "persona_name",
            "conferencing_email",
            "created_at",
        }
        assert got["persona_id"] == persona_id
        assert got["persona_name"] == "Legacy"
        assert got["default_replica_id"] == "r1"
        assert "pal_id" not in got
        assert [p["persona_id"] for p in listed["data"]] == [persona_id]
        assert same_via_pals["pal_id"] == persona_id

    async def test_default_replica_is_optional_on_legacy_create(self, harness: Harness) -> None:
        response = await harness.client.post("/v2/personas", json={"system_prompt": "Hi."})
        assert response.status_code == 200

    async def test_legacy_errors_name_persona_id(self, harness: Harness) -> None:
        got = await harness.client.get("/v2/personas/p00000000000")
        deleted = await harness.client.delete("/v2/personas/p00000000000")
        assert got.json() == {"error": "Invalid persona_id"}
        assert deleted.status_code == 400
        assert deleted.json() == {"error": "Invalid persona_id"}


class TestAccountIsolation:
    async def test_accounts_only_see_their_own_pals(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        other = harness.client_for("another-account")

        got = await other.get(f"/v2/pals/{pal_id}")
        deleted = await other.delete(f"/v2/pals/{pal_id}")
        listed = (await other.get("/v2/pals?pal_type=user")).json()

        assert got.json() == {"error": "Invalid pal_id"}
        assert deleted.status_code == 400
        assert listed["total_count"] == 0
        assert harness.sim.pal(pal_id).account == API_KEY
        assert harness.sim.pal(pal_id).deleted_at is None
