"""Warm pool: PALs created ahead of sessions, and the sweep's index on session PAL ids.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 01:40:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pooled_pal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("pal_name", sa.Text(), nullable=False),
        sa.Column("tavus_api_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pal_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_pooled_pal_tenant_id_tenant"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pooled_pal")),
    )
    op.create_index(
        "ix_pooled_pal_due",
        "pooled_pal",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_pooled_pal_key",
        "pooled_pal",
        ["tenant_id", "profile", "fingerprint"],
        unique=False,
    )
    op.create_index(
        "ix_session_ephemeral_pal_id",
        "session",
        ["pal_id"],
        unique=False,
        postgresql_where=sa.text("pal_ephemeral"),
    )


def downgrade() -> None:
    # PALs still pooled would stay on Tavus: the previous version's sweep does not know
    # the pool tag. Empty the pools first (remove `warm_pool` from the profiles and wait
    # until palisade_warm_pool_pals is 0).
    op.drop_index("ix_session_ephemeral_pal_id", table_name="session")
    op.drop_table("pooled_pal")
