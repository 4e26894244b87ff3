"""Admin API: a tenant's webhook endpoints and their deliveries (docs/webhooks.md).
Thin: parse, call the service, return."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.api.auth import AdminOnly
from app.api.deps import DbSession, RuntimeDep
from app.api.routing import StrictJsonRoute
from app.db.repositories.webhooks import DeliveryFilter
from app.domain.storable_text import StorableStr
from app.domain.webhooks import service as webhook_service
from app.domain.webhooks.schemas import (
    DeliveryStatus,
    EventType,
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookSecretRotated,
)

router = APIRouter(route_class=StrictJsonRoute, prefix="/tenants", dependencies=[AdminOnly])

TAG = "tenant-webhooks"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid admin token"},
    404: {"description": "No such tenant (`tenant_not_found`)"},
}
_ENDPOINT_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No such tenant (`tenant_not_found`) or endpoint "
        "(`webhook_endpoint_not_found`)"
    }
}


@router.post(
    "/{tenant_id}/webhook-endpoints",
    operation_id="createWebhookEndpoint",
    tags=[TAG],
    status_code=status.HTTP_201_CREATED,
    responses={
        **_ERRORS,
        422: {
            "description": "`webhook_url_not_allowed` (not https, or a private target: "
            "docs/webhooks.md), `too_many_webhook_endpoints`, `validation_error`"
        },
    },
)
async def create_webhook_endpoint(
    tenant_id: StorableStr, body: WebhookEndpointCreate, session: DbSession, runtime: RuntimeDep
) -> WebhookEndpointCreated:
    """Add a receiver of the tenant's session events. The signing secret (`whsec_…`) is
    shown only in this response."""
    return await webhook_service.create_endpoint(
        session, tenant_id, body, box=runtime.secret_box, dev=runtime.settings.is_dev
    )


@router.get(
    "/{tenant_id}/webhook-endpoints",
    operation_id="listWebhookEndpoints",
    tags=[TAG],
    responses=_ERRORS,
)
async def list_webhook_endpoints(tenant_id: StorableStr, session: DbSession) -> WebhookEndpointList:
    """The tenant's endpoints (never their secrets), disabled ones with the reason."""
    return await webhook_service.list_endpoints(session, tenant_id)


@router.delete(
    "/{tenant_id}/webhook-endpoints/{endpoint_id}",
    operation_id="deleteWebhookEndpoint",
    tags=[TAG],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: _ERRORS[401], **_ENDPOINT_NOT_FOUND},
)
async def delete_webhook_endpoint(
    tenant_id: StorableStr, endpoint_id: uuid.UUID, session: DbSession
) -> Response:
    """Remove an endpoint and its deliveries; nothing more is sent to it."""
    await webhook_service.delete_endpoint(session, tenant_id, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{tenant_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
    operation_id="rotateWebhookSecret",
    tags=[TAG],
    responses={401: _ERRORS[401], **_ENDPOINT_NOT_FOUND},
)
async def rotate_webhook_secret(
    tenant_id: StorableStr, endpoint_id: uuid.UUID, session: DbSession, runtime: RuntimeDep
) -> WebhookSecretRotated:
    """A new signing secret, shown only in this response. Until
    `previous_secret_expires_at` (`PALISADE_WEBHOOK_SECRET_OVERLAP_HOURS`) deliveries carry
    a signature with each secret, so the receiver can switch at its own pace."""
    return await webhook_service.rotate_secret(
        session,
        tenant_id,
        endpoint_id,
        box=runtime.secret_box,
        overlap=timedelta(hours=runtime.settings.webhook_secret_overlap_hours),
    )


@router.get(
    "/{tenant_id}/webhook-deliveries",
    operation_id="listWebhookDeliveries",
    tags=[TAG],
    responses={
        **_ERRORS,
        400: {"description": "Not a `next_cursor` of a previous page (`invalid_cursor`)"},
    },
)
async def list_webhook_deliveries(
    tenant_id: StorableStr,
    session: DbSession,
    status: DeliveryStatus | None = None,
    event_type: EventType | None = None,
    session_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[StorableStr | None, Query(max_length=200)] = None,
) -> WebhookDeliveryPage:
    """The tenant's deliveries, newest first, a page at a time (pass `next_cursor` back)."""
    return await webhook_service.list_deliveries(
        session,
        tenant_id,
        DeliveryFilter(status=status, event_type=event_type, session_id=session_id),
        limit=limit,
        cursor=cursor,
    )


@router.post(
    "/{tenant_id}/webhook-deliveries/{delivery_id}/retry",
    operation_id="retryWebhookDelivery",
    tags=[TAG],
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        401: _ERRORS[401],
        404: {"description": "No such delivery (`webhook_delivery_not_found`)"},
        409: {"description": "Its endpoint is disabled (`webhook_endpoint_disabled`)"},
    },
)
async def retry_webhook_delivery(
    tenant_id: StorableStr, delivery_id: uuid.UUID, session: DbSession
) -> WebhookDeliveryPublic:
    """Send a delivery again now, whatever its status, with a new round of retries; the
    receiver gets the same `webhook-id`."""
    return await webhook_service.retry_delivery(session, tenant_id, delivery_id)
