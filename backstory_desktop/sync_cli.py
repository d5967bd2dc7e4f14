"""The ``sync`` command: plan, apply, resume and retry a local sync, and list the runs of an org.

``sync plan`` reads a source and prints the dry-run plan; nothing is written to the org.
``sync apply`` plans again and applies the plan once confirmed (``--yes`` confirms at once).
``sync resume`` continues the run of the org that stopped before its end, and ``sync retry``
sends again what a run left queued. ``sync history`` lists the runs of the org, newest first.

Every run is journalled, so a command stopped while it writes to the org (Ctrl+C, a crash,
a killed process) is continued by ``sync resume`` without writing a Task twice. The org is opened as
``check`` opens it: the built-in practice profile starts its own practice org from its
database file (``--db``), any other profile resumes its saved sign-in and never opens a browser.

Exit statuses are those of ``check``: 0 done, 1 some records failed, were queued or the run
stopped, 2 a usage, profile or source error, 3 the org's saved sign-in cannot be used.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backstory_desktop.cli_common import (
    CHECK_FAILED_STATUS,
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    CommandStop,
    command_profile,
    practice_db,
    resume_saved_session,
    start_practice_org,
)
from backstory_desktop.sources.csv_export import CsvColumn

if TYPE_CHECKING:
    from backstory_desktop.core.checklist import StepResult
    from backstory_desktop.core.plan import Plan
    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.store.journal import RunSummary

ACTIONS = ("plan", "apply", "resume", "retry", "history")
# The one mapping a CSV source starts from on the command line: the guessed one, which --csv-column changes.
CSV_MAPPINGS = ("auto",)
# The names --csv-column takes.
CSV_COLUMN_NAMES = tuple(column.value for column in CsvColumn)
# Rows that the plan does not send, listed in --json; the --plan-csv file has every row.
MAX_LISTED_ROWS = 1_000
# Source references shown in the text output for each reason a row is not sent.
LISTED_REFERENCES = 3
# In-doubt keys listed in the --json of apply, resume and retry; in_doubt_count counts all of them.
MAX_LISTED_IN_DOUBT_KEYS = 100
# The actions a plan is not sent for, in the order the text output lists them.
NOT_SENT_ACTIONS = ("conflict", "invalid", "excluded")
# Parts of a reason that name the row's own messages or Tasks, replaced so that rows group by
# their reason's wording. A reason that matches none of them groups by its full text.
_REASON_SPECIFICS = (
    (re.compile(r"^\d+ Tasks hold this key \(.*?\): "), "several Tasks hold this key: "),
    (re.compile(r"^Task \w+ in the recycle bin holds this key"), "a Task in the recycle bin holds this key"),
    (re.compile(r"^same Message-ID as .*?, which this plan"), "same Message-ID as an earlier message, which "
                                                              "this plan"),
)
# The start of check_mapping's sentence for a CSV mapping without a Message-ID column.
UNMAPPED_KEY_PREFIX = "No column is chosen for the Message-ID"
# The line after a plan with conflicts, because the command line cannot show them side by side.
CONFLICTS_HINT = "The Conflicts step of the app shows the Tasks of each conflict side by side."
# Progress lines go to stderr at most this often, besides each new message.
PROGRESS_INTERVAL_SECONDS = 1.0
# The stop message for Ctrl+C before the first write. No run is left to resume, because a plan cut
# short is never applied.
STOPPED_BEFORE_WRITING = ("The sync was stopped with Ctrl+C before it wrote anything to the org, so run "
                          "the same command again to start over.")
# The stop message for Ctrl+C once every row of the run has its outcome in the journal.
STOPPED_AFTER_WRITING = ("The sync was stopped with Ctrl+C after its last write to the org, so nothing is "
                         "left to resume and sync history shows the run.")


@dataclass
class SyncOutcome:
    """The outcome of one ``sync`` command, as printed in text or JSON."""

    action: str
    org: str
    passed: bool
    exit_status: int
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    run: dict[str, Any] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    plan_csv: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # What a plan leaves out, for sync plan only: each inactive owner and the rows not sent.
    not_sent: NotSentReport | None = None


@dataclass
class NotSentReport:
    """The plan's inactive owners and its rows that are not sent, grouped by reason for the text output."""

    inactive_owners: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, str | None]] = field(default_factory=list)
    rows_truncated: bool = False
    # (action, reason) -> (row count, first source references)
    reasons: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)


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
        help="saved org profile, signed in through its saved sign-in (never opens a browser), or "
        "practice for the built-in practice org",
    )
    sync.add_argument(
        "--source", type=_source_path, metavar="PATH",
        help="mbox file, Maildir folder, folder of .eml files, or CSV export to sync (plan and apply)",
    )
    sync.add_argument(
        "--csv-mapping", choices=CSV_MAPPINGS, default="auto",
        help="how the columns of a CSV source are read: auto guesses them from the header row, and "
        "--csv-column replaces single guesses (default: %(default)s)",
    )
    sync.add_argument(
        "--csv-column", type=_csv_column, action="append", default=[], metavar="NAME=HEADER",
        help="read NAME from the CSV source's column HEADER instead of the guessed one; NAME is one of "
        f"{', '.join(CSV_COLUMN_NAMES)} (repeat the option for each column)",
    )
    sync.add_argument("--plan-csv", type=_plan_csv_path, metavar="FILE",
                      help="also write the plan, one row per message, to this CSV file")
    sync.add_argument(
        "--bulk-threshold", type=_bulk_threshold, metavar="N",
        help="send through Bulk API 2.0 when at least N records are to be written "
        "(default: 2000)",
    )
    sync.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    sync.add_argument(
        "--db", type=_database_path, metavar="FILE",
        help="practice org database file, for the practice profile only (default: the profile's, else "
        "the app's own; made and seeded with the default scenario when it does not exist)",
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


def _database_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the practice org database path is empty, so give a file name such as practice-org.sqlite3")
    return Path(text)


def _bulk_threshold(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1")
    return value


def run_sync(args: argparse.Namespace) -> int:
    """Run ``sync ACTION`` with ``args``, print the outcome and return the exit status.

    When the command stops early the sentence goes to stderr and, with ``--json``, an
    object with ``passed`` false, the ``error`` and the ``exit_status`` to stdout.
    """
    try:
        outcome = _run(args)
    except KeyboardInterrupt:
        # _writing turns Ctrl+C during the writes into a CommandStop, so this one came before them.
        return _print_stop(args, CommandStop(CHECK_FAILED_STATUS, STOPPED_BEFORE_WRITING))
    except CommandStop as stop:
        return _print_stop(args, stop)
    _print_outcome(outcome, as_json=args.json)
    return outcome.exit_status


def _print_stop(args: argparse.Namespace, stop: CommandStop) -> int:
    """Print why the command stopped, to stderr and with --json as an object on stdout."""
    print(stop.message, file=sys.stderr)
    if args.json:
        print(json.dumps({"action": args.action, "org": args.org, "passed": False,
                          "error": stop.message, "exit_status": stop.status}, indent=2))
    return stop.status


def _run(args: argparse.Namespace) -> SyncOutcome:
    _check_options(args)
    profile = command_profile(args.org)
    db_path = practice_db(profile, args.db)

    from backstory_desktop.enablement.run import EnablementRun

    run = EnablementRun(profile)
    with ExitStack() as stack:
        _open_org(run, stack, db_path)
        stack.callback(_close_journal, run)
        from backstory_desktop.store.journal import JournalError, RunInProgress

        try:
            if args.action == "history":
                return _history(run, args)
            _check_field(run)
            return _write_action(run, args)
        except RunInProgress as error:
            # Another process (the app or a second command) is syncing this org now.
            raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
        except JournalError as error:
            raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error


def _write_action(run: EnablementRun, args: argparse.Namespace) -> SyncOutcome:
    progress = ProgressPrinter()
    cancel = threading.Event()
    if args.action == "plan":
        return _plan(run, args, progress, cancel)
    if args.action == "apply":
        return _apply(run, args, progress, cancel)
    if args.action == "resume":
        return _resume(run, args, progress, cancel)
    return _retry(run, args, progress, cancel)


def _check_options(args: argparse.Namespace) -> None:
    """Reject options that the action does not take, before the org is opened."""
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
    if args.action in ("apply", "resume", "retry") and not args.yes and not sys.stdin.isatty():
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


def _open_org(run: EnablementRun, stack: ExitStack, db_path: Path | None) -> None:
    """Connect ``run`` to its org; a practice org started here stops when ``stack`` closes."""
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import Step, StepStatus

    if db_path is not None:
        result = enablement.connect(run, start_practice_org(stack, db_path))
    else:
        result = enablement.use_connection(run, resume_saved_session(run.profile))
    if result.step is Step.CONNECT and result.status is not StepStatus.PASSED:
        raise CommandStop(CHECK_FAILED_STATUS, result.reason)


def _close_journal(run: EnablementRun) -> None:
    if run.journal is not None:
        run.journal.close()


def _check_field(run: EnablementRun) -> None:
    """Inspect the Message-ID field, which every sync writes by; stop when it cannot be used."""
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import Step

    enablement.check_field(run)
    state = run.field_state
    if state is None or not state.exists:
        reason = run.checklist.results[Step.MESSAGE_ID_FIELD].reason
        raise CommandStop(CHECK_FAILED_STATUS, f"The sync cannot run because the Message-ID field is not "
                                                f"usable: {reason}")


class ProgressPrinter:
    """A progress callback that prints "message (done of total)" lines to stderr.

    A line is printed for each new message and otherwise at most once a second, so a
    per-record progress does not flood the terminal.
    """

    def __init__(self, stream: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._last_shown: tuple[int, int, str] = (0, 0, "")
        self._last_time = -PROGRESS_INTERVAL_SECONDS

    def __call__(self, done: int, total: int, message: str) -> None:
        now = self._clock()
        state = (done, total, message)
        if state == self._last_shown or (
                message == self._last_shown[2] and now - self._last_time < PROGRESS_INTERVAL_SECONDS
                and done != total):
            return
        self._last_shown, self._last_time = state, now
        line = f"{message} ({done} of {total})" if total > 0 else message
        print(line, file=self._stream or sys.stderr, flush=True)


def _source_mapping(path: Path, key_field: str, columns: list[tuple[str, str]]) -> Any:
    """Return the mapping for a CSV source, None for any other; stop on a CSV or mapping it cannot use.

    The mapping is the guessed one with each ``--csv-column`` NAME=HEADER put over it.
    ``key_field`` is the Message-ID field, the column a Data Loader Task export has for the key.
    """
    from backstory_desktop.sources.base import SourceError
    from backstory_desktop.sources.csv_export import (
        CUSTOM_LABEL,
        CsvMapping,
        check_mapping,
        guess_mapping,
        read_csv_header,
    )
    from backstory_desktop.sources.registry import SourceKind, describe_source, detect_source

    try:
        kind = detect_source(path)
        if kind is not SourceKind.CSV:
            if columns:
                raise CommandStop(USAGE_ERROR_STATUS, f"--csv-column applies to a CSV source only, and "
                                                       f"{path} is not one ({describe_source(kind)}), so "
                                                       "leave --csv-column out.")
            return None
        headers = read_csv_header(path)
    except SourceError as error:
        raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
    mapping = guess_mapping(headers, key_field=key_field)
    if columns:
        chosen = {**mapping.columns, **{CsvColumn(name): header for name, header in columns}}
        mapping = CsvMapping(columns=chosen, label=CUSTOM_LABEL)
    problems = check_mapping(mapping, headers)
    if CsvColumn.MESSAGE_ID not in mapping.columns:
        # check_mapping's sentence asks the admin to choose a column, which the command line does with
        # an option, so a sentence that names the option replaces it.
        problems = [_no_key_column(path, headers),
                    *(problem for problem in problems if not problem.startswith(UNMAPPED_KEY_PREFIX))]
    if problems:
        raise CommandStop(USAGE_ERROR_STATUS, " ".join(problems))
    return mapping


def _no_key_column(path: Path, headers: list[str]) -> str:
    return (f"No column of {path} is chosen for the Message-ID, so name the column that contains each "
            "e-mail's Message-ID with --csv-column message_id=HEADER (the file's columns are "
            f"{', '.join(repr(header) for header in headers)}).")


def _build_plan(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
                cancel: threading.Event) -> Plan:
    from backstory_desktop import enablement
    from backstory_desktop.sources.base import SourceError

    mapping = _source_mapping(args.source, run.profile.field_api_name, args.csv_column)
    try:
        plan = enablement.plan_sync(run, args.source, mapping=mapping, progress=progress, cancel=cancel)
    except SourceError as error:
        raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
    if args.plan_csv is not None:
        from backstory_desktop.sync.result_files import write_plan_csv

        try:
            write_plan_csv(args.plan_csv, plan.rows)
        except OSError as error:
            raise CommandStop(USAGE_ERROR_STATUS, f"Cannot write the plan to {args.plan_csv} "
                                                   f"({error.strerror or error}), so choose another "
                                                   "--plan-csv file.") from error
    return plan


def _plan(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
          cancel: threading.Event) -> SyncOutcome:
    plan = _build_plan(run, args, progress, cancel)
    counts = plan.counts()
    reason = f"Planned {_counts_phrase(counts)}; nothing was written to the org."
    return SyncOutcome("plan", args.org, True, 0, reason, counts, _run_json(run, plan.run_id),
                       plan_csv=str(args.plan_csv) if args.plan_csv else None, not_sent=_not_sent(plan))


def _not_sent(plan: Plan) -> NotSentReport:
    """Gather the plan's inactive owners and the rows it does not send, in one pass over the rows."""
    report = NotSentReport(inactive_owners=[asdict(owner) for owner in plan.inactive_owners])
    for row in plan.rows:
        action = row.action.value
        if action not in NOT_SENT_ACTIONS:
            continue
        if len(report.rows) < MAX_LISTED_ROWS:
            report.rows.append({"source_ref": row.source_ref, "action": action, "key": row.key,
                                "reason": row.reason})
        else:
            report.rows_truncated = True
        group = (action, _reason_wording(row.reason))
        count, references = report.reasons.get(group, (0, []))
        if len(references) < LISTED_REFERENCES:
            references.append(row.source_ref)
        report.reasons[group] = (count + 1, references)
    return report


def _reason_wording(reason: str) -> str:
    """Return the reason without the messages and Tasks of its own row, so alike rows share it."""
    for pattern, replacement in _REASON_SPECIFICS:
        reason = pattern.sub(replacement, reason)
    return reason


def _apply(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
           cancel: threading.Event) -> SyncOutcome:
    from backstory_desktop import enablement

    unfinished = enablement.unfinished_sync(run)
    if unfinished is not None:
        raise CommandStop(USAGE_ERROR_STATUS, f"Run {unfinished.run_id} of this org (from "
                                               f"{unfinished.source}) stopped before its end, so continue it "
                                               "with sync resume first.")
    plan = _build_plan(run, args, progress, cancel)
    counts = plan.counts()
    to_send = counts.get("create", 0) + counts.get("update", 0)
    if to_send == 0:
        reason = f"Planned {_counts_phrase(counts)}; nothing to write."
        return SyncOutcome("apply", args.org, True, 0, reason, counts, _run_json(run, plan.run_id))
    _confirm(args, [f"+ create {counts.get('create', 0)} Tasks",
                    f"~ update {counts.get('update', 0)} Tasks"], run)
    with _writing(run):
        result = enablement.apply_sync(run, settings=_settings(args), progress=progress, cancel=cancel)
        return _step_outcome("apply", args, run, result, counts, plan.run_id)


def _resume(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
            cancel: threading.Event) -> SyncOutcome:
    from backstory_desktop import enablement

    unfinished = enablement.unfinished_sync(run)
    if unfinished is None:
        raise CommandStop(USAGE_ERROR_STATUS, "This org has no run that stopped before its end, so start one "
                                               "with sync apply.")
    _confirm(args, [f"continue run {unfinished.run_id} from {unfinished.source}: "
                    f"{_states_phrase(unfinished)}"], run)
    run.sync_settings = _settings(args)
    with _writing(run):
        result = enablement.resume_sync(run, unfinished.run_id, progress=progress, cancel=cancel)
        return _step_outcome("resume", args, run, result, dict(unfinished.counts), unfinished.run_id)


def _retry(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
           cancel: threading.Event) -> SyncOutcome:
    from backstory_desktop import enablement
    from backstory_desktop.store.journal import ItemState

    queued = [summary for summary in enablement.sync_history(run) if summary.states.get(ItemState.QUEUED)]
    if not queued:
        return SyncOutcome("retry", args.org, True, 0, "No run of this org has queued records to send.")
    summary = queued[0]
    _confirm(args, [f"send again {summary.states[ItemState.QUEUED]} queued records of run "
                    f"{summary.run_id}"], run)
    run.sync_settings = _settings(args)
    with _writing(run):
        result = enablement.retry_backfill(run, summary.run_id, progress=progress, cancel=cancel)
        return _step_outcome("retry", args, run, result, dict(summary.counts), summary.run_id)


def _history(run: EnablementRun, args: argparse.Namespace) -> SyncOutcome:
    from backstory_desktop import enablement

    runs = [_summary_json(summary) for summary in enablement.sync_history(run)]
    reason = f"{len(runs)} runs of this org." if len(runs) != 1 else "1 run of this org."
    return SyncOutcome("history", args.org, True, 0, reason, runs=runs)


@contextmanager
def _writing(run: EnablementRun) -> Iterator[None]:
    """Mark the steps that write to the org, so Ctrl+C during them says whether sync resume has work."""
    try:
        yield
    except KeyboardInterrupt:
        raise CommandStop(CHECK_FAILED_STATUS, _stopped_while_writing(run)) from None


def _stopped_while_writing(run: EnablementRun) -> str:
    from backstory_desktop import enablement

    # The journal, not the moment of the key press, tells whether rows are left, because the
    # last batch may already have its outcomes recorded.
    unfinished = enablement.unfinished_sync(run)
    if unfinished is None:
        return STOPPED_AFTER_WRITING
    return (f"The sync was stopped with Ctrl+C while it was writing run {unfinished.run_id} to the org, so "
            "continue it with sync resume.")


def _settings(args: argparse.Namespace) -> Any:
    from backstory_desktop.sync.settings import SyncSettings

    if args.bulk_threshold is None:
        return SyncSettings()
    return SyncSettings(bulk_threshold=args.bulk_threshold)


def _confirm(args: argparse.Namespace, lines: list[str], run: EnablementRun) -> None:
    """Show what will be written and ask, unless --yes confirmed it; stop when not confirmed."""
    if args.yes:
        return
    org = run.connection.instance_url if run.connection is not None else run.profile.alias
    print(f"The sync will write to {org}:")
    for line in lines:
        print(f"  {line}")
    reply = input("Write these changes? [y/N] ").strip().lower()
    if reply not in ("y", "yes"):
        raise CommandStop(CHECK_FAILED_STATUS, "Nothing was written because the changes were not confirmed.")


def _step_outcome(action: str, args: argparse.Namespace, run: EnablementRun, result: StepResult,
                  counts: dict[str, int], run_id: str | None) -> SyncOutcome:
    from backstory_desktop.core.checklist import StepStatus
    from backstory_desktop.salesforce.errors import SignInRequired

    passed = result.status is StepStatus.PASSED
    status = 0 if passed else CHECK_FAILED_STATUS
    if result.details.get("error_code") == SignInRequired.ERROR_CODE:
        status = SIGN_IN_NEEDED_STATUS
    details = _listed_in_doubt(json.loads(json.dumps(result.details, default=str)))
    return SyncOutcome(action, args.org, passed, status, result.reason, counts,
                       _run_json(run, run_id), details=details)


def _listed_in_doubt(details: dict[str, Any]) -> dict[str, Any]:
    """Keep the first in-doubt keys of a result's details, with the count of all of them."""
    keys = details.get("in_doubt")
    if isinstance(keys, list):
        details.setdefault("in_doubt_count", len(keys))
        details["in_doubt"] = keys[:MAX_LISTED_IN_DOUBT_KEYS]
    return details


def _run_json(run: EnablementRun, run_id: str | None) -> dict[str, Any] | None:
    """Return the journal's summary of a run as JSON values, or None without one."""
    if run_id is None:
        return None
    from backstory_desktop import enablement

    for summary in enablement.sync_history(run):
        if summary.run_id == run_id:
            return _summary_json(summary)
    return {"run_id": run_id}


def _summary_json(summary: RunSummary) -> dict[str, Any]:
    values = asdict(summary)
    values["states"] = {str(state): count for state, count in summary.states.items()}
    values["counts"] = dict(summary.counts)
    result: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return result


def _counts_phrase(counts: dict[str, int]) -> str:
    names = ("create", "update", "conflict", "invalid", "excluded")
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in names)


def _states_phrase(summary: RunSummary) -> str:
    parts = [f"{state} {count}" for state, count in summary.states.items() if count]
    return ", ".join(parts) or "nothing recorded yet"


def _print_outcome(outcome: SyncOutcome, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_outcome_json(outcome), indent=2, default=str))
        return
    print(outcome.reason)
    if outcome.run is not None:
        _print_run(outcome.run)
    for summary in outcome.runs:
        _print_run(summary)
    if outcome.not_sent is not None:
        _print_not_sent(outcome.not_sent)
    if outcome.plan_csv:
        print(f"Plan written to {outcome.plan_csv}")
    if outcome.action == "plan" and outcome.counts.get("conflict"):
        print(CONFLICTS_HINT)


def _outcome_json(outcome: SyncOutcome) -> dict[str, Any]:
    values = asdict(outcome)
    del values["not_sent"]
    if outcome.not_sent is not None:
        values["inactive_owners"] = outcome.not_sent.inactive_owners
        values["rows"] = outcome.not_sent.rows
        values["rows_truncated"] = outcome.not_sent.rows_truncated
    return values


def _print_not_sent(report: NotSentReport) -> None:
    from backstory_desktop.enablement.run import count_phrase

    for owner in report.inactive_owners:
        print(f"inactive owner {owner['username']} ({owner['user_id']}) replaced by {owner['replaced_by']} "
              f"on {count_phrase(owner['rows'], 'Task')}")
    by_action = sorted(report.reasons.items(), key=lambda group: NOT_SENT_ACTIONS.index(group[0][0]))
    for (action, reason), (count, references) in by_action:
        listed = "; ".join(references)
        if count > len(references):
            listed += f"; and {count - len(references)} more"
        print(f"{action} {count}: {reason}")
        print(f"  {listed}")


def _print_run(summary: dict[str, Any]) -> None:
    states = ", ".join(f"{state} {count}" for state, count in summary.get("states", {}).items() if count)
    line = f"run {summary.get('run_id')}"
    for key in ("created_at", "state", "source"):
        if summary.get(key):
            line += f"  {summary[key]}"
    if states:
        line += f"  ({states})"
    print(line)
    if summary.get("stop_reason"):
        print(f"  stopped: {summary['stop_reason']}")
    if summary.get("result_folder"):
        print(f"  result files: {summary['result_folder']}")
