"""Signatures receivers verify with the standardwebhooks library, not Palisade's code."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.domain.webhooks.signing import headers, is_secret, new_secret


def test_a_new_secret_is_a_whsec_of_32_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert is_secret(secret)


@pytest.mark.parametrize(
    "value",
    ["", "whsec_", "whsec_!!!!", "sk_" + "A" * 40, "whsec_" + base64.b64encode(b"x" * 8).decode()],
)
def test_what_is_not_a_secret(value: str) -> None:
    assert not is_secret(value)


def test_both_secrets_of_a_rotation_verify_the_exact_bytes() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"session.ended","data":{"note":"caf\xc3\xa9"}}'
    sent = headers("evt_1", datetime.now(UTC), body, [new, old])
    assert len(sent["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, sent)["type"] == "session.ended"
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, sent)
