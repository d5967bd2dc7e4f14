"""The options of the ``sync`` command and the checks made on them before the org is opened."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from backstory_desktop.cli_common import ORG_OPTION_HELP, USAGE_ERROR_STATUS, CommandStop, database_path
from backstory_desktop.sources.csv_mapping import CsvColumn

ACTIONS = ("plan", "apply", "resume", "retry", "history")
# The names --csv-column takes.
CSV_COLUMN_NAMES = tuple(column.value for column in CsvColumn)


def add_sync_command(commands: Any) -> None:
    """Add ``sync`` and its options to the subcommands of ``backstory-desktop``."""
    sync = commands.add_parser(
        "sync",
        help="plan, apply, resume or retry a local sync of mail into Tasks, or list the runs",
        description="Sync e-mails from an mbox file, a Maildir or .eml folder, or a CSV export into "
        "Tasks keyed on the Message-ID field. Every run is journalled: a stopped run is continued by "
        "resume without writing a Task twice. Exit status: 0 done, 1 some records failed or were "
        "queued or the run stopped, 2 a usage, profile or source error, 3 the org's saved sign-in "
        "cannot be used.",
    )
    sync.add_argument(
        "action", choices=ACTIONS, metavar="ACTION",
        help="plan (dry run, nothing written), apply (plan, then write once confirmed), resume (continue "
        "the org's unfinished run), retry (send what a run left queued), or history (the org's runs)",
    )
    sync.add_argument(
        "--org", required=True, metavar="ALIAS",
        help=ORG_OPTION_HELP,
    )
    sync.add_argument(
        "--source", type=_source_path, metavar="PATH",
        help="mbox file, Maildir folder, folder of .eml files, or CSV export to sync (plan and apply)",
    )
    sync.add_argument(
        "--csv-column", type=_csv_column, action="append", default=[], metavar="NAME=HEADER",
        help="read NAME from the CSV source's column HEADER instead of the one guessed from the header "
        "row; NAME is one of "
        f"{', '.join(CSV_COLUMN_NAMES)} (repeat the option for each column)",
    )
    sync.add_argument("--plan-csv", type=_plan_csv_path, metavar="FILE",
                      help="also write the plan, one row per message, to this CSV file")
    # Read as text and checked by check_options, so that the message names the option once.
    sync.add_argument(
        "--bulk-threshold", metavar="N",
        help="send through Bulk API 2.0 when at least N records are to be written "
        "(default: 2000)",
    )
    sync.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    sync.add_argument(
        "--db", type=database_path, metavar="FILE",
        help="practice org database file, for the practice profile only (default: the profile's, else "
        "the app's own; made and seeded with the default scenario when it does not exist, except by history, "
        "which only reads it)",
    )
    sync.add_argument("--yes", action="store_true",
                      help="write to the org without asking (apply, resume and retry)")


def _source_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the source path is empty, so give an mbox file, a Maildir or .eml folder, or a CSV file")
    return Path(text)


def _plan_csv_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("the plan CSV path is empty, so give a file name such as plan.csv")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, so give a file name such as plan.csv")
    return path


def _csv_column(text: str) -> tuple[str, str]:
    name, equals, header = text.partition("=")
    name, header = name.strip(), header.strip()
    if not equals or not header:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=HEADER, so give a column such as "
                                         "message_id='Message ID'")
    if name not in CSV_COLUMN_NAMES:
        raise argparse.ArgumentTypeError(f"{name!r} is not a column name, so use one of "
                                         f"{', '.join(CSV_COLUMN_NAMES)}")
    return name, header


def bulk_threshold(text: str) -> int:
    """Return the --bulk-threshold value as a record count; raise CommandStop when it is not one."""
    try:
        value = int(text)
    except ValueError:
        raise CommandStop(USAGE_ERROR_STATUS, f"--bulk-threshold {text!r} is not a whole number: give a "
                                               "record count such as 2000.") from None
    if value < 1:
        raise CommandStop(USAGE_ERROR_STATUS, f"--bulk-threshold {value} is below 1: give 1 or more.")
    return value


def check_options(args: argparse.Namespace) -> None:
    """Reject options that the action does not take or cannot use, before the org is opened."""
    if args.bulk_threshold is not None:
        bulk_threshold(args.bulk_threshold)
    if args.action in ("plan", "apply") and args.source is None:
        raise CommandStop(USAGE_ERROR_STATUS, f"sync {args.action} reads a source, so give --source with an "
                                               "mbox file, a Maildir or .eml folder, or a CSV file.")
    if args.action not in ("plan", "apply"):
        for option, value in (("--source", args.source), ("--plan-csv", args.plan_csv),
                              ("--csv-column", args.csv_column or None)):
            if value is not None:
                raise CommandStop(USAGE_ERROR_STATUS, f"sync {args.action} reads no source, so leave "
                                                       f"{option} out.")
    if args.source is not None and not args.source.exists():
        raise CommandStop(USAGE_ERROR_STATUS, f"The source {args.source} does not exist, so give the path "
                                               "of an mbox file, a Maildir or .eml folder, or a CSV file.")
    if args.plan_csv is not None and not args.plan_csv.absolute().parent.is_dir():
        raise CommandStop(USAGE_ERROR_STATUS, f"Cannot write the plan to {args.plan_csv} because its folder "
                                               "does not exist, so choose another --plan-csv file.")
    if args.plan_csv is not None and args.source is not None:
        _check_plan_csv(args.plan_csv, args.source)
    _check_csv_columns(args.csv_column)
    # Resume and retry find out whether they have anything to confirm once the org is open.
    if args.action == "apply":
        check_confirmation(args)


def check_confirmation(args: argparse.Namespace) -> None:
    """Raise CommandStop when the action needs a confirmation that neither --yes nor a terminal gives."""
    if not args.yes and not sys.stdin.isatty():
        raise CommandStop(USAGE_ERROR_STATUS, f"sync {args.action} writes Tasks to the org and needs a "
                                               "confirmation, but no terminal can prompt for it, so add "
                                               "--yes.")


def _check_plan_csv(plan_csv: Path, source: Path) -> None:
    """Reject a plan file that is the source, is in a source folder, or is a file of another kind."""
    plan_path, source_path = plan_csv.resolve(), source.resolve()
    if plan_path == source_path or (plan_path.exists() and plan_path.samefile(source_path)):
        raise CommandStop(USAGE_ERROR_STATUS, f"The plan file {plan_csv} is the source {source}, so choose "
                                               "another --plan-csv file.")
    if source_path.is_dir() and plan_path.is_relative_to(source_path):
        raise CommandStop(USAGE_ERROR_STATUS, f"The plan file {plan_csv} is inside the source folder "
                                               f"{source}, so choose a --plan-csv file outside it.")
    if plan_path.exists() and not _is_plan_csv(plan_path):
        raise CommandStop(USAGE_ERROR_STATUS, f"The plan file {plan_csv} exists and is not a plan CSV that "
                                               "this app wrote, so choose another --plan-csv file or move "
                                               "that one away.")


def _is_plan_csv(path: Path) -> bool:
    """Tell whether the file's header line is the one write_plan_csv writes."""
    from backstory_desktop.sync.result_files import PLAN_COLUMNS

    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            header = next(csv.reader([stream.readline(4096)]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return tuple(header) == PLAN_COLUMNS


def _check_csv_columns(columns: list[tuple[str, str]]) -> None:
    names = [name for name, _ in columns]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            raise CommandStop(USAGE_ERROR_STATUS, f"--csv-column names {name} {names.count(name)} times, so "
                                                   "give each column once.")
