"""Encryption at rest for tenants' Tavus keys, with a key derived from ``SECRET_KEY``."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose; distinct purposes never share key material."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"palisade",
        info=purpose.encode(),
    ).derive(secret_key.encode())


class SecretBox:
    """Authenticated encryption (Fernet) of small secrets such as Tavus API keys."""

    def __init__(self, secret_key: str) -> None:
        key = derive_key(secret_key, "tavus-api-key-encryption")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise SecretBoxError(
                "stored secret cannot be decrypted: was SECRET_KEY changed?"
            ) from exc

    def __repr__(self) -> str:
        return "SecretBox(<redacted>)"


class SecretBoxError(RuntimeError):
    pass
