"""Metric labels come from fixed sets, whatever callers send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from app.observability import metrics
from app.tavus.operations import Operation


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_tavus_operation_has_its_label() -> None:
    assert set(metrics.TAVUS_OPERATIONS) == set(Operation)
    assert len(set(metrics.TAVUS_OPERATIONS.values())) == len(Operation)


def test_unknown_http_methods_share_one_label() -> None:
    name = "palisade_http_request_duration_seconds_count"
    labels = {"method": "other", "route": "unmatched", "status": "400"}
    before = sample(name, **labels)
    metrics.observe_http_request("BREW", "unmatched", 400, 0.01)
    assert sample(name, **labels) == before + 1
    assert sample(name, method="BREW", route="unmatched", status="400") == 0


def test_unknown_webhook_event_types_share_one_label() -> None:
    name = "palisade_webhook_lag_seconds_count"
    before = sample(name, event_type="other")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    metrics.webhook_received("conversation.utterance.x-custom", an_hour_ago)
    assert sample(name, event_type="other") == before + 1
    lag = sample("palisade_webhook_lag_seconds_sum", event_type="other")
    assert lag >= 3600


def test_an_event_without_a_timestamp_is_not_timed() -> None:
    name = "palisade_webhook_lag_seconds_count"
    before = sample(name, event_type="system.shutdown")
    metrics.webhook_received("system.shutdown", None)
    assert sample(name, event_type="system.shutdown") == before
