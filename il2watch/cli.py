"""The ``il2watch`` command line. Each subcommand is a short function; ``--help`` shows their docstrings."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from il2watch import __version__
from il2watch.config import SECRET_ENV, ConfigError, Settings, load_settings, warn_if_anonymous
from il2watch.logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _secrets(settings: Settings) -> list[str]:
    return [settings.ncbi_api_key, settings.slack_bot_token, settings.slack_app_token,
            settings.slack_signing_secret, settings.summariser_key]


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Run one cycle (discover, store, deliver) and exit; without SLACK_BOT_TOKEN, print the posts."""
    from il2watch.service import PollError, poll_once

    try:
        report = poll_once(settings, out=print)
    except PollError as error:
        print(f"il2watch: poll failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(report.line())
    return EXIT_OK


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "poll": cmd_poll,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="il2watch", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"il2watch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, function in COMMANDS.items():
        doc = (function.__doc__ or "").strip()
        sub.add_parser(name, help=doc.split("\n")[0], description=doc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(level=settings.log_level, fmt=settings.log_format, secrets=_secrets(settings))
    warn_if_anonymous(settings, logging.getLogger("il2watch").warning)
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
