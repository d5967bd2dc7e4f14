"""Read how cadence tools log e-mails and calls: Message-ID coverage per tool, and unmarked calls.

Both checks read live Tasks only (``query``, not ``queryAll``), because they
measure how the tools log now, and deleted or archived Tasks are old. The window is
SOQL's ``LAST_N_DAYS:n`` on CreatedDate, which covers today and the n days
before it in the org's time zone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce.format import format_soql

from backstory_desktop.core.coverage import KeyCounts
from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.records import UserRef
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import USER_QUERY, in_queries, user_ref

log = logging.getLogger(__name__)

MAX_DAYS = 365
# Users per IN list; a cadence tool logs as a handful of users.
USERS_PER_QUERY = 100
# Record ids kept per user, so the admin can open a few of the calls.
MAX_EXAMPLE_IDS = 5
# A Task that carries any of these Salesforce CRM Call Center fields records a call.
CALL_FIELDS = ("CallType", "CallDurationInSeconds", "CallDisposition")
_LOOKS_LIKE_CALL = " OR ".join(f"{name} != null" for name in CALL_FIELDS)
_NOT_A_CALL = " AND ".join(f"{name} = null" for name in CALL_FIELDS)
# Task subtypes that are not e-mails: calls, and the LinkedIn steps some tools log.
NOT_EMAIL_SUBTYPES = ("Call", "LinkedIn")


@dataclass
class ToolCoverage(KeyCounts):
    """Message-ID coverage of the e-mail Tasks one cadence tool's users created in the window.

    The counts and their meaning are KeyCounts'.
    """

    tool: str = ""
    usernames: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """Return the counts and examples as the step's details print them."""
        return {
            "tool": self.tool,
            "usernames": list(self.usernames),
            "tasks": self.tasks,
            "with_key": self.with_key,
            "without_key": self.without_key,
            "canonical": self.canonical,
            "without_brackets": self.without_brackets,
            "not_canonical": self.not_canonical,
            "unusable": self.unusable,
            "examples": [
                {"task_id": example.task_id, "value": example.value, "form": example.form.value,
                 "reason": example.reason}
                for example in self.examples
            ],
        }


@dataclass
class UserCalls:
    """Calls one user owns that were logged without ``TaskSubtype = Call``."""

    user_id: str
    name: str
    username: str
    count: int = 0
    example_ids: list[str] = field(default_factory=list)
    # Usernames of the users who created the calls, which names the tool that logged them.
    logged_by: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Return the user's count as the step's details print it."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "username": self.username,
            "count": self.count,
            "example_ids": list(self.example_ids),
            "logged_by": list(self.logged_by),
        }


def check_days(days: int) -> int:
    """Return ``days`` when it is a whole number of days from 1 to MAX_DAYS; raise ValueError otherwise."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"the window must be 1 to {MAX_DAYS} days, not {days!r}")
    return days


def key_coverage(
    conn: OrgConnection,
    field_api_name: str,
    users_by_tool: dict[str, list[UserRef]],
    days: int,
    *,
    case_sensitive: bool,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[ToolCoverage]:
    """Count the key forms on the e-mail Tasks each tool's users created in the last ``days`` days.

    E-mail Tasks are the Tasks that are not calls (no TaskSubtype Call, no
    call field set) and not LinkedIn steps. Returns one ToolCoverage per tool,
    in the order given. A tool without users gets zero counts.
    """
    field_api_name = validate_field_api_name(field_api_name)
    check_days(days)
    coverages = []
    for position, (tool, users) in enumerate(users_by_tool.items()):
        check_cancel(cancel)
        progress(position, len(users_by_tool), f"Reading the Tasks {tool} logged")
        coverage = ToolCoverage(tool=tool, usernames=tuple(user.username for user in users))
        for row in _rows(conn, _email_task_queries(field_api_name, users, days), cancel):
            value = row.get(field_api_name)
            coverage.add(str(row["Id"]), None if value is None else str(value), case_sensitive=case_sensitive)
        coverages.append(coverage)
        log.info("%s: %d e-mail Tasks in %d days, %d with a key, %d canonical",
                 tool, coverage.tasks, days, coverage.with_key, coverage.canonical)
    progress(len(users_by_tool), len(users_by_tool), "Read the Tasks of every cadence tool")
    return coverages


def _email_task_queries(field_api_name: str, users: list[UserRef], days: int) -> list[str]:
    if not users:
        return []
    subtypes = format_soql("{}", list(NOT_EMAIL_SUBTYPES))
    prefix = f"SELECT Id, {field_api_name}, CreatedById FROM Task WHERE CreatedById"
    # The null test keeps a Task without a subtype whether or not NOT IN matches null.
    suffix = (
        f" AND CreatedDate = LAST_N_DAYS:{days} AND {_NOT_A_CALL}"
        f" AND (TaskSubtype = null OR TaskSubtype NOT IN {subtypes}) ORDER BY CreatedDate"
    )
    groups = [[user.id] for user in users]
    return list(in_queries(prefix, groups, max_groups=USERS_PER_QUERY, suffix=suffix))


def _rows(
    conn: OrgConnection, queries: Iterable[str], cancel: threading.Event | None
) -> Iterator[dict[str, Any]]:
    """Yield the records of each query, checking the cancel event at every page."""
    for soql in queries:
        for page in conn.query_pages(soql):
            check_cancel(cancel)
            yield from page.get("records", [])


def unmarked_calls(
    conn: OrgConnection,
    days: int,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[UserCalls]:
    """Count, per owner, the calls created in the last ``days`` days without TaskSubtype Call.

    A Task records a call when CallType, CallDurationInSeconds or
    CallDisposition is set. Returns the owners with the most such calls first.
    """
    check_days(days)
    soql = (
        "SELECT Id, OwnerId, CreatedById FROM Task "
        f"WHERE CreatedDate = LAST_N_DAYS:{days} AND ({_LOOKS_LIKE_CALL}) "
        "AND (TaskSubtype = null OR TaskSubtype != 'Call') ORDER BY CreatedDate"
    )
    by_owner: dict[str, UserCalls] = {}
    creators: dict[str, set[str]] = {}
    done = 0
    for page in conn.query_pages(soql):
        check_cancel(cancel)
        for row in page.get("records", []):
            owner_id = str(row.get("OwnerId") or "")
            calls = by_owner.setdefault(owner_id, UserCalls(owner_id, "", ""))
            calls.count += 1
            if len(calls.example_ids) < MAX_EXAMPLE_IDS:
                calls.example_ids.append(str(row["Id"]))
            creators.setdefault(owner_id, set()).add(str(row.get("CreatedById") or ""))
            done += 1
        progress(done, int(page.get("totalSize") or 0), f"Read {done} calls without TaskSubtype Call")

    users = users_by_id(conn, {*by_owner, *(user for ids in creators.values() for user in ids)}, cancel)
    for owner_id, calls in by_owner.items():
        owner = users.get(owner_id)
        calls.name = owner.name if owner else owner_id
        calls.username = owner.username if owner else ""
        calls.logged_by = sorted(users[user].username if user in users else user
                                 for user in creators[owner_id])
    log.info("%d calls without TaskSubtype Call in %d days, owned by %d users", done, days, len(by_owner))
    return sorted(by_owner.values(), key=lambda calls: (-calls.count, calls.name.casefold()))


def users_by_id(
    conn: OrgConnection, ids: Iterable[str], cancel: threading.Event | None = None
) -> dict[str, UserRef]:
    """Return the Users with the given ids; an id that is no User (a queue, say) is left out."""
    groups = [[user_id] for user_id in sorted(set(ids)) if user_id]
    users: dict[str, UserRef] = {}
    for row in _rows(conn, in_queries(USER_QUERY + " WHERE Id", groups, max_groups=USERS_PER_QUERY), cancel):
        user = user_ref(row)
        users[user.id] = user
    return users


def users_by_username(conn: OrgConnection, usernames: Iterable[str]) -> dict[str, UserRef]:
    """Return the Users with the given usernames, by lower-cased username; one not found is left out.

    Salesforce compares usernames without regard to case.
    """
    groups = [[username] for username in sorted(set(usernames)) if username]
    users: dict[str, UserRef] = {}
    for soql in in_queries(USER_QUERY + " WHERE Username", groups, max_groups=USERS_PER_QUERY):
        for row in conn.query_all(soql):
            user = user_ref(row)
            users[user.username.casefold()] = user
    return users
