"""send_app_message: the body on the wire, Tavus's errors, and what is sent again.

Tavus's Send App Message page: 502 means nothing was delivered (retry), 504 means it may
have been delivered (check before retrying), 429 is its rate limit, 413 its size limit.
An interaction Tavus acts on each time it arrives is never sent twice once it may have
arrived; one that only sets a state may be.
"""

from __future__ import annotations

import json

import httpx
import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusConversationEnded,
    TavusNotDelivered,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusPayloadTooLarge,
    TavusRateLimited,
    TavusServerError,
)
from app.tavus.models import APP_MESSAGE_MAX_BYTES, Interaction
from app.tavus.operations import Operation, OperationKind
from app.tavus.retry import RetryPolicy, interaction_kind
from tests.unit.tavus.fake_tavus import FakeTavus, fail, ok

PATH = "/v2/conversations/c123456/send-app-message"
NOT_DELIVERED = {"error": "The app message could not be delivered. Please retry."}
MAYBE_DELIVERED = {"error": "The app message may have been delivered; check before retrying."}

APPEND = Interaction(
    event_type="conversation.append_llm_context", properties={"context": "The caller is 7."}
)
OVERWRITE = Interaction(
    event_type="conversation.overwrite_llm_context", properties={"context": "Fresh start."}
)
RESPOND = Interaction(event_type="conversation.respond", properties={"text": "The result is 4."})
ECHO = Interaction(event_type="conversation.echo", properties={"modality": "text", "text": "Hi"})
INTERRUPT = Interaction(event_type="conversation.interrupt")
SENSITIVITY = Interaction(
    event_type="conversation.sensitivity",
    properties={"participant_pause_sensitivity": "low"},
)
AT_MOST_ONCE = [APPEND, RESPOND, ECHO, INTERRUPT]
RESENDABLE = [OVERWRITE, SENSITIVITY]


def _ids(interactions: list[Interaction]) -> list[str]:
    return [i.event_type.removeprefix("conversation.") for i in interactions]


class TestTheRequest:
    async def test_posts_the_interaction_in_tavus_envelope(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok())

        await client.send_app_message("c123456", APPEND)

        request = fake.last
        assert request.method == "POST"
        assert request.url.path == PATH
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {
            "message_type": "conversation",
            "event_type": "conversation.append_llm_context",
            "conversation_id": "c123456",
            "properties": {"context": "The caller is 7."},
        }

    async def test_the_bytes_sent_are_the_ones_counted(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok())
        interaction = Interaction(
            event_type="conversation.respond", properties={"text": "Grüße, 你好 \u2028"}
        )

        await client.send_app_message("c123456", interaction)

        assert fake.last.content == interaction.app_message("c123456")

    async def test_an_interrupt_without_properties_sends_an_empty_object(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok())

        await client.send_app_message("c123456", INTERRUPT)

        assert json.loads(fake.last.content)["properties"] == {}

    async def test_a_body_over_tavus_limit_is_never_sent(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        big = Interaction(
            event_type="conversation.append_llm_context",
            properties={"context": "x" * APP_MESSAGE_MAX_BYTES},
        )

        with pytest.raises(TavusPayloadTooLarge) as caught:
            await client.send_app_message("c123456", big)

        assert fake.requests == []
        assert not caught.value.may_have_taken_effect

    async def test_a_body_of_exactly_the_limit_is_sent(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(ok())
        empty = Interaction(event_type="conversation.respond", properties={"text": ""})
        room = APP_MESSAGE_MAX_BYTES - len(empty.app_message("c123456"))
        exact = Interaction(event_type="conversation.respond", properties={"text": "y" * room})

        await client.send_app_message("c123456", exact)

        assert len(fake.last.content) == APP_MESSAGE_MAX_BYTES


class TestTavusErrors:
    async def test_413_is_payload_too_large(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(fail(413, {"error": "Request body exceeds 65536 bytes"}))

        with pytest.raises(TavusPayloadTooLarge):
            await client.send_app_message("c123456", RESPOND)

        assert len(fake.requests) == 1

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (400, {"error": "App messages can only be sent to active conversations."}),
            (410, {"error": "The conversation's room is no longer available."}),
            (400, {"error": "Room no longer available"}),
        ],
    )
    async def test_a_conversation_that_is_over_is_reported_so(
        self, client: TavusClient, fake: FakeTavus, status: int, body: dict[str, str]
    ) -> None:
        fake.reply(fail(status, body))

        with pytest.raises(TavusConversationEnded) as caught:
            await client.send_app_message("c123456", APPEND)

        assert len(fake.requests) == 1
        assert not caught.value.may_have_taken_effect

    async def test_an_unknown_conversation_is_not_found(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(fail(400, {"error": "Invalid conversation_id"}))

        with pytest.raises(TavusNotFound):
            await client.send_app_message("c123456", APPEND)


class TestWhatIsSentAgain:
    def test_only_interactions_that_set_a_state_may_be_sent_twice(self) -> None:
        assert {
            i.event_type: interaction_kind(i.event_type) for i in AT_MOST_ONCE + RESENDABLE
        } == {
            "conversation.append_llm_context": OperationKind.AT_MOST_ONCE,
            "conversation.respond": OperationKind.AT_MOST_ONCE,
            "conversation.echo": OperationKind.AT_MOST_ONCE,
            "conversation.interrupt": OperationKind.AT_MOST_ONCE,
            "conversation.overwrite_llm_context": OperationKind.IDEMPOTENT_WRITE,
            "conversation.sensitivity": OperationKind.IDEMPOTENT_WRITE,
        }

    def test_an_event_type_palisade_does_not_know_is_sent_at_most_once(self) -> None:
        assert interaction_kind("conversation.agent_start") is OperationKind.AT_MOST_ONCE

    @pytest.mark.parametrize(
        "interaction", AT_MOST_ONCE + RESENDABLE, ids=_ids(AT_MOST_ONCE + RESENDABLE)
    )
    async def test_502_delivered_nothing_and_is_sent_again(
        self, client: TavusClient, fake: FakeTavus, interaction: Interaction
    ) -> None:
        fake.reply(fail(502, NOT_DELIVERED), ok())

        await client.send_app_message("c123456", interaction)

        assert len(fake.requests) == 2
        assert fake.requests[0].content == fake.requests[1].content

    @pytest.mark.parametrize(
        "interaction", AT_MOST_ONCE + RESENDABLE, ids=_ids(AT_MOST_ONCE + RESENDABLE)
    )
    async def test_429_is_sent_again(
        self, client: TavusClient, fake: FakeTavus, interaction: Interaction
    ) -> None:
        fake.reply(fail(429, {"error": "Too many requests"}), ok())

        await client.send_app_message("c123456", interaction)

        assert len(fake.requests) == 2

    async def test_429_gives_up_after_the_bound(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(*[fail(429, {"error": "Too many requests"})] * 3)

        with pytest.raises(TavusRateLimited) as caught:
            await client.send_app_message("c123456", APPEND)

        assert len(fake.requests) == 3
        assert not caught.value.may_have_taken_effect

    async def test_502_exhausted_took_no_effect(self, client: TavusClient, fake: FakeTavus) -> None:
        fake.reply(*[fail(502, NOT_DELIVERED)] * 3)

        with pytest.raises(TavusNotDelivered) as caught:
            await client.send_app_message("c123456", APPEND)

        assert len(fake.requests) == 3
        assert not caught.value.may_have_taken_effect

    @pytest.mark.parametrize("interaction", AT_MOST_ONCE, ids=_ids(AT_MOST_ONCE))
    async def test_504_is_never_sent_again(
        self, client: TavusClient, fake: FakeTavus, interaction: Interaction
    ) -> None:
        fake.reply(fail(504, MAYBE_DELIVERED), ok())

        with pytest.raises(TavusServerError) as caught:
            await client.send_app_message("c123456", interaction)

        assert len(fake.requests) == 1
        assert caught.value.status == 504
        assert caught.value.may_have_taken_effect
        assert caught.value.operation is Operation.SEND_APP_MESSAGE

    @pytest.mark.parametrize("status", [500, 503])
    async def test_other_5xx_may_have_been_delivered_too(
        self, client: TavusClient, fake: FakeTavus, status: int
    ) -> None:
        fake.reply(fail(status, {"error": "oops"}), ok())

        with pytest.raises(TavusServerError) as caught:
            await client.send_app_message("c123456", APPEND)

        assert len(fake.requests) == 1
        assert caught.value.may_have_taken_effect

    @pytest.mark.parametrize(
        "lost",
        [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected")],
    )
    async def test_a_lost_answer_is_never_sent_again(
        self, client: TavusClient, fake: FakeTavus, lost: httpx.RequestError
    ) -> None:
        fake.reply(lost, ok())

        with pytest.raises(TavusOutcomeUnknown) as caught:
            await client.send_app_message("c123456", RESPOND)

        assert len(fake.requests) == 1
        assert caught.value.may_have_taken_effect

    async def test_a_connection_that_never_opened_is_sent_again(
        self, client: TavusClient, fake: FakeTavus
    ) -> None:
        fake.reply(httpx.ConnectError("refused"), ok())

        await client.send_app_message("c123456", APPEND)

        assert len(fake.requests) == 2

    @pytest.mark.parametrize("interaction", RESENDABLE, ids=_ids(RESENDABLE))
    async def test_a_state_setting_interaction_is_sent_again_after_504(
        self, client: TavusClient, fake: FakeTavus, interaction: Interaction
    ) -> None:
        fake.reply(fail(504, MAYBE_DELIVERED), httpx.ReadTimeout("timed out"), ok())

        await client.send_app_message("c123456", interaction)

        assert len(fake.requests) == 3

    async def test_a_state_setting_interaction_504_exhausted_may_have_been_delivered(
        self, http: httpx.AsyncClient, fake: FakeTavus
    ) -> None:
        client = TavusClient(
            http, "k", base_url="https://tavus.test", retry=RetryPolicy(attempts=2)
        )
        fake.reply(fail(504, MAYBE_DELIVERED), fail(504, MAYBE_DELIVERED))

        with pytest.raises(TavusServerError) as caught:
            await client.send_app_message("c123456", OVERWRITE)

        assert len(fake.requests) == 2
        assert caught.value.may_have_taken_effect
