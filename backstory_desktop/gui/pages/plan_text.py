"""Sentences of the Local sync page's Plan tab: counts, inactive owners, the API route and reason codes.

Plain functions of a plan and its counts, free of Qt, so the page only sets
the text they return.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from backstory_desktop.core.plan import Action, InactiveOwner, Plan, ReasonCode
from backstory_desktop.core.plan import stored_spelling_advice as stored_spelling_advice
from backstory_desktop.sync.settings import SyncSettings

# Inactive owners named on the plan tab; the tooltip lists every one.
OWNERS_NAMED = 3

# Each reason code in a few words, for the filter of the plan table.
REASON_LABELS: dict[ReasonCode, str] = {
    ReasonCode.NEW_KEY: "new key",
    ReasonCode.UPDATE: "key held by a Task",
    ReasonCode.UPDATE_STORED_SPELLING: "stored spelling kept",
    ReasonCode.SEVERAL_TASKS: "several Tasks hold the key",
    ReasonCode.RECYCLE_BIN: "Task in the Recycle Bin",
    ReasonCode.REPEATED_KEY: "key repeated in the source",
    ReasonCode.NO_KEY: "no usable Message-ID",
    ReasonCode.UNREADABLE: "unreadable message",
    ReasonCode.UNKNOWN_REFERENCE: "Id not found in the org",
}


def counted(count: int, noun: str) -> str:
    """Return "1 Task" or "2,000 Tasks", with thousands separators."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def as_sentence(text: str) -> str:
    """End ``text`` with a full stop unless it ends a sentence already, so it can be followed by another."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def stopped_apply_text(reason: str, created: int, updated: int, in_doubt: int) -> str:
    """Describe an apply that stopped before the end: why, what it wrote, and what Resume does."""
    written = f"{counted(created, 'Task')} created, {updated:,} updated"
    if in_doubt:
        written += f", {in_doubt:,} in doubt"
    return (f"The sync stopped before the end: {as_sentence(reason)} {written}. "
            "Resume sends the rest, and the Outcome column shows where each row is.")


def inactive_owner_lines(plan: Plan) -> list[str]:
    """Describe each inactive owner the plan replaced, with the user who owns the rows instead."""
    return [f"{owner.username} → {owner.replaced_by} ({counted(owner.rows, 'row')})"
            for owner in plan.inactive_owners]


def inactive_owner_summary(plan: Plan) -> str:
    """Summarise the inactive owners in a sentence per replacing user, naming the first few of them."""
    replaced: dict[str, list[InactiveOwner]] = {}
    for owner in plan.inactive_owners:
        replaced.setdefault(owner.replaced_by, []).append(owner)
    sentences = []
    for replacement, owners in replaced.items():
        names = ", ".join(owner.username for owner in owners[:OWNERS_NAMED])
        if len(owners) > OWNERS_NAMED:
            names += f" and {len(owners) - OWNERS_NAMED} more"
        rows = sum(owner.rows for owner in owners)
        were = "was" if rows == 1 else "were"
        sentences.append(f"{counted(rows, 'row')} {were} from {counted(len(owners), 'inactive user')} "
                         f"({names}), so {replacement} owns those Tasks.")
    return " ".join(sentences)


def describe_counts(counts: dict[str, int]) -> str:
    """Describe the plan's counts per action in one line."""
    return " · ".join(f"{counts.get(action.value, 0):,} {action.value}" for action in Action)


def sends_by_bulk(plan: Plan, threshold: int) -> tuple[int, bool]:
    """Return the number of rows an apply of ``plan`` sends, and whether Bulk API 2.0 sends them."""
    counts = plan.counts()
    sending = counts.get(Action.CREATE.value, 0) + counts.get(Action.UPDATE.value, 0)
    return sending, sending >= threshold


def describe_route(sending: int, threshold: int) -> str:
    """Say which API an apply of ``sending`` rows uses with this Bulk threshold."""
    if sending >= threshold:
        return (f"Apply will use Bulk API 2.0 ({counted(sending, 'row')}, at or above the Bulk threshold "
                f"of {threshold:,}).")
    return (f"Apply will use sObject Collections ({counted(sending, 'row')}, below the Bulk threshold "
            f"of {threshold:,}).")


def apply_confirmation(plan: Plan, settings: SyncSettings, instance_url: str) -> tuple[str, list[str]]:
    """Return the question and the diff lines the admin confirms before an apply of ``plan``.

    A line whose count is zero is left out, so the diff lists only what the apply does.
    """
    counts = plan.counts()
    creates, updates = counts.get(Action.CREATE.value, 0), counts.get(Action.UPDATE.value, 0)
    lines = []
    if creates:
        lines.append(f"+ create {counted(creates, 'Task')}")
    if updates:
        lines.append(f"~ update {counted(updates, 'Task')}")
    conflicts, invalid = counts.get(Action.CONFLICT.value, 0), counts.get(Action.INVALID.value, 0)
    excluded = counts.get(Action.EXCLUDED.value, 0)
    not_sent = [counted(conflicts, "conflict")] if conflicts else []
    not_sent += [f"{invalid:,} invalid"] if invalid else []
    not_sent += [f"{excluded:,} excluded"] if excluded else []
    if not_sent:
        lines.append(f"  not sent: {', '.join(not_sent)}")
    sending, by_bulk = sends_by_bulk(plan, settings.bulk_threshold)
    route = "through Bulk API 2.0" if by_bulk else "through sObject Collections, 200 records a call"
    lines.append(f"• {route} ({counted(sending, 'row')}, Bulk API from {settings.bulk_threshold:,})")
    lines += [f"~ owner {owner.replaced_by} for the {counted(owner.rows, 'row')} of inactive user "
              f"{owner.username}" for owner in plan.inactive_owners]

    writes = [f"create {counted(creates, 'Task')}"] if creates else []
    writes += [f"update {counted(updates, 'Task')}"] if updates else []
    if not writes:
        return f"Apply the plan, which sends no Task, to the org at {instance_url}?", lines
    what = " and ".join(writes)
    return f"{what[0].upper()}{what[1:]} in the org at {instance_url}?", lines


def export_file_name(source: str, today: date) -> str:
    """Name a plan export after its source and the day: "sample plan 2026-12-05.csv"."""
    stem = Path(source.strip()).stem or "sync"
    return f"{stem} plan {today.isoformat()}.csv"
