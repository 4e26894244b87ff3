"""``python -m app.tavus.simulator``: serve the simulator without the Palisade CLI."""

from __future__ import annotations

import argparse

from app.tavus.simulator.config import SimulatorConfig
from app.tavus.simulator.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.tavus.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--max-concurrent-conversations", type=int, default=None)
    parser.add_argument("--api-key", action="append", dest="api_keys", default=None)
    parser.add_argument("--pal-get-shape", choices=["flat", "wrapped"], default="flat")
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
        public_base_url=args.public_base_url,
        webhook_timeout_s=args.webhook_timeout,
        replica_join_delay_s=args.replica_join_delay,
        access_log=args.access_log,
    )
    serve(args.host, args.port, config)


if __name__ == "__main__":
    main()
