"""The ``il2watch`` command line. Each subcommand is a short function; ``--help`` shows their docstrings."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from il2watch import __version__, redact
from il2watch.config import ConfigError, Settings, load_settings, warn_if_anonymous
from il2watch.logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


def _secrets(settings: Settings) -> list[str]:
    return [
        settings.ncbi_api_key,
        settings.slack_bot_token,
        settings.slack_app_token,
        settings.slack_signing_secret,
        settings.summariser_key,
    ]


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Run one cycle (discover, store, deliver) and exit; without SLACK_BOT_TOKEN, print the posts."""
    from il2watch.lease import HeldLease, make_holder_id
    from il2watch.library import LibraryError
    from il2watch.service import PollError, poll_once

    holder = make_holder_id()
    try:
        held = HeldLease(settings.db_path, holder, ttl=settings.lease_seconds)
        with held as holding:
            if not holding:
                print(
                    f"il2watch: not polling: worker {held.other.holder if held.other else '?'} holds the lease "
                    f"on {settings.db_path} and polls on its schedule (use /il2 poll to poll now)",
                    file=sys.stderr,
                )
                return EXIT_BUSY
            report = poll_once(settings, out=print, holder=holder)
    except (PollError, LibraryError) as error:
        print(f"il2watch: poll failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(report.line())
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the worker: poll on the schedule, post, answer Slack over Socket Mode; stop on SIGTERM."""
    from il2watch.worker import Worker

    if not Worker(settings).run_forever():
        # A poll stuck in a slow NCBI answer must not hold the process past the platform's patience:
        # its transaction rolls back with the process, and its post, if any, is reconciled next time.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check every setting, the library, NCBI, the watched PMIDs, the Slack token, scopes and channels."""
    from il2watch.doctor import run_checks

    failed = False
    for check in run_checks(settings):
        print(check.line(), flush=True)
        failed = failed or (not check.ok and not check.warning)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Post more of a watch's papers that were recorded but not posted (newest first)."""
    from il2watch.service import PollError, backfill

    show = _progress_printer(sys.stderr)
    try:
        report = backfill(settings, args.watch, args.limit, progress=show, include_held=args.include_held)
    except PollError as error:
        print(f"il2watch: backfill failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"backfill: {report.posted} posted, {report.still_due} still due; {report.chosen}"
        + ("; " + "; ".join(report.problems) if report.problems else "")
    )
    return EXIT_OK if not report.problems else EXIT_FAILED


def _progress_printer(stream) -> Callable[[int, int], None]:
    """A bar on a terminal; otherwise a line every 10% so logs stay readable."""
    last_tenth = [-1]

    def show(done: int, total: int) -> None:
        if total == 0:
            return
        if stream.isatty():
            filled = int(30 * done / total)
            stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                stream.write("\n")
            stream.flush()
        elif done * 10 // total != last_tenth[0] or done == total:
            last_tenth[0] = done * 10 // total
            print(f"backfill: {done}/{total} posted", file=stream, flush=True)

    return show


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    """Full-text search of the library (PubMed-style words welcome)."""
    from il2watch.library import Library, LibraryError
    from il2watch.markup import to_plain

    try:
        with Library(settings.db_path) as library:
            pmids, total = library.search(" ".join(args.words), limit=args.limit)
            for paper in library.papers(pmids):
                print(f"{paper.pmid}  {paper.entry_date}  {to_plain(paper.title)}")
    except LibraryError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{total} match(es)" + (f", showing {len(pmids)}" if total > len(pmids) else ""))
    return EXIT_OK


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    """Show one paper from the library as il2watch would post it, with why it is there."""
    from il2watch import render
    from il2watch.library import Library, LibraryError
    from il2watch.service import all_watches, insight_maker

    try:
        with Library(settings.db_path) as library:
            paper = library.paper(args.pmid)
            if paper is None:
                print(f"il2watch: PMID {args.pmid} is not in the library {settings.db_path}", file=sys.stderr)
                return EXIT_FAILED
            reasons = [s.reason for s in library.reasons_for(paper.pmid)]
            insight = insight_maker(settings, library)(paper, reasons)
            watches = {w.id: w for w in all_watches(settings, library)}
            print(
                render.render_terminal(
                    render.render_paper(paper, reasons, insight, watches, explain=True, buttons=False)
                )
            )
    except LibraryError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """The same facts as /il2 status: last and next poll, counts, last error, NCBI and Slack health."""
    from il2watch.commands import format_status_text, status_facts
    from il2watch.library import Library, LibraryError

    try:
        with Library(settings.db_path) as library:
            print(format_status_text(status_facts(library, settings)))
    except LibraryError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Answer Slack over HTTP at /slack/events (signatures verified), with GET /healthz; no polling."""
    from il2watch.web import cmd_serve as serve

    return serve(settings, args)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "poll": cmd_poll,
    "run": cmd_run,
    "serve": cmd_serve,
    "status": cmd_status,
    "backfill": cmd_backfill,
    "doctor": cmd_doctor,
    "search": cmd_search,
    "show": cmd_show,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="il2watch", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"il2watch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    parsers = {}
    for name, function in COMMANDS.items():
        doc = (function.__doc__ or "").strip()
        parsers[name] = sub.add_parser(name, help=doc.split("\n")[0], description=doc)
    parsers["backfill"].add_argument("--watch", required=True, help="the watch's id (see config/il2watch.toml)")
    parsers["backfill"].add_argument("--limit", type=int, default=10, help="how many papers to post (default 10)")
    parsers["backfill"].add_argument(
        "--include-held", action="store_true", help="also post papers held back as off-topic (weakly related)"
    )
    parsers["search"].add_argument("words", nargs="+")
    parsers["search"].add_argument("--limit", type=int, default=20)
    parsers["show"].add_argument("pmid")
    parsers["serve"].add_argument(
        "--port", type=int, default=None, help="port to listen on (default: $PORT, else 3000)"
    )
    parsers["serve"].add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
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
        for problem in getattr(error, "problems", [str(error)]):
            print(f"il2watch: {problem}", file=sys.stderr)
        return EXIT_USAGE
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = redact.ScrubbedStream(sys.stdout), redact.ScrubbedStream(sys.stderr)
    try:
        setup_logging(level=settings.log_level, fmt=settings.log_format, secrets=_secrets(settings))
        warn_if_anonymous(settings, logging.getLogger("il2watch").warning)
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as error:  # the last line of defence: one line, the details in the log
        logging.getLogger("il2watch").debug("unexpected error", exc_info=True)
        print(
            f"il2watch: {args.command} failed unexpectedly: {type(error).__name__}: {error} "
            f"(IL2WATCH_LOG_LEVEL=DEBUG shows the details)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        sys.stdout, sys.stderr = streams


if __name__ == "__main__":
    raise SystemExit(main())
