"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the
``standardwebhooks`` library receivers verify with, so both sides sign the same bytes:
``{webhook-id}.{webhook-timestamp}.{body}``."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
# 32 random bytes: as long as the HMAC-SHA256 key can use. Secrets brought from
# elsewhere (`tenant apply`) are taken from 24 bytes (Svix's) to 64.
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_secret(value: str) -> bool:
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (ValueError, binascii.Error):
        return False
    return MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES


def headers(
    message_id: str, timestamp: datetime, body: bytes, signing_secrets: Sequence[str]
) -> dict[str, str]:
    """The three headers of one attempt. Several secrets (a rotation's overlap) give
    several signatures, space-separated: a receiver accepts any one it can verify."""
    signatures = " ".join(
        Webhook(secret).sign(message_id, timestamp, body) for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
