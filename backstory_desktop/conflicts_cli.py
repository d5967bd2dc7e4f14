"""The ``conflicts`` command: scan for duplicate Tasks, resolve groups, undo a resolution, list resolutions.

``conflicts scan`` reads every Task and prints the duplicate groups; nothing is written to
the org. ``--csv`` and ``--html`` also write them to files for review. ``conflicts resolve``
scans again, previews the chosen groups (``--group ID``, repeatable, or ``--all`` flagged
groups), prints the changes and applies them once confirmed (``--yes`` confirms at once). A
snapshot of every touched Task is written before the first change. ``conflicts undo`` restores
the newest resolution, or the one named, from the recycle bin and the snapshot, and
``conflicts history`` lists the org's resolutions, newest first.

The org is opened as ``sync`` opens it: the built-in practice profile starts its own practice
org from its database file (``--db``), any other profile resumes its saved sign-in and never
opens a browser. Exit statuses are those of ``sync``: 0 done, 1 a group or Task failed or the
run stopped, 2 a usage or profile error, 3 the org's saved sign-in cannot be used.
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
    SIGN_IN_NEEDED_STATUS,
    USAGE_ERROR_STATUS,
    CommandStop,
    command_profile,
    practice_db,
    resume_saved_session,
    start_practice_org,
)

if TYPE_CHECKING:
    from backstory_desktop.core.duplicates import DuplicateGroup
    from backstory_desktop.enablement.resolution import ResolutionOutcome, ResolutionPreview, UndoOutcome
    from backstory_desktop.enablement.run import EnablementRun

ACTIONS = ("scan", "resolve", "undo", "history")
# Groups listed in the text output of scan; --json and the files list every group.
LISTED_GROUPS = 50


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
                        help="resolve every flagged group (intentional clones are left alone)")
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
        help="saved org profile, signed in through its saved sign-in (never opens a browser), or "
        "practice for the built-in practice org",
    )
    parser.add_argument(
        "--db", type=_database_path, metavar="FILE",
        help="practice org database file, for the practice profile only (default: the profile's, else "
        "the app's own; made and seeded with the default scenario when it does not exist)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")


def _database_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the practice org database path is empty, so give a file name such as practice-org.sqlite3")
    return Path(text)


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
    _check_confirmation(args)

    from backstory_desktop.enablement.run import EnablementRun

    run = EnablementRun(profile)
    with ExitStack() as stack:
        _open_org(run, stack, db_path)
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


def _open_org(run: EnablementRun, stack: ExitStack, db_path: Path | None) -> None:
    """Connect ``run`` to its org; a practice org started here stops when ``stack`` closes."""
    from backstory_desktop import enablement
    from backstory_desktop.core.checklist import StepStatus
    from backstory_desktop.salesforce.errors import SignInRequired

    if db_path is not None:
        result = enablement.connect(run, start_practice_org(stack, db_path))
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
    if result.status is not StepStatus.PASSED:
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
        print(f"Read {run.tasks_scanned} Tasks: {flagged} groups of duplicates and {len(groups) - flagged} "
              "groups of intentional clones. Nothing was written to the org.")
        for group in groups[:LISTED_GROUPS]:
            print(f"  {group.group_id}  {group.kind.value:<10}  {len(group.records)} Tasks  "
                  f"{group.key or group.subject}")
            print(f"      {group.reason}")
        if len(groups) > LISTED_GROUPS:
            print(f"  ... and {len(groups) - LISTED_GROUPS} more; --json or --csv lists every group.")
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
    preview = preview_resolution(run, chosen, progress=_progress, cancel=threading.Event())
    if not args.json:
        _print_preview(preview)
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
        return [group for group in groups if group.flagged]
    by_id = {group.group_id: group for group in groups}
    unknown = [group_id for group_id in args.groups if group_id not in by_id]
    if unknown:
        raise CommandStop(USAGE_ERROR_STATUS, f"No duplicate group has the Id {', '.join(unknown)}, so give "
                                               "an Id that conflicts scan lists.")
    return [by_id[group_id] for group_id in dict.fromkeys(args.groups)]


def _print_preview(preview: ResolutionPreview) -> None:
    counts = preview.counts()
    print(f"The resolution of {counts['groups']} groups deletes {counts['deleted']} Tasks (they stay in the "
          f"recycle bin for 15 days), clears {counts['keys_cleared']} keys and fills "
          f"{counts['fields_filled']} fields:")
    for line in preview.lines():
        print(f"  {line}")
    for problem in preview.problems:
        print(f"  ! {problem}")


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    try:
        reply = input(f"{question} [y/N] ").strip().lower()
    except EOFError:
        reply = ""
    if reply not in ("y", "yes"):
        raise CommandStop(CHECK_FAILED_STATUS, "Nothing was written because the changes were not confirmed.")


def _resolve_report(args: argparse.Namespace, preview: ResolutionPreview,
                    outcome: ResolutionOutcome) -> dict[str, Any]:
    passed = not outcome.failed and not outcome.stopped
    reason = (f"Resolved {len(outcome.resolved_group_ids)} of {len(preview.plans)} groups; the snapshot "
              f"{outcome.snapshot_id} is in {outcome.snapshot_path}, and conflicts undo restores it.")
    if not args.json:
        print(reason)
        for group_id, failure in outcome.failed.items():
            print(f"  failed {group_id}: {failure}")
        if outcome.stopped:
            print(outcome.stopped)
    return {"action": "resolve", "org": args.org, "passed": passed, "reason": reason,
            "snapshot_id": outcome.snapshot_id, "snapshot_path": str(outcome.snapshot_path),
            "resolved": outcome.resolved_group_ids, "failed": outcome.failed, "stopped": outcome.stopped,
            "problems": preview.problems, "counts": preview.counts()}


# -- undo and history -------------------------------------------------------------------------


def _undo(run: EnablementRun, args: argparse.Namespace) -> dict[str, Any]:
    from backstory_desktop.enablement.resolution import list_resolutions, undo_resolution
    from backstory_desktop.store.snapshots import UNDONE, SnapshotError

    summaries = list_resolutions(run)
    target = next((summary for summary in summaries if summary.snapshot_id == args.snapshot_id
                   or (args.snapshot_id is None and summary.status != UNDONE)), None)
    if target is None and args.snapshot_id is None:
        raise CommandStop(USAGE_ERROR_STATUS, "No resolution of this org is left to undo, so there is "
                                               "nothing to do; conflicts history lists the resolutions.")
    if target is None:
        raise CommandStop(USAGE_ERROR_STATUS, f"This org has no snapshot {args.snapshot_id}, so give a "
                                               "snapshot Id that conflicts history lists.")
    if not args.json:
        print(f"Undo the resolution of {target.created_at} by {target.username} (snapshot "
              f"{target.snapshot_id}): {target.groups} groups, {target.records} Tasks, "
              f"{target.deleted} deleted.")
        if target.note:
            print(f"  {target.note}")
    _confirm(args, "Undo this resolution?")
    try:
        outcome = undo_resolution(run, target.snapshot_id, progress=_progress, cancel=threading.Event())
    except SnapshotError as error:
        raise CommandStop(CHECK_FAILED_STATUS, str(error)) from error
    return _undo_report(args, outcome)


def _undo_report(args: argparse.Namespace, outcome: UndoOutcome) -> dict[str, Any]:
    passed = not outcome.failed and not outcome.not_in_bin
    reason = (f"Restored {len(outcome.restored)} Tasks from the recycle bin and put back values on "
              f"{len(outcome.reverted)}.")
    if not args.json:
        print(reason)
        for sentence in outcome.not_in_bin.values():
            print(f"  ! {sentence}")
        for failure in outcome.failed.values():
            print(f"  failed: {failure}")
    return {"action": "undo", "org": args.org, "passed": passed, "reason": reason,
            "snapshot_id": outcome.snapshot_id, "restored": outcome.restored, "reverted": outcome.reverted,
            "deleted_again": outcome.deleted_again, "not_in_bin": outcome.not_in_bin,
            "failed": outcome.failed}


def _history(run: EnablementRun, args: argparse.Namespace) -> dict[str, Any]:
    from backstory_desktop.enablement.resolution import list_resolutions

    summaries = list_resolutions(run)
    rows = [{"snapshot_id": summary.snapshot_id, "created_at": summary.created_at,
             "username": summary.username, "status": summary.status, "groups": summary.groups,
             "records": summary.records, "deleted": summary.deleted, "undoable": summary.undoable,
             "note": summary.note, "path": str(summary.path) if summary.path else None}
            for summary in summaries]
    if not args.json:
        print(f"{len(rows)} resolutions of this org." if len(rows) != 1 else "1 resolution of this org.")
        for row in rows:
            print(f"  {row['snapshot_id']}  {row['created_at']}  {row['status']:<14}  "
                  f"{row['groups']} groups, {row['deleted']} Tasks deleted  {row['note']}")
    return {"action": "history", "org": args.org, "passed": True, "resolutions": rows}
