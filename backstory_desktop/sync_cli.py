"""The ``sync`` command: plan, apply, resume and retry a local sync, and list the runs of an org.

``sync plan`` reads a source and prints the dry-run plan; nothing is written to the org.
``sync apply`` plans again and applies the plan once confirmed (``--yes`` confirms at once).
``sync resume`` continues the run of the org that stopped before its end, and ``sync retry``
sends again what a run left queued. ``sync history`` lists the runs of the org, newest first.

Every run is journalled, so a command stopped while it writes to the org (Ctrl+C, a crash,
a killed process) is continued by ``sync resume`` without writing a Task twice. After Ctrl+C the
command prints the run left in the journal and the command that continues it, or, when the key
came after the last write, the run's outcome as at a normal end; later presses are ignored until
the command has printed it. The org is opened as
``check`` opens it: the built-in practice profile starts its own practice org from its
database file (``--db``), any other profile resumes its saved sign-in and never opens a browser.
``sync history`` on the practice profile reads the org's Id from its database file without starting
it, so it works while the app's practice org has that file locked.

Exit statuses are those of ``check``: 0 done (also when resume or retry find nothing to do), 1 some
records failed, were queued or the run stopped, 2 a usage, profile or source error, 3 the org's saved
sign-in cannot be used. The options are in ``sync_cli_options``, the printed outcome in ``sync_cli_output``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
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
from backstory_desktop.sync_cli_options import add_sync_command as add_sync_command
from backstory_desktop.sync_cli_options import bulk_threshold, check_confirmation, check_options
from backstory_desktop.sync_cli_output import (
    ProgressPrinter,
    SyncOutcome,
    counts_phrase,
    not_sent_report,
    print_outcome,
    print_run,
    states_phrase,
    stored_spelling_advice,
    summary_json,
)

if TYPE_CHECKING:
    from backstory_desktop.core.checklist import StepResult
    from backstory_desktop.core.plan import Plan
    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.sources.csv_mapping import MappingFault
    from backstory_desktop.store.journal import RunSummary

# In-doubt keys listed in the --json of apply, resume and retry; in_doubt_count counts all of them.
MAX_LISTED_IN_DOUBT_KEYS = 100
# The stop message for Ctrl+C before the first write. No run is left to resume, because a plan cut
# short is never applied.
STOPPED_BEFORE_WRITING = ("The sync was stopped with Ctrl+C before it wrote anything to the org, so run "
                          "the same command again to start over.")
# The outcomes of resume and retry when there is nothing to do, which is no failure.
NOTHING_TO_RESUME = "Nothing to resume: no run of this org stopped before its end."
NOTHING_TO_RETRY = "Nothing to retry: no run of this org has queued records."


@dataclass
class _Command:
    """The progress of one sync command so far, read when it handles Ctrl+C.

    The first Ctrl+C raises KeyboardInterrupt. From then on, and once the outcome is known, Ctrl+C is
    ignored until the process ends, so that closing the journal, stopping the practice org and
    printing what the journal contains are never cut short. The signal is then ignored rather than
    handled, because Python gives handled signals their default action back while it exits.
    """

    run_id: str | None = None  # the run the command writes, once known
    writing: bool = False  # True once the writes begin
    outcome: SyncOutcome | None = None
    _main_thread: bool = False

    def catch_ctrl_c(self) -> None:
        """Handle SIGINT here; only the main thread may, so elsewhere Ctrl+C keeps its own handler."""
        self._main_thread = threading.current_thread() is threading.main_thread()
        if self._main_thread:
            signal.signal(signal.SIGINT, self._on_ctrl_c)

    def ignore_ctrl_c(self) -> None:
        """Ignore Ctrl+C from now on: what is left is the clean-up and the printed outcome."""
        if self._main_thread:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _on_ctrl_c(self, _signal_number: int, _frame: FrameType | None) -> None:
        self.ignore_ctrl_c()
        raise KeyboardInterrupt


class SyncStop(CommandStop):
    """A stop that leaves a run in the journal, so the run and the next step are printed to stdout too."""

    def __init__(self, status: int, message: str, run: dict[str, Any] | None, next_step: str) -> None:
        super().__init__(status, message)
        self.run = run
        self.next_step = next_step


def run_sync(args: argparse.Namespace) -> int:
    """Run ``sync ACTION`` with ``args``, print the outcome and return the exit status.

    When the command stops early the sentence goes to stderr and, with ``--json``, an
    object with ``passed`` false, the ``error`` and the ``exit_status`` to stdout.
    """
    command = _Command()
    command.catch_ctrl_c()
    try:
        try:
            outcome = _run(args, command)
        except KeyboardInterrupt:
            # Ctrl+C before the org was opened, so nothing was planned or written.
            stop = CommandStop(CHECK_FAILED_STATUS, STOPPED_BEFORE_WRITING)
            return _printed(lambda: _print_stop(args, stop), stop.status)
        except CommandStop as stop:
            return _printed(lambda: _print_stop(args, stop), stop.status)
        return _printed(lambda: print_outcome(outcome, as_json=args.json), outcome.exit_status)
    finally:
        command.ignore_ctrl_c()


def _printed(print_lines: Callable[[], None], status: int) -> int:
    """Call ``print_lines`` and return ``status``, also when the reader stops early (``| head``).

    The lines are flushed here, so that a closed pipe raises BrokenPipeError in this function
    and not at exit. Standard output then goes to the null device, as the Python documentation
    on SIGPIPE advises, so that the interpreter's own flush at exit does not fail again.
    """
    try:
        print_lines()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def _print_stop(args: argparse.Namespace, stop: CommandStop) -> None:
    """Print why the command stopped to stderr; print the run it left, or with --json an object, to stdout."""
    print(stop.message, file=sys.stderr)
    left = stop if isinstance(stop, SyncStop) else None
    if args.json:
        values: dict[str, Any] = {"action": args.action, "org": args.org, "passed": False,
                                  "error": stop.message, "exit_status": stop.status}
        if left is not None:
            values.update(run=left.run, next_step=left.next_step)
        print(json.dumps(values, indent=2))
    elif left is not None:
        if left.run is not None:
            print_run(left.run)
        print(left.next_step)


def _run(args: argparse.Namespace, command: _Command) -> SyncOutcome:
    # The profile comes first, so that a mistyped --org is reported before the source is looked at.
    profile = command_profile(args.org)
    check_options(args)
    db_path = practice_db(profile, args.db)

    from backstory_desktop.enablement.run import EnablementRun

    run = EnablementRun(profile)
    with ExitStack() as stack:
        stack.callback(_close_journal, run)
        from backstory_desktop.store.journal import JournalError

        try:
            if args.action == "history" and db_path is not None:
                return _practice_history(run, args, db_path)
            _open_org(run, stack, db_path)
            if args.action == "history":
                return _history(run, args, run.require_connection().org_id)
            _check_field(run)
            command.outcome = _write_action(run, args, command)
            command.ignore_ctrl_c()
            return command.outcome
        except KeyboardInterrupt:
            command.ignore_ctrl_c()
            if command.outcome is not None:
                return command.outcome
            return _stopped(run, args, command)
        except JournalError as error:
            raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error


def _write_action(run: EnablementRun, args: argparse.Namespace, command: _Command) -> SyncOutcome:
    progress = ProgressPrinter()
    cancel = threading.Event()
    if args.action == "plan":
        return _plan(run, args, progress, cancel)
    if args.action == "apply":
        return _apply(run, args, progress, cancel, command)
    if args.action == "resume":
        return _resume(run, args, progress, cancel, command)
    return _retry(run, args, progress, cancel, command)


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
    result = run.checklist.results[Step.MESSAGE_ID_FIELD]
    if state is None and result.details.get("transient"):
        # Salesforce did not respond, so nothing is known about the field yet.
        raise CommandStop(CHECK_FAILED_STATUS, f"The sync cannot run now: {result.reason}")
    if state is None:
        raise CommandStop(CHECK_FAILED_STATUS, f"The sync cannot run because the Message-ID field could not "
                                                f"be checked: {result.reason}")
    if not state.exists:
        raise CommandStop(CHECK_FAILED_STATUS, f"The sync cannot run because the Message-ID field is not "
                                                f"usable: {result.reason}")


def _source_mapping(path: Path, key_field: str, columns: list[tuple[str, str]]) -> Any:
    """Return the mapping for a CSV source, None for any other; stop on a CSV or mapping it cannot use.

    The mapping is the guessed one with each ``--csv-column`` NAME=HEADER put over it.
    ``key_field`` is the Message-ID field, the column a Data Loader Task export has for the key.
    """
    from backstory_desktop.sources.base import SourceError
    from backstory_desktop.sources.csv_export import (
        CUSTOM_LABEL,
        CsvColumn,
        CsvMapping,
        guess_mapping,
        mapping_faults,
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
    problems = [_fault_message(path, fault, headers) for fault in mapping_faults(mapping, headers)]
    if problems:
        raise CommandStop(USAGE_ERROR_STATUS, " ".join(problems))
    return mapping


def _fault_message(path: Path, fault: MappingFault, headers: list[str]) -> str:
    """Return the sentence for a mapping fault, naming --csv-column where the fix is another column."""
    from backstory_desktop.sources.csv_mapping import COLUMN_LABELS, MappingFaultKind, listed_headers

    if fault.kind is MappingFaultKind.NO_KEY_COLUMN:
        return (f"No column of {path} is chosen for the Message-ID, so name the column that contains each "
                "e-mail's Message-ID with --csv-column message_id=HEADER (the file's columns are "
                f"{listed_headers(headers)}).")
    if fault.kind is MappingFaultKind.SHARED_COLUMN and fault.column is not None:
        label = COLUMN_LABELS[fault.column]
        return (f"The column {fault.header!r} is chosen for both Message-ID and {label}, so choose another "
                f"column for {label} with --csv-column {fault.column.value}=HEADER.")
    return fault.message


def _build_plan(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
                cancel: threading.Event) -> Plan:
    import requests
    from simple_salesforce.exceptions import SalesforceError

    from backstory_desktop import enablement
    from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain
    from backstory_desktop.sources.base import SourceError

    mapping = _source_mapping(args.source, run.profile.field_api_name, args.csv_column)
    try:
        plan = enablement.plan_sync(run, args.source, mapping=mapping, progress=progress, cancel=cancel)
    except SourceError as error:
        raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
    except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
        # The plan looks Tasks and people up in the org, and a failed lookup ends it.
        problem = explain(error)
        status = SIGN_IN_NEEDED_STATUS if isinstance(problem, SignInRequired) else CHECK_FAILED_STATUS
        raise CommandStop(status, f"The plan was not finished, because a lookup in the org failed: "
                                  f"{problem.sentence}") from error
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
    from backstory_desktop.enablement.sync import sync_journal

    plan = _build_plan(run, args, progress, cancel)
    if plan.run_id is None:
        raise RuntimeError("the plan has no run in the journal")
    counts = plan.counts()
    reason_counts = plan.reason_counts()
    reason = f"Planned {counts_phrase(counts)}; nothing was written to the org."
    return SyncOutcome("plan", args.org, True, 0, reason, counts, _run_json(run, plan.run_id),
                       plan_csv=str(args.plan_csv) if args.plan_csv else None, reason_counts=reason_counts,
                       advice=stored_spelling_advice(reason_counts),
                       not_sent=not_sent_report(plan, sync_journal(run), plan.run_id))


def _apply(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
           cancel: threading.Event, command: _Command) -> SyncOutcome:
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
        reason = f"Planned {counts_phrase(counts)}; nothing to write."
        return SyncOutcome("apply", args.org, True, 0, reason, counts, _run_json(run, plan.run_id))
    _confirm(args, [f"+ create {counts.get('create', 0)} Tasks",
                    f"~ update {counts.get('update', 0)} Tasks"], run)
    with _writing(command, plan.run_id):
        result = enablement.apply_sync(run, settings=_settings(args), progress=progress, cancel=cancel)
        return _step_outcome("apply", args, run, result, counts, plan.run_id)


def _resume(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
            cancel: threading.Event, command: _Command) -> SyncOutcome:
    from backstory_desktop import enablement

    unfinished = enablement.unfinished_sync(run)
    if unfinished is None:
        # Reading the runs writes the result files that a finished run lacks.
        enablement.sync_history(run)
        return SyncOutcome("resume", args.org, True, 0, NOTHING_TO_RESUME)
    lines = [f"continue run {unfinished.run_id} from {unfinished.source}: {states_phrase(unfinished)}"]
    command.run_id = unfinished.run_id
    _confirm(args, lines, run)
    with _writing(command, unfinished.run_id):
        result = enablement.resume_sync(run, unfinished.run_id, settings=_settings(args), progress=progress,
                                        cancel=cancel, confirmed_lines=lines)
        return _step_outcome("resume", args, run, result, dict(unfinished.counts), unfinished.run_id)


def _retry(run: EnablementRun, args: argparse.Namespace, progress: ProgressPrinter,
           cancel: threading.Event, command: _Command) -> SyncOutcome:
    from backstory_desktop import enablement
    from backstory_desktop.store.journal import ItemState

    queued = [summary for summary in enablement.sync_history(run) if summary.states.get(ItemState.QUEUED)]
    if not queued:
        return SyncOutcome("retry", args.org, True, 0, NOTHING_TO_RETRY)
    summary = queued[0]
    lines = [f"send again {summary.states[ItemState.QUEUED]} queued records of run {summary.run_id}"]
    command.run_id = summary.run_id
    _confirm(args, lines, run)
    with _writing(command, summary.run_id):
        result = enablement.retry_backfill(run, summary.run_id, settings=_settings(args), progress=progress,
                                           cancel=cancel, confirmed_lines=lines)
        return _step_outcome("retry", args, run, result, dict(summary.counts), summary.run_id)


def _history(run: EnablementRun, args: argparse.Namespace, org_id: str | None) -> SyncOutcome:
    """List the org's runs in the journal; ``org_id`` None means an org that does not exist yet.

    A finished run without result files gets them here (see ``with_result_files``).
    """
    from backstory_desktop.enablement.sync import sync_journal, with_result_files

    journal = sync_journal(run)
    summaries = with_result_files(journal, journal.runs(org_id)) if org_id is not None else []
    runs = [summary_json(summary) for summary in summaries]
    reason = f"{len(runs)} runs of this org." if len(runs) != 1 else "1 run of this org."
    return SyncOutcome("history", args.org, True, 0, reason, runs=runs)


def _practice_history(run: EnablementRun, args: argparse.Namespace, db_path: Path) -> SyncOutcome:
    """List the runs of a practice org without starting it, so the app may keep its database open."""
    from backstory_desktop.practice_org.database import PracticeOrgDatabaseError, check_database_path
    from backstory_desktop.practice_org.ids import UNRECORDED_ORG_ID
    from backstory_desktop.practice_org.store import ORG_ID_META

    if db_path.exists() and not db_path.is_file():
        # The same sentence as the commands that start the practice org.
        try:
            check_database_path(db_path)
        except PracticeOrgDatabaseError as error:
            raise CommandStop(USAGE_ERROR_STATUS, str(error)) from error
    if not db_path.is_file():
        return _history(run, args, None)
    try:
        uri = db_path.absolute().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as database:
            row = database.execute("SELECT value FROM meta WHERE key = ?", (ORG_ID_META,)).fetchone()
    except sqlite3.Error as error:
        raise CommandStop(USAGE_ERROR_STATUS, f"The practice org database {db_path} cannot be read "
                                               f"({error}), so choose another --db file.") from error
    return _history(run, args, str(row[0]) if row and row[0] else UNRECORDED_ORG_ID)


@contextmanager
def _writing(command: _Command, run_id: str | None) -> Iterator[None]:
    """Mark the steps that write run ``run_id`` to the org, so Ctrl+C during them reads the journal."""
    command.run_id, command.writing = run_id, True
    yield


def _stopped(run: EnablementRun, args: argparse.Namespace, command: _Command) -> SyncOutcome:
    """Tell what Ctrl+C left from what the journal holds, not from the moment of the key press.

    Before the writes the command stops. During them the run is stopped, to resume, unless the
    journal already has every row's outcome, as when the key is pressed after the last write:
    then the run's outcome is returned as at a normal end.
    """
    from backstory_desktop.enablement.sync import sync_journal, with_result_files

    run_id = command.run_id or (run.plan.run_id if run.plan is not None else None)
    if run_id is None:
        raise SyncStop(CHECK_FAILED_STATUS, STOPPED_BEFORE_WRITING, None,
                       "The journal contains no run of this command, because its plan was not finished.")
    journal = sync_journal(run)
    summary = journal.run(run_id)
    if not command.writing:
        next_step = (f"The journal keeps this run as planned only, so plan and apply again with: "
                     f"{_command(args, 'apply')}")
        if args.action != "apply":
            next_step = (f"The journal keeps this run as it was, so continue it with: "
                         f"{_command(args, args.action)}")
        raise SyncStop(CHECK_FAILED_STATUS, STOPPED_BEFORE_WRITING, summary_json(summary), next_step)
    if summary.work_left:
        message = (f"The sync was stopped with Ctrl+C while it was writing run {run_id} to the org, "
                   "so continue it with sync resume.")
        raise SyncStop(CHECK_FAILED_STATUS, message, summary_json(summary),
                       f"Continue it with: {_command(args, 'resume')}")
    return _ended_outcome(args, with_result_files(journal, [summary])[0])


def _ended_outcome(args: argparse.Namespace, summary: RunSummary) -> SyncOutcome:
    """Return the outcome of a run that Ctrl+C reached after its last write, from the journal."""
    from backstory_desktop.store.journal import ItemState, RunState

    states = summary.states
    failed, queued = states.get(ItemState.FAILED, 0), states.get(ItemState.QUEUED, 0)
    passed = summary.state is RunState.FINISHED and not (failed or queued)
    reason = (f"Ctrl+C came after the sync's last write to the org, and run {summary.run_id} is "
              f"{summary.state}: created {states.get(ItemState.CREATED, 0)}, updated "
              f"{states.get(ItemState.UPDATED, 0)}, failed {failed}, queued {queued}.")
    if queued:
        reason += " Send the queued rows again with sync retry."
    return SyncOutcome(args.action, args.org, passed, 0 if passed else CHECK_FAILED_STATUS, reason,
                       dict(summary.counts), summary_json(summary))


def _command(args: argparse.Namespace, action: str) -> str:
    """Return the sync command line for ``action`` on the same org and practice database."""
    words = ["backstory-desktop", "sync", action, "--org", args.org]
    if args.db is not None:
        words += ["--db", str(args.db)]
    if action == "apply" and args.source is not None:
        words += ["--source", str(args.source)]
    return shlex.join(words)


def _settings(args: argparse.Namespace) -> Any:
    from backstory_desktop.sync.settings import SyncSettings

    if args.bulk_threshold is None:
        return SyncSettings()
    return SyncSettings(bulk_threshold=bulk_threshold(args.bulk_threshold))


def _confirm(args: argparse.Namespace, lines: list[str], run: EnablementRun) -> None:
    """Show what will be written and ask, unless --yes confirmed it; stop when not confirmed."""
    if args.yes:
        return
    check_confirmation(args)
    org = run.connection.instance_url if run.connection is not None else run.profile.alias
    print(f"The sync will write to {org}:")
    for line in lines:
        print(f"  {line}")
    try:
        reply = input("Write these changes? [y/N] ").strip().lower()
    except KeyboardInterrupt:
        # End the prompt's line, so that what the stop prints next starts a line of its own.
        print()
        raise
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
    reason = result.reason
    if "created" in result.details:
        # The run's line counts the rows of earlier commands on the run too, so name this command's counts.
        reason = f"This command: {reason}"
    return SyncOutcome(action, args.org, passed, status, reason, counts, _run_json(run, run_id),
                       details=details)


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
    from backstory_desktop.enablement.sync import sync_journal

    try:
        return summary_json(sync_journal(run).run(run_id))
    except KeyError:
        return {"run_id": run_id}


