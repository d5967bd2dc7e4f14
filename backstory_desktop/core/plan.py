"""The dry-run plan of a local sync: what each mail message would do to the org's Tasks.

Classification is pure: the sync planner first looks up existing Tasks,
people and users, then hands them here. Nothing is written while planning.
A long source is classified chunk by chunk through one ``PlanClassifier``,
which is given the first row of each key seen in earlier chunks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from backstory_desktop.core.activity import MailActivity, ProblemKind, SourceProblem
from backstory_desktop.core.message_id import key_spellings

# The row types and the update helpers live beside this module; callers import them from here.
from backstory_desktop.core.plan_rows import Action as Action
from backstory_desktop.core.plan_rows import FieldRules as FieldRules
from backstory_desktop.core.plan_rows import PlanRow as PlanRow
from backstory_desktop.core.plan_rows import ReasonCode as ReasonCode
from backstory_desktop.core.plan_updates import enrich_existing_task as enrich_existing_task
from backstory_desktop.core.plan_updates import retry_create_as_update as retry_create_as_update
from backstory_desktop.core.plan_updates import stored_spelling_advice as stored_spelling_advice
from backstory_desktop.core.plan_updates import update_code
from backstory_desktop.core.records import TaskRecord, UserRef

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")

# Task.Subject is at most 255 characters long and Task.Description 32,000.
SUBJECT_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 32_000


@dataclass(frozen=True)
class InactiveOwner:
    """An inactive User who would have owned Tasks, and the user who owns them instead."""

    user_id: str
    username: str
    replaced_by: str  # the username of the user who owns the Tasks instead
    rows: int  # plan rows whose owner was replaced


@runtime_checkable
class CountedRows(Protocol):
    """Plan rows that count their actions without reading every row, such as a journal's."""

    def action_counts(self) -> dict[str, int]: ...


@runtime_checkable
class ReasonCountedRows(Protocol):
    """Plan rows that count their reason codes without reading every row, such as a journal's."""

    def reason_counts(self) -> dict[str, int]: ...


@dataclass
class Plan:
    """Every row of a dry run, in the order the messages were read, and the field rules it used.

    ``rows`` is a list in memory, or a sequence backed by the sync journal for
    a plan that ``build_plan`` wrote there under ``run_id``.
    """

    rows: Sequence[PlanRow]
    rules: FieldRules
    run_id: str | None = None
    inactive_owners: list[InactiveOwner] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Count rows per action, every action listed even when zero."""
        counts = {action.value: 0 for action in Action}
        if isinstance(self.rows, CountedRows):
            counts.update(self.rows.action_counts())
            return counts
        for row in self.rows:
            counts[row.action.value] += 1
        return counts

    def reason_counts(self) -> dict[str, int]:
        """Count rows per reason code, every code listed even when zero."""
        counts = {code.value: 0 for code in ReasonCode}
        if isinstance(self.rows, ReasonCountedRows):
            counts.update(self.rows.reason_counts())
            return counts
        for row in self.rows:
            counts[row.reason_code.value] += 1
        return counts


@dataclass(frozen=True)
class PlanLookups:
    """What the org holds for the messages being planned.

    ``tasks`` are every Task, deleted and archived included, whose key is one
    of the messages' key spellings, or one of the case variants the planner
    looked up. Matching against the field's case rule happens here.
    """

    tasks: Sequence[TaskRecord]
    contacts_by_email: Mapping[str, str]
    leads_by_email: Mapping[str, str]
    users_by_email: Mapping[str, UserRef]
    running_user: UserRef
    # Users named by the source's owner Ids (MailActivity.owner_id), by Id.
    users_by_id: Mapping[str, UserRef] = field(default_factory=dict)
    # WhoIds the source names (MailActivity.who_id) that are neither a Contact
    # nor a Lead in the org. A WhoId the planner did not look up is trusted.
    unknown_who_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FirstRow:
    """The first row of a key in a plan: where it was read and what the plan does with it."""

    source_ref: str
    action: Action


def classify_activities(
    activities: Iterable[MailActivity],
    problems: Iterable[SourceProblem],
    lookups: PlanLookups,
    rules: FieldRules,
) -> Plan:
    """Classify every message as create, update, conflict, invalid or excluded."""
    classifier = PlanClassifier(rules)
    rows = classifier.classify([*problems, *activities], lookups)
    return Plan(rows, rules, inactive_owners=classifier.inactive_owners())


class PlanClassifier:
    """Classifies a source chunk after chunk, and gathers what the whole plan must list.

    Keys the field treats as equal are sent once, because two rows with one key
    in one Collections call would both fail: every later row of a key is
    excluded and names the first one. On a case-sensitive field, a key that
    differs from an earlier one only in case is planned on its own and warned
    about. Keys of earlier chunks are passed in as ``earlier`` and
    ``earlier_any_case`` (the planner reads them back from the journal), so
    memory stays bounded by the chunk size.
    """

    def __init__(self, rules: FieldRules) -> None:
        self.rules = rules
        self._replaced: dict[str, InactiveOwner] = {}

    def classify(
        self,
        items: Iterable[MailActivity | SourceProblem],
        lookups: PlanLookups,
        earlier: Mapping[str, FirstRow] | None = None,
        earlier_any_case: Mapping[str, FirstRow] | None = None,
    ) -> list[PlanRow]:
        """Classify one chunk in source order.

        ``earlier`` maps the folded keys of earlier chunks to their first row.
        ``earlier_any_case`` maps casefolded keys of earlier chunks to their
        first row. Only a case-sensitive field needs it, to warn about keys that
        differ only in case.
        """
        index = _TaskIndex(lookups.tasks, self.rules)
        first_rows: dict[str, FirstRow] = dict(earlier or {})
        first_rows_any_case: dict[str, FirstRow] = dict(earlier_any_case or {})
        rows: list[PlanRow] = []
        for item in items:
            if isinstance(item, SourceProblem):
                rows.append(_problem_row(item))
                continue
            key = item.message_id.key
            if key is None:
                rows.append(_invalid_row(item))
                continue
            folded = self.rules.fold(key)
            first = first_rows.get(folded)
            if first is not None:
                rows.append(_excluded_row(item, key, first))
                continue

            if item.who_id and item.who_id in lookups.unknown_who_ids:
                row = _unknown_who_row(item, key, item.who_id)
            else:
                row = _classify_keyed(item, key, index, lookups, self.rules)
                self._note_replaced_owner(item, row, lookups)
            first_rows[folded] = FirstRow(item.source_ref, row.action)
            row = self._with_other_case_warning(row, key, first_rows[folded], first_rows_any_case)
            rows.append(_with_key_warnings(row, item))
        return rows

    def _with_other_case_warning(
        self, row: PlanRow, key: str, first: FirstRow, first_rows_any_case: dict[str, FirstRow]
    ) -> PlanRow:
        """Add a warning to the row when an earlier message's key differs from ``key`` only in case.

        A case-sensitive field keeps the two keys apart, so both rows stay in the plan.
        """
        if not self.rules.case_sensitive:
            return row
        earlier = first_rows_any_case.setdefault(key.casefold(), first)
        if earlier is first:
            return row
        warning = (
            f"the key differs only in case from the key of {earlier.source_ref}, and the case-sensitive "
            "field keeps the two apart: check both are the same e-mail before applying"
        )
        return replace(row, reason=f"{row.reason}; {warning}")

    def inactive_owners(self) -> list[InactiveOwner]:
        """Return the inactive users whose Tasks another user owns instead, by username."""
        return sorted(self._replaced.values(), key=lambda owner: owner.username)

    def _note_replaced_owner(self, activity: MailActivity, row: PlanRow, lookups: PlanLookups) -> None:
        if row.action is not Action.CREATE:
            return
        inactive = _inactive_owner_of(activity, lookups)
        if inactive is None:
            return
        known = self._replaced.get(inactive.id)
        rows = known.rows + 1 if known else 1
        self._replaced[inactive.id] = InactiveOwner(
            inactive.id, inactive.username, lookups.running_user.username, rows
        )


class _TaskIndex:
    """Tasks by stored key, compared as the field compares them."""

    def __init__(self, tasks: Iterable[TaskRecord], rules: FieldRules) -> None:
        self._rules = rules
        self._by_key: dict[str, list[TaskRecord]] = {}
        self._by_casefolded_key: dict[str, list[TaskRecord]] = {}
        for task in tasks:
            if task.key:
                self._by_key.setdefault(rules.fold(task.key), []).append(task)
                self._by_casefolded_key.setdefault(task.key.casefold(), []).append(task)

    def matches(self, key: str) -> list[TaskRecord]:
        """Return the Tasks the upsert would match, in any bracket spelling."""
        found: list[TaskRecord] = []
        for spelling in key_spellings(key):
            found.extend(self._by_key.get(self._rules.fold(spelling), []))
        return found

    def other_case(self, key: str) -> list[TaskRecord]:
        """Return Tasks whose key differs from ``key`` only in case, kept apart by a case-sensitive field."""
        if not self._rules.case_sensitive:
            return []
        spellings = set(key_spellings(key))
        found: list[TaskRecord] = []
        for spelling in spellings:
            found.extend(
                task for task in self._by_casefolded_key.get(spelling.casefold(), [])
                if task.key not in spellings
            )
        return found


def _with_key_warnings(row: PlanRow, activity: MailActivity) -> PlanRow:
    """Add what was odd about the message's Message-ID to the row's reason."""
    warnings = activity.message_id.warnings
    if not warnings:
        return row
    return replace(row, reason=row.reason + "; " + "; ".join(warnings))


# The reason code of each kind of source problem: the same fault counts alike in every kind of source.
_PROBLEM_CODES = {
    ProblemKind.NO_KEY: ReasonCode.NO_KEY,
    ProblemKind.BAD_REFERENCE: ReasonCode.UNKNOWN_REFERENCE,
    ProblemKind.UNREADABLE: ReasonCode.UNREADABLE,
}


def _problem_row(problem: SourceProblem) -> PlanRow:
    return PlanRow(
        Action.INVALID, problem.source_ref, None, "", problem.reason, reason_code=_PROBLEM_CODES[problem.kind]
    )


def _invalid_row(activity: MailActivity) -> PlanRow:
    reason = activity.message_id.problem or "no usable Message-ID"
    return PlanRow(
        Action.INVALID, activity.source_ref, None, activity.subject, reason, reason_code=ReasonCode.NO_KEY
    )


def _unknown_who_row(activity: MailActivity, key: str, who_id: str) -> PlanRow:
    reason = (
        f"the WhoId {who_id} is neither a Contact nor a Lead in this org: correct or clear it in the "
        "source, then plan again"
    )
    return PlanRow(
        Action.INVALID, activity.source_ref, key, activity.subject, reason,
        reason_code=ReasonCode.UNKNOWN_REFERENCE,
    )


def _excluded_row(activity: MailActivity, key: str, first: FirstRow) -> PlanRow:
    if first.action in (Action.CREATE, Action.UPDATE):
        reason = f"same Message-ID as {first.source_ref}, which this plan already syncs"
    else:
        reason = (
            f"same Message-ID as {first.source_ref}, which this plan does not sync either "
            f"({first.action.value})"
        )
    return PlanRow(
        Action.EXCLUDED, activity.source_ref, key, activity.subject, reason,
        reason_code=ReasonCode.REPEATED_KEY,
    )


def _classify_keyed(
    activity: MailActivity,
    key: str,
    index: _TaskIndex,
    lookups: PlanLookups,
    rules: FieldRules,
) -> PlanRow:
    row = _classify_matches(activity, key, index.matches(key), lookups, rules)
    other_case = index.other_case(key)
    if not other_case or row.action is Action.CONFLICT:
        return row
    warning = (
        f"Task {other_case[0].id} holds this key in another case ({other_case[0].key}), and the "
        "case-sensitive field keeps the two apart: check both are the same e-mail before applying"
    )
    return replace(row, reason=f"{row.reason}; {warning}")


def _classify_matches(
    activity: MailActivity,
    key: str,
    matches: list[TaskRecord],
    lookups: PlanLookups,
    rules: FieldRules,
) -> PlanRow:
    live = [task for task in matches if not task.is_deleted]
    deleted = [task for task in matches if task.is_deleted]
    if len(live) > 1:
        reason = (
            f"{len(live)} Tasks hold this key ({_holders(live)}): the app's Conflicts step shows "
            "them side by side, so keep one in Salesforce, then sync again"
        )
        return _conflict_row(activity, key, reason, matches, ReasonCode.SEVERAL_TASKS)
    if deleted and not live:
        reason = (
            f"Task {deleted[0].id} in the recycle bin holds this key, so a new Task would be refused "
            "as a duplicate value: restore it or empty the recycle bin first"
        )
        return _conflict_row(activity, key, reason, matches, ReasonCode.RECYCLE_BIN)
    if live:
        # The Task the upsert will update comes first, then any deleted ones.
        return _update_row(activity, key, live[0], (*live, *deleted), lookups, rules)
    return _create_row(activity, key, lookups, rules)


def _conflict_row(
    activity: MailActivity, key: str, reason: str, matches: list[TaskRecord], code: ReasonCode
) -> PlanRow:
    return PlanRow(
        Action.CONFLICT, activity.source_ref, key, activity.subject, reason, existing=tuple(matches),
        reason_code=code,
    )


def _holders(tasks: Sequence[TaskRecord]) -> str:
    """Name each Task with the spelling of the key it holds, and whether it is archived."""
    return ", ".join(
        f"{task.id} as {task.key}" + (", archived" if task.is_archived else "") for task in tasks
    )


# Task.TaskSubtype can be set when a Task is created but not changed afterwards (describe: createable
# true, updateable false). Only creates carry it, so an upsert that carries it fails on an existing Task.
CREATE_ONLY_FIELD = "TaskSubtype"


def _create_row(activity: MailActivity, key: str, lookups: PlanLookups, rules: FieldRules) -> PlanRow:
    owner_id, owner_note = _owner_for(activity, lookups)
    who_id = _who_for(activity, lookups)
    record: dict[str, Any] = {
        "Subject": _subject_for(activity),
        "Description": activity.body_text[:DESCRIPTION_MAX_LENGTH],
        "Status": "Completed",
        "OwnerId": owner_id,
        CREATE_ONLY_FIELD: "Email",
    }
    if activity.sent_at is not None:
        record["ActivityDate"] = activity.sent_at.date().isoformat()
    if who_id:
        record["WhoId"] = who_id
    if rules.flag_field:
        record[rules.flag_field] = True
    reason = "no Task holds this key yet"
    if owner_note:
        reason += f"; {owner_note}"
    if not who_id:
        reason += "; no Contact or Lead matches a participant who is not a user of this org"
    return PlanRow(
        Action.CREATE,
        activity.source_ref,
        key,
        activity.subject,
        reason,
        upsert_key=key,
        record=record,
        reason_code=ReasonCode.NEW_KEY,
    )


def _update_row(
    activity: MailActivity,
    key: str,
    task: TaskRecord,
    matches: tuple[TaskRecord, ...],
    lookups: PlanLookups,
    rules: FieldRules,
) -> PlanRow:
    candidate: dict[str, Any] = {}
    who_id = _who_for(activity, lookups)
    if who_id:
        candidate["WhoId"] = who_id
    if activity.body_text:
        candidate["Description"] = activity.body_text[:DESCRIPTION_MAX_LENGTH]
    if activity.sent_at is not None:
        candidate["ActivityDate"] = activity.sent_at.date().isoformat()
    record, reason = enrich_existing_task(task, key, candidate, rules.flag_field)
    return PlanRow(
        Action.UPDATE,
        activity.source_ref,
        key,
        activity.subject,
        reason,
        upsert_key=task.key,
        existing=matches,
        record=record,
        reason_code=update_code(task, key),
    )


def _subject_for(activity: MailActivity) -> str:
    # A subject is one line: decoded headers can carry line breaks, NULs and
    # terminal escapes, which Salesforce would store as they are.
    subject = _CONTROL_CHARACTERS.sub(" ", activity.subject).strip() or "(no subject)"
    return subject[:SUBJECT_MAX_LENGTH]


def _owner_for(activity: MailActivity, lookups: PlanLookups) -> tuple[str, str]:
    """Pick the Task owner's Id: the source's owner, the sender's active User, else a recipient's.

    Without any, the running user owns it. Returns the Id and a note for the
    row's reason whenever the owner is not the source's owner or the sender.
    """
    running = lookups.running_user
    if activity.owner_id:
        user = lookups.users_by_id.get(activity.owner_id)
        if user is None:
            return running.id, (
                f"the source's owner {activity.owner_id} is not a user in this org, "
                f"so {running.username} owns it"
            )
        if not user.is_active:
            note = f"the source's owner {user.username} is inactive, so {running.username} owns it"
            return running.id, note
        return user.id, ""
    sender = lookups.users_by_email.get(activity.sender.email) if activity.sender is not None else None
    if sender is not None and not sender.is_active:
        return running.id, f"the sender's user {sender.username} is inactive, so {running.username} owns it"
    if sender is not None:
        return sender.id, ""
    # Mail a customer sent to a rep: the first recipient who is an active user owns it.
    for recipient in activity.recipients:
        user = lookups.users_by_email.get(recipient.email)
        if user is not None and user.is_active:
            return user.id, f"the sender is not a user of this org, so the recipient {user.username} owns it"
    if activity.sender is None:
        return running.id, f"the message names no sender, so {running.username} owns it"
    return running.id, f"no sender or recipient is an active user of this org, so {running.username} owns it"


def _inactive_owner_of(activity: MailActivity, lookups: PlanLookups) -> UserRef | None:
    """Return the inactive user ``_owner_for`` replaced for this message, if it replaced one."""
    if activity.owner_id:
        user = lookups.users_by_id.get(activity.owner_id)
    elif activity.sender is not None:
        user = lookups.users_by_email.get(activity.sender.email)
    else:
        user = None
    return user if user is not None and not user.is_active else None


def _who_for(activity: MailActivity, lookups: PlanLookups) -> str | None:
    """Return the source's WhoId, else the Contact or Lead of the first participant who is not a User."""
    if activity.who_id:
        return activity.who_id
    participants = list(activity.recipients)
    if activity.sender is not None:
        participants.insert(0, activity.sender)
    emails = [p.email for p in participants if p.email and p.email not in lookups.users_by_email]
    for email in emails:
        if email in lookups.contacts_by_email:
            return lookups.contacts_by_email[email]
    for email in emails:
        if email in lookups.leads_by_email:
            return lookups.leads_by_email[email]
    return None
