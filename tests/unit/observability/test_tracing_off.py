"""With no OTLP endpoint, tracing loads nothing beyond OpenTelemetry's API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from app.main import create_app
from app.settings import Settings
create_app(Settings.model_validate({"PALISADE_MODE": "dev"}))
loaded = sorted(
    name for name in sys.modules
    if name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation",
                        "opentelemetry.exporter", "wrapt"))
)
print(",".join(loaded))
"""


def test_an_app_without_an_endpoint_imports_no_sdk_or_instrumentation(tmp_path: Path) -> None:
    # In an empty directory: no .env may name an endpoint.
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert probe.stdout.strip() == ""
