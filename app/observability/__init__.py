"""Metrics (Prometheus) and structured logs (structlog): what operators see of Palisade."""
