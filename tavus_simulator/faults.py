"""Fault rules the simulator applies per operation, and the table that draws them.

A rule fires on a call with probability ``rate``; ``times`` bounds how often it
fires before it is removed (``rate=1, times=N`` means "the next N calls"). All
draws come from the simulator's single seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

Operation = Literal[
    "pal.create",
    "pal.get",
    "pal.list",
    "pal.delete",
    "conversation.create",
    "conversation.get",
    "conversation.list",
    "conversation.end",
    "conversation.delete",
    "conversation.send_app_message",
    "webhook",
]
API_OPERATIONS: tuple[str, ...] = (
    "pal.create",
    "pal.get",
    "pal.list",
    "pal.delete",
    "conversation.create",
    "conversation.get",
    "conversation.list",
    "conversation.end",
    "conversation.delete",
    "conversation.send_app_message",
)
OPERATIONS: tuple[str, ...] = (*API_OPERATIONS, "webhook")

ErrorPreset = Literal[
    "server_error",
    "bad_gateway",
    "unavailable",
    "gateway_timeout",
    "rate_limited",
    "concurrency_limit",
    "out_of_credits",
]

_PRESETS: dict[str, tuple[int, dict[str, str]]] = {
    "server_error": (500, {"message": "Internal Server Error"}),
    "bad_gateway": (502, {"message": "Bad Gateway"}),
    "unavailable": (503, {"message": "Service Unavailable"}),
    "gateway_timeout": (504, {"message": "Gateway Timeout"}),
    "rate_limited": (429, {"message": "Too Many Requests"}),
    "concurrency_limit": (400, {"message": "User has reached maximum concurrent conversations"}),
    "out_of_credits": (402, {"message": "The user is out of conversational credits"}),
}
# send-app-message answers errors as {"error": …}, with texts of its own for the
# statuses its page documents (tavus-api.md §5).
_ERROR_STYLE_OPERATIONS = frozenset({"conversation.send_app_message"})
_ERROR_STYLE_TEXTS: dict[str, str] = {
    "rate_limited": "Too many requests",
    "bad_gateway": "The app message could not be delivered. Please retry.",
    "gateway_timeout": "The app message may have been delivered; check before retrying.",
}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    times: int | None = Field(default=None, ge=1)


class _Distribution(BaseModel):
    """A delay in real milliseconds: fixed ``ms``, uniform ``low_ms..high_ms``, or
    lognormal with median ``p50_ms`` and shape ``sigma``; ``max_ms`` caps any."""

    distribution: Literal["fixed", "uniform", "lognormal"] = "fixed"
    ms: float = Field(default=0.0, ge=0.0)
    low_ms: float = Field(default=0.0, ge=0.0)
    high_ms: float = Field(default=0.0, ge=0.0)
    p50_ms: float = Field(default=0.0, ge=0.0)
    sigma: float = Field(default=0.5, ge=0.0)
    max_ms: float | None = Field(default=None, ge=0.0)

    def sample_ms(self, rng: random.Random) -> float:
        if self.distribution == "fixed":
            value = self.ms
        elif self.distribution == "uniform":
            value = rng.uniform(self.low_ms, max(self.high_ms, self.low_ms))
        else:
            # The median of lognormal(mu, sigma) is exp(mu).
            value = rng.lognormvariate(math.log(max(self.p50_ms, 1e-9)), self.sigma)
        if self.max_ms is not None:
            value = min(value, self.max_ms)
        return value


class ErrorFault(_Rule):
    """Answer with ``status``/``body``/``headers`` instead of the operation's answer.

    ``preset`` fills in Tavus-like values; ``retry_after_s`` adds ``Retry-After``.
    The operation does not run, unless ``apply_before_error``: then it runs (its
    side effects happen) and its answer is replaced, like a gateway timing out on
    a request its upstream completed.
    """

    kind: Literal["error"] = "error"
    preset: ErrorPreset | None = None
    status: int = Field(default=0, ge=0, le=599)
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    retry_after_s: float | None = Field(default=None, ge=0)
    apply_before_error: bool = False

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            status, _ = _PRESETS[data["preset"]]
            data = {**data}
            data.setdefault("status", status)
            if data["preset"] == "rate_limited":
                data.setdefault("retry_after_s", 1.0)
        return data

    @model_validator(mode="after")
    def _check_status(self) -> ErrorFault:
        if self.status < 100:
            raise ValueError("an error fault needs a status (100-599) or a preset")
        if self.preset is not None and "body" not in self.model_fields_set:
            # Left out of the fields set, so a table can still fit it to its operation.
            object.__setattr__(self, "body", _PRESETS[self.preset][1])
        return self

    def for_operation(self, operation: str) -> ErrorFault:
        """This rule with its preset body in the style of ``operation``."""
        if (
            self.preset is None
            or "body" in self.model_fields_set
            or operation not in _ERROR_STYLE_OPERATIONS
        ):
            return self
        text = _ERROR_STYLE_TEXTS.get(self.preset) or _PRESETS[self.preset][1]["message"]
        return self.model_copy(update={"body": {"error": text}})

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after_s is not None:
            headers.setdefault("Retry-After", f"{self.retry_after_s:g}")
        return headers


class LatencyFault(_Rule, _Distribution):
    """Delay the call (real time) before it runs."""

    kind: Literal["latency"] = "latency"


class HangFault(_Rule):
    """Hold the request ``seconds`` (real time, or until the client goes away),
    then cut the connection without a usable response. The operation never runs."""

    kind: Literal["hang"] = "hang"
    seconds: float = Field(default=30.0, ge=0.0)


class SucceedThenDropFault(_Rule):
    """Run the operation (its side effects happen), wait ``hold_s`` real seconds,
    then cut the connection instead of sending the response."""

    kind: Literal["succeed_then_drop"] = "succeed_then_drop"
    hold_s: float = Field(default=0.0, ge=0.0)


class DropFault(_Rule):
    """Webhook: never deliver the event."""

    kind: Literal["drop"] = "drop"


class DuplicateFault(_Rule):
    """Webhook: deliver the event, then ``copies`` identical extra times."""

    kind: Literal["duplicate"] = "duplicate"
    copies: int = Field(default=1, ge=1)


class DelayFault(_Rule, _Distribution):
    """Webhook: deliver after a real-time delay; later events may overtake it."""

    kind: Literal["delay"] = "delay"


class ReorderFault(_Rule):
    """Webhook: hold the event until the conversation's next event was delivered
    (or ``max_hold_ms`` passed), so the two arrive swapped."""

    kind: Literal["reorder"] = "reorder"
    max_hold_ms: float = Field(default=1000.0, ge=0.0)


ApiFault: TypeAlias = Annotated[
    ErrorFault | LatencyFault | HangFault | SucceedThenDropFault, Field(discriminator="kind")
]
WebhookFault: TypeAlias = Annotated[
    DropFault | DuplicateFault | DelayFault | ReorderFault, Field(discriminator="kind")
]
Fault: TypeAlias = Annotated[
    ErrorFault
    | LatencyFault
    | HangFault
    | SucceedThenDropFault
    | DropFault
    | DuplicateFault
    | DelayFault
    | ReorderFault,
    Field(discriminator="kind"),
]
FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)
_API_KINDS = frozenset({"error", "latency", "hang", "succeed_then_drop"})
_WEBHOOK_KINDS = frozenset({"drop", "duplicate", "delay", "reorder"})
# Outcome rules replace the normal result, so at most one applies per call.
_OUTCOME_KINDS = frozenset({"error", "hang", "succeed_then_drop", "drop"})


def parse_fault(data: Any) -> Fault:
    return FAULT_ADAPTER.validate_python(data)


@dataclass
class ApiPlan:
    latency_ms: float = 0.0
    outcome: ErrorFault | HangFault | SucceedThenDropFault | None = None
    labels: list[str] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        return "+".join(self.labels) if self.labels else None


@dataclass
class WebhookPlan:
    drop: bool = False
    copies: int = 0
    delay_ms: float | None = None
    reorder: ReorderFault | None = None
    labels: list[str] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        return "+".join(self.labels) if self.labels else None


@dataclass
class _Armed:
    rule: Fault
    remaining: int | None
    fired: int = 0


class FaultTable:
    """Per-operation rule lists, evaluated in insertion order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._rules: dict[str, list[_Armed]] = {}

    def add(self, operation: str, rule: Fault) -> None:
        _check(operation, rule)
        rule = _fit(operation, rule)
        self._rules.setdefault(operation, []).append(_Armed(rule, rule.times))

    def set(self, operation: str, rules: list[Fault]) -> None:
        for rule in rules:
            _check(operation, rule)
        self._rules[operation] = [_Armed(_fit(operation, rule), rule.times) for rule in rules]

    def clear(self, operation: str | None = None) -> None:
        if operation is None:
            self._rules.clear()
        else:
            _check_operation(operation)
            self._rules.pop(operation, None)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {
            operation: [
                {**armed.rule.model_dump(), "remaining": armed.remaining, "fired": armed.fired}
                for armed in armed_rules
            ]
            for operation, armed_rules in self._rules.items()
            if armed_rules
        }

    def draw_api(self, operation: str) -> ApiPlan | None:
        fired = self._draw(operation)
        if not fired:
            return None
        plan = ApiPlan()
        for rule in fired:
            if isinstance(rule, LatencyFault):
                sample = rule.sample_ms(self.rng)
                plan.latency_ms += sample
                plan.labels.append(f"latency:{sample:.0f}ms")
            elif isinstance(rule, ErrorFault):
                plan.outcome = rule
                plan.labels.append(f"error:{rule.status}")
            elif isinstance(rule, HangFault | SucceedThenDropFault):
                plan.outcome = rule
                plan.labels.append(rule.kind)
        return plan

    def draw_webhook(self) -> WebhookPlan | None:
        fired = self._draw("webhook")
        if not fired:
            return None
        plan = WebhookPlan()
        for rule in fired:
            if isinstance(rule, DropFault):
                plan.drop = True
                plan.labels.append("drop")
            elif isinstance(rule, DuplicateFault):
                plan.copies += rule.copies
                plan.labels.append(f"duplicate:{rule.copies}")
            elif isinstance(rule, DelayFault):
                sample = rule.sample_ms(self.rng)
                plan.delay_ms = (plan.delay_ms or 0.0) + sample
                plan.labels.append(f"delay:{sample:.0f}ms")
            elif isinstance(rule, ReorderFault):
                plan.reorder = rule
                plan.labels.append("reorder")
        return plan

    def _draw(self, operation: str) -> list[Fault]:
        armed_rules = self._rules.get(operation)
        if not armed_rules:
            return []
        fired: list[Fault] = []
        outcome_taken = False
        for armed in armed_rules:
            rule = armed.rule
            is_outcome = rule.kind in _OUTCOME_KINDS
            if is_outcome and outcome_taken:
                continue
            # Only partial rates consume randomness, so adding a deterministic rule
            # does not shift the random stream of the others.
            if rule.rate <= 0.0 or (rule.rate < 1.0 and self.rng.random() >= rule.rate):
                continue
            fired.append(rule)
            outcome_taken = outcome_taken or is_outcome
            armed.fired += 1
            if armed.remaining is not None:
                armed.remaining -= 1
        self._rules[operation] = [a for a in armed_rules if a.remaining is None or a.remaining > 0]
        return fired


def _check_operation(operation: str) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {OPERATIONS}")


def _fit(operation: str, rule: Fault) -> Fault:
    return rule.for_operation(operation) if isinstance(rule, ErrorFault) else rule


def _check(operation: str, rule: Fault) -> None:
    _check_operation(operation)
    allowed = _WEBHOOK_KINDS if operation == "webhook" else _API_KINDS
    if rule.kind not in allowed:
        raise ValueError(f"fault kind {rule.kind!r} does not apply to {operation!r}")
