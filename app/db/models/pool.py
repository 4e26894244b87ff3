from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampsMixin


class PooledPal(TimestampsMixin, Base):
    """A warm-pool PAL, from the moment its create is decided until a session takes it
    (the row is then deleted in the session's transaction) or Tavus confirms its
    deletion. The row exists before the create is sent: its ``pal_name`` tag is the
    recovery point."""

    __tablename__ = "pooled_pal"
    __table_args__ = (
        # A start looks up one key's ready PALs; the refill counts a tenant's rows.
        Index("ix_pooled_pal_key", "tenant_id", "profile", "fingerprint"),
        # The pool's due queue (expiries, recoveries, deletions), like the sessions'.
        Index(
            "ix_pooled_pal_due",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )

    # The uuid of the name tag: `<base> (palisade pool <id>)`.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="RESTRICT"))
    profile: Mapped[str] = mapped_column(String(64))
    # The declared variant, or NULL for the template itself.
    variant: Mapped[str | None] = mapped_column(String(64))
    # app/domain/pool/fingerprint.py: the exact PAL body, without the name tag.
    fingerprint: Mapped[str] = mapped_column(String(64))
    pal_name: Mapped[str] = mapped_column(Text)
    # The Tavus account the PAL lives on: the tenant's own key when it was created
    # (Fernet token, copied), NULL for the global key. A tenant whose key changes gets
    # no PAL of the old account, and the old ones are still deleted with their own key.
    tavus_api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # creating → ready → (taken by a session: row deleted) | deleting → (row deleted)
    state: Mapped[str] = mapped_column(String(16))
    pal_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime]

    # Background work, as on sessions: when to look at the row next, and who holds it.
    next_check_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
