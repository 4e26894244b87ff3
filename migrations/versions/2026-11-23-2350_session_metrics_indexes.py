"""Session metrics indexes: recently ended sessions by state, and the cleanup backlog.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:50:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_session_ended_recent",
        "session",
        ["ended_at", "state"],
        unique=False,
        postgresql_where=sa.text("state IN ('ended', 'failed')"),
    )
    op.create_index(
        "ix_session_cleanup_backlog",
        "session",
        ["ended_at"],
        unique=False,
        postgresql_where=sa.text("cleanup = 'pending' AND state IN ('ended', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_session_cleanup_backlog", table_name="session")
    op.drop_index("ix_session_ended_recent", table_name="session")
