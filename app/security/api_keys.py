"""Tenant API keys: high entropy, a recognisable prefix, only a hash stored.

A key is 256 random bits, so a plain SHA-256 is a sufficient one-way hash (there is
nothing to brute-force) and lets a request find its key by an indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "psk_"
# How much of a key is kept in clear, to recognise it in listings and logs.
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6


@dataclass(frozen=True)
class NewApiKey:
    id: str
    key: str
    display_prefix: str
    key_hash: bytes


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def generate() -> NewApiKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(
        id="key_" + secrets.token_hex(8),
        key=key,
        display_prefix=key[:DISPLAY_PREFIX_LENGTH],
        key_hash=hash_key(key),
    )


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 20 <= len(value) <= 128
