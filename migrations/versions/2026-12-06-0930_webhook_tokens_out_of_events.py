"""Webhook tokens out of stored events: the callback URL Tavus echoes loses its token.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00.000000+00:00

Tavus echoes each conversation's ``callback_url`` in its events (``webhook_url``), and
Palisade stored events raw, token and all; whoever could read the event log could then
post events for the session. Palisade now takes the token out before storing an event
(``app/domain/sessions/webhooks.py``). This revision does the same to the events already
stored: in every string of every payload, each URL query loses its ``token`` parameters.

The edit is made on the payload's text as PostgreSQL prints it, so numbers and
everything else are written back exactly as they were. Nothing can be put back on
downgrade: the tokens are gone for good, as intended.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of the rule the application applies, kept here so that this revision never
# changes with the application's code. On JSON text, the query also stops at a backslash
# (an escape), so that an edit never splits one.
_QUERY: Final = re.compile(r"\?([^#\s\"'<>\\]*)")
_BATCH: Final = 500

_WITH_TOKENS = sa.text(
    "SELECT id, payload::text FROM session_event"
    " WHERE id > :after AND strpos(payload::text, 'token=') > 0"
    " ORDER BY id LIMIT :batch"
)
_REWRITE = sa.text("UPDATE session_event SET payload = CAST(:payload AS jsonb) WHERE id = :id")


def _drop_token_parameters(query: re.Match[str]) -> str:
    parameters = query.group(1).split("&")
    kept = [p for p in parameters if p.partition("=")[0] != "token"]
    if len(kept) == len(parameters):
        return query.group(0)
    return f"?{'&'.join(kept)}" if kept else ""


def upgrade() -> None:
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(_WITH_TOKENS, {"after": after, "batch": _BATCH}).all()
        if not rows:
            return
        for event_id, payload in rows:
            cleaned = _QUERY.sub(_drop_token_parameters, payload)
            if cleaned != payload:
                connection.execute(_REWRITE, {"payload": cleaned, "id": event_id})
        after = rows[-1][0]


def downgrade() -> None:
    pass
