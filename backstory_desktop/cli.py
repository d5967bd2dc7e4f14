"""The ``backstory-desktop`` command: the wizard by default, headless subcommands beside it."""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from backstory_desktop import __version__
from backstory_desktop.cli_common import USAGE_ERROR_STATUS, database_path, saved_profile
from backstory_desktop.logging_setup import configure_logging
from backstory_desktop.store.settings import MAX_COVERAGE_DAYS

if TYPE_CHECKING:
    from backstory_desktop.practice_org.faults import FaultPlan

DEFAULT_SCENARIO = "default"
SCENARIOS = ("default", "fresh", "non-unique", "empty", "duplicates", "ready")
# Only `practice-org serve` offers the large scenario, which takes --tasks and --duplicate-share.
SERVED_SCENARIOS = (*SCENARIOS, "large")

# The maximum of --daily-api-limit. It equals practice_org.session.MAX_DAILY_API_LIMIT,
# which is not imported so that the command line loads without the practice org.
MAX_DAILY_API_LIMIT = 10**9

Number = TypeVar("Number", int, float)

# The checks of the `check` command; "all" runs every one of them.
CHECKS = ("field", "access", "coverage", "calls", "all")


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line: no subcommand opens the wizard."""
    parser = argparse.ArgumentParser(
        prog="backstory-desktop",
        description=(
            "Switch on Backstory's cadence-tool integration in a Salesforce org: "
            "the Message-ID field, the integration user's access, a local sync and duplicates."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="also log DEBUG detail, to stderr too"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = commands.add_parser("gui", help="open the enablement wizard (the default)")
    _add_practice_options(gui)
    _add_org_option(gui, "saved org profile to select at start, signed in with its saved sign-in")
    gui.add_argument(
        "--screenshot", type=Path, metavar="FILE",
        help="open the wizard, save a PNG picture of its first page to FILE and quit: checks that "
        "the app starts on this machine",
    )

    practice = commands.add_parser("practice-org", help="run the local practice org")
    practice_commands = practice.add_subparsers(
        dest="practice_command", metavar="ACTION", required=True
    )
    serve = practice_commands.add_parser(
        "serve", help="serve a practice org on 127.0.0.1 until Ctrl+C"
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="TCP port to listen on, 1 to 65535 (default: a free port)"
    )
    _add_practice_options(serve, mailbox=False, scenarios=SERVED_SCENARIOS)
    _add_fault_options(serve)
    _add_large_scenario_options(serve)
    _add_callback_url_option(serve)

    rehearse = commands.add_parser(
        "rehearse", help="run every enablement step on a practice org without a window"
    )
    rehearse.add_argument("--json", action="store_true", help="print the report as one JSON object")
    _add_practice_options(rehearse)

    diagnose = commands.add_parser(
        "diagnose", help="print versions, keyring, folders, org profiles and recent log problems"
    )
    diagnose.add_argument("--json", action="store_true", help="print the report as one JSON object")
    _add_org_option(
        diagnose,
        "also check this saved org profile through its saved sign-in (never opens a browser): "
        "API version and daily API requests left",
    )
    _add_check_command(commands)
    from backstory_desktop.sync_cli_options import add_sync_command

    add_sync_command(commands)
    from backstory_desktop.conflicts_cli import add_conflicts_command

    add_conflicts_command(commands)
    return parser


def _add_check_command(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="check an org without changing it: the Message-ID field, the integration user's access, "
        "the cadence tools' keys, calls without TaskSubtype, or all of them",
        description="Check an org without changing anything in it, and print each check's result. "
        "Exit status: 0 every check passed, 1 a check failed, 2 a usage or profile error, "
        "3 the org's saved sign-in cannot be used.",
    )
    check.add_argument(
        "check", choices=CHECKS, metavar="CHECK",
        help="field (the Message-ID field), access (the integration user and the cadence tool users), "
        "coverage (keys on the cadence tools' e-mail Tasks), calls (calls without TaskSubtype Call), "
        "or all",
    )
    check.add_argument(
        "--org", required=True, metavar="ALIAS",
        help="saved org profile to check through its saved sign-in (never opens a browser), or "
        "practice for the built-in practice org",
    )
    check.add_argument("--json", action="store_true", help="print the report as one JSON object")
    check.add_argument(
        "--user", metavar="USERNAME",
        help="Salesforce username of the Backstory integration user (default: the profile's, and "
        "for the practice org its integration user)",
    )
    check.add_argument(
        "--days", type=_days, metavar="N",
        help=f"how many days back the coverage and calls checks look, 1 to {MAX_COVERAGE_DAYS} "
        "(default: the profile's, 30 unless changed)",
    )
    # Checked before any check runs, so that an unusable file stops the command at once.
    check.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")
    check.add_argument(
        "--db", type=database_path, metavar="PATH",
        help="practice org database file to check, for the practice profile only (default: the "
        "profile's, else the app's own; made and seeded with the default scenario when it does not exist)",
    )


def _add_org_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--org", metavar="ALIAS", help=text)


def _add_practice_options(parser: argparse.ArgumentParser, *, mailbox: bool = True,
                          scenarios: tuple[str, ...] = SCENARIOS) -> None:
    parser.add_argument(
        "--db",
        type=database_path,
        help="practice org database file (made and seeded when it does not exist)",
    )
    parser.add_argument(
        "--scenario",
        choices=scenarios,
        default=DEFAULT_SCENARIO,
        help="how a new practice org is seeded (default: %(default)s)",
    )
    if mailbox:
        parser.add_argument(
            "--mailbox", type=Path, help="mbox file to sync (default: the bundled sample mailbox)"
        )


def _number_option(
    convert: Callable[[str], Number], noun: str, low: Number, high: Number | None = None
) -> Callable[[str], Number]:
    """Return an argparse type that reads ``noun`` and accepts it from ``low`` to ``high``."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if isinstance(value, float) and math.isnan(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}")
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below {_shown(low)}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} is above the maximum of {_shown(high)}")
        return value

    return parse


def _shown(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


_share = _number_option(float, "a number from 0 to 1", 0.0, 1.0)
# FaultPlan's own maximum: Salesforce ends a REST request after 10 minutes.
_seconds = _number_option(float, "a number of seconds", 0.0, 600.0)
_count = _number_option(int, "a whole number", 1)
_daily_api_limit = _number_option(int, "a whole number", 1, MAX_DAILY_API_LIMIT)
_days = _number_option(int, "a whole number of days", 1, MAX_COVERAGE_DAYS)


# The `practice-org serve` options that set a FaultPlan field of the same name.
_FAULT_OPTIONS: tuple[tuple[str, str, Callable[[str], float], str], ...] = (
    ("--fault-seed", "seed", int, "seed of the fault draws, so a run can be repeated (default: 0)"),
    ("--latency", "latency_seconds", _seconds, "seconds added to every API call"),
    ("--server-error-rate", "server_error_rate", _share,
     "share of API calls, 0 to 1, that get HTTP 500 UNKNOWN_EXCEPTION"),
    ("--server-unavailable-rate", "server_unavailable_rate", _share,
     "share of API calls, 0 to 1, that get HTTP 503 SERVER_UNAVAILABLE"),
    ("--lock-row-rate", "unable_to_lock_row_rate", _share,
     "share of single-record writes and of sObject Collections records, 0 to 1, "
     "that fail with UNABLE_TO_LOCK_ROW"),
    ("--expired-session-rate", "expired_session_rate", _share,
     "share of API calls, 0 to 1, whose session expires (401 INVALID_SESSION_ID)"),
    ("--dropped-connection-rate", "dropped_connection_rate", _share,
     "share of API calls, 0 to 1, whose connection closes before anything is written"),
    ("--dropped-after-commit-rate", "dropped_after_commit_rate", _share,
     "share of API calls, 0 to 1, whose connection closes after the write committed"),
    ("--gateway-error-rate", "gateway_error_rate", _share,
     "share of API calls, 0 to 1, that a load balancer answers with an HTML page: "
     "502 before anything is written, or 504 after the write committed"),
    ("--session-calls", "session_expires_after_calls", _count,
     "API calls each access token may make before its session expires"),
    ("--max-concurrent-requests", "max_concurrent_requests", _count,
     "maximum API calls in flight at once; one more gets 403 REQUEST_LIMIT_EXCEEDED"),
)


def _add_fault_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "faults", "failures injected into API calls (a running org takes a new plan at "
        "POST /services/practice/faults)")
    for flag, field, kind, text in _FAULT_OPTIONS:
        metavar = "N"
        if kind is _share:
            metavar = "RATE"
        elif kind is _seconds:
            metavar = "SECONDS"
        group.add_argument(flag, dest=field, type=kind, metavar=metavar, help=text)
    group.add_argument("--daily-api-limit", type=_daily_api_limit, metavar="N",
                       help="daily API request allocation, 1 to "
                       f"{MAX_DAILY_API_LIMIT} (default: 15000)")


def fault_plan_from_args(args: argparse.Namespace) -> FaultPlan:
    """Build the FaultPlan that the fault options of `practice-org serve` name.

    Raises ValueError naming the option's field when a value is out of range.
    """
    from backstory_desktop.practice_org.faults import FaultPlan

    values = {field: getattr(args, field) for _flag, field, _kind, _text in _FAULT_OPTIONS
              if getattr(args, field, None) is not None}
    return FaultPlan(**values)


def _add_large_scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks", type=_count, default=None, metavar="N",
        help="number of Tasks the large scenario generates in a new database (default: 100000)",
    )
    parser.add_argument(
        "--duplicate-share", type=_share, default=None, metavar="SHARE",
        help="share of the large scenario's Tasks whose Message-ID repeats another's, "
        "from 0 to 1 (default: 0.05)",
    )


def _add_callback_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--callback-url", dest="callback_urls", action="append", type=_callback_url,
        default=None, metavar="URL",
        help="register a callback URL of the OAuth app; repeat it for several. The authorize "
        "request's redirect URI must then equal one of them (default: any loopback URI)",
    )


def _callback_url(text: str) -> str:
    """Check a --callback-url value: an absolute URL without a fragment."""
    from backstory_desktop.practice_org.server import check_callback_url

    try:
        return check_callback_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _port(text: str) -> int:
    """Convert --port to a TCP port number, rejecting what no socket can bind."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside the TCP port range 1 to 65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose)
    if args.command == "practice-org":
        return _serve_practice_org(args)
    if args.command == "rehearse":
        return _rehearse(args)
    if args.command == "diagnose":
        return _diagnose(args)
    if args.command == "check":
        from backstory_desktop.org_checks import run_checks

        return run_checks(args)
    if args.command == "sync":
        from backstory_desktop.sync_cli import run_sync

        return run_sync(args)
    if args.command == "conflicts":
        from backstory_desktop.conflicts_cli import run_conflicts

        return run_conflicts(args)
    return _open_wizard(args)


def _open_wizard(args: argparse.Namespace) -> int:
    from backstory_desktop.store.settings import PRACTICE_PROFILE_ALIAS

    org_alias = getattr(args, "org", None)
    # The built-in practice org is always there, saved or not.
    if org_alias not in (None, PRACTICE_PROFILE_ALIAS) and saved_profile(
        org_alias, built_in=PRACTICE_PROFILE_ALIAS
    ) is None:
        return USAGE_ERROR_STATUS

    screenshot = getattr(args, "screenshot", None)
    if screenshot is not None and (problem := _screenshot_path_problem(screenshot)):
        print(problem, file=sys.stderr)
        return USAGE_ERROR_STATUS

    from backstory_desktop.gui.app import run_gui

    return run_gui(
        practice_db=getattr(args, "db", None),
        mailbox=getattr(args, "mailbox", None),
        scenario=getattr(args, "scenario", DEFAULT_SCENARIO),
        org_alias=org_alias,
        screenshot=screenshot,
    )


def _screenshot_path_problem(path: Path) -> str | None:
    """Return why --screenshot cannot be written to ``path``, or None when its folder is there."""
    try:
        if path.is_dir():
            return (f"Cannot save the screenshot to {path} because it is a folder, so give a file name "
                    f"such as {path / 'backstory-desktop.png'}.")
        if not path.parent.is_dir():
            problem = "is not a folder" if path.parent.exists() else "does not exist"
            return (f"Cannot save the screenshot to {path} because {path.parent} {problem}, so create "
                    "the folder or choose another path.")
    except OSError as error:
        # A name too long for the file system, or a folder this user cannot open.
        return (f"Cannot save the screenshot to {path} ({error.strerror}), so choose a shorter path in a "
                "folder you can open.")
    return None


def _serve_practice_org(args: argparse.Namespace) -> int:
    from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
    from backstory_desktop.practice_org.server import serve_forever
    from backstory_desktop.store.paths import ensure_private_dir, practice_org_db

    db_path = args.db
    if db_path is None:
        db_path = practice_org_db()
        ensure_private_dir(db_path.parent)
    try:
        faults = fault_plan_from_args(args)
    except ValueError as error:
        print(f"Invalid fault option: {error}", file=sys.stderr)
        return USAGE_ERROR_STATUS
    try:
        serve_forever(db_path, args.port, args.scenario, faults=faults,
                      daily_api_limit=args.daily_api_limit, tasks=args.tasks,
                      duplicate_share=args.duplicate_share, callback_urls=args.callback_urls)
    except PracticeOrgDatabaseError as error:
        print(error, file=sys.stderr)
        return USAGE_ERROR_STATUS
    except ValueError as error:
        print(f"Invalid practice org option: {error}", file=sys.stderr)
        return USAGE_ERROR_STATUS
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        print(f"Cannot serve the practice org on port {args.port} because another program "
              f"listens on it, so choose another --port or leave it out for a free one.",
              file=sys.stderr)
        return USAGE_ERROR_STATUS
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
    from backstory_desktop.rehearsal import run_rehearsal

    try:
        report = run_rehearsal(db_path=args.db, mailbox=args.mailbox, scenario=args.scenario)
    except PracticeOrgDatabaseError as error:
        # The JSON reader gets an object it can test for "passed" as with any other run.
        if args.json:
            print(json.dumps({"practice_org": str(args.db), "passed": False, "error": str(error)}))
        print(error, file=sys.stderr)
        return USAGE_ERROR_STATUS
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
    return 0 if report["passed"] else 1


def _diagnose(args: argparse.Namespace) -> int:
    from backstory_desktop.diagnostics import (
        collect_diagnostics,
        format_diagnostics,
        resume_for_diagnostics,
    )

    connection, org_error = None, ""
    if args.org is not None:
        profile = saved_profile(args.org)
        if profile is None:
            return USAGE_ERROR_STATUS
        connection, org_error = resume_for_diagnostics(profile)
    report = collect_diagnostics(connection, alias=args.org or "", org_error=org_error)
    print(json.dumps(report, indent=2) if args.json else format_diagnostics(report))
    return 1 if org_error else 0


def _print_report(report: dict[str, Any]) -> None:
    for step in report["steps"]:
        print(f"{step['status']:>8}  {step['title']}: {step['reason']}")
    print("sync:", ", ".join(f"{name} {count}" for name, count in report["sync"].items()))
    print(f"duplicate groups: {len(report['duplicate_groups'])}")


if __name__ == "__main__":
    sys.exit(main())
