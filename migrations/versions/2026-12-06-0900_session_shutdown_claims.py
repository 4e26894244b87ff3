"""Session shutdown claims and early events.

A shutdown webhook is a claim Palisade confirms with Tavus before it ends a session
(``shutdown_claimed_at``); webhooks that arrive before the conversation id is stored are
applied once it is (``early_events``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "session", sa.Column("shutdown_claimed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "session",
        sa.Column("early_events", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("session", "early_events")
    op.drop_column("session", "shutdown_claimed_at")
