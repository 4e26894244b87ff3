from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class SweepRun(Base):
    """What one orphan sweep saw and removed (dry runs are not recorded): the console's
    cleanup page reads the latest ones."""

    __tablename__ = "sweep_run"
    __table_args__ = (Index("ix_sweep_run_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    accounts: Mapped[int]
    pals_seen: Mapped[int]
    conversations_seen: Mapped[int]
    # Removals carried out (Tavus confirmed, or no longer knew the object) and failed.
    removed: Mapped[int]
    failed: Mapped[int]
    # Each removal: kind, object_id, session_id, decision, done, error. At most
    # ``MAX_RECORDED_ACTIONS`` of them (app.domain.sessions.sweep); the counts are whole.
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # One line per Tavus account the sweep could not read.
    errors: Mapped[list[str]] = mapped_column(JSONB)
