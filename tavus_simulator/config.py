from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The face and prompt of the stock PAL, and of the PALs made without one.
STOCK_FACE_ID = "r9fa0878977a"
STOCK_SYSTEM_PROMPT = "You are a friendly, helpful assistant."

GetShape = Literal["flat", "wrapped"]
ListOrder = Literal["newest_first", "oldest_first"]

# Fields the control API may change while the simulator runs; the rest shape the
# app at start-up (log size, stock PALs, prefilled accounts) or are fixed for
# replay (seed).
RUNTIME_FIELDS = frozenset(
    {
        "time_scale",
        "max_concurrent_conversations",
        "api_keys",
        "pal_get_shape",
        "conversation_get_shape",
        "public_base_url",
        "webhook_timeout_s",
        "replica_join_delay_s",
        "emit_pal_joined",
        "list_order",
        "list_max_limit",
        "list_page_ignored_after",
        "list_lag_s",
        "app_message_max_bytes",
        "app_message_rate_limit",
        "app_message_rate_window_s",
    }
)


class Prefill(BaseModel):
    """Objects an account made before the simulator started watching: ``conversations``
    (the newest ``active_conversations`` of them still running) and ``pals``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = Field(min_length=1)
    conversations: int = Field(default=0, ge=0, le=1_000_000)
    active_conversations: int = Field(default=0, ge=0)
    pals: int = Field(default=0, ge=0, le=1_000_000)
    spacing_s: float = Field(default=60.0, gt=0)
    """Simulated seconds between two consecutive prefilled objects."""

    @model_validator(mode="after")
    def _active_are_among_the_conversations(self) -> Prefill:
        if self.active_conversations > self.conversations:
            raise ValueError("active_conversations cannot exceed conversations")
        return self


class SeededPal(BaseModel):
    """A user PAL an account holds from the start, under an id chosen beforehand (so that
    documentation and configuration files naming it work against a fresh simulator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = Field(min_length=1)
    pal_id: str = Field(pattern=r"^p[0-9a-f]{11}$")
    pal_name: str | None = None
    system_prompt: str = Field(default=STOCK_SYSTEM_PROMPT, min_length=1)
    default_face_id: str = Field(default=STOCK_FACE_ID, min_length=1)


class SimulatorConfig(BaseModel):
    """Settings of one Tavus simulator instance.

    Durations ending in ``_s`` are seconds. ``replica_join_delay_s``, ``list_lag_s``
    and ``app_message_rate_window_s`` are measured on the simulated clock;
    ``webhook_timeout_s`` is real time.
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
    pal_get_shape: GetShape = "flat"
    """GET /v2/pals/{id}: a flat object, or ``{"data": [pal]}`` when ``wrapped``."""
    conversation_get_shape: GetShape = "flat"
    """GET /v2/conversations/{id}: a flat object, or ``{"data": [conversation]}``."""
    public_base_url: str = "https://tavus.daily.co"
    """Prefix of ``conversation_url``."""
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    """Real-time timeout of one webhook POST."""
    replica_join_delay_s: float | None = Field(default=1.0, ge=0)
    """Simulated delay before the face joins a new conversation; None = never by itself."""
    emit_pal_joined: bool = False
    """Also send ``system.pal_joined`` next to ``system.replica_joined``."""
    list_order: ListOrder = "newest_first"
    """Order of GET /v2/pals and GET /v2/conversations."""
    list_max_limit: int | None = Field(default=None, ge=1)
    """Most items one list page holds, whatever ``limit`` asked; None is no cap."""
    list_page_ignored_after: int | None = Field(default=None, ge=0)
    """List pages above this number answer page 1; 0 ignores ``page``; None honours it."""
    list_lag_s: float = Field(default=0.0, ge=0)
    """How long creations, deletions and endings take to reach the listings."""
    app_message_max_bytes: int = Field(default=65_536, ge=1)
    """Largest send-app-message body accepted."""
    app_message_rate_limit: int | None = Field(default=120, ge=1)
    """send-app-message requests per conversation and window; None is no limit."""
    app_message_rate_window_s: float = Field(default=60.0, gt=0)
    """Length of one send-app-message rate window."""
    stock_pal_ids: tuple[str, ...] = ("pb87e71797da",)
    """System PALs every account sees (``pal_type=system``); they cannot be deleted."""
    prefill: tuple[Prefill, ...] = ()
    """Accounts filled with earlier objects at start-up and after every reset."""
    pals: tuple[SeededPal, ...] = ()
    """User PALs with chosen ids, made at start-up (unless already there) and after every
    reset."""
    state_file: Path | None = None
    """Where the accounts, PALs and conversations are kept across restarts; None keeps
    them in memory only."""
    call_log_limit: int = Field(default=100_000, ge=1)
    """Most recent calls kept in the call log."""
    access_log: bool = False
    """uvicorn access log when served over sockets."""
