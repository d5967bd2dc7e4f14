"""Updates of Tasks that another tool logged: what they fill, and a create turned into one.

``core.plan`` re-exports the public names; import them from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan_rows import Action, FieldRules, PlanRow, ReasonCode
from backstory_desktop.core.records import TaskRecord

# Fields an update may fill on a Task another tool logged, when that Task left them empty.
_FILLABLE_FIELDS: dict[str, Callable[[TaskRecord], object]] = {
    "WhoId": lambda task: task.who_id,
    "Description": lambda task: task.description,
    "ActivityDate": lambda task: task.activity_date,
}


def enrich_existing_task(
    task: TaskRecord, key: str, candidate: Mapping[str, Any], flag_field: str | None
) -> tuple[dict[str, Any], str]:
    """Build the update body for a Task another tool logged, and the reason shown for it.

    Updates fill only what the Task left empty and set the Backstory flag;
    they never overwrite its subject, owner or body. TaskSubtype is
    create-only on Task, so it is never sent.
    """
    record: dict[str, Any] = {}
    filled: list[str] = []
    for name, current in _FILLABLE_FIELDS.items():
        if candidate.get(name) and not current(task):
            record[name] = candidate[name]
            filled.append(name)
    if flag_field:
        record[flag_field] = True
        filled.append("the Backstory flag")

    writer = "Backstory" if task.created_by_backstory else (task.created_by_name or "another user")
    reason = f"updates Task {task.id} logged by {writer}"
    if task.key != key:
        # Rewriting the stored spelling would make the next upsert of the tool
        # that wrote it, which sends that spelling, create a second Task.
        reason += (
            f", whose key stays stored as {task.key} because the tool that logged it finds the Task "
            "by that spelling"
        )
    reason += ("; sets " + ", ".join(filled)) if filled else "; nothing to fill"
    if task.is_archived:
        reason += "; the Task is archived"
    return record, reason


def retry_create_as_update(row: PlanRow, tasks: Iterable[TaskRecord], rules: FieldRules) -> PlanRow | None:
    """Turn a create whose key another Task now has into an update of that Task.

    Returns None when no live Task has the key, so the failure is kept.
    """
    assert row.key is not None
    wanted = {rules.fold(spelling) for spelling in key_spellings(row.key)}
    live = [task for task in tasks if task.key and rules.fold(task.key) in wanted and not task.is_deleted]
    if len(live) != 1:
        return None
    record, reason = enrich_existing_task(live[0], row.key, row.record, rules.flag_field)
    reason = "another writer created it after the plan was built: " + reason
    return replace(
        row, action=Action.UPDATE, reason=reason, upsert_key=live[0].key, existing=(live[0],), record=record,
        reason_code=update_code(live[0], row.key),
    )


def update_code(task: TaskRecord, key: str) -> ReasonCode:
    """Return UPDATE when the Task has the key as the message spells it, else UPDATE_STORED_SPELLING."""
    return ReasonCode.UPDATE if task.key == key else ReasonCode.UPDATE_STORED_SPELLING


def stored_spelling_advice(reason_counts: Mapping[str, int]) -> str:
    """Say how many updates keep the key spelling their Task holds, and what the admin should do.

    Returns "" when no update keeps a stored spelling. Backstory's upserts match
    the key exactly, so a tool that writes another spelling of new e-mail's keys
    makes a second Task for each.
    """
    count = reason_counts.get(ReasonCode.UPDATE_STORED_SPELLING.value, 0)
    if not count:
        return ""
    if count == 1:
        updates = "1 update keeps the key spelling its Task already holds"
        found = "the tool that wrote it still finds it"
    else:
        updates = f"{count:,} updates keep the key spelling their Tasks already hold"
        found = "the tool that wrote them still finds them"
    return (
        f"{updates} (such as without angle brackets), so {found}. New e-mail is keyed as "
        "<local@domain>: set that tool to write the same spelling, as the Cadence-tool mapping step "
        "shows, or each new e-mail will be logged twice."
    )
