"""What a tenant API key may do: its scopes, the profiles it may start, its start rate.

A key with no restriction is a backend key: every scope (including any added later),
every profile, no rate. A browser frontend holds a key restricted to ``sessions:start``,
to the profiles its page offers, and to a start rate, so that a key read out of the page
can start little and read nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Scope = Literal["sessions:start", "sessions:read", "sessions:end", "sessions:interact"]
ALL_SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)

START: Final[Scope] = "sessions:start"
READ: Final[Scope] = "sessions:read"
END: Final[Scope] = "sessions:end"
INTERACT: Final[Scope] = "sessions:interact"

# Seconds per unit of a start rate ("10/minute").
RATE_UNITS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
START_RATE_PATTERN: Final = r"^[1-9][0-9]{0,5}/(second|minute|hour|day)$"


@dataclass(frozen=True)
class StartRate:
    """A token bucket: ``burst`` starts at once, refilled at ``count`` per ``seconds``."""

    count: int
    seconds: int
    burst: int

    @classmethod
    def parse(cls, rate: str, burst: int | None = None) -> StartRate:
        """``rate`` as ``START_RATE_PATTERN`` allows (checked by the API's schema). Without
        ``burst``, a full rate's worth of starts may come at once."""
        count, unit = rate.split("/")
        return cls(int(count), RATE_UNITS[unit], burst or int(count))

    def __str__(self) -> str:
        unit = next(name for name, seconds in RATE_UNITS.items() if seconds == self.seconds)
        return f"{self.count}/{unit}"


def effective_scopes(stored: list[str] | None) -> frozenset[str]:
    """A key's scopes as stored (None: every scope)."""
    return frozenset(ALL_SCOPES if stored is None else stored)
