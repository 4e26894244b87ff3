"""The one error tree for Tavus calls, and the one place responses are mapped onto it.

Every failure of a Tavus call surfaces as a :class:`TavusError` subclass that keeps the
operation, the HTTP status, the raw body and the request id. Nothing here ever holds
request headers, so the API key cannot leak through an exception.
"""

from __future__ import annotations

import email.utils
import json
import re
from datetime import UTC, datetime

import httpx

from app.tavus.operations import Operation

# Enough to diagnose any Tavus error body without keeping a proxy's HTML page whole.
_MAX_BODY_CHARS = 4096
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-amz-request-id")
# Tavus reports unknown ids as 400 "Invalid conversation_id" / "Invalid replica_uuid".
_INVALID_ID = re.compile(r"^\s*invalid\s+\w+_(?:id|uuid)\b", re.IGNORECASE)
_CONCURRENCY_TEXT = "maximum concurrent conversations"
# send-app-message to a conversation that is over: "App messages can only be sent to
# active conversations.", "The conversation's room is no longer available."
_CONVERSATION_OVER_TEXTS = ("active conversations", "no longer available")
_CREDITS_TEXT = "out of conversational credits"


class TavusError(Exception):
    """Base of every failed Tavus call."""

    def __init__(
        self,
        operation: Operation,
        *,
        message: str,
        status: int | None = None,
        body: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.body = body
        self.request_id = request_id
        self.message = message
        super().__init__(self._describe())

    @property
    def may_have_taken_effect(self) -> bool:
        """Whether Tavus may have applied the call even though it failed.

        When True for a create, the object may exist: resolve it by looking it up
        (``find_pal_by_name`` / ``find_conversation_by_name``), never by creating again.
        """
        return False

    def _describe(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        text = f"Tavus {self.operation.value} failed ({where}): {self.message}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(operation={self.operation.value!r}, status={self.status!r},"
            f" message={self.message!r}, request_id={self.request_id!r})"
        )


class TavusUnauthorized(TavusError):
    """The API key was refused (401, or 403 for a key restricted to other IPs)."""


class TavusNotFound(TavusError):
    """The object does not exist (404, or 400 ``Invalid <x>_id``).

    A delete or end that gets this after a lost response has already been done.
    """


class TavusConcurrencyLimit(TavusError):
    """The account is at its concurrent-conversation limit; no conversation was created."""


class TavusOutOfCredits(TavusError):
    """The account has no conversational credits left (402)."""


class TavusInvalidRequest(TavusError):
    """Tavus refused the request as sent (any other 4xx)."""


class TavusPayloadTooLarge(TavusInvalidRequest):
    """The body is over what Tavus accepts (413; send-app-message: 65,536 bytes)."""


class TavusConversationEnded(TavusInvalidRequest):
    """An interaction was sent to a conversation that is over: Tavus takes app messages
    for active conversations only, and says "room no longer available" once it ended."""


class TavusRateLimited(TavusError):
    """Tavus asked us to slow down (429); ``retry_after`` is in seconds when given."""

    def __init__(
        self,
        operation: Operation,
        *,
        message: str,
        status: int | None = None,
        body: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            operation, message=message, status=status, body=body, request_id=request_id
        )


class TavusServerError(TavusError):
    """Tavus failed on its side (5xx); a mutating call may still have been applied."""

    @property
    def may_have_taken_effect(self) -> bool:
        return self.operation.mutates


class TavusNotDelivered(TavusServerError):
    """Tavus says the app message was not delivered (send-app-message's 502): nothing
    happened, and sending it again is safe."""

    @property
    def may_have_taken_effect(self) -> bool:
        return False


class TavusUnexpectedResponse(TavusError):
    """Tavus answered in a shape we cannot read (bad JSON, missing ids, a redirect)."""

    @property
    def may_have_taken_effect(self) -> bool:
        # A 2xx we cannot parse still means the create or delete happened.
        return self.operation.mutates


class TavusTransportError(TavusError):
    """No HTTP response was received."""


class TavusUnreachable(TavusTransportError):
    """The request provably never reached Tavus (connect failure, pool timeout)."""


class TavusOutcomeUnknown(TavusTransportError):
    """The request may have reached Tavus but the answer was lost (timeout, dropped connection).

    For a mutating call the outcome must be resolved by a lookup before acting again.
    """

    @property
    def may_have_taken_effect(self) -> bool:
        return self.operation.mutates


def error_from_response(operation: Operation, response: httpx.Response) -> TavusError:
    """Map a non-2xx Tavus response onto the error tree."""
    status = response.status_code
    body = _body_text(response)
    message = _message_from(body) or response.reason_phrase or f"HTTP {status}"
    request_id = request_id_from(response.headers)
    error_class = _classify(operation, status, message)
    if error_class is TavusRateLimited:
        return TavusRateLimited(
            operation,
            message=message,
            status=status,
            body=body,
            request_id=request_id,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    return error_class(operation, message=message, status=status, body=body, request_id=request_id)


def error_from_transport(operation: Operation, exc: httpx.RequestError) -> TavusTransportError:
    """Map an httpx failure with no response onto the error tree.

    Only failures that happen before a single byte of the request can have left are
    ``TavusUnreachable``; anything later is ``TavusOutcomeUnknown``.
    """
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, _NEVER_SENT):
        return TavusUnreachable(operation, message=message)
    return TavusOutcomeUnknown(operation, message=message)


def unexpected_response(
    operation: Operation, response: httpx.Response, reason: str
) -> TavusUnexpectedResponse:
    """Report a 2xx (or redirect) whose body Palisade cannot use."""
    return TavusUnexpectedResponse(
        operation,
        message=reason,
        status=response.status_code,
        body=_body_text(response),
        request_id=request_id_from(response.headers),
    )


def request_id_from(headers: httpx.Headers) -> str | None:
    """Return the first request-correlation header Tavus (or its edge) sent, if any."""
    for name in _REQUEST_ID_HEADERS:
        value: str | None = headers.get(name)
        if value:
            return value
    return None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` as delta-seconds or an HTTP date; None when absent or garbled."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


# Raised before the request is written: the connection never opened or none was free.
_NEVER_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def _classify(operation: Operation, status: int, message: str) -> type[TavusError]:
    lowered = message.lower()
    client_error = 400 <= status < 500
    if status in (401, 403):
        return TavusUnauthorized
    if status == 413:
        return TavusPayloadTooLarge
    if operation is Operation.SEND_APP_MESSAGE:
        app_message_error = _classify_app_message(status, lowered)
        if app_message_error is not None:
            return app_message_error
    # Checked before the status so the limit is recognised whichever 4xx carries it.
    if client_error and _CONCURRENCY_TEXT in lowered:
        return TavusConcurrencyLimit
    if status == 402 or (client_error and _CREDITS_TEXT in lowered):
        return TavusOutOfCredits
    if status == 429:
        return TavusRateLimited
    if status == 404 or (status == 400 and _INVALID_ID.match(message)):
        return TavusNotFound
    if client_error:
        return TavusInvalidRequest
    if status >= 500:
        return TavusServerError
    return TavusUnexpectedResponse


def _classify_app_message(status: int, lowered: str) -> type[TavusError] | None:
    # Tavus's page: 502 nothing was delivered (retry); 504 it may have been (left a
    # plain server error, which may have taken effect).
    if status == 502:
        return TavusNotDelivered
    if status == 410 or (status == 400 and any(t in lowered for t in _CONVERSATION_OVER_TEXTS)):
        return TavusConversationEnded
    return None


def _body_text(response: httpx.Response) -> str | None:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return None
    if not text:
        return None
    return text[:_MAX_BODY_CHARS]


def _message_from(body: str | None) -> str | None:
    if body is None:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        # Not JSON (e.g. an HTML error page from an edge proxy): keep a short excerpt.
        return " ".join(body.split())[:200] or None
    if isinstance(payload, dict):
        for key in ("message", "error"):
            value: object = payload.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None
