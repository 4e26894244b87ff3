"""ORM models, one module per aggregate. Importing this package registers every table."""

from app.db.models.idempotency import IdempotencyRecord
from app.db.models.pool import PooledPal
from app.db.models.session import Session, SessionEvent
from app.db.models.sweep import SweepRun
from app.db.models.tenant import Profile, Tenant, TenantApiKey
from app.db.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "IdempotencyRecord",
    "PooledPal",
    "Profile",
    "Session",
    "SessionEvent",
    "SweepRun",
    "Tenant",
    "TenantApiKey",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
