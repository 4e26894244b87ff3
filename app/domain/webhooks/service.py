"""Tenants' webhook endpoints and deliveries, as the admin API, `tenant apply` and the
console use them. Services flush, never commit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import WebhookDelivery, WebhookEndpoint
from app.db.repositories.tenants import TenantRepository
from app.db.repositories.webhooks import DeliveryFilter, WebhookRepository
from app.domain.leased_loop import utcnow
from app.domain.sessions.cursors import decode_session_cursor, encode_session_cursor
from app.domain.tenants.errors import TenantNotFound
from app.domain.webhooks import errors, signing
from app.domain.webhooks.schemas import (
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookSecretRotated,
)
from app.domain.webhooks.urls import UrlPolicy, check_url
from app.security.secret_box import SecretBox, SecretBoxError

# A tenant's backend needs a few receivers, not hundreds: every event goes to each.
MAX_ENDPOINTS_PER_TENANT = 20


def endpoint_view(row: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic(
        id=row.id,
        tenant_id=row.tenant_id,
        url=row.url,
        events=row.event_types,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        allow_http=row.allow_http,
        allow_private=row.allow_private,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
    )


def delivery_view(row: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        id=row.id,
        tenant_id=row.tenant_id,
        event_id=f"evt_{row.event_id.hex}",
        event_type=row.event_type,
        session_id=row.session_id,
        endpoint_id=row.endpoint_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_check_at if row.status == "pending" else None,
        last_attempt_at=row.last_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        created_at=row.created_at,
    )


async def _tenant_exists(session: AsyncSession, tenant_id: str) -> None:
    if await TenantRepository(session).get(tenant_id) is None:
        raise TenantNotFound(f"tenant {tenant_id!r} does not exist")


async def create_endpoint(
    session: AsyncSession,
    tenant_id: str,
    body: WebhookEndpointCreate,
    *,
    box: SecretBox,
    dev: bool,
    secret: str | None = None,
) -> WebhookEndpointCreated:
    """Add an endpoint with a new secret (or ``secret``, from `tenant apply`)."""
    await _tenant_exists(session, tenant_id)
    policy = UrlPolicy.of(allow_http=body.allow_http, allow_private=body.allow_private, dev=dev)
    url = check_url(body.url, policy)
    repo = WebhookRepository(session)
    if len(await repo.endpoints(tenant_id)) >= MAX_ENDPOINTS_PER_TENANT:
        raise errors.TooManyWebhookEndpoints(
            f"a tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints"
        )
    secret = secret or signing.new_secret()
    row = await repo.add_endpoint(
        WebhookEndpoint(
            tenant_id=tenant_id,
            url=url,
            event_types=list(body.events) if body.events is not None else None,
            secret_encrypted=box.encrypt(secret),
            allow_http=body.allow_http,
            allow_private=body.allow_private,
        )
    )
    await session.refresh(row)
    return WebhookEndpointCreated(**endpoint_view(row).model_dump(), secret=secret)


async def update_endpoint(
    session: AsyncSession,
    row: WebhookEndpoint,
    body: WebhookEndpointCreate,
    secret: str,
    *,
    box: SecretBox,
    dev: bool,
    overlap: timedelta,
) -> bool:
    """Make a stored endpoint what ``body`` and ``secret`` say (`tenant apply`): a new
    secret is a rotation, with its overlap; a disabled endpoint is enabled again, since
    the configuration says it receives. Whether anything changed."""
    policy = UrlPolicy.of(allow_http=body.allow_http, allow_private=body.allow_private, dev=dev)
    check_url(body.url, policy)
    events = list(body.events) if body.events is not None else None
    changed = False
    for column, value in (
        ("event_types", events),
        ("allow_http", body.allow_http),
        ("allow_private", body.allow_private),
        ("enabled", True),
        ("disabled_reason", None),
    ):
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    if _stored_secret(box, row.secret_encrypted) != secret:
        await rotate_secret(session, row.tenant_id, row.id, box=box, overlap=overlap, secret=secret)
        changed = True
    await session.flush()
    return changed


def _stored_secret(box: SecretBox, encrypted: bytes) -> str | None:
    try:
        return box.decrypt(encrypted)
    except SecretBoxError:
        # Sealed under an earlier SECRET_KEY: stored again under the current one.
        return None


async def list_endpoints(session: AsyncSession, tenant_id: str) -> WebhookEndpointList:
    await _tenant_exists(session, tenant_id)
    rows = await WebhookRepository(session).endpoints(tenant_id)
    return WebhookEndpointList(items=[endpoint_view(row) for row in rows])


async def delete_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint with its deliveries (what it never got is not sent)."""
    if not await WebhookRepository(session).delete_endpoint(tenant_id, endpoint_id):
        raise errors.WebhookEndpointNotFound(
            f"webhook endpoint {endpoint_id} does not exist for tenant {tenant_id!r}"
        )


async def rotate_secret(
    session: AsyncSession,
    tenant_id: str,
    endpoint_id: uuid.UUID,
    *,
    box: SecretBox,
    overlap: timedelta,
    secret: str | None = None,
) -> WebhookSecretRotated:
    """A new secret; the current one keeps signing too for ``overlap``, so receivers can
    switch without losing a delivery. A rotation within the overlap drops the oldest."""
    row = await WebhookRepository(session).endpoint(tenant_id, endpoint_id, for_update=True)
    if row is None:
        raise errors.WebhookEndpointNotFound(
            f"webhook endpoint {endpoint_id} does not exist for tenant {tenant_id!r}"
        )
    secret = secret or signing.new_secret()
    if overlap > timedelta(0):
        row.previous_secret_encrypted = row.secret_encrypted
        row.previous_secret_expires_at = utcnow() + overlap
    else:
        row.previous_secret_encrypted = None
        row.previous_secret_expires_at = None
    row.secret_encrypted = box.encrypt(secret)
    await session.flush()
    return WebhookSecretRotated(
        id=row.id, secret=secret, previous_secret_expires_at=row.previous_secret_expires_at
    )


async def list_deliveries(
    session: AsyncSession,
    tenant_id: str | None,
    where: DeliveryFilter,
    *,
    limit: int,
    cursor: str | None,
    unknown_tenant_is_empty: bool = False,
) -> WebhookDeliveryPage:
    """Newest first, a page at a time; ``tenant_id`` None: every tenant's (the console,
    whose tenant filter lists nothing for a tenant that does not exist)."""
    if tenant_id is not None and not unknown_tenant_is_empty:
        await _tenant_exists(session, tenant_id)
    after = decode_session_cursor(cursor) if cursor else None
    rows = await WebhookRepository(session).deliveries(
        tenant_id, where, limit=limit + 1, after=after
    )
    page, more = rows[:limit], len(rows) > limit
    return WebhookDeliveryPage(
        items=[delivery_view(row) for row in page],
        next_cursor=encode_session_cursor(page[-1].created_at, page[-1].id)
        if more and page
        else None,
    )


async def retry_delivery(
    session: AsyncSession, tenant_id: str | None, delivery_id: uuid.UUID
) -> WebhookDeliveryPublic:
    """Send a delivery again now, with a new round of retries, whatever its status (a
    replay of a delivered one included). Its endpoint must be enabled."""
    repo = WebhookRepository(session)
    row = await repo.delivery(tenant_id, delivery_id, for_update=True)
    if row is None:
        raise errors.WebhookDeliveryNotFound(f"webhook delivery {delivery_id} does not exist")
    endpoints = await repo.endpoints_by_id({row.endpoint_id})
    endpoint = endpoints.get(row.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        raise errors.WebhookEndpointDisabled(
            "the delivery's endpoint is disabled: add it again to receive events"
        )
    await repo.retry(row, utcnow())
    return delivery_view(row)
