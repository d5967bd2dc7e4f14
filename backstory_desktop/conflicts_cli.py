"""The ``conflicts`` command: scan for duplicate Tasks, resolve groups, undo a resolution, list resolutions.

``conflicts scan`` reads every Task and prints the duplicate groups; nothing is written to
the org. ``--csv`` and ``--html`` also write them to files for review.

``conflicts resolve`` scans again and previews the chosen groups: ``--group ID`` (repeatable),
or ``--all`` for the flagged groups and keyed clones. For one group, ``--keep TASK_ID`` picks
the Task to keep and ``--fill`` the empty fields it takes from the others. The command prints
the changes and applies them once confirmed. ``--yes`` confirms at once; without it the
changes and the question go to stderr, so stdout stays JSON. A snapshot of every touched Task
is written before the first change.

``conflicts undo`` restores the newest resolution, or the one named, from the recycle bin and
the snapshot. ``conflicts history`` lists the org's resolutions, newest first.

The org is opened as ``sync`` opens it. The built-in practice profile starts its own practice
org from its database file (``--db``, seeded with ``--scenario`` when it is made). Any other
profile resumes its saved sign-in and never opens a browser. Exit statuses are those of
``sync``: 0 done, 1 a group or Task failed or the run stopped, 2 a usage or profile error,
3 the org's saved sign-in cannot be used.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backstory_desktop.cli_common import (
    CHECK_FAILED_STATUS,
    ORG_OPTION_HELP,
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    CommandStop,
    command_profile,
    database_path,
    practice_db,
    resume_saved_session,
    start_practice_org,
    stored_scenario,
)

if TYPE_CHECKING:
    from backstory_desktop.core.duplicates import DuplicateGroup
    from backstory_desktop.core.resolution import ResolutionChoice
    from backstory_desktop.enablement.resolution import ResolutionOutcome, ResolutionPreview, UndoOutcome
    from backstory_desktop.enablement.run import EnablementRun

ACTIONS = ("scan", "resolve", "undo", "history")
# Groups listed in the text output of scan; --json and the files list every group.
LISTED_GROUPS = 50


def counted(count: int, noun: str) -> str:
    """Return "1 group" or "1,234 groups": the count with thousands separators and the noun's plural."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def add_conflicts_command(commands: Any) -> None:
    """Add ``conflicts`` and its actions to the subcommands of ``backstory-desktop``."""
    conflicts = commands.add_parser(
        "conflicts",
        help="find duplicate Tasks, resolve them with a snapshot first, undo a resolution, or list them",
        description="Find Tasks that record the same e-mail twice, resolve groups of them (keep one Task, "
        "fill its empty fields from the others, delete the others after clearing their key) and undo a "
        "resolution. Salesforce cannot merge Tasks, so nothing is merged. Exit status: 0 done, 1 a group "
        "or Task failed or the run stopped, 2 a usage or profile error, 3 the org's saved sign-in cannot "
        "be used.",
    )
    actions = conflicts.add_subparsers(dest="action", metavar="ACTION", required=True)

    scan = actions.add_parser("scan", help="list the duplicate groups; nothing is written to the org")
    _add_common_options(scan)
    scan.add_argument("--csv", type=_output_path, metavar="FILE",
                      help="also write the groups to this CSV file, one row per Task")
    scan.add_argument("--html", type=_output_path, metavar="FILE",
                      help="also write the groups to this self-contained HTML page")

    resolve = actions.add_parser("resolve", help="resolve groups after a preview and a confirmation")
    _add_common_options(resolve)
    chosen = resolve.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--group", dest="groups", action="extend", nargs="+", metavar="ID",
                        help="resolve the groups with these Ids, as scan lists them")
    chosen.add_argument("--all", action="store_true",
                        help="resolve every flagged group, and clear the key on all but one Task of each "
                             "group of clones that share a key (such clones block a Unique field)")
    resolve.add_argument("--keep", metavar="TASK_ID",
                         help="with one --group: the Task to keep, instead of the one the default rule picks")
    resolve.add_argument("--fill", nargs="*", metavar="FIELD",
                         help="with one --group: the kept Task's empty fields to fill from the others, of "
                              "Subject, Description, WhoId, WhatId, ActivityDate and key (default: all; "
                              "--fill alone fills none)")
    resolve.add_argument("--yes", action="store_true", help="write to the org without asking")

    undo = actions.add_parser("undo", help="undo a resolution from its snapshot (the newest by default)")
    _add_common_options(undo)
    undo.add_argument("snapshot_id", nargs="?", metavar="SNAPSHOT_ID",
                      help="the resolution to undo, as history lists it (default: the newest not undone)")
    undo.add_argument("--yes", action="store_true", help="write to the org without asking")

    history = actions.add_parser("history", help="list the org's resolutions, newest first")
    _add_common_options(history)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org", required=True, metavar="ALIAS",
        help=ORG_OPTION_HELP,
    )
    parser.add_argument(
        "--db", type=database_path, metavar="FILE",
        help="practice org database file, for the practice profile only (default: the profile's, else "
        "the app's own; made and seeded with the default scenario when it does not exist)",
    )
    parser.add_argument(
        "--scenario", metavar="NAME",
        help="for the practice profile: how a new practice org database is seeded, as rehearse takes it "
        "(duplicates holds every kind of group; an existing database keeps its own)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")


def _output_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("the file path is empty, so give a file name such as groups.csv")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, so give a file name inside it")
    if not path.absolute().parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of {text} does not exist, so create it or choose "
                                         "another file")
    return path


# -- running --------------------------------------------------------------------------------


def run_conflicts(args: argparse.Namespace) -> int:
    """Run ``conflicts ACTION`` with ``args``, print the outcome and return the exit status.

    When the command stops early the sentence goes to stderr and, with ``--json``, an object
    with ``passed`` false, the ``error`` and the ``exit_status`` to stdout.
    """
    try:
        report = _run(args)
    except CommandStop as stop:
        print(stop.message, file=sys.stderr)
        if args.json:
            print(json.dumps({"action": args.action, "org": args.org, "passed": False,
                              "error": stop.message, "exit_status": stop.status}, indent=2))
        return stop.status
    except KeyboardInterrupt:
        print("The conflicts command was stopped with Ctrl+C; run conflicts history to see what a "
              "resolution left.", file=sys.stderr)
        return CHECK_FAILED_STATUS
    status = 0 if report["passed"] else CHECK_FAILED_STATUS
    report["exit_status"] = status
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    return status


def _run(args: argparse.Namespace) -> dict[str, Any]:
    profile = command_profile(args.org)
    db_path = practice_db(profile, args.db)
    _check_scenario(args, db_path)
    _check_choice_options(args)
    _check_confirmation(args)

    import requests
    from simple_salesforce.exceptions import SalesforceError

    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain

    run = EnablementRun(profile)
    with ExitStack() as stack:
        _open_org(run, stack, db_path, args.scenario)
        try:
            return _run_action(run, args)
        except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
            problem = explain(error)
            status = SIGN_IN_NEEDED_STATUS if isinstance(problem, SignInRequired) else CHECK_FAILED_STATUS
            raise CommandStop(status, f"conflicts {args.action} stopped because a call to the org failed: "
                                      f"{problem.sentence}") from error


def _run_action(run: EnablementRun, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "history":
        return _history(run, args)
    if args.action == "undo":
        return _undo(run, args)
    _check_field(run)
    groups = _scan(run)
    if args.action == "scan":
        return _scan_report(run, args, groups)
    return _resolve(run, args, groups)


def _check_confirmation(args: argparse.Namespace) -> None:
    """Stop before the org is opened when a write needs a confirmation that no terminal can give."""
    if args.action in ("resolve", "undo") and not args.yes and not sys.stdin.isatty():
        raise CommandStop(USAGE_ERROR_STATUS, f"conflicts {args.action} writes Tasks to the org and needs "
                                               "a confirmation, but no terminal can prompt for it, so add "
                                               "--yes.")


def _check_scenario(args: argparse.Namespace, db_path: Path | None) -> None:
    """Stop when --scenario is given for a profile that is no practice org, or names no scenario."""
    if args.scenario is None:
        return
    from backstory_desktop.practice_org.seed import SCENARIOS

    if db_path is None:
        raise CommandStop(USAGE_ERROR_STATUS, f"--scenario seeds a practice org, but the org profile "
                                               f"{args.org} is not a practice org, so leave --scenario out.")
    if args.scenario not in SCENARIOS:
        raise CommandStop(USAGE_ERROR_STATUS, f"There is no practice org scenario {args.scenario!r}, so "
                                               f"give one of {', '.join(SCENARIOS)}.")


def _check_choice_options(args: argparse.Namespace) -> None:
    """Stop when --keep or --fill is given without exactly one --group, or --fill names another field."""
    if args.action != "resolve" or (args.keep is None and args.fill is None):
        return
    from backstory_desktop.core.resolution import FILLABLE_FIELDS, KEY_FIELD_CHOICE

    if args.all or len(set(args.groups or ())) != 1:
        raise CommandStop(USAGE_ERROR_STATUS, "--keep and --fill choose for one group, so give exactly one "
                                               "--group with them.")
    unknown = [name for name in args.fill or () if name not in (*FILLABLE_FIELDS, KEY_FIELD_CHOICE)]
    if unknown:
        raise CommandStop(USAGE_ERROR_STATUS, f"--fill cannot fill {', '.join(unknown)}, so give fields of "
                                               f"{', '.join((*FILLABLE_FIELDS, KEY_FIELD_CHOICE))}.")


def _open_org(run: EnablementRun, stack: ExitStack, db_path: Path | None, scenario: str | None) -> None:
    """Connect ``run`` to its org; a practice org started here stops when ``stack`` closes.

    A practice org database made here is seeded with ``scenario`` (the default one when None).
    """
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import StepStatus
    from backstory_desktop.salesforce.errors import SignInRequired

    if db_path is not None:
        if scenario is not None and db_path.exists() and scenario != stored_scenario(db_path):
            print(f"{db_path} exists and keeps the scenario it was seeded with, {stored_scenario(db_path)}; "
                  f"give a new --db file to start from {scenario}.", file=sys.stderr)
        result = enablement.connect(run, start_practice_org(stack, db_path, scenario))
    else:
        result = enablement.use_connection(run, resume_saved_session(run.profile))
    if result.status is not StepStatus.PASSED:
        status = (SIGN_IN_NEEDED_STATUS if result.details.get("error_code") == SignInRequired.ERROR_CODE
                  else CHECK_FAILED_STATUS)
        raise CommandStop(status, result.reason)


def _check_field(run: EnablementRun) -> None:
    """Inspect the Message-ID field, which the scan groups by; stop when it cannot be used."""
    from backstory_desktop import enablement

    result = enablement.check_field(run)
    state = run.field_state
    if state is None or not state.exists:
        raise CommandStop(CHECK_FAILED_STATUS, f"The duplicate scan cannot run because the Message-ID field "
                                                f"is not usable: {result.reason}")


def _scan(run: EnablementRun) -> list[DuplicateGroup]:
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import StepStatus

    result = enablement.scan_conflicts(run, progress=_progress, cancel=threading.Event())
    # The step fails while flagged groups remain; only a scan that counted no groups did not finish.
    if result.status is not StepStatus.PASSED and "groups" not in result.details:
        raise CommandStop(CHECK_FAILED_STATUS, f"The duplicate scan failed: {result.reason}")
    return list(run.groups)


def _progress(done: int, total: int, message: str) -> None:
    print(f"  {message}", file=sys.stderr)


# -- scan -------------------------------------------------------------------------------------


def _scan_report(
    run: EnablementRun, args: argparse.Namespace, groups: list[DuplicateGroup]
) -> dict[str, Any]:
    key_field = run.field_state.api_name if run.field_state is not None else ""
    files = _write_files(run, args, groups, key_field)
    report: dict[str, Any] = {"action": "scan", "org": args.org, "passed": True,
                              "tasks_scanned": run.tasks_scanned,
                              "groups": [_group_json(group) for group in groups], "files": files}
    if not args.json:
        flagged = sum(1 for group in groups if group.flagged)
        print(f"Read {counted(run.tasks_scanned, 'Task')}: {counted(flagged, 'group')} of duplicates and "
              f"{counted(len(groups) - flagged, 'group')} of intentional clones. Nothing was written to the "
              "org.")
        for group in groups[:LISTED_GROUPS]:
            print(f"  {group.group_id}  {group.kind.value:<10}  {counted(len(group.records), 'Task')}  "
                  f"{group.key or group.subject}")
            print(f"      {group.reason}")
        if len(groups) > LISTED_GROUPS:
            print(f"  ... and {len(groups) - LISTED_GROUPS:,} more; --json or --csv lists every group.")
        for path in files.values():
            print(f"Wrote {path}")
    return report


def _group_json(group: DuplicateGroup) -> dict[str, Any]:
    return {
        "group_id": group.group_id, "kind": group.kind.value, "key": group.key, "subject": group.subject,
        "flagged": group.flagged, "reason": group.reason, "survivor_id": group.survivor_id,
        "survivor_reason": group.survivor_reason,
        "records": [{"id": record.id, "key": record.key, "subject": record.subject, "writer": record.writer,
                     "created_date": record.created_date, "is_deleted": record.is_deleted,
                     "is_archived": record.is_archived} for record in group.records],
    }


def _write_files(run: EnablementRun, args: argparse.Namespace, groups: Sequence[DuplicateGroup],
                 key_field: str) -> dict[str, str]:
    """Write the --csv and --html files; stop naming the file when one cannot be written."""
    if args.csv is None and args.html is None:
        return {}
    from backstory_desktop.conflict_report import write_csv, write_html

    files: dict[str, str] = {}
    try:
        if args.csv is not None:
            write_csv(args.csv, groups, key_field=key_field)
            files["csv"] = str(args.csv)
        if args.html is not None:
            title = f"Duplicate Tasks in {run.profile.alias}"
            write_html(args.html, groups, thresholds=run.thresholds, title=title, key_field=key_field)
            files["html"] = str(args.html)
    except OSError as error:
        target = error.filename or args.csv or args.html
        raise CommandStop(USAGE_ERROR_STATUS, f"Cannot write {target} ({error.strerror or error}), so choose "
                                               "another file.") from error
    return files


# -- resolve ------------------------------------------------------------------------------------


def _resolve(run: EnablementRun, args: argparse.Namespace, groups: list[DuplicateGroup]) -> dict[str, Any]:
    from backstory_desktop.enablement.resolution import apply_resolution, preview_resolution
    from backstory_desktop.store.snapshots import SnapshotError

    chosen = _chosen_groups(args, groups)
    choices = _choices(args, chosen)
    preview = preview_resolution(run, chosen, choices, progress=_progress, cancel=threading.Event())
    _show_changes(args, [*_preview_heading(preview, chosen), *preview.lines(),
                         *(f"! {problem}" for problem in preview.problems)])
    if not preview.plans:
        return {"action": "resolve", "org": args.org, "passed": not preview.problems,
                "problems": preview.problems, "resolved": [], "failed": {},
                "reason": "Nothing to resolve, so nothing was written to the org."}
    _confirm(args, "Resolve these groups?")
    try:
        with _ctrl_c_cancels() as cancel:
            outcome = apply_resolution(run, preview, progress=_progress, cancel=cancel)
    except SnapshotError as error:
        raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error
    return _resolve_report(args, preview, outcome)


@contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """Yield a cancel event that Ctrl+C sets, so a resolution stops after its current page of writes.

    Only the main thread may handle signals; elsewhere Ctrl+C keeps its own handler.
    """
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.signal(signal.SIGINT, lambda _number, _frame: cancel.set())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _chosen_groups(args: argparse.Namespace, groups: list[DuplicateGroup]) -> list[DuplicateGroup]:
    if args.all:
        from backstory_desktop.enablement.resolution import groups_for_bulk

        return groups_for_bulk(groups)
    by_id = {group.group_id: group for group in groups}
    unknown = [group_id for group_id in args.groups if group_id not in by_id]
    if unknown:
        raise CommandStop(USAGE_ERROR_STATUS, f"No duplicate group has the Id {', '.join(unknown)}, so give "
                                               "an Id that conflicts scan lists.")
    return [by_id[group_id] for group_id in dict.fromkeys(args.groups)]


def _choices(args: argparse.Namespace, chosen: Sequence[DuplicateGroup]) -> dict[str, ResolutionChoice]:
    """Return the admin's choice for the one chosen group from --keep and --fill; {} without them."""
    if args.keep is None and args.fill is None:
        return {}
    from dataclasses import replace

    from backstory_desktop.core.resolution import default_choice

    group = chosen[0]
    choice = default_choice(group)
    if args.keep is not None:
        members = [record.id for record in group.records]
        if args.keep not in members:
            raise CommandStop(USAGE_ERROR_STATUS, f"Task {args.keep} is not in group {group.group_id}, so "
                                                   f"give one of its Tasks: {', '.join(members)}.")
        choice = replace(choice, survivor_id=args.keep)
    if args.fill is not None:
        choice = replace(choice, fill_fields=tuple(dict.fromkeys(args.fill)))
    return {group.group_id: choice}


def _preview_heading(preview: ResolutionPreview, chosen: Sequence[DuplicateGroup]) -> list[str]:
    from backstory_desktop.core.duplicates import GroupKind
    from backstory_desktop.core.resolution import RECYCLE_BIN_DAYS

    counts = preview.counts()
    heading = [f"The resolution of {counted(counts['groups'], 'group')} deletes "
               f"{counted(counts['deleted'], 'Task')} (they stay in the recycle bin for {RECYCLE_BIN_DAYS} "
               f"days), clears {counted(counts['keys_cleared'], 'key')} and fills "
               f"{counted(counts['fields_filled'], 'field')}:"]
    clones = sum(1 for group in chosen if group.kind is GroupKind.CLONES)
    if clones:
        holds = "holds" if clones == 1 else "hold"
        heading.append(f"{clones:,} of the groups {holds} clones that share a key: every Task stays, and all "
                       "but one lose the key, as a Unique field needs.")
    return heading


def _show_changes(args: argparse.Namespace, lines: Sequence[str]) -> None:
    """Print the changes: on stdout as the command's text, or on stderr before the question.

    The first line is the heading; the others are indented.
    """
    if args.json and args.yes:
        return
    stream = sys.stdout if args.yes else sys.stderr
    for number, line in enumerate(lines):
        print(line if number == 0 else f"  {line}", file=stream)


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on stderr, after the changes were shown there, so that stdout holds only the command's output."""
    if args.yes:
        return
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    reply = sys.stdin.readline().strip().lower()
    if reply not in ("y", "yes"):
        raise CommandStop(CHECK_FAILED_STATUS, "Nothing was written because the changes were not confirmed.")


def _resolve_report(args: argparse.Namespace, preview: ResolutionPreview,
                    outcome: ResolutionOutcome) -> dict[str, Any]:
    passed = not outcome.failed and not outcome.stopped
    reason = (f"Resolved {len(outcome.resolved_group_ids):,} of {counted(len(preview.plans), 'group')}; "
              f"the snapshot {outcome.snapshot_id} is in {outcome.snapshot_path}, and conflicts undo "
              "restores it.")
    # A group the run stopped before has the stop message, printed once below instead of per group.
    not_reached = [group_id for group_id, failure in outcome.failed.items()
                   if failure in (outcome.stopped, "not resolved")]
    own = {group_id: failure for group_id, failure in outcome.failed.items() if group_id not in not_reached}
    if not args.json:
        print(reason)
        for group_id, failure in own.items():
            print(f"  failed {group_id}: {failure}")
        if outcome.stopped:
            verb = "was" if len(not_reached) == 1 else "were"
            after = (f" {counted(len(not_reached), 'group')} {verb} not reached; run conflicts resolve again "
                     "for them." if not_reached else "")
            print(f"{outcome.stopped}{after}")
    return {"action": "resolve", "org": args.org, "passed": passed, "reason": reason,
            "snapshot_id": outcome.snapshot_id, "snapshot_path": str(outcome.snapshot_path),
            "resolved": outcome.resolved_group_ids, "failed": own, "not_reached": not_reached,
            "partly_written": outcome.partly_written, "stopped": outcome.stopped,
            "problems": preview.problems, "counts": preview.counts()}


# -- undo and history -------------------------------------------------------------------------


def _undo(run: EnablementRun, args: argparse.Namespace) -> dict[str, Any]:
    from backstory_desktop.core.survivor import readable_time
    from backstory_desktop.enablement.resolution import (
        list_resolutions,
        undo_lines,
        undo_resolution,
        undo_warnings,
    )
    from backstory_desktop.store.snapshots import UNDONE, SnapshotError, find_snapshot

    summaries = list_resolutions(run)
    target = next((summary for summary in summaries if summary.snapshot_id == args.snapshot_id
                   or (args.snapshot_id is None and summary.status != UNDONE)), None)
    if target is None and args.snapshot_id is None:
        raise CommandStop(USAGE_ERROR_STATUS, "No resolution of this org is left to undo, so there is "
                                               "nothing to do; conflicts history lists the resolutions.")
    if target is None:
        raise CommandStop(USAGE_ERROR_STATUS, f"This org has no snapshot {args.snapshot_id}, so give a "
                                               "snapshot Id that conflicts history lists.")
    try:
        snapshot = find_snapshot(run.require_connection().org_id, target.snapshot_id)
        lines = undo_lines(snapshot)
    except SnapshotError as error:
        raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error
    warnings = undo_warnings(run, snapshot)
    heading = (f"Undo the resolution of {readable_time(target.created_at)} by {target.username} (snapshot "
               f"{target.snapshot_id}): {counted(target.groups, 'group')}, "
               f"{counted(target.records, 'Task')}, {target.deleted:,} deleted; these writes assume the "
               "Tasks are as the resolution left them, and undo leaves alone any value changed since:")
    notes = [f"! {sentence}" for sentence in (*warnings, *([target.note] if target.note else []))]
    _show_changes(args, [heading, *notes, *lines])
    _confirm(args, "Undo this resolution?")
    try:
        outcome = undo_resolution(run, target.snapshot_id, progress=_progress, cancel=threading.Event())
    except SnapshotError as error:
        raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error
    return {**_undo_report(args, outcome), "warnings": warnings}


def _undo_report(args: argparse.Namespace, outcome: UndoOutcome) -> dict[str, Any]:
    passed = not outcome.failed and not outcome.not_in_bin
    reason = (f"Restored {counted(len(outcome.restored), 'Task')} from the recycle bin and put back values "
              f"on {len(outcome.reverted):,}.")
    if not args.json:
        print(reason)
        for sentence in (*outcome.not_in_bin.values(), *outcome.left_as_is.values()):
            print(f"  ! {sentence}")
        for failure in outcome.failed.values():
            print(f"  failed: {failure}")
    return {"action": "undo", "org": args.org, "passed": passed, "reason": reason,
            "snapshot_id": outcome.snapshot_id, "restored": outcome.restored, "reverted": outcome.reverted,
            "deleted_again": outcome.deleted_again, "not_in_bin": outcome.not_in_bin,
            "left_as_is": outcome.left_as_is, "failed": outcome.failed}


def _history(run: EnablementRun, args: argparse.Namespace) -> dict[str, Any]:
    from backstory_desktop.core.survivor import readable_time
    from backstory_desktop.enablement.resolution import list_resolutions

    summaries = list_resolutions(run)
    rows = [{"snapshot_id": summary.snapshot_id, "created_at": summary.created_at,
             "username": summary.username, "status": summary.status, "groups": summary.groups,
             "records": summary.records, "deleted": summary.deleted, "undoable": summary.undoable,
             "note": summary.note, "path": str(summary.path) if summary.path else None}
            for summary in summaries]
    if not args.json:
        print(f"{counted(len(rows), 'resolution')} of this org.")
        for summary in summaries:
            print(f"  {summary.snapshot_id}  {readable_time(summary.created_at)}  {summary.status:<14}  "
                  f"{counted(summary.groups, 'group')}, {counted(summary.deleted, 'Task')} deleted"
                  + (f"  {summary.note}" if summary.note else ""))
    return {"action": "history", "org": args.org, "passed": True, "resolutions": rows}
