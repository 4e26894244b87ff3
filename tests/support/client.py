"""A typed client for Palisade's HTTP API: one method per operation of its OpenAPI document.

Kept by hand, and held to the document by tests/unit/test_client_matches_openapi.py:
every ``operationId`` has exactly one method here, with the same HTTP method and path,
a parameter for each path, query and header parameter (header names in snake case),
and a request body whose keys are the schema's properties. A route added, renamed or
changed without this file fails that test, so the tests that call Palisade through it
cannot silently call an API that no longer exists. docs/testing.md says why it is kept
by hand rather than generated.

Methods return the ``httpx.Response``: tests look at statuses, headers and problem
documents as much as at successes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, ParamSpec, TypedDict, TypeVar

import httpx

Method = Literal["GET", "POST", "PATCH", "DELETE"]
SessionStatus = Literal["creating", "active", "ending", "ended", "failed"]
Scope = Literal["sessions:start", "sessions:read", "sessions:end", "sessions:interact"]


# --- request bodies (components/schemas of the OpenAPI document) ------------------------


class TenantCreate(TypedDict):
    id: str
    name: str
    max_concurrent_sessions: NotRequired[int]
    tavus_api_key: NotRequired[str | None]
    profiles: NotRequired[dict[str, dict[str, Any]]]
    default_profile: NotRequired[str | None]
    cors_origins: NotRequired[list[str]]


class TenantUpdate(TypedDict, total=False):
    name: str | None
    max_concurrent_sessions: int | None
    tavus_api_key: str | None
    profiles: dict[str, dict[str, Any] | None] | None
    default_profile: str | None
    cors_origins: list[str] | None


class ApiKeyCreate(TypedDict, total=False):
    label: str | None
    scopes: list[Scope] | None
    profiles: list[str] | None
    start_rate: str | None
    start_burst: int | None


WebhookEventType = Literal[
    "session.active",
    "session.ended",
    "session.failed",
    "session.cleanup_done",
    "session.transcript_ready",
    "session.recording_ready",
]


class WebhookEndpointCreate(TypedDict):
    url: str
    events: NotRequired[list[WebhookEventType] | None]
    allow_http: NotRequired[bool]
    allow_private: NotRequired[bool]


class ConversationOptions(TypedDict, total=False):
    conversation_name: str | None
    face_id: str | None
    audio_only: bool | None
    properties: dict[str, Any] | None


class SessionCreate(TypedDict, total=False):
    profile: str | None
    external_ref: str | None
    conversational_context: str | None
    custom_greeting: str | None
    overrides: dict[str, Any]
    conversation: ConversationOptions


class InteractionCreate(TypedDict):
    event_type: str
    properties: NotRequired[dict[str, Any]]


class TavusWebhook(TypedDict):
    event_type: str
    conversation_id: str
    message_type: NotRequired[str]
    timestamp: NotRequired[str]
    webhook_url: NotRequired[str]
    properties: NotRequired[dict[str, Any]]


# --- operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What a client method sends: checked against the OpenAPI document."""

    operation_id: str
    method: Method
    path: str
    # The request body's TypedDict; None: the operation takes no body.
    body: type | None = None


P = ParamSpec("P")
R = TypeVar("R")


def operation(
    operation_id: str, method: Method, path: str, *, body: type | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    def mark(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        function.__operation__ = Operation(operation_id, method, path, body)  # type: ignore[attr-defined]
        return function

    return mark


def operations_of(client: type[PalisadeClient]) -> dict[str, tuple[str, Operation]]:
    """Each operation id, with the name of the method that calls it."""
    found: dict[str, tuple[str, Operation]] = {}
    for name in dir(client):
        marked = getattr(getattr(client, name), "__operation__", None)
        if isinstance(marked, Operation):
            found[marked.operation_id] = (name, marked)
    return found


def _query(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


class PalisadeClient:
    """Palisade's API over an ``httpx.AsyncClient`` whose ``base_url`` is Palisade.

    ``token`` is sent as the bearer credential: the admin token for the admin operations,
    a tenant API key for the session operations. ``origin``, when set, is sent as a
    browser would (``Origin``), for CORS.
    """

    def __init__(
        self, http: httpx.AsyncClient, token: str | None = None, *, origin: str | None = None
    ) -> None:
        self.http = http
        self.token = token
        self.origin = origin

    def using(self, token: str | None, *, origin: str | None = None) -> PalisadeClient:
        """The same client with other credentials (and origin)."""
        return PalisadeClient(self.http, token, origin=origin)

    async def _send(
        self,
        method: Method,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str | None] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        sent = {name: value for name, value in (headers or {}).items() if value is not None}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.origin is not None:
            sent["Origin"] = self.origin
        return await self.http.request(method, path, params=params or None, headers=sent, json=json)

    # --- operations --------------------------------------------------------------------

    @operation("getHealth", "GET", "/healthz")
    async def get_health(self) -> httpx.Response:
        return await self._send("GET", "/healthz")

    @operation("getReadiness", "GET", "/readyz")
    async def get_readiness(self) -> httpx.Response:
        return await self._send("GET", "/readyz")

    # --- tenants (admin token) ---------------------------------------------------------

    @operation("createTenant", "POST", "/tenants", body=TenantCreate)
    async def create_tenant(self, body: TenantCreate) -> httpx.Response:
        return await self._send("POST", "/tenants", json=body)

    @operation("listTenants", "GET", "/tenants")
    async def list_tenants(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> httpx.Response:
        return await self._send("GET", "/tenants", params=_query(limit=limit, cursor=cursor))

    @operation("getTenant", "GET", "/tenants/{tenant_id}")
    async def get_tenant(self, tenant_id: str) -> httpx.Response:
        return await self._send("GET", f"/tenants/{tenant_id}")

    @operation("updateTenant", "PATCH", "/tenants/{tenant_id}", body=TenantUpdate)
    async def update_tenant(self, tenant_id: str, body: TenantUpdate) -> httpx.Response:
        return await self._send("PATCH", f"/tenants/{tenant_id}", json=body)

    @operation("checkProfile", "POST", "/tenants/{tenant_id}/profiles/{name}/check")
    async def check_profile(self, tenant_id: str, name: str) -> httpx.Response:
        return await self._send("POST", f"/tenants/{tenant_id}/profiles/{name}/check")

    @operation("getTenantUsage", "GET", "/tenants/{tenant_id}/usage")
    async def get_tenant_usage(
        self, tenant_id: str, *, since: str | None = None, until: str | None = None
    ) -> httpx.Response:
        return await self._send(
            "GET", f"/tenants/{tenant_id}/usage", params=_query(since=since, until=until)
        )

    # --- API keys (admin token) --------------------------------------------------------

    @operation("createApiKey", "POST", "/tenants/{tenant_id}/api-keys", body=ApiKeyCreate)
    async def create_api_key(
        self, tenant_id: str, body: ApiKeyCreate | None = None
    ) -> httpx.Response:
        return await self._send("POST", f"/tenants/{tenant_id}/api-keys", json=body or {})

    @operation("listApiKeys", "GET", "/tenants/{tenant_id}/api-keys")
    async def list_api_keys(
        self, tenant_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> httpx.Response:
        return await self._send(
            "GET", f"/tenants/{tenant_id}/api-keys", params=_query(limit=limit, cursor=cursor)
        )

    @operation("revokeApiKey", "DELETE", "/tenants/{tenant_id}/api-keys/{key_id}")
    async def revoke_api_key(self, tenant_id: str, key_id: str) -> httpx.Response:
        return await self._send("DELETE", f"/tenants/{tenant_id}/api-keys/{key_id}")

    # --- tenant webhooks (admin token) -------------------------------------------------

    @operation(
        "createWebhookEndpoint",
        "POST",
        "/tenants/{tenant_id}/webhook-endpoints",
        body=WebhookEndpointCreate,
    )
    async def create_webhook_endpoint(
        self, tenant_id: str, body: WebhookEndpointCreate
    ) -> httpx.Response:
        return await self._send("POST", f"/tenants/{tenant_id}/webhook-endpoints", json=body)

    @operation("listWebhookEndpoints", "GET", "/tenants/{tenant_id}/webhook-endpoints")
    async def list_webhook_endpoints(self, tenant_id: str) -> httpx.Response:
        return await self._send("GET", f"/tenants/{tenant_id}/webhook-endpoints")

    @operation(
        "deleteWebhookEndpoint", "DELETE", "/tenants/{tenant_id}/webhook-endpoints/{endpoint_id}"
    )
    async def delete_webhook_endpoint(self, tenant_id: str, endpoint_id: str) -> httpx.Response:
        return await self._send("DELETE", f"/tenants/{tenant_id}/webhook-endpoints/{endpoint_id}")

    @operation(
        "rotateWebhookSecret",
        "POST",
        "/tenants/{tenant_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
    )
    async def rotate_webhook_secret(self, tenant_id: str, endpoint_id: str) -> httpx.Response:
        return await self._send(
            "POST", f"/tenants/{tenant_id}/webhook-endpoints/{endpoint_id}/rotate-secret"
        )

    @operation("listWebhookDeliveries", "GET", "/tenants/{tenant_id}/webhook-deliveries")
    async def list_webhook_deliveries(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        event_type: str | None = None,
        session_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> httpx.Response:
        return await self._send(
            "GET",
            f"/tenants/{tenant_id}/webhook-deliveries",
            params=_query(
                status=status,
                event_type=event_type,
                session_id=session_id,
                limit=limit,
                cursor=cursor,
            ),
        )

    @operation(
        "retryWebhookDelivery",
        "POST",
        "/tenants/{tenant_id}/webhook-deliveries/{delivery_id}/retry",
    )
    async def retry_webhook_delivery(self, tenant_id: str, delivery_id: str) -> httpx.Response:
        return await self._send(
            "POST", f"/tenants/{tenant_id}/webhook-deliveries/{delivery_id}/retry"
        )

    # --- sessions (tenant API key) -----------------------------------------------------

    @operation("startSession", "POST", "/sessions", body=SessionCreate)
    async def start_session(
        self, body: SessionCreate, *, idempotency_key: str | None = None
    ) -> httpx.Response:
        return await self._send(
            "POST", "/sessions", headers={"Idempotency-Key": idempotency_key}, json=body
        )

    @operation("listSessions", "GET", "/sessions")
    async def list_sessions(
        self,
        *,
        status: SessionStatus | None = None,
        external_ref: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> httpx.Response:
        return await self._send(
            "GET",
            "/sessions",
            params=_query(status=status, external_ref=external_ref, limit=limit, cursor=cursor),
        )

    @operation("getSession", "GET", "/sessions/{session_id}")
    async def get_session(self, session_id: str) -> httpx.Response:
        return await self._send("GET", f"/sessions/{session_id}")

    @operation("endSession", "POST", "/sessions/{session_id}/end")
    async def end_session(self, session_id: str) -> httpx.Response:
        return await self._send("POST", f"/sessions/{session_id}/end")

    @operation("listSessionEvents", "GET", "/sessions/{session_id}/events")
    async def list_session_events(
        self, session_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> httpx.Response:
        return await self._send(
            "GET",
            f"/sessions/{session_id}/events",
            params=_query(limit=limit, cursor=cursor),
        )

    @operation("getTranscript", "GET", "/sessions/{session_id}/transcript")
    async def get_transcript(self, session_id: str) -> httpx.Response:
        return await self._send("GET", f"/sessions/{session_id}/transcript")

    @operation(
        "sendInteraction", "POST", "/sessions/{session_id}/interactions", body=InteractionCreate
    )
    async def send_interaction(self, session_id: str, body: InteractionCreate) -> httpx.Response:
        return await self._send("POST", f"/sessions/{session_id}/interactions", json=body)

    # --- Tavus's webhooks ----------------------------------------------------------------

    @operation("receiveTavusWebhook", "POST", "/webhooks/tavus/{session_id}", body=TavusWebhook)
    async def receive_tavus_webhook(
        self, session_id: str, body: TavusWebhook, *, token: str | None = None
    ) -> httpx.Response:
        return await self._send(
            "POST", f"/webhooks/tavus/{session_id}", params=_query(token=token), json=body
        )
