"""``python -m app.tavus.simulator``: serve the simulator without the Palisade CLI."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from app.tavus.simulator.config import Prefill, SimulatorConfig
from app.tavus.simulator.server import serve


def _prefill(text: str) -> Prefill:
    try:
        return Prefill.model_validate_json(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.errors()[0]["msg"]) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.tavus.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--max-concurrent-conversations", type=int, default=None)
    parser.add_argument("--api-key", action="append", dest="api_keys", default=None)
    parser.add_argument("--pal-get-shape", choices=["flat", "wrapped"], default="flat")
    parser.add_argument("--conversation-get-shape", choices=["flat", "wrapped"], default="flat")
    parser.add_argument(
        "--list-order", choices=["newest_first", "oldest_first"], default="newest_first"
    )
    parser.add_argument("--list-max-limit", type=int, default=None)
    parser.add_argument("--list-page-ignored-after", type=int, default=None)
    parser.add_argument("--list-lag", type=float, default=0.0)
    parser.add_argument("--app-message-rate-limit", type=int, default=120)
    parser.add_argument("--app-message-rate-window", type=float, default=60.0)
    parser.add_argument("--prefill", type=_prefill, action="append", default=[])
    parser.add_argument("--public-base-url", default="https://tavus.daily.co")
    parser.add_argument("--webhook-timeout", type=float, default=5.0)
    parser.add_argument("--replica-join-delay", type=float, default=1.0)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        seed=args.seed,
        time_scale=args.time_scale,
        max_concurrent_conversations=args.max_concurrent_conversations,
        api_keys=set(args.api_keys) if args.api_keys else None,
        pal_get_shape=args.pal_get_shape,
        conversation_get_shape=args.conversation_get_shape,
        list_order=args.list_order,
        list_max_limit=args.list_max_limit,
        list_page_ignored_after=args.list_page_ignored_after,
        list_lag_s=args.list_lag,
        app_message_rate_limit=args.app_message_rate_limit,
        app_message_rate_window_s=args.app_message_rate_window,
        prefill=tuple(args.prefill),
        public_base_url=args.public_base_url,
        webhook_timeout_s=args.webhook_timeout,
        replica_join_delay_s=args.replica_join_delay,
        access_log=args.access_log,
    )
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
