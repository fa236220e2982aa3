"""The ``il2watch`` command line. Each subcommand is a short function whose docstring is its ``--help``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from il2watch import __version__, redact
from il2watch.config import OPTIONS, ConfigError, ConfigErrors, Settings, load_settings, warn_if_anonymous
from il2watch.logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3

DESCRIPTION = (
    "il2watch posts every new paper around the IL-2 review (Hernandez et al., Nat Rev Immunol 2022) "
    "to your lab's Slack channel, and answers /il2 there."
)
EPILOG = (
    "Start with `il2watch doctor`, which checks every setting and connection; `il2watch poll` without "
    "SLACK_BOT_TOKEN prints what it would post. Settings come from the environment, .env and "
    "config/il2watch.toml (see the README)."
)
USES_LEXICON = ("poll", "followups", "run", "serve", "backfill", "show")  # commands that tag papers


def _secrets(settings: Settings) -> list[str]:
    """Every secret setting's value (settings load remembers them too; this keeps the log's filter explicit)."""
    return [str(getattr(settings, option.attr)) for option in OPTIONS if option.kind == "secret"]


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Poll PubMed once: find new papers, store them and post them to Slack (without SLACK_BOT_TOKEN, print
    them instead)."""
    from il2watch.library import LibraryError
    from il2watch.service import LeaseHeld, PollError, poll_unless_held
    from il2watch.store import describe

    try:
        outcome = poll_unless_held(settings, out=print)
    except (PollError, LibraryError) as error:
        print(f"il2watch: poll failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(outcome, LeaseHeld):
        print(
            f"il2watch: not polling: worker {outcome.holder or '?'} holds the lease "
            f"on {describe(settings.db_path)} and polls on its schedule (use /il2 poll to poll now)",
            file=sys.stderr,
        )
        return EXIT_BUSY
    print(outcome.line())
    return EXIT_OK


def cmd_followups(settings: Settings, args: argparse.Namespace) -> int:
    """Check every posted paper now for retractions, errata, expressions of concern and journal versions,
    and tell Slack about each new one once (IL2WATCH_FOLLOWUP_SCHEDULE sets how often `il2watch run` does)."""
    from il2watch.library import LibraryError
    from il2watch.service import LeaseHeld, PollError, check_followups_unless_held
    from il2watch.store import describe

    try:
        outcome = check_followups_unless_held(settings, out=print)
    except (PollError, LibraryError) as error:
        print(f"il2watch: follow-up check failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(outcome, LeaseHeld):
        print(
            f"il2watch: not checking: worker {outcome.holder or '?'} holds the lease on "
            f"{describe(settings.db_path)} and checks on its schedule ({settings.followup_schedule})",
            file=sys.stderr,
        )
        return EXIT_BUSY
    print(outcome.line())
    return EXIT_OK


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the service: poll on IL2WATCH_SCHEDULE, post, answer /il2 over Socket Mode; stop cleanly on SIGTERM."""
    from il2watch.worker import Worker

    if not Worker(settings).run_forever():
        # A poll stuck in a slow NCBI answer must not hold the process past the platform's patience:
        # its transaction rolls back with the process, and its post, if any, is reconciled next time.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check every setting, the library, NCBI, the watched papers, the Slack tokens, scopes and channels, one
    line each; exit 1 when any check fails."""
    from il2watch.doctor import run_checks

    errors: ConfigErrors | None = getattr(args, "config_errors", None)
    failed = False
    for check in run_checks(
        settings, problems=errors.problems if errors else (), invalid=errors.invalid if errors else frozenset()
    ):
        print(check.line(), flush=True)
        failed = failed or (not check.ok and not check.warning)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Post more of a watch's papers that were recorded but never posted (newest first)."""
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


def _progress_printer(stream, what: str = "backfill", done_word: str = "posted") -> Callable[[int, int], None]:
    """A bar on a terminal; otherwise a line every 10% so logs stay readable."""
    last_tenth = [-1]

    def show(done: int, total: int) -> None:
        if total == 0:
            return
        if stream.isatty():
            filled = int(30 * done / total)
            stream.write(f"\r{what}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                stream.write("\n")
            stream.flush()
        elif done * 10 // total != last_tenth[0] or done == total:
            last_tenth[0] = done * 10 // total
            print(f"{what}: {done}/{total} {done_word}", file=stream, flush=True)

    return show


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Copy the SQLite library (IL2WATCH_DB) into a PostgreSQL database, every table with its rows; running it
    again updates what is there and doubles nothing. Then point DATABASE_URL at that database."""
    from il2watch.library import Library, LibraryError
    from il2watch.store import describe, is_postgres
    from il2watch.store.copy import copy_library

    redact.remember(redact.url_secrets(args.to))
    source = str(settings.db_path)
    if is_postgres(source):
        print(f"il2watch: the library is already {describe(source)}; migrate copies a SQLite file", file=sys.stderr)
        return EXIT_USAGE
    if not source.startswith("file:") and not os.path.exists(source):
        print(f"il2watch: there is no library at {source} to copy (set IL2WATCH_DB to the file)", file=sys.stderr)
        return EXIT_FAILED
    bars: dict[str, Callable[[int, int], None]] = {}

    def progress(table: str, done: int, total: int) -> None:
        bars.setdefault(table, _progress_printer(sys.stderr, f"migrate {table}", "copied"))(done, total)

    try:
        with Library(source) as lite, Library(args.to) as target:
            copied = copy_library(lite, target, progress)
    except LibraryError as error:
        print(f"il2watch: migrate failed: {error} (running it again resumes: rows copied are kept)", file=sys.stderr)
        return EXIT_FAILED
    rows = ", ".join(f"{table} {count}" for table, count in copied.items())
    print(f"migrated {source} to {describe(args.to)}: {rows}; set DATABASE_URL to it (and unset IL2WATCH_DB)")
    return EXIT_OK


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    """Search the library's titles, abstracts, authors and journals (PubMed-style words welcome)."""
    from il2watch.library import Library, LibraryError
    from il2watch.markup import to_plain

    try:
        with Library(settings.db_path) as library:
            keys, total = library.search(" ".join(args.words), limit=args.limit)
            for paper in library.papers(keys):
                print(f"{paper.pmid or paper.key}  {paper.entry_date}  {to_plain(paper.title)}")
    except LibraryError as error:
        print(f"il2watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{total} match(es)" + (f", showing {len(keys)}" if total > len(keys) else ""))
    return EXIT_OK


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    """Show a paper from the library as il2watch would post it, with why it is there."""
    from il2watch import render
    from il2watch.commands.parsing import parse_paper_ref
    from il2watch.library import Library, LibraryError
    from il2watch.service import all_watches, insight_maker
    from il2watch.store import describe

    try:
        with Library(settings.db_path) as library:
            ref = parse_paper_ref(args.paper)
            paper = library.paper(ref.token) if ref is not None else None
            if paper is None:
                named = ref.describe() if ref is not None else repr(args.paper[:60])
                print(f"il2watch: {named} is not in the library {describe(settings.db_path)}", file=sys.stderr)
                return EXIT_FAILED
            reasons = [s.reason for s in library.reasons_for(paper.key)]
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
    """Say what il2watch is doing, as /il2 status does: last and next poll, counts, last error, NCBI and Slack."""
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
    """Answer Slack over HTTP at /slack/events (HTTP mode; every request's signature checked), with GET /healthz;
    polling stays with `il2watch run`."""
    from il2watch.web import cmd_serve as serve

    return serve(settings, args)


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "poll": cmd_poll,
    "followups": cmd_followups,
    "run": cmd_run,
    "serve": cmd_serve,
    "status": cmd_status,
    "backfill": cmd_backfill,
    "doctor": cmd_doctor,
    "search": cmd_search,
    "show": cmd_show,
    "migrate": cmd_migrate,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line naming it, like a bad setting."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (`{self.prog} --help` shows the options)\n")


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100,000, not {text[:20]!r}")
    return int(text)


def _port(text: str) -> int:
    from il2watch.web import read_port

    try:
        return read_port(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _postgres_url(text: str) -> str:
    from il2watch.store import is_postgres

    if not is_postgres(text):
        raise argparse.ArgumentTypeError("must be a postgres:// or postgresql:// URL")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="il2watch", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"il2watch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    parsers = {}
    for name, function in COMMANDS.items():
        doc = " ".join((function.__doc__ or "").split())
        parsers[name] = sub.add_parser(name, help=doc, description=doc)
    parsers["backfill"].add_argument("--watch", required=True, help="the watch's id (`il2watch doctor` lists them)")
    parsers["backfill"].add_argument(
        "--limit", type=int, default=10, help="how many papers to post, 1 to 200 (default 10)"
    )
    parsers["backfill"].add_argument(
        "--include-held", action="store_true", help="also post papers held back as off-topic (weakly related)"
    )
    parsers["search"].add_argument("words", nargs="+", help='what to look for, e.g. "low-dose IL-2" lupus')
    parsers["search"].add_argument("--limit", type=_count, default=20, help="how many matches to list (default 20)")
    parsers["show"].add_argument("paper", help="the paper: a PMID, DOI, DOI URL, PMCID or Europe PMC PPR id")
    parsers["serve"].add_argument(
        "--port", type=_port, default=None, help="port to listen on, 1 to 65535 (default: $PORT, else 3000)"
    )
    parsers["serve"].add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: all)")
    parsers["migrate"].add_argument(
        "--to", required=True, type=_postgres_url, metavar="URL", help="the PostgreSQL database: postgresql://…"
    )
    return parser


def _lexicon_problem(settings: Settings) -> str:
    """Why the lexicon cannot be used, or "" when it can: said at start, never at every paper or command."""
    from il2watch import intel

    try:
        intel.load_lexicon(settings.lexicon_paths, skip_missing=True)
    except intel.LexiconError as error:
        return f"lexicon: {error}"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = redact.ScrubbedStream(sys.stdout), redact.ScrubbedStream(sys.stderr)
    try:
        return _run(args)
    finally:
        sys.stdout, sys.stderr = streams


def _run(args: argparse.Namespace) -> int:
    """Read the settings, then run the command; everything printed from here on is scrubbed of secrets."""
    args.config_errors = None
    try:
        settings = load_settings()
    except ConfigErrors as error:
        if args.command != "doctor" or error.settings is None:
            for problem in error.problems:
                print(f"il2watch: {problem}", file=sys.stderr)
            return EXIT_USAGE
        settings, args.config_errors = error.settings, error  # doctor reports them all and checks the rest
    except ConfigError as error:
        print(f"{'✗ ' if args.command == 'doctor' else 'il2watch: '}{error}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in USES_LEXICON:
        problem = _lexicon_problem(settings)
        if problem:
            print(f"il2watch: {problem}", file=sys.stderr)
            return EXIT_USAGE
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


if __name__ == "__main__":
    raise SystemExit(main())
