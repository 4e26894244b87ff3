"""How fast Palisade acknowledges Tavus webhooks, spread over its processes."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.context import Bench
from bench.loadgen import WebhookResult, WebhookSpec
from bench.report import progress
from bench.stats import Summary, summarise
from bench.workload import Workload, callback_urls, start_sessions

# Every tenth event is an exact resend, which Palisade must answer `duplicate`.
DUPLICATE_EVERY = 10


@dataclass
class WebhookFigures:
    sessions: int
    summary: Summary
    duplicates_answered: int
    palisade_cpu_ms_per_event: float
    first_error: str | None
    latencies_ms: list[float] = field(default_factory=list)


def run(bench: Bench, reuse: Workload) -> WebhookFigures:
    stack, sizes = bench.stack, bench.options.sizes
    stack.retire_live_sessions()
    # Live reuse sessions to send events to; each one's callback URL names the process
    # that started it, so the events spread over the processes as the starts did.
    sessions = start_sessions(stack.palisade_urls, reuse.palisade[0], sizes.webhook_sessions)
    conversation_ids = [s["conversation_id"] for s in sessions]
    targets = tuple(zip(callback_urls(stack, conversation_ids), conversation_ids, strict=True))

    def spec(events: int, first: int) -> WebhookSpec:
        return WebhookSpec(
            targets=targets,
            events=events,
            clients=bench.options.clients,
            duplicate_every=DUPLICATE_EVERY,
            max_seconds=sizes.webhook_seconds,
            first=first,
        )

    bench.loader.webhooks(spec(sizes.webhook_warmup, 0))
    cpu_before = bench.monitor.cpu_seconds("palisade")
    result: WebhookResult = bench.loader.webhooks(spec(sizes.webhook_events, sizes.webhook_warmup))
    cpu = bench.monitor.cpu_seconds("palisade") - cpu_before
    answered = len(result.latencies_ms) + result.errors
    figures = WebhookFigures(
        sessions=len(sessions),
        summary=summarise(result.latencies_ms, errors=result.errors, elapsed_s=result.elapsed_s),
        duplicates_answered=result.duplicates_answered,
        palisade_cpu_ms_per_event=1000.0 * cpu / answered if answered else 0.0,
        first_error=result.first_error,
        latencies_ms=result.latencies_ms,
    )
    progress(
        f"  webhooks: {figures.summary.count} acknowledged ({result.duplicates_answered} as "
        f"duplicates), {result.errors} errors in {result.elapsed_s:.1f} s, "
        f"p50 {figures.summary.p50:.1f} ms"
    )
    stack.retire_live_sessions()
    return figures
