"""Palisade's typed async client for the Tavus API."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Final
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, SecretStr, ValidationError

from app.tavus._http import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, TavusHTTP
from app.tavus._http import ExchangeObserver as ExchangeObserver
from app.tavus.errors import TavusNotFound, TavusPayloadTooLarge, unexpected_response
from app.tavus.listing import find_one
from app.tavus.models import (
    APP_MESSAGE_MAX_BYTES,
    Conversation,
    ConversationCreate,
    ConversationStatus,
    Interaction,
    ItemT,
    Page,
    Pal,
    PalCreate,
)
from app.tavus.operations import Operation, OperationKind
from app.tavus.retry import DEFAULT_RETRY_POLICY, RetryPolicy, interaction_kind

logger = logging.getLogger(__name__)

# Tavus documents a default of 10 and no maximum; 100 keeps sweeps and lookups cheap.
DEFAULT_PAGE_SIZE: Final = 100
# Pages one lookup may read before it answers "cannot tell" (docs/tavus-client.md).
DEFAULT_MAX_LOOKUP_PAGES: Final = 100


class TavusClient:
    """Typed access to the Tavus endpoints Palisade uses.

    Wraps one long-lived ``httpx.AsyncClient`` owned (and closed) by the application.
    Every failure is a ``TavusError``; see ``app.tavus.errors`` and ``app.tavus.retry``
    for what is retried and what ``may_have_taken_effect`` means for a failed create.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_lookup_pages: int = DEFAULT_MAX_LOOKUP_PAGES,
        observe: ExchangeObserver | None = None,
        on_key: Callable[[str], None] | None = None,
    ) -> None:
        """``observe`` sees each exchange (metrics); ``on_key`` is given each API key the
        client (or a view of it) uses, so that logs can mask it."""
        if page_size < 1 or max_lookup_pages < 1:
            raise ValueError("page_size and max_lookup_pages must be at least 1")
        self._transport = TavusHTTP(
            http,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            observe=observe,
        )
        self._on_key = on_key
        self._api_key = self._secret(api_key)
        self._page_size = page_size
        self._max_lookup_pages = max_lookup_pages

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._transport.retry

    def with_api_key(self, api_key: str | SecretStr) -> TavusClient:
        """Return a view using another Tavus key (a tenant's) over the same connection pool."""
        view = copy.copy(self)
        view._api_key = self._secret(api_key)
        return view

    def with_retry_policy(self, retry: RetryPolicy) -> TavusClient:
        """Return a view with other retry limits, sharing key and connection pool."""
        view = copy.copy(self)
        view._transport = self._transport.with_retry(retry)
        return view

    def __repr__(self) -> str:
        return f"TavusClient(base_url={self.base_url!r}, api_key='***')"

    # --- PALs ----------------------------------------------------------------------

    async def create_pal(self, body: PalCreate) -> Pal:
        """Create a PAL. Never retried once it may have reached Tavus."""
        operation = Operation.CREATE_PAL
        response = await self._send(operation, "POST", "/v2/pals", json=_dump(body))
        return _parse(operation, response, Pal)

    async def get_pal(self, pal_id: str) -> Pal:
        operation = Operation.GET_PAL
        response = await self._send(operation, "GET", f"/v2/pals/{_segment(pal_id)}")
        if _is_empty_data(response):
            raise TavusNotFound(
                operation,
                message="Tavus returned an empty data list for this PAL",
                status=response.status_code,
                body=response.text,
            )
        return _parse(operation, response, Pal)

    async def list_pals(
        self, page: int = 1, limit: int | None = None, pal_type: str | None = None
    ) -> Page[Pal]:
        operation = Operation.LIST_PALS
        limit = self._limit(limit)
        params = _page_params(page, limit)
        if pal_type is not None:
            params["pal_type"] = pal_type
        response = await self._send(operation, "GET", "/v2/pals", params=params)
        return _parse_page(operation, response, Pal, page=page, limit=limit)

    def iter_pals(
        self, pal_type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Pal]:
        """Yield every PAL across all pages, each id once."""
        return _iterate(
            lambda page: self.list_pals(page=page, limit=limit, pal_type=pal_type),
            lambda pal: pal.pal_id,
        )

    async def delete_pal(self, pal_id: str) -> None:
        """Delete a PAL. An already-deleted PAL raises ``TavusNotFound``: treat it as done."""
        await self._send(Operation.DELETE_PAL, "DELETE", f"/v2/pals/{_segment(pal_id)}")

    async def find_pal_by_name(
        self, pal_name: str, *, created_after: datetime | None = None
    ) -> Pal | None:
        """The account's own PAL named ``pal_name``, or None when the listing proves there
        is none. Raises ``TavusListIncomplete`` when it cannot tell (``app.tavus.listing``).
        ``created_after``: the PAL cannot be older (lets a newest-first scan stop early)."""
        found, _ = await find_one(
            Operation.LIST_PALS,
            lambda page: self.list_pals(page=page, pal_type="user"),
            key=lambda pal: pal.pal_id,
            wanted=lambda pal: pal.pal_name == pal_name,
            created=lambda pal: pal.created_at,
            max_pages=self._max_lookup_pages,
            created_after=created_after,
        )
        return found

    # --- conversations -------------------------------------------------------------

    async def create_conversation(self, body: ConversationCreate) -> Conversation:
        """Create (and start billing) a conversation. Never retried once it may have
        reached Tavus; resolve ``TavusOutcomeUnknown`` with ``find_conversation_by_name``."""
        operation = Operation.CREATE_CONVERSATION
        response = await self._send(operation, "POST", "/v2/conversations", json=_dump(body))
        return _parse(operation, response, Conversation)

    async def get_conversation(self, conversation_id: str, verbose: bool = False) -> Conversation:
        """Fetch a conversation; ``verbose`` adds its ``events`` (joins, shutdown, transcript)."""
        operation = Operation.GET_CONVERSATION
        params: dict[str, str | int] | None = {"verbose": "true"} if verbose else None
        response = await self._send(
            operation, "GET", f"/v2/conversations/{_segment(conversation_id)}", params=params
        )
        if _is_empty_data(response):
            raise TavusNotFound(
                operation,
                message="Tavus returned an empty data list for this conversation",
                status=response.status_code,
                body=response.text,
            )
        return _parse(operation, response, Conversation)

    async def list_conversations(
        self, status: str | None = None, page: int = 1, limit: int | None = None
    ) -> Page[Conversation]:
        operation = Operation.LIST_CONVERSATIONS
        limit = self._limit(limit)
        params = _page_params(page, limit)
        if status is not None:
            params["status"] = status
        response = await self._send(operation, "GET", "/v2/conversations", params=params)
        return _parse_page(operation, response, Conversation, page=page, limit=limit)

    def iter_conversations(
        self, status: str | None = None, limit: int | None = None
    ) -> AsyncIterator[Conversation]:
        """Yield every conversation across all pages, each id once."""
        return _iterate(
            lambda page: self.list_conversations(status=status, page=page, limit=limit),
            lambda conversation: conversation.conversation_id,
        )

    async def end_conversation(self, conversation_id: str) -> None:
        """Ask Tavus to end a conversation (frees its slot and stops billing)."""
        await self._send(
            Operation.END_CONVERSATION,
            "POST",
            f"/v2/conversations/{_segment(conversation_id)}/end",
        )

    async def find_conversation_by_name(
        self, conversation_name: str, *, created_after: datetime | None = None
    ) -> Conversation | None:
        """Resolve a create whose outcome is unknown: the conversation named
        ``conversation_name``, or None when the listings prove there is none. Raises
        ``TavusListIncomplete`` when they cannot tell (``app.tavus.listing``).

        The active listing is the narrowest one holding a conversation just created; one
        that already ended has left it for the ended listing, which is read second so
        that a conversation ending between the two reads is still seen in one of them.
        """
        for status in (ConversationStatus.ACTIVE, ConversationStatus.ENDED):
            found, _ = await find_one(
                Operation.LIST_CONVERSATIONS,
                self._conversation_pages(status),
                key=lambda conversation: conversation.conversation_id,
                wanted=lambda conversation: conversation.conversation_name == conversation_name,
                created=lambda conversation: conversation.created_at,
                max_pages=self._max_lookup_pages,
                created_after=created_after,
            )
            if found is not None:
                return found
        return None

    async def send_app_message(self, conversation_id: str, interaction: Interaction) -> None:
        """Relay ``interaction`` to a live conversation (Tavus's Send App Message). A
        success means Tavus accepted it, not that the PAL has acted on it yet.

        Sent again only as ``interaction_kind`` allows: an interaction Tavus acts on each
        time it arrives fails with ``may_have_taken_effect`` once it may have arrived (a
        504, another 5xx, a lost answer) and is never resent. A body over Tavus's
        65,536 bytes raises ``TavusPayloadTooLarge`` without being sent; a conversation
        that is over raises ``TavusConversationEnded``.
        """
        operation = Operation.SEND_APP_MESSAGE
        body = interaction.app_message(conversation_id)
        if len(body) > APP_MESSAGE_MAX_BYTES:
            raise TavusPayloadTooLarge(
                operation,
                message=f"the app message is {len(body)} bytes; Tavus takes at most "
                f"{APP_MESSAGE_MAX_BYTES}",
            )
        await self._send(
            operation,
            "POST",
            f"/v2/conversations/{_segment(conversation_id)}/send-app-message",
            content=body,
            kind=interaction_kind(interaction.event_type),
        )

    def _conversation_pages(self, status: str) -> Callable[[int], Awaitable[Page[Conversation]]]:
        return lambda page: self.list_conversations(status=status, page=page)

    # --- plumbing ------------------------------------------------------------------

    async def _send(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: dict[str, JsonValue] | None = None,
        content: bytes | None = None,
        kind: OperationKind | None = None,
    ) -> httpx.Response:
        return await self._transport.request(
            operation,
            self._api_key,
            method,
            path,
            params=params,
            json=json,
            content=content,
            kind=kind,
        )

    def _secret(self, api_key: str | SecretStr) -> SecretStr:
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not secret.get_secret_value().strip():
            raise ValueError("a Tavus API key is required")
        if self._on_key is not None:
            self._on_key(secret.get_secret_value())
        return secret

    def _limit(self, limit: int | None) -> int:
        return self._page_size if limit is None else limit


def _segment(identifier: str) -> str:
    # An empty or slash-bearing id must never turn into a different endpoint.
    if not identifier or not identifier.strip():
        raise ValueError("a Tavus id must not be empty")
    return quote(identifier, safe="")


def _page_params(page: int, limit: int) -> dict[str, str | int]:
    if page < 1 or limit < 1:
        raise ValueError("page and limit must be at least 1")
    return {"page": page, "limit": limit}


def _dump(body: BaseModel) -> dict[str, JsonValue]:
    return body.model_dump(mode="json", exclude_none=True)


def _json_or_unexpected(operation: Operation, response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        pass
    raise unexpected_response(operation, response, "response body is not JSON")


def _is_empty_data(response: httpx.Response) -> bool:
    try:
        payload = response.json()
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("data") == [] and len(payload) <= 2


def _describe_validation(model: type[BaseModel], exc: ValidationError) -> str:
    # Field locations only: input values could hold keys Tavus echoed back.
    where = ", ".join(
        ".".join(str(part) for part in err["loc"]) or "<root>" for err in exc.errors()
    )
    return f"response is not a valid {model.__name__} ({where})"


def _parse(operation: Operation, response: httpx.Response, model: type[ItemT]) -> ItemT:
    payload = _json_or_unexpected(operation, response)
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        reason = _describe_validation(model, exc)
    # Raised outside the handler: the validation error quotes the input, which may hold
    # keys Tavus echoed back.
    raise unexpected_response(operation, response, reason)


def _parse_page(
    operation: Operation,
    response: httpx.Response,
    model: type[ItemT],
    *,
    page: int,
    limit: int,
) -> Page[ItemT]:
    payload = _json_or_unexpected(operation, response)
    total_count: int | None = None
    if isinstance(payload, dict):
        raw_total = payload.get("total_count")
        if isinstance(raw_total, int) and not isinstance(raw_total, bool):
            total_count = raw_total
        payload = payload.get("data")
    if not isinstance(payload, list):
        raise unexpected_response(operation, response, "list response has no data array")
    items: list[ItemT] = []
    skipped = 0
    for raw in payload:
        try:
            items.append(model.model_validate(raw))
        except ValidationError as exc:
            # One malformed row must not hide the rest of the page from a lookup.
            skipped += 1
            logger.warning(
                "tavus %s: skipping a list item: %s",
                operation.value,
                _describe_validation(model, exc),
            )
    return Page[ItemT](data=items, total_count=total_count, page=page, limit=limit, skipped=skipped)


async def _iterate(
    fetch: Callable[[int], Awaitable[Page[ItemT]]], key: Callable[[ItemT], str]
) -> AsyncIterator[ItemT]:
    seen: set[str] = set()
    page_number = 1
    while True:
        page = await fetch(page_number)
        fresh = [item for item in page.data if key(item) not in seen]
        for item in fresh:
            seen.add(key(item))
            yield item
        # A page with nothing new means the server ignores `page`; stop instead of looping.
        if not page.data or not fresh:
            return
        # total_count is trusted only with a short page: a full page always gets a
        # follow-up, so a miscounted total cannot hide the object a lookup is after.
        short = len(page.data) < page.limit
        if short and page.total_count is not None and len(seen) >= page.total_count:
            return
        page_number += 1
