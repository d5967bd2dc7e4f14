"""Resolve duplicate Task groups with a snapshot first, and undo a resolution from its snapshot.

A resolution reads every member of the chosen groups again, plans each group
(core.resolution) and leaves out a group whose Tasks changed since the scan.
Applying writes the snapshot of every Task it will touch before the first change,
then sends, a page of groups at a time: restores from the recycle bin, key fields
set to null, the survivor's filled fields, deletes. Each group ends resolved or
failed with Salesforce's reason. Clearing the keys before deleting matters because
the recycle bin keeps deleted Tasks for 15 days and a Unique field's index counts
them, so afterwards the field can be made Unique.

Undo reads the snapshot's Tasks again, restores from the recycle bin what the
resolution deleted, puts back every value it changed, and deletes again the Tasks
that were in the recycle bin before. A Task purged from the recycle bin (after 15
days, or emptied by hand) is gone for good: undo names it and states what it could not do.
Once the field is Unique, a key put back on a second Task is rejected with DUPLICATE_VALUE:
undo reports that Task as failed and leaves it restored without its key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backstory_desktop.core.checklist import Step
from backstory_desktop.core.duplicates import DuplicateGroup
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.resolution import (
    FILLABLE_FIELDS,
    ResolutionChoice,
    ResolutionPlan,
    default_choice,
    is_empty,
    plan_resolution,
)
from backstory_desktop.enablement.run import EnablementRun, count_phrase, record_change, require_field
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.task_writes import (
    BATCH_SIZE,
    WriteOutcomes,
    delete_tasks,
    read_tasks,
    undelete_tasks,
    update_tasks,
)
from backstory_desktop.store.snapshots import (
    APPLIED,
    PARTLY_APPLIED,
    PARTLY_UNDONE,
    UNDONE,
    Snapshot,
    SnapshotError,
    find_snapshot,
    list_snapshots,
    new_snapshot,
    update_snapshot,
    write_snapshot,
)

log = logging.getLogger(__name__)

# Salesforce keeps deleted records in the recycle bin for 15 days, then purges them
# (Apex Developer Guide, "Restoring Deleted Records").
RECYCLE_BIN_DAYS = 15
# Fields read besides describe's, should describe not list them.
_ALWAYS_READ = ("Id", "IsDeleted", "IsArchived", "CreatedDate", *FILLABLE_FIELDS)
# Field types that SOQL cannot select as one column.
_COMPOUND_TYPES = ("address", "location")

# One write step: the Ids to write, to each Id's error or None.
WriteCall = Callable[[list[str]], WriteOutcomes]


@dataclass
class ResolutionPreview:
    """The plans of the groups to resolve, the fresh values they were built from, and the groups left out.

    ``records`` maps each member of a planned group to every Task field read just now.
    ``problems`` contains one sentence per group left out (changed since the scan, nothing to do).
    """

    plans: list[ResolutionPlan]
    records: dict[str, dict[str, object]]
    problems: list[str] = field(default_factory=list)
    key_field: str = ""

    def lines(self) -> list[str]:
        """Return the diff lines of every plan, as shown before the admin confirms."""
        return [line for plan in self.plans for line in plan.lines()]

    def counts(self) -> dict[str, int]:
        """Count the groups and the writes of the plans."""
        return {
            "groups": len(self.plans),
            "deleted": sum(len(plan.delete_ids) for plan in self.plans),
            "keys_cleared": sum(len(plan.clear_key_ids) for plan in self.plans),
            "fields_filled": sum(len(plan.fills) for plan in self.plans),
            "restored_first": sum(len(plan.undelete_first_ids) for plan in self.plans),
        }


@dataclass
class ResolutionOutcome:
    """The result of a resolution: its snapshot, the groups resolved, and each failed group's reason.

    ``stopped`` is the sentence saying why the run stopped before its last group (a
    cancel, a lost connection), "" when it went through to the end.
    """

    snapshot_path: Path
    snapshot_id: str
    resolved_group_ids: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: str = ""


@dataclass(frozen=True)
class SnapshotSummary:
    """One resolution as the undo list shows it, and whether undo can still restore everything."""

    snapshot_id: str
    created_at: str
    username: str
    status: str
    groups: int
    records: int
    deleted: int
    path: Path | None
    undoable: bool
    note: str  # one sentence on what undo can still do; "" when it can restore everything


@dataclass
class UndoOutcome:
    """The result of an undo: Tasks restored from the recycle bin, Tasks whose values were put back, failures.

    ``not_in_bin`` maps each Task the org no longer contains to one sentence saying
    what undo could not restore. ``failed`` maps a Task to Salesforce's reason.
    """

    snapshot_id: str
    restored: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    deleted_again: list[str] = field(default_factory=list)
    not_in_bin: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


# -- preview -----------------------------------------------------------------------------


def task_fields(conn: OrgConnection) -> list[str]:
    """Return every Task field the signed-in user can read, as describe lists them."""
    names = [str(entry["name"]) for entry in conn.describe("Task").get("fields", [])
             if entry.get("type") not in _COMPOUND_TYPES]
    return list(dict.fromkeys([*_ALWAYS_READ, *names]))


def preview_resolution(
    run: EnablementRun,
    groups: Sequence[DuplicateGroup],
    choices: Mapping[str, ResolutionChoice] | None = None,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> ResolutionPreview:
    """Read every member of ``groups`` again and plan each group, by ``choices`` or the default rule.

    A group whose Tasks changed since the scan (a Task gone, its key changed, moved
    to or from the recycle bin) is left out with a sentence in ``problems``, and so
    is a group that needs no change. Raises Cancelled when ``cancel`` is set.
    """
    connection = run.require_connection()
    key_field = require_field(run).api_name
    fields = [*task_fields(connection), key_field]
    member_ids = [record.id for group in groups for record in group.records]
    progress(0, len(member_ids), f"Reading {count_phrase(len(member_ids), 'Task')} again")
    current = _read_in_pages(connection, member_ids, fields, progress, cancel)

    preview = ResolutionPreview(plans=[], records={}, key_field=key_field)
    for group in groups:
        choice = (choices or {}).get(group.group_id) or default_choice(group)
        change = _changed_since_scan(group, current, key_field)
        if change:
            preview.problems.append(f"Group {group.group_id} was left out because {change}; scan again.")
            continue
        try:
            plan = plan_resolution(group, choice, current, key_field)
        except ValueError as error:
            preview.problems.append(f"Group {group.group_id} was left out because {error}.")
            continue
        if not plan.has_changes:
            preview.problems.append(f"Group {group.group_id} needs no change, so it was left out.")
            continue
        preview.plans.append(plan)
        for record in group.records:
            preview.records[record.id] = current[record.id]
    log.info("Planned %d of %d duplicate groups; %d left out", len(preview.plans), len(groups),
             len(preview.problems))
    return preview


def _read_in_pages(
    connection: OrgConnection, ids: Sequence[str], fields: Sequence[str], progress: ProgressCallback,
    cancel: threading.Event | None,
) -> dict[str, dict[str, object]]:
    current: dict[str, dict[str, object]] = {}
    for start in range(0, len(ids), BATCH_SIZE):
        check_cancel(cancel)
        current.update(read_tasks(connection, ids[start : start + BATCH_SIZE], fields, cancel=cancel))
        done = min(start + BATCH_SIZE, len(ids))
        progress(done, len(ids), f"Read {done} of {count_phrase(len(ids), 'Task')} again")
    return current


def _changed_since_scan(group: DuplicateGroup, current: Mapping[str, Mapping[str, object]],
                        key_field: str) -> str:
    """Return why the group's Tasks no longer match the scan, or "" when they do."""
    for record in group.records:
        values = current.get(record.id)
        if values is None:
            return f"Task {record.id} is no longer in the org"
        stored = values.get(key_field)
        stored_key = None if is_empty(stored) else str(stored)
        scanned_key = None if is_empty(record.key) else record.key
        if stored_key != scanned_key:
            return f"the key of Task {record.id} changed since the scan"
        if bool(values.get("IsDeleted")) != record.is_deleted:
            moved = "into" if values.get("IsDeleted") else "out of"
            return f"Task {record.id} moved {moved} the recycle bin since the scan"
    return ""


# -- apply -------------------------------------------------------------------------------


def apply_resolution(
    run: EnablementRun,
    preview: ResolutionPreview,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> ResolutionOutcome:
    """Write the snapshot, then resolve each planned group; record the change in the run.

    Writes go a page of groups at a time (at most 200 Tasks), each page in the order:
    restores, keys cleared, survivor fills, deletes. A group whose write fails stops
    there and is reported with Salesforce's reason. A cancel or a failed call stops
    before the next page, and the groups not reached are reported as not resolved.
    Raises SnapshotError, before any change, when the snapshot cannot be written.
    """
    connection = run.require_connection()
    snapshot = new_snapshot(connection.org_id, connection.username, preview.key_field, preview.plans,
                            preview.records)
    path = write_snapshot(snapshot)
    outcome = ResolutionOutcome(snapshot_path=path, snapshot_id=snapshot.snapshot_id)
    total = len(preview.plans)
    progress(0, total, f"Wrote the snapshot {snapshot.snapshot_id}; resolving {count_phrase(total, 'group')}")

    done = 0
    for page in _pages(preview.plans):
        try:
            check_cancel(cancel)
            _apply_page(connection, page, snapshot, outcome, preview.key_field)
        except Cancelled:
            outcome.stopped = "The resolution was cancelled before every group was resolved."
        except Exception as error:  # a failed call: the session, the network, a limit
            problem = explain(error)
            log.warning("Resolution stopped: %s", problem.sentence)
            outcome.stopped = f"The resolution stopped because a call failed: {problem.sentence}"
        if outcome.stopped:
            break
        done += len(page)
        progress(done, total, f"Resolved {done} of {count_phrase(total, 'group')}")

    for plan in preview.plans:
        if plan.group_id not in outcome.resolved_group_ids and plan.group_id not in outcome.failed:
            outcome.failed[plan.group_id] = outcome.stopped or "not resolved"
    snapshot.group_outcomes.update({group_id: None for group_id in outcome.resolved_group_ids})
    snapshot.group_outcomes.update(outcome.failed)
    snapshot.status = APPLIED if not outcome.failed else PARTLY_APPLIED
    update_snapshot(snapshot)
    _record_resolution(run, preview, outcome)
    return outcome


def _pages(plans: Sequence[ResolutionPlan]) -> Iterable[list[ResolutionPlan]]:
    """Split the plans into pages of whole groups touching at most BATCH_SIZE Tasks each."""
    page: list[ResolutionPlan] = []
    size = 0
    for plan in plans:
        touched = len(plan.touched_ids)
        if page and size + touched > BATCH_SIZE:
            yield page
            page, size = [], 0
        page.append(plan)
        size += touched
    if page:
        yield page


def _apply_page(connection: OrgConnection, page: list[ResolutionPlan], snapshot: Snapshot,
                outcome: ResolutionOutcome, key_field: str) -> None:
    failed: dict[str, str] = {}

    def send(step: str, writes: dict[str, list[str]], call: WriteCall) -> None:
        """Send one step's writes for the groups not failed yet; a rejected Task fails its group."""
        ids = [record_id for group_id, group_ids in writes.items() if group_id not in failed
               for record_id in group_ids]
        if not ids:
            return
        results = call(ids)
        snapshot.outcomes.update({record_id: reason for record_id, reason in results.items()
                                  if reason is not None or record_id not in snapshot.outcomes})
        for group_id, group_ids in writes.items():
            for record_id in group_ids:
                reason = results.get(record_id)
                if reason is not None and group_id not in failed:
                    failed[group_id] = f"{step} Task {record_id} failed: {reason}"

    by_group = {plan.group_id: plan for plan in page}
    send("Restoring", {gid: list(plan.undelete_first_ids) for gid, plan in by_group.items()},
         lambda ids: undelete_tasks(connection, ids))
    clear_rows = {gid: list(plan.clear_key_ids) for gid, plan in by_group.items()}
    send("Clearing the key of", clear_rows,
         lambda ids: update_tasks(connection, [{"Id": record_id, key_field: None} for record_id in ids]))
    fills = {plan.survivor_id: {fill.field: fill.value for fill in plan.fills} for plan in page if plan.fills}
    send("Filling the fields of", {gid: [plan.survivor_id] for gid, plan in by_group.items() if plan.fills},
         lambda ids: update_tasks(connection, [{"Id": record_id, **fills[record_id]} for record_id in ids]))
    send("Deleting", {gid: list(plan.delete_ids) for gid, plan in by_group.items()},
         lambda ids: delete_tasks(connection, ids))

    for plan in page:
        if plan.group_id in failed:
            outcome.failed[plan.group_id] = failed[plan.group_id]
        else:
            outcome.resolved_group_ids.append(plan.group_id)



def _record_resolution(run: EnablementRun, preview: ResolutionPreview, outcome: ResolutionOutcome) -> None:
    resolved = set(outcome.resolved_group_ids)
    plans = [plan for plan in preview.plans if plan.group_id in resolved]
    deleted = sum(len(plan.delete_ids) for plan in plans)
    cleared = sum(len(plan.clear_key_ids) for plan in plans)
    summary = (f"Resolved {count_phrase(len(plans), 'duplicate group')}: deleted "
               f"{count_phrase(deleted, 'Task')}, cleared the key on {cleared} "
               f"(snapshot {outcome.snapshot_id})")
    if outcome.failed:
        summary += f"; {count_phrase(len(outcome.failed), 'group')} failed"
    record_change(run, Step.CONFLICTS, summary, preview.lines())


# -- history and undo ----------------------------------------------------------------------


def list_resolutions(run: EnablementRun) -> list[SnapshotSummary]:
    """Return the org's resolutions, newest first, each saying whether undo can still restore everything."""
    connection = run.require_connection()
    return [summarise_snapshot(snapshot) for snapshot in list_snapshots(connection.org_id)]


def summarise_snapshot(snapshot: Snapshot, now: datetime | None = None) -> SnapshotSummary:
    """Summarise one snapshot for the undo list."""
    plans = snapshot.resolution_plans
    deleted = sum(len(plan.delete_ids) for plan in plans)
    undoable, note = True, ""
    if snapshot.status in (UNDONE,):
        undoable, note = False, "Already undone."
    elif deleted and _age(snapshot, now) > timedelta(days=RECYCLE_BIN_DAYS):
        note = (f"Older than {RECYCLE_BIN_DAYS} days, so the recycle bin has purged the {deleted} deleted "
                "Tasks: undo can only put back changed values.")
    return SnapshotSummary(
        snapshot_id=snapshot.snapshot_id, created_at=snapshot.created_at, username=snapshot.username,
        status=snapshot.status, groups=len(plans), records=len(snapshot.records), deleted=deleted,
        path=snapshot.path, undoable=undoable, note=note,
    )


def _age(snapshot: Snapshot, now: datetime | None) -> timedelta:
    try:
        created = datetime.fromisoformat(snapshot.created_at)
    except ValueError:
        return timedelta(0)
    return (now or datetime.now(UTC)) - created


def undo_resolution(
    run: EnablementRun,
    snapshot_id: str | None = None,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> UndoOutcome:
    """Undo the resolution of snapshot ``snapshot_id`` (the newest one when None); record the change.

    Restores from the recycle bin the Tasks the resolution deleted, puts back every
    value it changed, and deletes again the Tasks that were in the recycle bin before.
    Raises SnapshotError when there is no such snapshot, it belongs to another org,
    or it was undone already, and Cancelled when ``cancel`` is set between steps. Undo
    compares the Tasks as they are now with the snapshot, so after a cancel or a failure
    it can be run again.
    """
    connection = run.require_connection()
    snapshot = _snapshot_to_undo(connection.org_id, snapshot_id)
    outcome = UndoOutcome(snapshot_id=snapshot.snapshot_id)
    changed = _changed_fields(snapshot.resolution_plans, snapshot.key_field)
    ids = list(snapshot.records)

    progress(0, 4, f"Reading {count_phrase(len(ids), 'Task')} of snapshot {snapshot.snapshot_id}")
    fields = sorted({name for names in changed.values() for name in names} | {"IsDeleted"})
    current = _read_in_pages(connection, ids, fields, no_progress, cancel)
    for record_id in ids:
        if record_id not in current:
            outcome.not_in_bin[record_id] = _purged_sentence(record_id, snapshot, changed)
    present = [record_id for record_id in ids if record_id in current]
    to_revert = {record_id: _reverted_values(snapshot.records[record_id], current[record_id],
                                             changed.get(record_id, set()))
                 for record_id in present}
    to_revert = {record_id: values for record_id, values in to_revert.items() if values}

    check_cancel(cancel)
    progress(1, 4, "Restoring Tasks from the recycle bin")
    to_restore = [record_id for record_id in present if current[record_id].get("IsDeleted")
                  and (not snapshot.records[record_id].get("IsDeleted") or record_id in to_revert)]
    restored = _collect(undelete_tasks(connection, to_restore), outcome.failed, "Restoring")
    outcome.restored = [record_id for record_id in restored
                        if not snapshot.records[record_id].get("IsDeleted")]
    live = {record_id for record_id in present if not current[record_id].get("IsDeleted")} | set(restored)

    check_cancel(cancel)
    progress(2, 4, "Putting back the values the resolution changed")
    rows = [{"Id": record_id, **values} for record_id, values in to_revert.items() if record_id in live]
    outcome.reverted = _collect(update_tasks(connection, rows), outcome.failed, "Putting back values of")

    check_cancel(cancel)
    progress(3, 4, "Deleting again the Tasks that were in the recycle bin")
    again = [record_id for record_id in present if snapshot.records[record_id].get("IsDeleted")
             and record_id in live]
    outcome.deleted_again = _collect(delete_tasks(connection, again), outcome.failed, "Deleting")

    _finish_undo(run, snapshot, outcome)
    progress(4, 4, f"Undid snapshot {snapshot.snapshot_id}")
    return outcome


def _snapshot_to_undo(org_id: str, snapshot_id: str | None) -> Snapshot:
    if snapshot_id is None:
        snapshots = [snapshot for snapshot in list_snapshots(org_id) if snapshot.status != UNDONE]
        if not snapshots:
            raise SnapshotError("No resolution of this org is left to undo.")
        return snapshots[0]
    snapshot = find_snapshot(org_id, snapshot_id)
    if snapshot.org_id != org_id:
        raise SnapshotError(f"The snapshot {snapshot_id} belongs to the org {snapshot.org_id}, not this one; "
                            "connect to that org to undo it.")
    if snapshot.status == UNDONE:
        raise SnapshotError(f"The resolution of snapshot {snapshot_id} was undone already, on "
                            f"{snapshot.undone_at}.")
    return snapshot


def _changed_fields(plans: Sequence[ResolutionPlan], key_field: str) -> dict[str, set[str]]:
    """Return, per Task, the fields the plans may have changed."""
    changed: dict[str, set[str]] = {}
    for plan in plans:
        for record_id in plan.clear_key_ids:
            changed.setdefault(record_id, set()).add(key_field)
        for fill in plan.fills:
            changed.setdefault(plan.survivor_id, set()).add(fill.field)
    return changed


def _reverted_values(before: Mapping[str, object], now: Mapping[str, object],
                     fields: Iterable[str]) -> dict[str, object]:
    """Return the snapshot values of ``fields`` that differ from the Task's values now.

    NOTE: a value someone changed after the resolution is put back to the snapshot's too,
    because the snapshot does not keep what the resolution wrote.
    """
    return {name: before.get(name) for name in sorted(fields)
            if _comparable(before.get(name)) != _comparable(now.get(name))}


def _comparable(value: object) -> object:
    return None if is_empty(value) else value


def _purged_sentence(record_id: str, snapshot: Snapshot, changed: Mapping[str, set[str]]) -> str:
    before = snapshot.records[record_id]
    subject = str(before.get("Subject") or "(no subject)")
    lost = sorted(changed.get(record_id, set()))
    values = f" and its {', '.join(lost)} value cannot be put back" if lost else ""
    return (f"Task {record_id} ({subject!r}) is no longer in the recycle bin (purged after "
            f"{RECYCLE_BIN_DAYS} days or emptied), so it cannot be restored{values}; the snapshot "
            f"{snapshot.snapshot_id} keeps its values.")


def _collect(results: WriteOutcomes, failed: dict[str, str], step: str) -> list[str]:
    """Return the Ids written; add the others to ``failed`` with the step and Salesforce's reason."""
    for record_id, reason in results.items():
        if reason is not None:
            failed.setdefault(record_id, f"{step} Task {record_id} failed: {reason}")
    return [record_id for record_id, reason in results.items() if reason is None]


def _finish_undo(run: EnablementRun, snapshot: Snapshot, outcome: UndoOutcome) -> None:
    complete = not outcome.failed and not outcome.not_in_bin
    snapshot.status = UNDONE if complete else PARTLY_UNDONE
    snapshot.undone_at = datetime.now(UTC).isoformat(timespec="seconds")
    snapshot.undo_outcomes = {**{record_id: None for record_id in
                                 {*outcome.restored, *outcome.reverted, *outcome.deleted_again}},
                              **outcome.not_in_bin, **outcome.failed}
    update_snapshot(snapshot)
    summary = (f"Undid the resolution of snapshot {snapshot.snapshot_id}: restored "
               f"{count_phrase(len(outcome.restored), 'Task')}, put back values on {len(outcome.reverted)}")
    lines = [f"+ restore {record_id}" for record_id in outcome.restored]
    lines += [f"~ put back values of {record_id}" for record_id in outcome.reverted]
    lines += [f"- delete again {record_id}" for record_id in outcome.deleted_again]
    lines += [f"! {sentence}" for sentence in outcome.not_in_bin.values()]
    if outcome.failed or outcome.not_in_bin:
        summary += f"; {len(outcome.failed) + len(outcome.not_in_bin)} Tasks could not be restored"
    record_change(run, Step.CONFLICTS, summary, lines)
