"""What the operator console reads: indexes for its pages, and a record of each sweep.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:30:00+00:00

The console lists every tenant's sessions newest first (``ix_session_created``; the
failed ones, a small share, from ``ix_session_failed_created``), finds
them by ``external_ref`` across tenants (``ix_session_external_ref``), and shows open
shutdown claims and recent unconfirmed ones from partial indexes that hold only those.
``sweep_run`` keeps what each orphan sweep saw and removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_session_created", "session", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_session_failed_created",
        "session",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("state = 'failed'"),
    )
    op.create_index(
        "ix_session_external_ref",
        "session",
        ["external_ref", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("external_ref IS NOT NULL"),
    )
    op.create_index(
        "ix_session_shutdown_claimed",
        "session",
        ["shutdown_claimed_at"],
        unique=False,
        postgresql_where=sa.text("shutdown_claimed_at IS NOT NULL"),
    )
    op.create_index(
        "ix_session_event_shutdown_unconfirmed",
        "session_event",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("type = 'shutdown.unconfirmed'"),
    )
    op.create_table(
        "sweep_run",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("pals_seen", sa.Integer(), nullable=False),
        sa.Column("conversations_seen", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("actions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_run")),
    )
    op.create_index("ix_sweep_run_started_at", "sweep_run", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sweep_run_started_at", table_name="sweep_run")
    op.drop_table("sweep_run")
    op.drop_index("ix_session_event_shutdown_unconfirmed", table_name="session_event")
    op.drop_index("ix_session_shutdown_claimed", table_name="session")
    op.drop_index("ix_session_external_ref", table_name="session")
    op.drop_index("ix_session_failed_created", table_name="session")
    op.drop_index("ix_session_created", table_name="session")
