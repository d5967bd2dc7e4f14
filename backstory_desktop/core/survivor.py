"""Writer labels, body digests, and the default survivor: the Task of a duplicate group to keep.

Salesforce cannot merge Tasks, so resolving a group keeps one Task (the
survivor) and deletes the others. The default survivor follows one rule,
SURVIVOR_RULE, which the viewer and the reports show word for word.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from backstory_desktop.core.message_id import normalise_key
from backstory_desktop.core.records import TaskRecord

# Bodies are compared on their first 2,000 characters once whitespace is collapsed and case
# folded, because cadence tools cut or re-wrap long bodies in different places, but the start
# of one e-mail reads the same in every copy.
DIGEST_CHARS = 2000
DIGEST_HEX_LENGTH = 16

SURVIVOR_RULE = (
    "By default the Task kept is one that is not in the recycle bin, is not archived, holds the "
    "Message-ID key and was written by a cadence tool's user. Among equals the Task whose key is "
    "spelled <...> is kept, then the oldest, then the one with the lowest Id."
)

BACKSTORY = "Backstory"


def description_digest(body: str | None) -> str:
    """Return 16 hex characters of BLAKE2b over the normalised body, or "" when there is no body.

    The body is normalised by collapsing every run of whitespace to one space,
    folding case and keeping the first 2,000 characters.
    """
    if not body:
        return ""
    normalised = " ".join(body.split()).casefold()[:DIGEST_CHARS]
    if not normalised:
        return ""
    digest = hashlib.blake2b(normalised.encode("utf-8"), digest_size=DIGEST_HEX_LENGTH // 2)
    return digest.hexdigest()


def writer_label(
    created_by_id: str | None,
    created_by_name: str,
    flag: bool,
    tools_by_user_id: Mapping[str, str],
) -> str:
    """Return who wrote a Task, for the viewer and the reports.

    ``tools_by_user_id`` maps the User Id of each cadence tool's user to its
    label, such as "Outreach (jane@x.example)". A Task created by such a user is
    labelled with it, followed by ", enriched by Backstory" when the Backstory
    flag is set. A flagged Task created by anyone else is "Backstory", and any
    other Task carries its creator's name (or Id when the name is unknown).
    """
    tool = tools_by_user_id.get(created_by_id or "", "")
    if tool:
        return f"{tool}, enriched by {BACKSTORY}" if flag else tool
    if flag:
        return BACKSTORY
    return created_by_name or created_by_id or ""


def default_survivor(
    records: Sequence[TaskRecord], tool_user_ids: Collection[str]
) -> tuple[TaskRecord, str]:
    """Pick the Task to keep by SURVIVOR_RULE and return it with a one-sentence reason.

    Raises ValueError for an empty group.
    """
    if not records:
        raise ValueError("a duplicate group has no Tasks, so no Task can be kept")
    tool_users = frozenset(tool_user_ids)
    ranked = sorted(records, key=lambda record: _rank(record, tool_users))
    survivor = ranked[0]
    if len(ranked) == 1:
        return survivor, "It is the only Task of the group."
    return survivor, _reason(survivor, ranked[1:], tool_users)


def _rank(record: TaskRecord, tool_users: frozenset[str]) -> tuple[bool, bool, bool, bool, bool, float, str]:
    return (
        record.is_deleted,
        record.is_archived,
        not record.key,
        (record.created_by_id or "") not in tool_users,
        not is_bracketed(record.key),
        created_timestamp(record.created_date),
        record.id,
    )


def is_bracketed(key: str | None) -> bool:
    """Return True when a key is spelled as the product writes it: ``<local@domain>``, no whitespace."""
    return key is not None and key == f"<{normalise_key(key, case_sensitive=True)}>" and len(key) > 2


def _reason(survivor: TaskRecord, others: Sequence[TaskRecord], tool_users: frozenset[str]) -> str:
    """Name the first part of the rule that sets the survivor apart from every other Task."""
    if all(other.is_deleted for other in others) and not survivor.is_deleted:
        return "It is the only Task of the group that is not in the recycle bin."
    rivals = [other for other in others if other.is_deleted == survivor.is_deleted]
    if rivals and all(other.is_archived for other in rivals) and not survivor.is_archived:
        if survivor.is_deleted:
            return "It is the only Task of the group that is not archived."
        return "It is the only Task of the group that is neither in the recycle bin nor archived."
    rivals = [other for other in rivals if other.is_archived == survivor.is_archived]
    if survivor.key and all(not other.key for other in rivals):
        return "It is the only Task of the group that holds the Message-ID key."
    rivals = [other for other in rivals if bool(other.key) == bool(survivor.key)]
    by_tool = (survivor.created_by_id or "") in tool_users
    if by_tool and all((other.created_by_id or "") not in tool_users for other in rivals):
        return f"It was written by a cadence tool's user ({survivor.writer or survivor.created_by_name})."
    rivals = [other for other in rivals if ((other.created_by_id or "") in tool_users) == by_tool]
    if is_bracketed(survivor.key) and all(not is_bracketed(other.key) for other in rivals):
        return f"Its key {survivor.key} is in angle brackets, the form the product writes."
    rivals = [other for other in rivals if is_bracketed(other.key) == is_bracketed(survivor.key)]
    created = created_timestamp(survivor.created_date)
    if all(created_timestamp(other.created_date) > created for other in rivals):
        return f"It is the oldest Task of the group, created {readable_time(survivor.created_date)}."
    return "The Tasks tie on every other part of the rule, and it has the lowest Id."


@functools.lru_cache(maxsize=65_536)
def created_timestamp(value: str) -> float:
    """Return a Salesforce date-time as seconds since the epoch; "" and unreadable values sort last.

    Salesforce writes ``2026-11-03T10:00:01.000+0000``, which
    ``datetime.fromisoformat`` reads from Python 3.11 on. Cached, because
    grouping and the survivor rule read the dates of one group several times.
    """
    if not value:
        return float("inf")
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return float("inf")


def readable_time(value: str) -> str:
    """Return "2026-11-27 12:11:30 UTC" for a Salesforce date-time.

    Other text comes back as it is, except "", which reads "unknown".

    A time without a time zone is taken as UTC, as Salesforce returns every date-time in UTC.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value or "unknown"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
