"""The simulator's command line: ``python -m tavus_simulator`` (and ``palisade simulator``,
which hands its arguments here)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tavus_simulator.config import Prefill, SeededPal, SimulatorConfig
from tavus_simulator.server import serve

DEFAULT_PORT = 8100
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

M = TypeVar("M", bound=BaseModel)


def _json_model(model: type[M]) -> Callable[[str], M]:
    def parse(text: str) -> M:
        try:
            return model.model_validate_json(text)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(exc.errors()[0]["msg"]) from None

    parse.__name__ = model.__name__
    return parse


def parser(prog: str = "python -m tavus_simulator") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="The standalone, fault-injectable Tavus simulator (docs/simulator.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind")
    p.add_argument("--seed", type=int, default=None, help="seed for ids and faults (replayable)")
    p.add_argument(
        "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
    )
    p.add_argument(
        "--max-concurrent-conversations",
        type=int,
        default=None,
        help="account concurrency slots (default unlimited)",
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        default=None,
        help="accepted x-api-key (repeatable; default any)",
    )
    p.add_argument("--pal-get-shape", choices=["flat", "wrapped"], default="flat")
    p.add_argument("--conversation-get-shape", choices=["flat", "wrapped"], default="flat")
    p.add_argument("--list-order", choices=["newest_first", "oldest_first"], default="newest_first")
    p.add_argument("--list-max-limit", type=int, default=None, help="most items a list page holds")
    p.add_argument(
        "--list-page-ignored-after",
        type=int,
        default=None,
        help="list pages above this answer page 1 (0: always)",
    )
    p.add_argument(
        "--list-lag",
        type=float,
        default=0.0,
        help="simulated seconds before a change reaches the lists",
    )
    p.add_argument(
        "--app-message-rate-limit",
        type=int,
        default=120,
        help="send-app-message requests per conversation and window",
    )
    p.add_argument(
        "--app-message-rate-window",
        type=float,
        default=60.0,
        help="simulated seconds of one send-app-message window",
    )
    p.add_argument(
        "--prefill",
        type=_json_model(Prefill),
        action="append",
        default=[],
        help='earlier objects for an account, as JSON: {"api_key": "k", "conversations": 5000, '
        '"active_conversations": 2, "pals": 50} (repeatable)',
    )
    p.add_argument(
        "--pal",
        type=_json_model(SeededPal),
        action="append",
        dest="pals",
        default=[],
        help='a user PAL with a chosen id, as JSON: {"api_key": "k", "pal_id": "pcb7a34da5fe", '
        '"pal_name": "Coach"} (repeatable)',
    )
    p.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="keep the accounts, PALs and conversations in this JSON file across restarts "
        "(default: in memory only)",
    )
    p.add_argument(
        "--public-base-url", default="https://tavus.daily.co", help="prefix of conversation_url"
    )
    p.add_argument(
        "--webhook-timeout", type=float, default=5.0, help="real seconds one webhook POST may take"
    )
    p.add_argument(
        "--replica-join-delay",
        type=float,
        default=1.0,
        help="simulated seconds before the face joins",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    p.add_argument(
        "--log-config",
        default=None,
        help="a JSON file of logging.config settings, in place of uvicorn's own",
    )
    return p


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
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
        pals=tuple(args.pals),
        state_file=args.state_file,
        public_base_url=args.public_base_url,
        webhook_timeout_s=args.webhook_timeout,
        replica_join_delay_s=args.replica_join_delay,
        access_log=args.access_log,
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m tavus_simulator") -> None:
    """Serve until SIGTERM or Ctrl-C, then exit 0; a bad option exits 2 with one line."""
    p = parser(prog)
    args = p.parse_args(argv)
    try:
        config = config_from(args)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        p.error(f"invalid simulator option {where}: {error['msg']}")
    serve(args.host, args.port, config, log_level=args.log_level, log_config=args.log_config)
