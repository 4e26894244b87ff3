from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Double, ForeignKey, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin, TimestampsMixin


class Tenant(TimestampsMixin, Base):
    """One customer product using Palisade."""

    __tablename__ = "tenant"
    __table_args__ = (
        CheckConstraint("max_concurrent_sessions >= 0", name="max_concurrent_sessions_nonneg"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    max_concurrent_sessions: Mapped[int]
    default_profile: Mapped[str | None] = mapped_column(String(64))
    # Fernet token of the tenant's own Tavus key; never leaves the process decrypted.
    tavus_api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The origins its browser frontends call from, exactly as browsers send them.
    cors_origins: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )


class Profile(TimestampsMixin, Base):
    """A named recipe inside a tenant: the strategy policy and its Tavus configuration."""

    __tablename__ = "profile"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]]


class TenantApiKey(CreatedAtMixin, Base):
    """A frontend's credential. Only a hash of the key is kept; the key is shown once.

    Its restrictions never change: a different one is a new key. ``start_tokens`` and
    ``start_tokens_at`` are the state of its start rate's token bucket, which only the
    admission gate writes (migration 0007).
    """

    __tablename__ = "tenant_api_key"
    __table_args__ = (
        CheckConstraint(
            "(start_rate_count IS NULL AND start_rate_seconds IS NULL AND start_burst IS NULL)"
            " OR (start_rate_count > 0 AND start_rate_seconds > 0 AND start_burst > 0)",
            name="start_rate",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    label: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # None: every scope, including any added later.
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # None: any of the tenant's profiles.
    profiles: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    start_rate_count: Mapped[int | None]
    start_rate_seconds: Mapped[int | None]
    start_burst: Mapped[int | None]
    start_tokens: Mapped[float | None] = mapped_column(Double)
    start_tokens_at: Mapped[datetime | None]
