"""TavusClient requests and responses, against a scripted Tavus behind httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusUnauthorized,
    TavusUnexpectedResponse,
)
from app.tavus.listing import TavusListIncomplete
from app.tavus.models import ConversationCreate, ConversationProperties, PalCreate
from app.tavus.retry import NO_RETRY, RetryPolicy
from tests.unit.tavus.fake_tavus import (
    API_KEY,
    BASE_URL,
    TENANT_KEY,
    FakeTavus,
    conversation_json,
    fail,
    ok,
    page_json,
    pal_json,
)


def _query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def _pal_body() -> PalCreate:
    return PalCreate(default_face_id="r90bbd427f71", pal_name="Life Coach", system_prompt="Coach.")


class TestConstruction:
    async def test_sends_the_api_key_header(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(pal_json()))

        await client.get_pal("pcb7a34da5fe")

        assert fake.last.headers["x-api-key"] == API_KEY
        assert fake.last.headers["accept"] == "application/json"

    async def test_tenant_view_uses_its_own_key_and_the_same_pool(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok(pal_json()), ok(pal_json()))
        tenant = client.with_api_key(TENANT_KEY)

        await tenant.get_pal("pcb7a34da5fe")
        await client.get_pal("pcb7a34da5fe")

        assert [r.headers["x-api-key"] for r in fake.requests] == [TENANT_KEY, API_KEY]
        assert tenant.base_url == client.base_url
        assert tenant.retry_policy is client.retry_policy

    async def test_never_builds_an_httpx_client_per_call(
        self, client: TavusClient, fake: FakeTavus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a new httpx client was created")

        monkeypatch.setattr(httpx.AsyncClient, "__init__", refuse)
        fake.reply(ok(pal_json()), ok(pal_json()))

        await client.get_pal("p1")
        await client.with_api_key(TENANT_KEY).get_pal("p1")

        assert len(fake.requests) == 2

    async def test_default_timeouts_are_explicit(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok(pal_json()))

        await client.get_pal("p1")

        assert fake.last.extensions["timeout"] == {
            "connect": 3.0,
            "read": 10.0,
            "write": 10.0,
            "pool": 3.0,
        }

    async def test_timeouts_are_configurable(
        self, http: httpx.AsyncClient, fake: FakeTavus
    ) -> None:
        timeout = httpx.Timeout(connect=1.0, read=20.0, write=5.0, pool=2.0)
        client = TavusClient(http, API_KEY, base_url=BASE_URL, timeout=timeout)
        fake.reply(ok(pal_json()))

        await client.get_pal("p1")

        assert fake.last.extensions["timeout"] == {
            "connect": 1.0,
            "read": 20.0,
            "write": 5.0,
            "pool": 2.0,
        }

    async def test_default_base_url_is_tavus(
        self, http: httpx.AsyncClient, fake: FakeTavus
    ) -> None:
        client = TavusClient(http, API_KEY)
        fake.reply(ok(pal_json()))

        await client.get_pal("p1")

        assert str(fake.last.url) == "https://tavusapi.com/v2/pals/p1"

    async def test_base_url_trailing_slash_is_ignored(
        self, http: httpx.AsyncClient, fake: FakeTavus
    ) -> None:
        client = TavusClient(http, SecretStr(API_KEY), base_url="http://127.0.0.1:8100/")
        fake.reply(ok(pal_json()))

        await client.get_pal("p1")

        assert str(fake.last.url) == "http://127.0.0.1:8100/v2/pals/p1"

    @pytest.mark.parametrize("base_url", ["tavusapi.com", "ftp://tavusapi.com", ""])
    def test_rejects_a_relative_or_odd_base_url(
        self, http: httpx.AsyncClient, base_url: str
    ) -> None:
        with pytest.raises(ValueError, match="base_url"):
            TavusClient(http, API_KEY, base_url=base_url)

    @pytest.mark.parametrize("key", ["", "   "])
    def test_requires_an_api_key(self, http: httpx.AsyncClient, key: str) -> None:
        with pytest.raises(ValueError, match="API key"):
            TavusClient(http, key)

    def test_repr_hides_the_key(self, client: TavusClient) -> None:
        tenant = client.with_api_key(TENANT_KEY)

        for text in (repr(client), str(client), repr(tenant), str(tenant)):
            assert API_KEY not in text
            assert TENANT_KEY not in text
        assert repr(client) == "TavusClient(base_url='https://tavus.test', api_key='***')"

    @pytest.mark.parametrize(
        "reply",
        [
            fail(401, {"message": "Invalid access token"}),
            fail(500, {"message": "boom"}),
            httpx.ReadTimeout("timed out"),
            httpx.ConnectError("refused"),
            ok({"no": "id"}),
        ],
    )
    async def test_errors_never_carry_the_key(
        self, http: httpx.AsyncClient, fake: FakeTavus, reply: object
    ) -> None:
        client = TavusClient(http, API_KEY, base_url=BASE_URL, retry=NO_RETRY)
        fake.reply(reply)  # type: ignore[arg-type]

        with pytest.raises(TavusError) as caught:
            await client.create_pal(_pal_body())

        error = caught.value
        rendered = " ".join(
            [str(error), repr(error), str(error.body), str(error.args), error.message]
        )
        assert API_KEY not in rendered
        # The httpx exception (whose request holds the header) is not chained on.
        assert error.__cause__ is None
        assert error.__context__ is None

    async def test_ids_are_escaped_into_one_path_segment(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok(status=204))

        await client.delete_pal("../conversations/c1")

        assert fake.last.url.raw_path == b"/v2/pals/..%2Fconversations%2Fc1"

    @pytest.mark.parametrize("bad", ["", "  "])
    async def test_empty_ids_are_refused_before_sending(
        self, client: TavusClient, fake: FakeTavus, bad: str
    ) -> None:
        with pytest.raises(ValueError, match="must not be empty"):
            await client.delete_pal(bad)

        assert fake.requests == []


class TestCreatePal:
    async def test_request_and_response(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(
                {
                    "pal_id": "pcb7a34da5fe",
                    "pal_name": "Life Coach",
                    "conferencing_email": "acme-anna@tavusinvite.com",
                    "created_at": "<string>",
                }
            )
        )

        pal = await client.create_pal(_pal_body())

        assert fake.last.method == "POST"
        assert str(fake.last.url) == "https://tavus.test/v2/pals"
        assert fake.last.headers["content-type"] == "application/json"
        assert fake.body() == {
            "default_face_id": "r90bbd427f71",
            "pal_name": "Life Coach",
            "system_prompt": "Coach.",
        }
        assert pal.pal_id == "pcb7a34da5fe"
        assert pal.conferencing_email == "acme-anna@tavusinvite.com"
        assert pal.created_at is None

    async def test_legacy_response_names(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok({"persona_id": "p5", "persona_name": "Life Coach"}))

        pal = await client.create_pal(_pal_body())

        assert (pal.pal_id, pal.pal_name) == ("p5", "Life Coach")

    async def test_unreadable_success_may_have_created_the_pal(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok({"status": "ok"}))

        with pytest.raises(TavusUnexpectedResponse) as caught:
            await client.create_pal(_pal_body())

        assert caught.value.may_have_taken_effect
        assert caught.value.status == 200
        assert "pal_id" in caught.value.message

    async def test_non_json_success(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(httpx.Response(200, text="<html>ok</html>"))

        with pytest.raises(TavusUnexpectedResponse, match="not JSON"):
            await client.create_pal(_pal_body())

    async def test_unknown_face_is_not_found(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid replica_uuid"}))

        with pytest.raises(TavusNotFound) as caught:
            await client.create_pal(_pal_body())

        assert not caught.value.may_have_taken_effect


class TestGetPal:
    async def test_flat_shape(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(pal_json()))

        pal = await client.get_pal("pcb7a34da5fe")

        assert fake.last.method == "GET"
        assert str(fake.last.url) == "https://tavus.test/v2/pals/pcb7a34da5fe"
        assert pal.pal_id == "pcb7a34da5fe"
        assert pal.updated_at == datetime(2026, 7, 14, 17, 0, tzinfo=UTC)

    async def test_wrapped_shape(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok({"data": [pal_json()]}))

        pal = await client.get_pal("pcb7a34da5fe")

        assert pal.pal_name == "Life Coach"
        assert pal.default_face_id == "r90bbd427f71"

    async def test_legacy_names(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok({"persona_id": "p1", "persona_name": "Old", "default_replica_id": "r1"}))

        pal = await client.get_pal("p1")

        assert (pal.pal_id, pal.pal_name, pal.default_face_id) == ("p1", "Old", "r1")

    async def test_invalid_id_is_not_found(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid persona_id"}))

        with pytest.raises(TavusNotFound):
            await client.get_pal("nope")
        assert len(fake.requests) == 1

    async def test_empty_data_is_not_found(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok({"data": []}))

        with pytest.raises(TavusNotFound):
            await client.get_pal("gone")

    async def test_bad_key(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(401, {"message": "Invalid access token"}))

        with pytest.raises(TavusUnauthorized, match="Invalid access token"):
            await client.get_pal("p1")
        assert len(fake.requests) == 1


class TestListPals:
    async def test_request_and_page(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([pal_json("p1"), pal_json("p2")], total_count=7)))

        page = await client.list_pals(page=2, limit=2, pal_type="user")

        assert fake.last.method == "GET"
        assert fake.last.url.path == "/v2/pals"
        assert _query(fake.last) == {"page": "2", "limit": "2", "pal_type": "user"}
        assert [p.pal_id for p in page.data] == ["p1", "p2"]
        assert (page.total_count, page.page, page.limit) == (7, 2, 2)

    async def test_defaults(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([])))

        page = await client.list_pals()

        assert _query(fake.last) == {"page": "1", "limit": "2"}
        assert page.data == []
        assert page.total_count is None

    async def test_legacy_items_and_a_bare_list(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok([{"persona_id": "p1", "persona_name": "Old"}]))

        page = await client.list_pals()

        assert [(p.pal_id, p.pal_name) for p in page.data] == [("p1", "Old")]

    async def test_a_malformed_item_does_not_hide_the_rest(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok(page_json([{"pal_name": "no id"}, pal_json("p2")])))

        page = await client.list_pals()

        assert [p.pal_id for p in page.data] == ["p2"]

    async def test_a_body_without_data_is_unexpected(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok({"items": []}))

        with pytest.raises(TavusUnexpectedResponse):
            await client.list_pals()

    @pytest.mark.parametrize(("page", "limit"), [(0, 10), (1, 0)])
    async def test_rejects_bad_paging(
        self, client: TavusClient, fake: FakeTavus, page: int, limit: int
    ) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            await client.list_pals(page=page, limit=limit)
        assert fake.requests == []


class TestIterPals:
    async def test_walks_pages_until_total_count(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(
            ok(page_json([pal_json("a"), pal_json("b")], total_count=5)),
            ok(page_json([pal_json("c"), pal_json("d")], total_count=5)),
            ok(page_json([pal_json("e")], total_count=5)),
        )

        ids = [pal.pal_id async for pal in client.iter_pals(pal_type="user")]

        assert ids == ["a", "b", "c", "d", "e"]
        assert [_query(r) for r in fake.requests] == [
            {"page": str(n), "limit": "2", "pal_type": "user"} for n in (1, 2, 3)
        ]

    async def test_without_total_count_stops_at_an_empty_page(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(
            ok(page_json([pal_json("a"), pal_json("b")])),
            ok(page_json([pal_json("c")])),
            ok(page_json([])),
        )

        ids = [pal.pal_id async for pal in client.iter_pals()]

        assert ids == ["a", "b", "c"]
        assert len(fake.requests) == 3

    async def test_a_full_page_is_always_followed_up(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        # A total that undercounts must not hide later pages from a lookup.
        fake.reply(
            ok(page_json([pal_json("a"), pal_json("b")], total_count=2)),
            ok(page_json([pal_json("c")], total_count=2)),
            ok(page_json([], total_count=2)),
        )

        ids = [pal.pal_id async for pal in client.iter_pals()]

        assert ids == ["a", "b", "c"]

    async def test_server_ignoring_page_does_not_loop(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        same = ok(page_json([pal_json("a"), pal_json("b")]))
        fake.reply(same, ok(page_json([pal_json("a"), pal_json("b")])))

        ids = [pal.pal_id async for pal in client.iter_pals()]

        assert ids == ["a", "b"]
        assert len(fake.requests) == 2

    async def test_items_shifting_between_pages_are_yielded_once(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(
            ok(page_json([pal_json("a"), pal_json("b")])),
            ok(page_json([pal_json("b"), pal_json("c")])),
            ok(page_json([])),
        )

        ids = [pal.pal_id async for pal in client.iter_pals()]

        assert ids == ["a", "b", "c"]


class TestDeletePal:
    async def test_request(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(status=204))

        await client.delete_pal("pcb7a34da5fe")

        assert fake.last.method == "DELETE"
        assert str(fake.last.url) == "https://tavus.test/v2/pals/pcb7a34da5fe"
        assert fake.last.content == b""

    async def test_already_deleted_is_not_found(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid pal_id"}))

        with pytest.raises(TavusNotFound) as caught:
            await client.delete_pal("pcb7a34da5fe")

        assert not caught.value.may_have_taken_effect
        assert len(fake.requests) == 1

    async def test_legacy_error_body(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid persona_id"}))

        with pytest.raises(TavusNotFound):
            await client.delete_pal("p1")


class TestFindPalByName:
    async def test_found_on_a_later_page(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(page_json([pal_json("a", pal_name="x"), pal_json("b", pal_name="y")], 4)),
            ok(page_json([pal_json("c", pal_name="eph-1"), pal_json("d", pal_name="z")], 4)),
        )

        pal = await client.find_pal_by_name("eph-1")

        assert pal is not None
        assert pal.pal_id == "c"
        # Palisade's PALs are the account's own: system PALs are never read.
        assert _query(fake.requests[0])["pal_type"] == "user"

    async def test_legacy_persona_name(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([{"persona_id": "p1", "persona_name": "eph-1"}], 1)))

        pal = await client.find_pal_by_name("eph-1")

        assert pal is not None
        assert pal.pal_id == "p1"

    async def test_absent(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([pal_json("a", pal_name="x")], 1)))

        assert await client.find_pal_by_name("eph-1") is None

    async def test_first_match_wins(self, client: TavusClient, fake: FakeTavus) -> None:
        # Tags are unique per session: a second match would be a duplicate already made,
        # and reading on to find it would cost pages for nothing.
        fake.reply(
            ok(
                page_json(
                    [
                        pal_json("first", pal_name="eph-1", created_at="2025-01-01T00:00:00Z"),
                        pal_json("second", pal_name="eph-1", created_at="2025-02-01T00:00:00Z"),
                    ],
                    3,
                )
            )
        )

        pal = await client.find_pal_by_name("eph-1")

        assert pal is not None
        assert pal.pal_id == "first"
        assert len(fake.requests) == 1

    async def test_a_listing_read_in_part_is_not_absent(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        # The server ignores `page`: page 2 repeats page 1 and the rest is never seen.
        page = ok(page_json([pal_json(f"p{i}", pal_name="x") for i in range(100)], 150))
        fake.reply(page, page)

        with pytest.raises(TavusListIncomplete):
            await client.find_pal_by_name("eph-1")


def _conversation_body() -> ConversationCreate:
    return ConversationCreate(
        pal_id="pcb7a34da5fe",
        conversation_name="palisade-s-1",
        conversational_context="The user is Anna.",
        callback_url="https://palisade.test/webhooks/tavus/s-1?token=t",
        properties=ConversationProperties(max_call_duration=600, participant_left_timeout=30),
    )


class TestCreateConversation:
    async def test_request_and_response(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(
                {
                    "conversation_id": "c123456",
                    "conversation_name": "palisade-s-1",
                    "conversation_url": "https://tavus.daily.co/c123456",
                    "status": "active",
                    "callback_url": "https://palisade.test/webhooks/tavus/s-1?token=t",
                    "created_at": "<string>",
                    "meeting_token": "eyJ.jwt",
                }
            )
        )

        conversation = await client.create_conversation(_conversation_body())

        assert fake.last.method == "POST"
        assert str(fake.last.url) == "https://tavus.test/v2/conversations"
        assert json.loads(fake.last.content) == {
            "pal_id": "pcb7a34da5fe",
            "conversation_name": "palisade-s-1",
            "conversational_context": "The user is Anna.",
            "callback_url": "https://palisade.test/webhooks/tavus/s-1?token=t",
            "properties": {"max_call_duration": 600, "participant_left_timeout": 30},
        }
        assert conversation.conversation_id == "c123456"
        assert conversation.conversation_url == "https://tavus.daily.co/c123456"
        assert conversation.is_active
        assert conversation.meeting_token == "eyJ.jwt"

    async def test_older_response_names(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok({"conversation_id": "c1", "replica_id": "r1", "persona_id": "p1"}))

        conversation = await client.create_conversation(_conversation_body())

        assert (conversation.face_id, conversation.pal_id) == ("r1", "p1")

    async def test_test_mode_is_born_ended(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(conversation_json(status="ended")))

        conversation = await client.create_conversation(ConversationCreate(test_mode=True))

        assert conversation.is_terminal
        assert fake.body() == {"test_mode": True}

    @pytest.mark.parametrize(
        ("status", "payload", "expected"),
        [
            (
                400,
                {"message": "User has reached maximum concurrent conversations"},
                TavusConcurrencyLimit,
            ),
            (402, {"message": "The user is out of conversational credits"}, TavusOutOfCredits),
            (
                400,
                {
                    "error": "There was an error creating the conversation, please reach out "
                    "to support at support@tavus.io!"
                },
                TavusInvalidRequest,
            ),
            (400, {"error": "Invalid persona_id"}, TavusNotFound),
            (401, {"message": "Invalid access token"}, TavusUnauthorized),
        ],
    )
    async def test_refusals_are_final_and_took_no_effect(
        self,
        client: TavusClient,
        fake: FakeTavus,
        status: int,
        payload: object,
        expected: type[TavusError],
    ) -> None:
        fake.reply(fail(status, payload))

        with pytest.raises(expected) as caught:
            await client.create_conversation(_conversation_body())

        assert not caught.value.may_have_taken_effect
        assert len(fake.requests) == 1


class TestGetConversation:
    async def test_plain(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(conversation_json()))

        conversation = await client.get_conversation("c123456")

        assert fake.last.method == "GET"
        assert str(fake.last.url) == "https://tavus.test/v2/conversations/c123456"
        assert conversation.events is None
        assert conversation.created_at == datetime(2025, 7, 11, 6, 45, 47, 472000, tzinfo=UTC)

    async def test_verbose_has_events(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(
                conversation_json(
                    status="ended",
                    events=[
                        {
                            "event_type": "system.shutdown",
                            "timestamp": "2025-07-11T06:48:37.564961Z",
                            "properties": {"shutdown_reason": "max_call_duration reached"},
                        }
                    ],
                )
            )
        )

        conversation = await client.get_conversation("c123456", verbose=True)

        assert _query(fake.last) == {"verbose": "true"}
        assert conversation.is_terminal
        assert conversation.events is not None
        assert conversation.events[0].properties["shutdown_reason"] == "max_call_duration reached"

    async def test_unknown_status_is_kept(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(conversation_json(status="paused")))

        conversation = await client.get_conversation("c1")

        assert conversation.status == "paused"
        assert not conversation.is_active
        assert not conversation.is_terminal

    async def test_invalid_id_is_not_found(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid conversation_id"}))

        with pytest.raises(TavusNotFound):
            await client.get_conversation("c404")


class TestListConversations:
    async def test_request_and_page(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([conversation_json("c1")], total_count=1)))

        page = await client.list_conversations(status="active", page=3, limit=25)

        assert fake.last.url.path == "/v2/conversations"
        assert _query(fake.last) == {"page": "3", "limit": "25", "status": "active"}
        assert [c.conversation_id for c in page.data] == ["c1"]
        assert page.total_count == 1

    async def test_without_status(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(ok(page_json([])))

        await client.list_conversations()

        assert _query(fake.last) == {"page": "1", "limit": "2"}


class TestIterConversations:
    async def test_all_pages(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(page_json([conversation_json("c1"), conversation_json("c2")], 3)),
            ok(page_json([conversation_json("c3")], 3)),
        )

        ids = [c.conversation_id async for c in client.iter_conversations(status="ended")]

        assert ids == ["c1", "c2", "c3"]
        assert [_query(r)["status"] for r in fake.requests] == ["ended", "ended"]


class TestEndConversation:
    @pytest.mark.parametrize("reply", [ok(), ok({}), ok({"status": "ended"})])
    async def test_request(self, client: TavusClient, fake: FakeTavus, reply: object) -> None:
        fake.reply(reply)  # type: ignore[arg-type]

        await client.end_conversation("c123456")

        assert fake.last.method == "POST"
        assert str(fake.last.url) == "https://tavus.test/v2/conversations/c123456/end"
        assert fake.last.content == b""

    async def test_unknown_conversation(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(400, {"error": "Invalid conversation_id"}))

        with pytest.raises(TavusNotFound):
            await client.end_conversation("c404")


class TestFindConversationByName:
    async def test_active_listing_first(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(
                page_json(
                    [
                        conversation_json("c1", conversation_name="other"),
                        conversation_json("c2", conversation_name="palisade-s-9"),
                    ],
                    2,
                )
            ),
        )

        conversation = await client.find_conversation_by_name("palisade-s-9")

        assert conversation is not None
        assert conversation.conversation_id == "c2"
        assert _query(fake.requests[0])["status"] == "active"
        assert len(fake.requests) == 1

    async def test_ended_listing_second(self, client: TavusClient, fake: FakeTavus) -> None:
        # A conversation that ended before the lookup has left the active listing.
        fake.reply(
            ok(page_json([conversation_json("c1", conversation_name="other")], 1)),
            ok(page_json([conversation_json("c2", conversation_name="palisade-s-9")], 1)),
        )

        conversation = await client.find_conversation_by_name("palisade-s-9")

        assert conversation is not None
        assert conversation.conversation_id == "c2"
        assert [_query(r)["status"] for r in fake.requests] == ["active", "ended"]

    async def test_absent(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(
            ok(page_json([conversation_json("c1", conversation_name="other")], 1)),
            ok(page_json([], 0)),
        )

        assert await client.find_conversation_by_name("palisade-s-9") is None

    async def test_lookup_failure_is_raised_not_swallowed(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(*[httpx.ReadTimeout("timed out")] * 3)

        # "Unknown" must never read as "absent": that would invite a duplicate create.
        with pytest.raises(TavusOutcomeUnknown):
            await client.find_conversation_by_name("palisade-s-9")


class TestWithRetryPolicy:
    async def test_view_has_its_own_policy(self, client: TavusClient, fake: FakeTavus) -> None:
        strict = client.with_retry_policy(NO_RETRY)
        fake.reply(fail(503, {"message": "busy"}))

        with pytest.raises(TavusError):
            await strict.get_pal("p1")

        assert len(fake.requests) == 1
        assert client.retry_policy == RetryPolicy(attempts=3)
        assert strict.retry_policy is NO_RETRY
