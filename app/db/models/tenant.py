from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, Text
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
    """A frontend's credential. Only a hash of the key is kept; the key is shown once."""

    __tablename__ = "tenant_api_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    label: Mapped[str | None] = mapped_column(Text)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
