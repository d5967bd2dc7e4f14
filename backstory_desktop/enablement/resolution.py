"""Resolve duplicate Task groups with a snapshot first, and undo a resolution from its snapshot.

A resolution reads every member of the chosen groups again, plans each group
(core.resolution) and leaves out a group whose Tasks changed since the scan.
Applying writes the snapshot before the first change, then works a page of groups
at a time. It reads the page's Tasks again: a group changed since the preview is
left out, and the snapshot stores the values just read. Then it sends restores from
the recycle bin, key fields set to null, the survivor's filled fields, deletes. Each
group ends resolved or failed with Salesforce's reason, and a failed group's restored
Tasks go back to the recycle bin. Clearing the keys before deleting matters because
the recycle bin keeps deleted Tasks for RECYCLE_BIN_DAYS and a Unique field's index
counts them, so afterwards the field can be made Unique.

Undo works only on the groups the resolution wrote. It reads their Tasks again and
restores from the recycle bin what the resolution deleted. It puts back each value
the resolution wrote that the Task still contains, emptying fields before putting keys
back, and names each value changed since, which it leaves as is. Then it deletes again
the Tasks that were in the recycle bin before. A Task purged from the recycle bin
cannot come back, so undo names it and the snapshot file that stores its values. If
the field was made Unique and another Task took the key since, the key cannot go back,
and undo names the Task that has it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backstory_desktop.core.checklist import Step
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.resolution import (
    FILLABLE_FIELDS,
    RECYCLE_BIN_DAYS,
    ResolutionChoice,
    ResolutionPlan,
    default_choice,
    diff_value,
    is_empty,
    plan_resolution,
)
from backstory_desktop.enablement.run import (
    EnablementRun,
    count_phrase,
    record_change,
    require_field,
    usable_flag_field,
)
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import explain
from backstory_desktop.salesforce.schema import describe_field
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

# Fields read even when describe does not list them.
_ALWAYS_READ = ("Id", "IsDeleted", "IsArchived", "CreatedDate", *FILLABLE_FIELDS)
# Field types that SOQL cannot select as one column.
_COMPOUND_TYPES = ("address", "location")

# A write call: it takes the Ids to write and returns each Id's error, or None when written.
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
    flag_field: str = ""  # the "Created by Backstory" checkbox set on a survivor; "" for none

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

    ``stopped`` is the sentence that gives why the run stopped before its last group
    (a cancel, a lost connection), or "" when it went through to the end.
    ``partly_written`` maps each group whose call failed without a response to the Task
    Ids sent for it. Salesforce may have written some of them, so the group is also in
    ``failed``, with a sentence that states this and that Undo puts back what was written.
    """

    snapshot_path: Path
    snapshot_id: str
    resolved_group_ids: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: str = ""
    partly_written: dict[str, list[str]] = field(default_factory=dict)


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
    ``left_as_is`` maps a Task changed since the resolution to the sentence saying what undo left.
    """

    snapshot_id: str
    restored: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    deleted_again: list[str] = field(default_factory=list)
    not_in_bin: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    left_as_is: dict[str, str] = field(default_factory=dict)


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
    flag_field = usable_flag_field(run) or ""
    fields = [*task_fields(connection), key_field]
    member_ids = [record.id for group in groups for record in group.records]
    progress(0, len(member_ids), f"Reading {count_phrase(len(member_ids), 'Task')} again")
    current = _read_in_pages(connection, member_ids, fields, progress, cancel)

    preview = ResolutionPreview(plans=[], records={}, key_field=key_field, flag_field=flag_field)
    for group in groups:
        choice = (choices or {}).get(group.group_id) or default_choice(group)
        change = _changed_since_scan(group, current, key_field)
        if change:
            preview.problems.append(f"Group {group.group_id} was left out because {change}; scan again.")
            continue
        try:
            plan = plan_resolution(group, choice, current, key_field, flag_field=flag_field)
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

# Fields Salesforce changes when someone only views a Task, so a change there is no edit.
_VIEW_FIELDS = frozenset({"LastViewedDate", "LastReferencedDate"})


def groups_for_bulk(groups: Iterable[DuplicateGroup]) -> list[DuplicateGroup]:
    """Return the groups a bulk resolution takes: every flagged group, and clones keyed more than once.

    Clones are kept as they are, but two clones with the same key block making the
    field Unique, so their default action (clear the key on all but one) is included.
    """
    return [group for group in groups if group.flagged or (
        group.kind is GroupKind.CLONES and sum(1 for record in group.records if record.key) > 1)]


def apply_resolution(
    run: EnablementRun,
    preview: ResolutionPreview,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> ResolutionOutcome:
    """Write the snapshot, resolve each planned group, and record the change in the run.

    Writes go a page of groups at a time (at most BATCH_SIZE Tasks). Each page's Tasks
    are read again first: a group whose Tasks changed since the preview is left out,
    and the snapshot stores the values just read. Then: restores, keys cleared, survivor
    fills, deletes. A group whose write fails stops there, its restored Tasks go back
    to the recycle bin, and it is reported with Salesforce's reason. A cancel or a
    failed call stops before the next page. Raises SnapshotError, before any change,
    when the snapshot cannot be written.
    """
    connection = run.require_connection()
    snapshot = new_snapshot(connection.org_id, connection.username, preview.key_field, preview.plans,
                            preview.records)
    path = write_snapshot(snapshot)
    outcome = ResolutionOutcome(snapshot_path=path, snapshot_id=snapshot.snapshot_id)
    total = len(preview.plans)
    progress(0, total, f"Wrote the snapshot {snapshot.snapshot_id}; resolving {count_phrase(total, 'group')}")
    written: dict[str, list[str]] = {}
    sent: dict[str, list[tuple[str, list[str]]]] = {}

    done = 0
    for page in _pages(preview.plans):
        try:
            check_cancel(cancel)
            fresh_page = _read_page_again(connection, page, preview, snapshot, outcome, cancel)
            # The snapshot names the groups about to be written before the first write.
            update_snapshot(snapshot)
            _apply_page(connection, fresh_page, snapshot, outcome, preview.key_field, written, sent)
        except Cancelled:
            outcome.stopped = "The resolution was cancelled before every group was resolved."
        except SnapshotError as error:
            outcome.stopped = f"The resolution stopped before writing its next groups: {error}"
        except Exception as error:  # a failed call: the session, the network, a limit
            problem = explain(error)
            log.warning("Resolution stopped: %s", problem.sentence)
            outcome.stopped = f"The resolution stopped because a call failed: {problem.sentence}"
            _mark_partly_written(page, sent, outcome)
        if outcome.stopped:
            break
        done += len(page)
        progress(done, total, f"Resolved {done} of {count_phrase(total, 'group')}")

    for plan in preview.plans:
        if plan.group_id not in outcome.resolved_group_ids and plan.group_id not in outcome.failed:
            outcome.failed[plan.group_id] = outcome.stopped or "not resolved"
    snapshot.group_outcomes.update({group_id: None for group_id in outcome.resolved_group_ids})
    snapshot.group_outcomes.update({group_id: reason for group_id, reason in outcome.failed.items()
                                    if group_id in (snapshot.ran_group_ids or ())})
    snapshot.status = APPLIED if not outcome.failed else PARTLY_APPLIED
    # The change is recorded before the snapshot is updated, so a full disk cannot hide it.
    _record_resolution(run, preview, outcome, written)
    try:
        update_snapshot(snapshot)
    except SnapshotError as error:
        outcome.stopped = (f"The groups were written and the change recorded, but the snapshot could not be "
                           f"updated afterwards, and undo still works from it: {error}")
    return outcome


def _mark_partly_written(page: Sequence[ResolutionPlan], sent: Mapping[str, list[tuple[str, list[str]]]],
                         outcome: ResolutionOutcome) -> None:
    """Fail each group of the page that had writes sent when a call failed, saying what may be written.

    Salesforce may have carried out the call and its response been lost (a dropped
    connection, a gateway timeout), so the group may be partly written.
    """
    for plan in page:
        steps = sent.get(plan.group_id)
        if not steps or plan.group_id in outcome.resolved_group_ids or plan.group_id in outcome.failed:
            continue
        outcome.partly_written[plan.group_id] = list(dict.fromkeys(
            record_id for _, ids in steps for record_id in ids))
        phrases = "; ".join(f"{step.lower()} Task {', '.join(ids)}" for step, ids in steps)
        outcome.failed[plan.group_id] = (
            f"The group may be partly written, because a call failed without a response after these writes "
            f"were sent: {phrases}; Undo of snapshot {outcome.snapshot_id} puts back what was written.")


def _pages(plans: Sequence[ResolutionPlan]) -> Iterable[list[ResolutionPlan]]:
    """Split the plans into pages of whole groups touching at most BATCH_SIZE Tasks each."""
    page: list[ResolutionPlan] = []
    size = 0
    for plan in plans:
        touched = len(plan.touched_ids) + 1
        if page and size + touched > BATCH_SIZE:
            yield page
            page, size = [], 0
        page.append(plan)
        size += touched
    if page:
        yield page


def _read_page_again(connection: OrgConnection, page: list[ResolutionPlan], preview: ResolutionPreview,
                     snapshot: Snapshot, outcome: ResolutionOutcome,
                     cancel: threading.Event | None) -> list[ResolutionPlan]:
    """Return the page's plans whose Tasks still contain the previewed values, and fail the others.

    The snapshot takes the values just read, and names the groups about to be written.
    """
    ids = list(dict.fromkeys(record_id for plan in page
                             for record_id in (plan.survivor_id, *plan.touched_ids)))
    fields = sorted({name for record_id in ids for name in preview.records.get(record_id, {})})
    fresh = read_tasks(connection, ids, fields, cancel=cancel)
    unchanged: list[ResolutionPlan] = []
    for plan in page:
        plan_ids = dict.fromkeys((plan.survivor_id, *plan.touched_ids))
        changed = next((record_id for record_id in plan_ids
                        if _differs(preview.records.get(record_id, {}), fresh.get(record_id))), None)
        if changed is not None:
            outcome.failed[plan.group_id] = (f"Task {changed} changed since the preview, so the group "
                                             "was left as it is; preview it again.")
            continue
        for record_id in plan_ids:
            snapshot.records[record_id] = dict(fresh[record_id])
        if snapshot.ran_group_ids is None:
            snapshot.ran_group_ids = []
        snapshot.ran_group_ids.append(plan.group_id)
        unchanged.append(plan)
    return unchanged


def _differs(before: Mapping[str, object], now: Mapping[str, object] | None) -> bool:
    if now is None:
        return True
    return any(_comparable(value) != _comparable(now.get(name)) for name, value in before.items()
               if name not in _VIEW_FIELDS)


def _apply_page(connection: OrgConnection, page: list[ResolutionPlan], snapshot: Snapshot,
                outcome: ResolutionOutcome, key_field: str, written: dict[str, list[str]],
                sent: dict[str, list[tuple[str, list[str]]]]) -> None:
    """Write the page's plans and collect what was sent and written, per group.

    ``written`` collects a phrase for each write that succeeded. ``sent`` collects each
    step sent before its response came, with the Ids it sent.
    """
    failed: dict[str, str] = {}
    restored: dict[str, list[str]] = {}
    deleted: set[str] = set()

    def send(step: str, done: str, writes: dict[str, list[str]], call: WriteCall) -> list[str]:
        """Send one step's writes for the groups not failed yet. A rejected Task fails its group."""
        ids = [record_id for group_id, group_ids in writes.items() if group_id not in failed
               for record_id in group_ids]
        if not ids:
            return []
        for group_id, group_ids in writes.items():
            if group_id not in failed and group_ids:
                sent.setdefault(group_id, []).append((step, group_ids))
        results = call(ids)
        snapshot.outcomes.update({record_id: reason for record_id, reason in results.items()
                                  if reason is not None or record_id not in snapshot.outcomes})
        for group_id, group_ids in writes.items():
            for record_id in group_ids:
                if record_id not in results:
                    continue
                reason = results[record_id]
                if reason is None:
                    written.setdefault(group_id, []).append(f"{done} {record_id}")
                elif group_id not in failed:
                    failed[group_id] = f"{step} Task {record_id} failed: {reason}"
        return [record_id for record_id in ids if results.get(record_id, "") is None]

    by_group = {plan.group_id: plan for plan in page}
    undeleted = set(send("Restoring", "restored", {gid: list(plan.undelete_first_ids)
                                                   for gid, plan in by_group.items()},
                         lambda ids: undelete_tasks(connection, ids)))
    for gid, plan in by_group.items():
        restored[gid] = [record_id for record_id in plan.undelete_first_ids
                         if record_id in undeleted and record_id != plan.survivor_id]
    clear_rows = {gid: list(plan.clear_key_ids) for gid, plan in by_group.items()}
    send("Clearing the key of", "cleared the key of", clear_rows,
         lambda ids: update_tasks(connection, [{"Id": record_id, key_field: None} for record_id in ids]))
    fills = {plan.survivor_id: {fill.field: fill.value for fill in plan.fills} for plan in page if plan.fills}
    send("Filling the fields of", "filled the fields of",
         {gid: [plan.survivor_id] for gid, plan in by_group.items() if plan.fills},
         lambda ids: update_tasks(connection, [{"Id": record_id, **fills[record_id]} for record_id in ids]))
    deleted.update(send("Deleting", "deleted", {gid: list(plan.delete_ids) for gid, plan in by_group.items()},
                        lambda ids: delete_tasks(connection, ids)))

    # A failed group's Tasks restored to clear their key go back to the recycle bin.
    again = [record_id for gid in failed for record_id in restored.get(gid, []) if record_id not in deleted]
    if again:
        results = delete_tasks(connection, again)
        for gid in failed:
            for record_id in restored.get(gid, []):
                if record_id in results and results[record_id] is None:
                    written.setdefault(gid, []).append(f"deleted again {record_id}")
                elif record_id in results:
                    failed[gid] += (f"; Task {record_id} stays restored from the recycle bin because "
                                    f"deleting it again failed: {results[record_id]}")

    for plan in page:
        if plan.group_id in failed:
            outcome.failed[plan.group_id] = failed[plan.group_id]
        else:
            outcome.resolved_group_ids.append(plan.group_id)


def _record_resolution(run: EnablementRun, preview: ResolutionPreview, outcome: ResolutionOutcome,
                       written: Mapping[str, list[str]]) -> None:
    """Record the resolved groups' diff lines, and one line per failed group with what was written."""
    resolved = set(outcome.resolved_group_ids)
    plans = [plan for plan in preview.plans if plan.group_id in resolved]
    deleted = sum(len(plan.delete_ids) for plan in plans)
    cleared = sum(len(plan.clear_key_ids) for plan in plans)
    summary = (f"Resolved {count_phrase(len(plans), 'duplicate group')}: deleted "
               f"{count_phrase(deleted, 'Task')}, cleared the key on {cleared} "
               f"(snapshot {outcome.snapshot_id})")
    uncertain = outcome.partly_written
    if len(outcome.failed) > len(uncertain):
        summary += f"; {count_phrase(len(outcome.failed) - len(uncertain), 'group')} failed"
    if uncertain:
        summary += (f"; {count_phrase(len(uncertain), 'group')} may be partly written, because a call failed "
                    "without a response: Undo puts back what was written")
    lines = [line for plan in plans for line in plan.lines()]
    for group_id, ids in uncertain.items():
        lines.append(f"? group {group_id} may be partly written; writes were sent for Task {', '.join(ids)}")
    for group_id, reason in outcome.failed.items():
        if group_id in uncertain:
            continue
        writes = written.get(group_id, [])
        done = (f"it wrote: {', '.join(writes)}; Undo reverts these writes" if writes
                else "nothing of it was written")
        lines.append(f"! group {group_id} failed ({reason}); {done}")
    record_change(run, Step.CONFLICTS, summary, lines)


# -- history and undo ----------------------------------------------------------------------


def list_resolutions(run: EnablementRun) -> list[SnapshotSummary]:
    """Return the org's resolutions, newest first, each saying whether undo can still restore everything.

    Reads which of the Tasks each resolution deleted the org still contains (in the
    recycle bin or restored), so a purged Task is counted even within RECYCLE_BIN_DAYS.
    """
    connection = run.require_connection()
    snapshots = list_snapshots(connection.org_id)
    deleted = list(dict.fromkeys(record_id for snapshot in snapshots if snapshot.status != UNDONE
                                 for plan in _ran_plans(snapshot)
                                 for record_id in (*plan.delete_ids, *plan.undelete_first_ids)))
    present = _read_in_pages(connection, deleted, ["Id"], no_progress, None)
    missing = {record_id for record_id in deleted if record_id not in present}
    return [summarise_snapshot(snapshot, gone=missing) for snapshot in snapshots]


def summarise_snapshot(snapshot: Snapshot, now: datetime | None = None, *,
                       gone: Collection[str] = ()) -> SnapshotSummary:
    """Summarise one snapshot for the undo list. ``gone`` contains the Tasks the org no longer contains."""
    plans = snapshot.resolution_plans
    deleted = sum(len(plan.delete_ids) for plan in plans)
    purged = sorted({record_id for plan in _ran_plans(snapshot)
                     for record_id in (*plan.delete_ids, *plan.undelete_first_ids) if record_id in gone})
    undoable, note = True, ""
    where = snapshot.path or snapshot.snapshot_id
    if snapshot.status == UNDONE:
        undoable, note = False, "Already undone."
    elif deleted and _age(snapshot, now) > timedelta(days=RECYCLE_BIN_DAYS):
        note = (f"Older than {RECYCLE_BIN_DAYS} days, so the recycle bin has purged the "
                f"{count_phrase(deleted, 'deleted Task')}: undo can only put back changed values; the "
                f"deleted Tasks' values are in the snapshot {where}.")
    elif purged:
        undoable = any(record_id not in purged for plan in _ran_plans(snapshot)
                       for record_id in (*plan.touched_ids, *([plan.survivor_id] if plan.fills else [])))
        note = (f"The recycle bin no longer contains {count_phrase(len(purged), 'Task')} of this resolution, "
                f"so {'it' if len(purged) == 1 else 'they'} cannot come back and undo can only put back "
                f"the other values; {'its' if len(purged) == 1 else 'their'} values are in the snapshot "
                f"{where}.")
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


@dataclass
class _UndoPlan:
    """The writes an undo makes, worked out from the snapshot and the Tasks as they are now."""

    restore: list[str] = field(default_factory=list)
    clear: dict[str, dict[str, object]] = field(default_factory=dict)  # reverts that set fields empty
    put_back: dict[str, dict[str, object]] = field(default_factory=dict)  # reverts that set values
    delete_again: list[str] = field(default_factory=list)
    left_as_is: dict[str, str] = field(default_factory=dict)
    purged: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def _ran_plans(snapshot: Snapshot) -> list[ResolutionPlan]:
    """Return the plans of the groups the resolution started writing; the others changed nothing."""
    plans = snapshot.resolution_plans
    if snapshot.ran_group_ids is not None:
        ran = set(snapshot.ran_group_ids)
        return [plan for plan in plans if plan.group_id in ran]
    return [plan for plan in plans if any(record_id in snapshot.outcomes for record_id in plan.touched_ids)]


def _written_values(plan: ResolutionPlan) -> dict[str, dict[str, object]]:
    """Return, per Task, the values the plan wrote."""
    written: dict[str, dict[str, object]] = {}
    for record_id in plan.clear_key_ids:
        written.setdefault(record_id, {})[plan.key_field] = None
    for fill in plan.fills:
        written.setdefault(plan.survivor_id, {})[fill.field] = fill.value
    return written


def _presumed_current(snapshot: Snapshot) -> dict[str, dict[str, object]]:
    """Return the Tasks as the resolution left them, for the diff shown before the Tasks are read."""
    current = {record_id: dict(values) for record_id, values in snapshot.records.items()}
    for plan in _ran_plans(snapshot):
        for record_id, values in _written_values(plan).items():
            current.setdefault(record_id, {}).update(values)
        for record_id in (*plan.delete_ids, *plan.undelete_first_ids):
            current.setdefault(record_id, {})["IsDeleted"] = True
    return current


def _plan_undo(snapshot: Snapshot, current: Mapping[str, Mapping[str, object]]) -> _UndoPlan:
    undo = _UndoPlan()
    for plan in _ran_plans(snapshot):
        undo.lines.append(f"= group {plan.group_id}, where {plan.survivor_id} was kept")
        written = _written_values(plan)
        for record_id in dict.fromkeys((*plan.undelete_first_ids, *plan.clear_key_ids, *plan.delete_ids,
                                        *written)):
            before = snapshot.records.get(record_id, {})
            now = current.get(record_id)
            if now is None:
                undo.purged[record_id] = _purged_sentence(record_id, snapshot, written.get(record_id, {}))
                undo.lines.append(f"! {undo.purged[record_id]}")
                continue
            reverts: dict[str, object] = {}
            record_lines: list[str] = []
            is_deleted = bool(now.get("IsDeleted"))
            was_deleted = bool(before.get("IsDeleted"))
            bin_before = record_id in plan.undelete_first_ids and was_deleted
            deleted_by_plan = record_id in plan.delete_ids and not was_deleted
            for name, value in written.get(record_id, {}).items():
                if _comparable(now.get(name)) == _comparable(before.get(name)):
                    continue
                if _comparable(now.get(name)) != _comparable(value):
                    undo.left_as_is[record_id] = (f"Task {record_id}: {name} changed since the resolution, "
                                                  "so it was left as is.")
                    record_lines.append(f"! {undo.left_as_is[record_id]}")
                elif is_deleted and not bin_before and not deleted_by_plan:
                    undo.left_as_is[record_id] = (f"Task {record_id} was deleted after the resolution, "
                                                  f"so its {name} was left as is.")
                    record_lines.append(f"! {undo.left_as_is[record_id]}")
                else:
                    reverts[name] = before.get(name)
                    record_lines.append(f"~ {record_id}: {name}: {diff_value(now.get(name))} -> "
                                        f"{diff_value(before.get(name))}")
            if is_deleted and (deleted_by_plan or (bin_before and reverts)):
                undo.restore.append(record_id)
                undo.lines.append(f"+ restore {record_id} from the recycle bin")
            undo.lines += record_lines
            for name, value in reverts.items():
                target = undo.clear if is_empty(value) else undo.put_back
                target.setdefault(record_id, {})[name] = value
            if bin_before and (reverts or not is_deleted):
                undo.delete_again.append(record_id)
                undo.lines.append(f"- delete {record_id} again, as it was in the recycle bin before")
    return undo


def undo_lines(snapshot: Snapshot, current: Mapping[str, Mapping[str, object]] | None = None) -> list[str]:
    """Return the writes undo makes, as diff lines: Tasks restored, values put back, Tasks deleted again.

    ``current`` is each Task as read now; without it the Tasks are taken as the
    resolution left them. A value changed since the resolution is named and left as is.
    """
    return _plan_undo(snapshot, _presumed_current(snapshot) if current is None else current).lines


def ran_group_ids(snapshot: Snapshot) -> list[str]:
    """Return the Ids of the groups the resolution started writing, the ones undo works on."""
    return [plan.group_id for plan in _ran_plans(snapshot)]


def undo_warnings(run: EnablementRun, snapshot: Snapshot) -> list[str]:
    """Return the sentences to show before the admin confirms an undo, or [] when undo can restore everything.

    Reads the key field's state and the snapshot's Tasks. When the field is Unique
    now, Salesforce rejects each key undo would put back that another Task has
    (the survivor, or another restored Task), so those Tasks come back without
    their key. The Tasks the recycle bin no longer contains are named too.
    """
    connection = run.require_connection()
    _check_org(snapshot, connection.org_id)
    ids = list(dict.fromkeys(record_id for plan in _ran_plans(snapshot)
                             for record_id in (*plan.touched_ids, plan.survivor_id)))
    fields = _undo_fields(snapshot)
    current = _read_in_pages(connection, ids, fields, no_progress, None)
    undo = _plan_undo(snapshot, current)
    warnings: list[str] = []
    described = describe_field(connection, snapshot.key_field) or {}
    if described.get("unique"):
        keyless = _rejected_keys(undo.put_back, current, snapshot.key_field,
                                case_sensitive=bool(described.get("caseSensitive")))
        if keyless:
            warnings.append(f"{snapshot.key_field} is Unique now, so {count_phrase(len(keyless), 'Task')} "
                            f"will be restored without {'its' if len(keyless) == 1 else 'their'} key, "
                            "because another Task has the same key.")
    if undo.purged:
        warnings.append(f"{count_phrase(len(undo.purged), 'Task')} of this resolution "
                        f"{'is' if len(undo.purged) == 1 else 'are'} no longer in the recycle bin and "
                        f"cannot come back; their values are in the snapshot "
                        f"{snapshot.path or snapshot.snapshot_id}.")
    return warnings


def _rejected_keys(put_back: Mapping[str, Mapping[str, object]], current: Mapping[str, Mapping[str, object]],
                  key_field: str, *, case_sensitive: bool) -> list[str]:
    """Return the Tasks whose key, put back, would collide in a Unique index with another Task's key."""
    def folded(value: object) -> str:
        text = str(value)
        return text if case_sensitive else text.casefold()

    taken = {folded(values.get(key_field)) for record_id, values in current.items()
             if not is_empty(values.get(key_field)) and key_field not in put_back.get(record_id, {})}
    rejected: list[str] = []
    for record_id, values in put_back.items():
        key = values.get(key_field)
        if is_empty(key):
            continue
        if folded(key) in taken:
            rejected.append(record_id)
        else:
            taken.add(folded(key))
    return rejected


def undo_resolution(
    run: EnablementRun,
    snapshot_id: str | None = None,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> UndoOutcome:
    """Undo the resolution of snapshot ``snapshot_id`` (the newest one when None); record the change.

    Restores from the recycle bin the Tasks the resolution deleted and puts back each
    value the resolution wrote that the Task still contains. A value changed since is
    left as is. Then deletes again the Tasks that were in the recycle bin before. Fields
    are emptied before values are put back, so a Unique key never sits on two Tasks.
    Raises SnapshotError when there is no such snapshot, it belongs to another org,
    or it was undone already. Raises Cancelled when ``cancel`` is set between steps,
    after recording what was done, so the snapshot is then "partly undone" and undo
    can be run again.
    """
    connection = run.require_connection()
    snapshot = _snapshot_to_undo(connection.org_id, snapshot_id)
    outcome = UndoOutcome(snapshot_id=snapshot.snapshot_id)
    ids = list(dict.fromkeys(record_id for plan in _ran_plans(snapshot)
                             for record_id in (*plan.touched_ids, plan.survivor_id)))

    progress(0, 5, f"Reading {count_phrase(len(ids), 'Task')} of snapshot {snapshot.snapshot_id}")
    current = _read_in_pages(connection, ids, _undo_fields(snapshot), no_progress, cancel)
    undo = _plan_undo(snapshot, current)
    outcome.not_in_bin = dict(undo.purged)
    outcome.left_as_is = dict(undo.left_as_is)
    try:
        check_cancel(cancel)
        progress(1, 5, "Restoring Tasks from the recycle bin")
        restored = _collect(undelete_tasks(connection, undo.restore), outcome.failed, "Restoring")
        outcome.restored = [record_id for record_id in restored
                            if not snapshot.records[record_id].get("IsDeleted")]
        live = {record_id for record_id in current if not current[record_id].get("IsDeleted")} | set(restored)

        check_cancel(cancel)
        progress(2, 5, "Emptying the fields the resolution filled")
        rows = [{"Id": record_id, **values} for record_id, values in undo.clear.items() if record_id in live]
        cleared = _collect(update_tasks(connection, rows), outcome.failed, "Emptying fields of")

        check_cancel(cancel)
        progress(3, 5, "Putting back the keys the resolution cleared")
        rows = [{"Id": record_id, **values} for record_id, values in undo.put_back.items()
                if record_id in live]
        results = update_tasks(connection, rows)
        put_back = _collect(results, outcome.failed, "Putting back values of")
        outcome.failed.update(_explain_duplicates(results, undo.put_back, snapshot.key_field, current,
                                                  set(restored)))
        outcome.reverted = list(dict.fromkeys([*cleared, *put_back]))

        check_cancel(cancel)
        progress(4, 5, "Deleting again the Tasks that were in the recycle bin")
        again = [record_id for record_id in undo.delete_again if record_id in live]
        outcome.deleted_again = _collect(delete_tasks(connection, again), outcome.failed, "Deleting")
    except Cancelled:
        _finish_undo(run, snapshot, outcome, stopped="was cancelled")
        raise
    except Exception as error:  # a failed call: what was done so far is recorded, and undo can run again
        _finish_undo(run, snapshot, outcome, stopped="stopped because a call failed",
                     problem=explain(error).sentence)
        raise

    _finish_undo(run, snapshot, outcome)
    progress(5, 5, f"Undid snapshot {snapshot.snapshot_id}")
    return outcome


def _explain_duplicates(results: WriteOutcomes, put_back: Mapping[str, Mapping[str, object]],
                        key_field: str, current: Mapping[str, Mapping[str, object]],
                        restored: set[str]) -> dict[str, str]:
    """Return, for each key put back that DUPLICATE_VALUE rejected, a sentence naming the Task that has it."""
    sentences: dict[str, str] = {}
    for record_id, reason in results.items():
        key = put_back.get(record_id, {}).get(key_field)
        if reason is None or "DUPLICATE_VALUE" not in reason or key is None:
            continue
        holder = next((other for other, values in current.items() if other != record_id
                       and str(values.get(key_field) or "").casefold() == str(key).casefold()), "")
        keeper = f"Task {holder}" if holder else "another Task"
        state = "restored" if record_id in restored else "left"
        sentences[record_id] = (f"{key_field} is Unique now, so Task {record_id} was {state} without its key "
                                f"{diff_value(key)}, which {keeper} keeps.")
    return sentences


def _undo_fields(snapshot: Snapshot) -> list[str]:
    """Return the fields undo reads again: the key, IsDeleted, the fillable fields and every field filled."""
    filled = {fill.field for plan in snapshot.resolution_plans for fill in plan.fills}
    return sorted({name for values in snapshot.records.values() for name in values
                   if name in {snapshot.key_field, "IsDeleted", *FILLABLE_FIELDS, *filled}})


def _check_org(snapshot: Snapshot, org_id: str) -> None:
    if snapshot.org_id != org_id:
        raise SnapshotError(f"The snapshot {snapshot.snapshot_id} belongs to the org {snapshot.org_id}, not "
                            "this one; connect to that org to undo it.")


def _snapshot_to_undo(org_id: str, snapshot_id: str | None) -> Snapshot:
    if snapshot_id is None:
        snapshots = [snapshot for snapshot in list_snapshots(org_id) if snapshot.status != UNDONE]
        if not snapshots:
            raise SnapshotError("No resolution of this org is left to undo.")
        return snapshots[0]
    snapshot = find_snapshot(org_id, snapshot_id)
    _check_org(snapshot, org_id)
    if snapshot.status == UNDONE:
        raise SnapshotError(f"The resolution of snapshot {snapshot_id} was undone already, on "
                            f"{snapshot.undone_at}.")
    return snapshot


def _comparable(value: object) -> object:
    return None if is_empty(value) else value


def _purged_sentence(record_id: str, snapshot: Snapshot, written: Mapping[str, object]) -> str:
    before = snapshot.records.get(record_id, {})
    subject = str(before.get("Subject") or "(no subject)")
    lost = sorted(written)
    values = f" and its {', '.join(lost)} cannot be put back" if lost else ""
    return (f"Task {record_id} ({subject!r}) is no longer in the recycle bin, so it cannot be "
            f"restored{values}; its values are in the snapshot {snapshot.path or snapshot.snapshot_id}, "
            "to enter again by hand.")


def _collect(results: WriteOutcomes, failed: dict[str, str], step: str) -> list[str]:
    """Return the Ids written; add the others to ``failed`` with the step and Salesforce's reason."""
    for record_id, reason in results.items():
        if reason is not None:
            failed.setdefault(record_id, f"{step} Task {record_id} failed: {reason}")
    return [record_id for record_id, reason in results.items() if reason is None]


def _finish_undo(run: EnablementRun, snapshot: Snapshot, outcome: UndoOutcome, *, stopped: str = "",
                 problem: str = "") -> None:
    """Record the undo in the run, then store its outcome in the snapshot.

    ``stopped`` is why the undo stopped before its last step ("was cancelled"), or "" when
    it did not. ``problem`` is the failed call's message, recorded as a line.
    """
    complete = not stopped and not outcome.failed and not outcome.not_in_bin
    snapshot.status = UNDONE if complete else PARTLY_UNDONE
    snapshot.undone_at = datetime.now(UTC).isoformat(timespec="seconds")
    snapshot.undo_outcomes = {**{record_id: None for record_id in
                                 {*outcome.restored, *outcome.reverted, *outcome.deleted_again}},
                              **outcome.not_in_bin, **outcome.failed}
    summary = (f"Undid the resolution of snapshot {snapshot.snapshot_id}: restored "
               f"{count_phrase(len(outcome.restored), 'Task')}, put back values on {len(outcome.reverted)}")
    if stopped:
        summary = f"Undo of snapshot {snapshot.snapshot_id} {stopped} after it " + summary[len("Undid "):]
    lines = [f"+ restore {record_id}" for record_id in outcome.restored]
    lines += [f"~ put back values of {record_id}" for record_id in outcome.reverted]
    lines += [f"- delete again {record_id}" for record_id in outcome.deleted_again]
    lines += [f"! {sentence}" for sentence in (*outcome.not_in_bin.values(), *outcome.left_as_is.values(),
                                                *outcome.failed.values())]
    if problem:
        lines.append(f"! {problem} Undo can be run again to finish.")
    if outcome.failed or outcome.not_in_bin:
        summary += f"; {len(outcome.failed) + len(outcome.not_in_bin)} Tasks could not be restored"
    record_change(run, Step.CONFLICTS, summary, lines)
    update_snapshot(snapshot)
