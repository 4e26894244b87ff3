from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PalGetShape = Literal["flat", "wrapped"]

# Fields the control API may change while the simulator runs; the rest shape the
# app at start-up (log size, stock PALs) or are fixed for replay (seed).
RUNTIME_FIELDS = frozenset(
    {
        "time_scale",
        "max_concurrent_conversations",
        "api_keys",
        "pal_get_shape",
        "public_base_url",
        "webhook_timeout_s",
        "replica_join_delay_s",
        "emit_pal_joined",
    }
)


class SimulatorConfig(BaseModel):
    """Settings of one Tavus simulator instance.

    Durations ending in ``_s`` are seconds. ``replica_join_delay_s`` is measured on
    the simulated clock; ``webhook_timeout_s`` is real time.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int | None = None
    """Seed of the one random generator behind IDs and faults; None draws one (see state)."""
    time_scale: float = Field(default=1.0, gt=0)
    """Simulated seconds per real second: 600 makes a 10-minute call last 1 s."""
    max_concurrent_conversations: int | None = Field(default=None, ge=0)
    """Concurrent-conversation slots per account (API key); None is unlimited."""
    api_keys: set[str] | None = None
    """Accepted ``x-api-key`` values; None accepts any non-empty key."""
    pal_get_shape: PalGetShape = "flat"
    """GET /v2/pals/{id}: a flat object, or ``{"data": [pal]}`` when ``wrapped``."""
    public_base_url: str = "https://tavus.daily.co"
    """Prefix of ``conversation_url``."""
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    """Real-time timeout of one webhook POST."""
    replica_join_delay_s: float | None = Field(default=1.0, ge=0)
    """Simulated delay before the face joins a new conversation; None = never by itself."""
    emit_pal_joined: bool = False
    """Also send ``system.pal_joined`` next to ``system.replica_joined``."""
    stock_pal_ids: tuple[str, ...] = ("pb87e71797da",)
    """System PALs every account sees (``pal_type=system``); they cannot be deleted."""
    call_log_limit: int = Field(default=100_000, ge=1)
    """Most recent calls kept in the call log."""
    access_log: bool = False
    """uvicorn access log when served over sockets."""
