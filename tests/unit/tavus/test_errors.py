"""Mapping Tavus responses and transport failures onto the error tree."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from app.tavus.errors import (
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusServerError,
    TavusTransportError,
    TavusUnauthorized,
    TavusUnexpectedResponse,
    TavusUnreachable,
    error_from_response,
    error_from_transport,
    parse_retry_after,
)
from app.tavus.operations import Operation


def _response(
    status: int,
    payload: object = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    request = httpx.Request("POST", "https://tavusapi.com/v2/conversations")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=payload, headers=headers, request=request)


class TestErrorFromResponse:
    @pytest.mark.parametrize(
        ("status", "payload", "expected", "message"),
        [
            (400, {"error": "Invalid conversation_id"}, TavusNotFound, "Invalid conversation_id"),
            (400, {"error": "Invalid persona_id"}, TavusNotFound, "Invalid persona_id"),
            (400, {"error": "Invalid replica_uuid"}, TavusNotFound, "Invalid replica_uuid"),
            (400, {"error": "Invalid pal_id"}, TavusNotFound, "Invalid pal_id"),
            (404, {"message": "Not Found"}, TavusNotFound, "Not Found"),
            (
                400,
                {
                    "error": "There was an error creating the conversation, please reach out "
                    "to support at support@tavus.io!"
                },
                TavusInvalidRequest,
                "There was an error creating the conversation, please reach out "
                "to support at support@tavus.io!",
            ),
            (
                400,
                {"message": "objective_name is required"},
                TavusInvalidRequest,
                "objective_name is required",
            ),
            (401, {"message": "Invalid access token"}, TavusUnauthorized, "Invalid access token"),
            (
                400,
                {"message": "User has reached maximum concurrent conversations"},
                TavusConcurrencyLimit,
                "User has reached maximum concurrent conversations",
            ),
            (
                402,
                {"message": "The user is out of conversational credits"},
                TavusOutOfCredits,
                "The user is out of conversational credits",
            ),
            (
                422,
                {"message": "Invalid JSON patch format"},
                TavusInvalidRequest,
                "Invalid JSON patch format",
            ),
            (500, {"message": "Internal Server Error"}, TavusServerError, "Internal Server Error"),
            (503, {"error": "upstream unavailable"}, TavusServerError, "upstream unavailable"),
            (429, {"message": "Too Many Requests"}, TavusRateLimited, "Too Many Requests"),
        ],
    )
    def test_maps_documented_bodies(
        self, status: int, payload: object, expected: type[TavusError], message: str
    ) -> None:
        error = error_from_response(Operation.CREATE_CONVERSATION, _response(status, payload))

        assert type(error) is expected
        assert error.status == status
        assert error.message == message
        assert error.operation is Operation.CREATE_CONVERSATION

    @pytest.mark.parametrize(
        "text",
        [
            "USER HAS REACHED MAXIMUM CONCURRENT CONVERSATIONS",
            "user has reached Maximum Concurrent Conversations",
        ],
    )
    def test_concurrency_text_matches_case_insensitively(self, text: str) -> None:
        error = error_from_response(Operation.CREATE_CONVERSATION, _response(400, {"error": text}))

        assert isinstance(error, TavusConcurrencyLimit)

    def test_concurrency_text_wins_over_a_429_status(self) -> None:
        body = {"message": "User has reached maximum concurrent conversations"}

        error = error_from_response(Operation.CREATE_CONVERSATION, _response(429, body))

        assert isinstance(error, TavusConcurrencyLimit)

    def test_invalid_id_match_is_case_insensitive(self) -> None:
        error = error_from_response(Operation.GET_PAL, _response(400, {"error": "invalid PAL_ID"}))

        assert isinstance(error, TavusNotFound)

    def test_other_invalid_messages_are_not_not_found(self) -> None:
        body = {"message": "Invalid access token"}
        error = error_from_response(Operation.GET_PAL, _response(400, body))

        assert isinstance(error, TavusInvalidRequest)

    def test_message_is_read_before_error(self) -> None:
        body = {"message": "from message", "error": "from error"}

        error = error_from_response(Operation.GET_PAL, _response(400, body))

        assert error.message == "from message"

    def test_error_is_used_when_message_is_blank(self) -> None:
        body = {"message": "", "error": "Invalid pal_id"}

        error = error_from_response(Operation.GET_PAL, _response(400, body))

        assert isinstance(error, TavusNotFound)

    def test_keeps_raw_body_and_request_id(self) -> None:
        response = _response(
            400, {"error": "Invalid persona_id"}, headers={"x-request-id": "req-42"}
        )

        error = error_from_response(Operation.GET_PAL, response)

        assert error.body == '{"error":"Invalid persona_id"}'
        assert error.request_id == "req-42"
        assert "req-42" in str(error)

    def test_non_json_body_becomes_a_short_message(self) -> None:
        html = "<html><body><h1>502 Bad Gateway</h1></body></html>"

        error = error_from_response(Operation.GET_PAL, _response(502, text=html))

        assert isinstance(error, TavusServerError)
        assert error.body == html
        assert "502 Bad Gateway" in error.message

    def test_empty_body_falls_back_to_reason_phrase(self) -> None:
        error = error_from_response(Operation.GET_PAL, _response(503, text=""))

        assert error.message == "Service Unavailable"
        assert error.body is None

    def test_rate_limit_parses_retry_after(self) -> None:
        response = _response(429, {}, headers={"Retry-After": "7"})

        error = error_from_response(Operation.LIST_PALS, response)

        assert isinstance(error, TavusRateLimited)
        assert error.retry_after == 7.0

    def test_rate_limit_without_retry_after(self) -> None:
        error = error_from_response(Operation.LIST_PALS, _response(429, {}))

        assert isinstance(error, TavusRateLimited)
        assert error.retry_after is None

    def test_redirect_is_unexpected(self) -> None:
        response = _response(302, text="", headers={"location": "https://elsewhere"})

        error = error_from_response(Operation.GET_PAL, response)

        assert isinstance(error, TavusUnexpectedResponse)


class TestErrorFromTransport:
    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ConnectError("[Errno 111] Connection refused"),
            httpx.ConnectTimeout("timed out"),
            httpx.PoolTimeout("no free connection"),
        ],
    )
    def test_failures_before_sending_are_unreachable(self, exc: httpx.RequestError) -> None:
        error = error_from_transport(Operation.CREATE_CONVERSATION, exc)

        assert isinstance(error, TavusUnreachable)
        assert error.status is None
        assert type(exc).__name__ in error.message

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ReadTimeout("timed out"),
            httpx.WriteTimeout("timed out"),
            httpx.ReadError("connection reset"),
            httpx.WriteError("broken pipe"),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
        ],
    )
    def test_failures_after_sending_are_outcome_unknown(self, exc: httpx.RequestError) -> None:
        error = error_from_transport(Operation.CREATE_CONVERSATION, exc)

        assert isinstance(error, TavusOutcomeUnknown)
        assert isinstance(error, TavusTransportError)


class TestMayHaveTakenEffect:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (TavusOutcomeUnknown(Operation.CREATE_CONVERSATION, message="t"), True),
            (TavusOutcomeUnknown(Operation.CREATE_PAL, message="t"), True),
            (TavusOutcomeUnknown(Operation.DELETE_PAL, message="t"), True),
            (TavusOutcomeUnknown(Operation.GET_CONVERSATION, message="t"), False),
            (TavusServerError(Operation.CREATE_CONVERSATION, message="t", status=500), True),
            (TavusServerError(Operation.CREATE_PAL, message="t", status=502), True),
            (TavusServerError(Operation.LIST_PALS, message="t", status=500), False),
            (TavusUnexpectedResponse(Operation.CREATE_PAL, message="t", status=200), True),
            (TavusUnreachable(Operation.CREATE_CONVERSATION, message="t"), False),
            (TavusRateLimited(Operation.CREATE_CONVERSATION, message="t", status=429), False),
            (TavusConcurrencyLimit(Operation.CREATE_CONVERSATION, message="t", status=400), False),
            (TavusInvalidRequest(Operation.CREATE_PAL, message="t", status=400), False),
            (TavusNotFound(Operation.DELETE_PAL, message="t", status=400), False),
            (TavusOutOfCredits(Operation.CREATE_CONVERSATION, message="t", status=402), False),
            (TavusUnauthorized(Operation.CREATE_CONVERSATION, message="t", status=401), False),
        ],
    )
    def test_by_error_and_operation(self, error: TavusError, expected: bool) -> None:
        assert error.may_have_taken_effect is expected


class TestParseRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("7", 7.0),
            ("1.5", 1.5),
            (" 3 ", 3.0),
            ("-4", 0.0),
            ("", None),
            (None, None),
            ("soon", None),
            ("nan", None),
            ("inf", None),
        ],
    )
    def test_delta_seconds(self, value: str | None, expected: float | None) -> None:
        assert parse_retry_after(value) == expected

    def test_http_date(self) -> None:
        now = datetime(2025, 7, 11, 6, 45, 0, tzinfo=UTC)

        assert parse_retry_after("Fri, 11 Jul 2025 06:45:20 GMT", now=now) == 20.0

    def test_http_date_in_the_past_means_now(self) -> None:
        now = datetime(2025, 7, 11, 6, 45, 0, tzinfo=UTC)

        assert parse_retry_after("Fri, 11 Jul 2025 06:00:00 GMT", now=now) == 0.0


class TestRendering:
    def test_str_and_repr_name_operation_status_and_message(self) -> None:
        error = TavusNotFound(
            Operation.DELETE_PAL, message="Invalid pal_id", status=400, request_id="r-1"
        )

        assert str(error) == ("Tavus delete_pal failed (HTTP 400): Invalid pal_id [request id r-1]")
        assert repr(error) == (
            "TavusNotFound(operation='delete_pal', status=400, message='Invalid pal_id',"
            " request_id='r-1')"
        )

    def test_transport_error_says_no_response(self) -> None:
        error = TavusOutcomeUnknown(Operation.CREATE_PAL, message="ReadTimeout: timed out")

        assert str(error) == "Tavus create_pal failed (no response): ReadTimeout: timed out"
