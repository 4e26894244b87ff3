from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin
from app.errors import Rendered, json_bytes


class IdempotencyRecord(CreatedAtMixin, Base):
    """The first outcome of a request made with an ``Idempotency-Key``, kept for replay."""

    __tablename__ = "idempotency_record"
    __table_args__ = (Index("ix_idempotency_record_expires_at", "expires_at"),)

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Fingerprint of method, path and canonical body: the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: the key is claimed with the id of the session that admission creates
    # later in the same transaction.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("session.id", ondelete="SET NULL", deferrable=True, initially="DEFERRED")
    )
    response_status: Mapped[int | None]
    # The first answer as it was sent, replayed byte for byte with its headers.
    response_text: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None]
    # Answers stored before the text was: replayed from their JSON.
    response_body: Mapped[dict[str, Any] | None]
    # While the first request runs it holds the key until this time; a crashed holder's
    # lease expires so a retry can take over instead of seeing 409 forever.
    locked_until: Mapped[datetime | None]
    expires_at: Mapped[datetime]

    def answer(self) -> Rendered | None:
        """The stored first answer, or None while the first request has none yet."""
        if self.response_status is None:
            return None
        if self.response_text is not None:
            return Rendered(
                self.response_status,
                self.response_text.encode("utf-8"),
                dict(self.response_headers or {}),
            )
        return Rendered(self.response_status, json_bytes(self.response_body or {}))
