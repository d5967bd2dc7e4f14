"""The ``sync`` command: plan, apply, resume and retry a local sync, and list the runs of an org.

``sync plan`` reads a source and prints the dry-run plan; nothing is written to the org.
``sync apply`` plans again and applies the plan once confirmed (``--yes`` confirms at once).
``sync resume`` continues the run of the org that stopped before its end, and ``sync retry``
sends again what a run left queued. ``sync history`` lists the runs of the org, newest first.

Every run is journalled, so a command stopped at any moment (Ctrl+C, a crash, a killed
process) is continued by ``sync resume`` without writing a Task twice. The org is opened as
``check`` opens it: the built-in practice profile starts its own practice org from its
database file (``--db``), any other profile resumes its saved sign-in and never opens a browser.

Exit statuses are those of ``check``: 0 done, 1 some records failed, were queued or the run
stopped, 2 a usage, profile or source error, 3 the org's saved sign-in cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backstory_desktop.cli_common import (
    CHECK_FAILED_STATUS,
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    ProfileNotFound,
    find_profile,
)

if TYPE_CHECKING:
    from backstory_desktop.core.checklist import StepResult
    from backstory_desktop.core.plan import Plan
    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.store.journal import RunSummary
    from backstory_desktop.store.settings import OrgProfile

ACTIONS = ("plan", "apply", "resume", "retry", "history")
# The one mapping a CSV source can take on the command line: the guessed one.
CSV_MAPPINGS = ("auto",)
# The scenario a new practice org database is seeded with, as `check` does.
DEFAULT_SCENARIO = "default"
# Progress lines go to stderr at most this often, besides each new message.
PROGRESS_INTERVAL_SECONDS = 1.0


class SyncStop(Exception):
    """The command stops: the exit status and the sentence printed to stderr."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        help="how the columns of a CSV source are read: auto guesses them from the header row "
        "(default: %(default)s)",
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
        stop = SyncStop(CHECK_FAILED_STATUS, "The sync was stopped with Ctrl+C before its end, so "
                                             "continue it with sync resume.")
        return _print_stop(args, stop)
    except SyncStop as stop:
        return _print_stop(args, stop)
    _print_outcome(outcome, as_json=args.json)
    return outcome.exit_status


def _print_stop(args: argparse.Namespace, stop: SyncStop) -> int:
    """Print why the command stopped, to stderr and with --json as an object on stdout."""
    print(stop.message, file=sys.stderr)
    if args.json:
        print(json.dumps({"action": args.action, "org": args.org, "passed": False,
                          "error": stop.message, "exit_status": stop.status}, indent=2))
    return stop.status


def _run(args: argparse.Namespace) -> SyncOutcome:
    _check_options(args)
    profile = _profile(args.org)
    db_path = _practice_db(profile, args.db)

    from backstory_desktop.enablement.run import EnablementRun

    run = EnablementRun(profile)
    with ExitStack() as stack:
        _open_org(run, stack, db_path)
        stack.callback(_close_journal, run)
        if args.action == "history":
            return _history(run, args)
        _check_field(run)
        from backstory_desktop.store.journal import RunInProgress

        try:
            return _write_action(run, args)
        except RunInProgress as error:
            # Another process (the app or a second command) is syncing this org now.
            raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error


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
        raise SyncStop(USAGE_ERROR_STATUS, f"sync {args.action} reads a source, so give --source with an "
                                           "mbox file, a Maildir or .eml folder, or a CSV file.")
    if args.action not in ("plan", "apply"):
        for option, value in (("--source", args.source), ("--plan-csv", args.plan_csv)):
            if value is not None:
                raise SyncStop(USAGE_ERROR_STATUS, f"sync {args.action} reads no source, so leave "
                                                   f"{option} out.")
    if args.source is not None and not args.source.exists():
        raise SyncStop(USAGE_ERROR_STATUS, f"The source {args.source} does not exist, so give the path "
                                           "of an mbox file, a Maildir or .eml folder, or a CSV file.")
    if args.plan_csv is not None and not args.plan_csv.absolute().parent.is_dir():
        raise SyncStop(USAGE_ERROR_STATUS, f"Cannot write the plan to {args.plan_csv} because its folder "
                                           "does not exist, so choose another --plan-csv file.")
    if args.action in ("apply", "resume", "retry") and not args.yes and not sys.stdin.isatty():
        raise SyncStop(USAGE_ERROR_STATUS, f"sync {args.action} writes Tasks to the org and needs a "
                                           "confirmation, but no terminal can prompt for it, so add --yes.")


def _profile(alias: str) -> OrgProfile:
    """Return the profile to sync; the built-in practice org needs no saved one."""
    from backstory_desktop.store.settings import (
        PRACTICE_PROFILE_ALIAS,
        OrgProfile,
        ProfilesFileError,
        load_profiles,
    )

    if alias != PRACTICE_PROFILE_ALIAS:
        try:
            return find_profile(alias, built_in=PRACTICE_PROFILE_ALIAS)
        except ProfileNotFound as error:
            raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error
    try:
        saved = load_profiles().get(alias)
    except (ProfilesFileError, OSError) as error:
        raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error
    return saved or OrgProfile(alias=alias, kind="practice")


def _practice_db(profile: OrgProfile, option: Path | None) -> Path | None:
    """Return the practice org database: --db, else the profile's, else the app's own; None for a real org."""
    from backstory_desktop.store.paths import practice_org_db

    if profile.kind != "practice":
        if option is not None:
            raise SyncStop(USAGE_ERROR_STATUS, f"--db names a practice org database, but the org profile "
                                               f"{profile.alias} is not a practice org, so leave --db out.")
        return None
    path = option or (Path(profile.practice_db) if profile.practice_db else practice_org_db())
    profile.practice_db = str(path)
    return path


def _open_org(run: EnablementRun, stack: ExitStack, db_path: Path | None) -> None:
    """Connect ``run`` to its org; a practice org started here stops when ``stack`` closes."""
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import Step, StepStatus
    from backstory_desktop.salesforce.errors import SignInRequired
    from backstory_desktop.store.secrets import SecretsLocked

    profile = run.profile
    if db_path is not None:
        from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
        from backstory_desktop.practice_org.server import PracticeOrg
        from backstory_desktop.store.paths import ensure_private_dir

        try:
            ensure_private_dir(db_path.absolute().parent)
            org = stack.enter_context(PracticeOrg(db_path, scenario=_stored_scenario(db_path)))
        except (PracticeOrgDatabaseError, OSError) as error:
            raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error
        result = enablement.connect(run, org)
    else:
        from backstory_desktop.org_sessions import resume_session, secret_store

        try:
            connection = resume_session(profile, secret_store(), save_profile=False)
        except SignInRequired as error:
            message = (f"The saved sign-in of {profile.alias} could not be resumed ({error.reason}), "
                       "so sign in again in the app.")
            raise SyncStop(SIGN_IN_NEEDED_STATUS, message) from error
        except SecretsLocked as error:
            raise SyncStop(SIGN_IN_NEEDED_STATUS, str(error)) from error
        result = enablement.use_connection(run, connection)
    if result.step is Step.CONNECT and result.status is not StepStatus.PASSED:
        raise SyncStop(CHECK_FAILED_STATUS, result.reason)


def _close_journal(run: EnablementRun) -> None:
    if run.journal is not None:
        run.journal.close()


def _stored_scenario(db_path: Path) -> str:
    """Return the scenario an existing practice org database keeps, else the default one."""
    import sqlite3
    from contextlib import closing

    from backstory_desktop.practice_org.seed import SCENARIOS

    try:
        uri = db_path.absolute().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as database:
            row = database.execute("SELECT value FROM meta WHERE key = 'scenario'").fetchone()
    except (sqlite3.Error, ValueError):
        return DEFAULT_SCENARIO
    return str(row[0]) if row and row[0] in SCENARIOS else DEFAULT_SCENARIO


def _check_field(run: EnablementRun) -> None:
    """Inspect the Message-ID field, which every sync writes by; stop when it cannot be used."""
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import Step

    enablement.check_field(run)
    state = run.field_state
    if state is None or not state.exists:
        reason = run.checklist.results[Step.MESSAGE_ID_FIELD].reason
        raise SyncStop(CHECK_FAILED_STATUS, f"The sync cannot run because the Message-ID field is not "
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


def _source_mapping(path: Path, key_field: str) -> Any:
    """Return the guessed mapping for a CSV source, None for any other; stop on a CSV it cannot read.

    ``key_field`` is the Message-ID field, the column a Data Loader Task export has for the key.
    """
    from backstory_desktop.sources.base import SourceError
    from backstory_desktop.sources.csv_export import check_mapping, guess_mapping, read_csv_header
    from backstory_desktop.sources.registry import SourceKind, detect_source

    try:
        if detect_source(path) is not SourceKind.CSV:
            return None
        headers = read_csv_header(path)
    except SourceError as error:
        raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error
    mapping = guess_mapping(headers, key_field=key_field)
    problems = check_mapping(mapping, headers)
    if problems:
        raise SyncStop(USAGE_ERROR_STATUS, " ".join(problems))
    return mapping


def _build_plan(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
                cancel: threading.Event) -> Plan:
    from backstory_desktop import enablement
    from backstory_desktop.sources.base import SourceError

    mapping = _source_mapping(args.source, run.profile.field_api_name)
    try:
        plan = enablement.plan_sync(run, args.source, mapping=mapping, progress=progress, cancel=cancel)
    except SourceError as error:
        raise SyncStop(USAGE_ERROR_STATUS, str(error)) from error
    if args.plan_csv is not None:
        from backstory_desktop.sync.result_files import write_plan_csv

        try:
            write_plan_csv(args.plan_csv, plan.rows)
        except OSError as error:
            raise SyncStop(USAGE_ERROR_STATUS, f"Cannot write the plan to {args.plan_csv} "
                                               f"({error.strerror or error}), so choose another "
                                               "--plan-csv file.") from error
    return plan


def _plan(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
          cancel: threading.Event) -> SyncOutcome:
    plan = _build_plan(run, args, progress, cancel)
    counts = plan.counts()
    reason = f"Planned {_counts_phrase(counts)}; nothing was written to the org."
    return SyncOutcome("plan", args.org, True, 0, reason, counts, _run_json(run, plan.run_id),
                       plan_csv=str(args.plan_csv) if args.plan_csv else None)


def _apply(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
           cancel: threading.Event) -> SyncOutcome:
    from backstory_desktop import enablement

    unfinished = enablement.unfinished_sync(run)
    if unfinished is not None:
        raise SyncStop(USAGE_ERROR_STATUS, f"Run {unfinished.run_id} of this org (from {unfinished.source}) "
                                           "stopped before its end, so continue it with sync resume first.")
    plan = _build_plan(run, args, progress, cancel)
    counts = plan.counts()
    to_send = counts.get("create", 0) + counts.get("update", 0)
    if to_send == 0:
        reason = f"Planned {_counts_phrase(counts)}; nothing to write."
        return SyncOutcome("apply", args.org, True, 0, reason, counts, _run_json(run, plan.run_id))
    _confirm(args, [f"+ create {counts.get('create', 0)} Tasks",
                    f"~ update {counts.get('update', 0)} Tasks"], run)
    result = enablement.apply_sync(run, settings=_settings(args), progress=progress, cancel=cancel)
    return _step_outcome("apply", args, run, result, counts, plan.run_id)


def _resume(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
            cancel: threading.Event) -> SyncOutcome:
    from backstory_desktop import enablement

    unfinished = enablement.unfinished_sync(run)
    if unfinished is None:
        raise SyncStop(USAGE_ERROR_STATUS, "This org has no run that stopped before its end, so start one "
                                           "with sync apply.")
    _confirm(args, [f"continue run {unfinished.run_id} from {unfinished.source}: "
                    f"{_states_phrase(unfinished)}"], run)
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
    result = enablement.retry_backfill(run, summary.run_id, progress=progress, cancel=cancel)
    return _step_outcome("retry", args, run, result, dict(summary.counts), summary.run_id)


def _history(run: EnablementRun, args: argparse.Namespace) -> SyncOutcome:
    from backstory_desktop import enablement

    runs = [_summary_json(summary) for summary in enablement.sync_history(run)]
    reason = f"{len(runs)} runs of this org." if len(runs) != 1 else "1 run of this org."
    return SyncOutcome("history", args.org, True, 0, reason, runs=runs)


def _settings(args: argparse.Namespace) -> Any:
    from backstory_desktop.sync.engine import SyncSettings

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
        raise SyncStop(CHECK_FAILED_STATUS, "Nothing was written because the changes were not confirmed.")


def _step_outcome(action: str, args: argparse.Namespace, run: EnablementRun, result: StepResult,
                  counts: dict[str, int], run_id: str | None) -> SyncOutcome:
    from backstory_desktop.core.checklist import StepStatus
    from backstory_desktop.salesforce.errors import SignInRequired

    passed = result.status is StepStatus.PASSED
    status = 0 if passed else CHECK_FAILED_STATUS
    if result.details.get("error_code") == SignInRequired.ERROR_CODE:
        status = SIGN_IN_NEEDED_STATUS
    details = json.loads(json.dumps(result.details, default=str))
    return SyncOutcome(action, args.org, passed, status, result.reason, counts,
                       _run_json(run, run_id), details=details)


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
        print(json.dumps(asdict(outcome), indent=2, default=str))
        return
    print(outcome.reason)
    if outcome.run is not None:
        _print_run(outcome.run)
    for summary in outcome.runs:
        _print_run(summary)
    if outcome.plan_csv:
        print(f"Plan written to {outcome.plan_csv}")


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
