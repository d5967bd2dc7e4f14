"""Read and write Tasks by their Message-ID key.

Keys come from email headers, which the sender controls, so they never travel
in a URL path: upserts use sObject Collections with the key in the JSON body,
and every SOQL value is quoted by simple-salesforce's ``format_soql``. Lookups
use queryAll, so deleted and archived Tasks are found too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import requests
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.records import TaskRecord, UserRef
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import (
    ProblemKind,
    SalesforceProblem,
    error_code_of,
    error_entries,
    explain,
)

logger = logging.getLogger(__name__)

TASK_QUERY_FIELDS: tuple[str, ...] = (
    "Id",
    "Subject",
    "Description",
    "WhoId",
    "WhatId",
    "OwnerId",
    "Owner.Name",
    "CreatedById",
    "CreatedBy.Name",
    "CreatedDate",
    "ActivityDate",
    "TaskSubtype",
    "IsDeleted",
    "IsArchived",
)

# sObject Collections accept at most 200 records per request.
UPSERT_BATCH_SIZE = 200
# Keys per IN list; each key is looked up in up to two spellings.
KEYS_PER_QUERY = 100
# A SOQL statement may be 100,000 characters long, but a REST query travels in
# the URL, which Salesforce rejects beyond 16,384 bytes (HTTP 414); keep the
# encoded query well below that.
MAX_SOQL_CHARACTERS = 100_000
MAX_ENCODED_QUERY_BYTES = 12_000
EMAILS_PER_QUERY = 100


@dataclass(frozen=True)
class UpsertOutcome:
    """The result of upserting one record, in the order the records were given."""

    key: str
    success: bool
    created: bool
    record_id: str | None
    error_code: str | None
    message: str
    # The fields the first error names, as Salesforce lists them (empty when it names none).
    fields: tuple[str, ...] = ()


class UpsertInterrupted(Exception):
    """An upsert run stopped before every record was sent.

    ``outcomes`` contains the results of the records sent before the stop, in
    request order; the records after them were not sent. ``in_doubt`` lists the
    keys of the request that failed without an answer (a timeout or a dropped
    connection), which may or may not have been written: look them up before
    sending them again. ``problem`` explains the failure.
    """

    def __init__(
        self, problem: SalesforceProblem, outcomes: list[UpsertOutcome], in_doubt: list[str]
    ) -> None:
        super().__init__(problem.sentence)
        self.problem = problem
        self.outcomes = outcomes
        self.in_doubt = in_doubt


class UpsertCancelled(Cancelled):
    """The admin cancelled an upsert run; ``outcomes`` contains the records sent before it."""

    def __init__(self, outcomes: list[UpsertOutcome]) -> None:
        super().__init__("cancelled by the user")
        self.outcomes = outcomes


# -- SOQL building -----------------------------------------------------------------


def _select(fields: Iterable[str], sobject: str) -> str:
    return f"SELECT {', '.join(fields)} FROM {sobject}"


def _fits(soql: str) -> bool:
    return len(soql) <= MAX_SOQL_CHARACTERS and len(quote_plus(soql)) <= MAX_ENCODED_QUERY_BYTES


def in_queries(
    prefix: str, groups: Sequence[Sequence[str]], *, max_groups: int, suffix: str = ""
) -> Iterator[str]:
    """Yield ``prefix IN (...) suffix`` queries over ``groups`` of values, chunked.

    A group's values (the spellings of one key) always land in the same query.
    Each query contains at most ``max_groups`` groups and stays within the SOQL and
    URL length limits. Values are quoted by ``format_soql``.
    """
    chunk: list[str] = []
    count = 0

    def build(values: list[str]) -> str:
        return format_soql("{:literal} IN {}{:literal}", prefix, values, suffix)

    for group in groups:
        values = list(dict.fromkeys(group))
        if not values:
            continue
        if chunk and (count >= max_groups or not _fits(build(chunk + values))):
            yield build(chunk)
            chunk, count = [], 0
        if not _fits(build(values)):
            raise ValueError(f"one lookup value is too long for a query: {values[0][:80]}...")
        chunk.extend(values)
        count += 1
    if chunk:
        yield build(chunk)


# -- reading Tasks -------------------------------------------------------------------


def _task_fields(field_api_name: str, flag_field: str | None) -> list[str]:
    fields = [TASK_QUERY_FIELDS[0], field_api_name, *TASK_QUERY_FIELDS[1:]]
    if flag_field:
        fields.append(flag_field)
    return fields


def task_record(row: dict[str, Any], field_api_name: str, flag_field: str | None = None) -> TaskRecord:
    """Build a TaskRecord from a query row that selected the task query fields."""
    owner = row.get("Owner") or {}
    creator = row.get("CreatedBy") or {}
    key = row.get(field_api_name)
    return TaskRecord(
        id=str(row["Id"]),
        key=None if key is None else str(key),
        subject=str(row.get("Subject") or ""),
        description=str(row.get("Description") or ""),
        who_id=row.get("WhoId"),
        what_id=row.get("WhatId"),
        owner_id=row.get("OwnerId"),
        owner_name=str(owner.get("Name") or ""),
        created_by_id=row.get("CreatedById"),
        created_by_name=str(creator.get("Name") or ""),
        created_date=str(row.get("CreatedDate") or ""),
        activity_date=row.get("ActivityDate"),
        subtype=row.get("TaskSubtype"),
        created_by_backstory=bool(flag_field and row.get(flag_field)),
        is_deleted=bool(row.get("IsDeleted")),
        is_archived=bool(row.get("IsArchived")),
    )


def find_tasks_by_keys(
    conn: OrgConnection,
    field: str,
    keys: Iterable[str],
    *,
    flag_field: str | None = None,
) -> dict[str, list[TaskRecord]]:
    """Find the Tasks stored under each key, in every spelling of it, deleted and archived too.

    Returns a list for every given key (empty when nothing matched). SOQL
    compares a Unique case-sensitive field with regard to case and every other
    text field without, so on a case-insensitive field a list may contain a Task
    whose key differs from the given one only in case.
    """
    field = validate_field_api_name(field)
    if flag_field:
        flag_field = validate_field_api_name(flag_field, allow_namespace=True)
    requested = list(dict.fromkeys(keys))
    results: dict[str, list[TaskRecord]] = {key: [] for key in requested}
    spellings = {key: key_spellings(key) for key in requested}
    owners = _owners_by_spelling(spellings)

    # "<x>" and "x" are spellings of each other: each value is asked for once.
    asked: set[str] = set()
    groups: list[list[str]] = []
    for values in spellings.values():
        group = [value for value in values if value not in asked]
        asked.update(group)
        groups.append(group)
    prefix = f"{_select(_task_fields(field, flag_field), 'Task')} WHERE {field}"
    for soql in in_queries(prefix, groups, max_groups=KEYS_PER_QUERY):
        for row in conn.query_all(soql, include_deleted=True):
            record = task_record(row, field, flag_field)
            for key in _keys_for(record.key, owners):
                results[key].append(record)
    return results


def _owners_by_spelling(spellings: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for key, values in spellings.items():
        for value in values:
            owners.setdefault(value.casefold(), []).append(key)
    return owners


def _keys_for(stored: str | None, owners: dict[str, list[str]]) -> list[str]:
    if stored is None:
        return []
    return list(dict.fromkeys(owners.get(stored.casefold(), [])))


def scan_tasks(
    conn: OrgConnection,
    field: str,
    *,
    flag_field: str | None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[TaskRecord]:
    """Yield every Task that has a key, deleted and archived ones included, page by page."""
    field = validate_field_api_name(field)
    if flag_field:
        flag_field = validate_field_api_name(flag_field, allow_namespace=True)
    soql = f"{_select(_task_fields(field, flag_field), 'Task')} WHERE {field} != null"
    done = 0
    for page in conn.query_pages(soql, include_deleted=True):
        check_cancel(cancel)
        total = int(page.get("totalSize") or 0)
        for row in page.get("records", []):
            yield task_record(row, field, flag_field)
            done += 1
        if progress is not None:
            progress(done, total, f"Read {done} of {total} Tasks with a key")
    logger.info("Scanned %d Tasks with a %s value", done, field)


# -- people and users ------------------------------------------------------------------


def _emails(emails: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(email.strip().lower() for email in emails if email.strip()))


def _ids_by_email(conn: OrgConnection, sobject: str, emails: list[str], extra: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    prefix = f"SELECT Id, Email FROM {sobject} WHERE Email"
    groups = [[email] for email in emails]
    for soql in in_queries(prefix, groups, max_groups=EMAILS_PER_QUERY, suffix=extra):
        for row in conn.query_all(soql):
            email = str(row.get("Email") or "").lower()
            found.setdefault(email, str(row["Id"]))
    return found


def find_people_by_email(
    conn: OrgConnection, emails: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Return (contacts, leads) as lower-cased email -> Id; leads only for emails no Contact has.

    When several records share an email, the oldest is used.
    """
    requested = _emails(emails)
    order = " ORDER BY CreatedDate ASC"
    contacts = _ids_by_email(conn, "Contact", requested, order)
    remaining = [email for email in requested if email not in contacts]
    leads = _ids_by_email(conn, "Lead", remaining, f" AND IsConverted = false{order}")
    return contacts, leads


USER_QUERY = "SELECT Id, Name, Username, Email, IsActive FROM User"


def user_ref(row: dict[str, Any]) -> UserRef:
    """Build a UserRef from a row of USER_QUERY."""
    return UserRef(
        id=str(row["Id"]),
        name=str(row.get("Name") or ""),
        username=str(row.get("Username") or ""),
        email=str(row.get("Email") or "").lower(),
        is_active=bool(row.get("IsActive")),
    )


def get_user(conn: OrgConnection, user_id: str) -> UserRef:
    """Return one User by Id; raises LookupError when the org has none with it."""
    return _single_user(conn, format_soql(USER_QUERY + " WHERE Id = {}", user_id), f"the Id {user_id}")


def find_user_by_username(conn: OrgConnection, username: str) -> UserRef:
    """Return one User by username; raises LookupError when the org has none with it."""
    soql = format_soql(USER_QUERY + " WHERE Username = {}", username)
    return _single_user(conn, soql, f"the username {username}")


def _single_user(conn: OrgConnection, soql: str, described: str) -> UserRef:
    for row in conn.query_all(soql):
        return user_ref(row)
    raise LookupError(f"no user with {described} in this org")


def find_users_by_email(conn: OrgConnection, emails: Iterable[str]) -> dict[str, UserRef]:
    """Return lower-cased email -> User; an active user wins over inactive ones with that email."""
    requested = _emails(emails)
    users: dict[str, UserRef] = {}
    prefix = USER_QUERY + " WHERE Email"
    groups = [[email] for email in requested]
    for soql in in_queries(prefix, groups, max_groups=EMAILS_PER_QUERY):
        for row in conn.query_all(soql):
            user = user_ref(row)
            known = users.get(user.email)
            if known is None or (user.is_active and not known.is_active):
                users[user.email] = user
    return users


# -- upserts ------------------------------------------------------------------------


def _batches(records: Sequence[dict[str, Any]], field: str) -> list[list[dict[str, Any]]]:
    """Split records into requests of at most 200, never two records with one key in a request.

    Keeping request order, a repeated key starts a new request, because
    Salesforce rejects duplicate external IDs within one upsert call.
    """
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    keys: set[str] = set()
    for record in records:
        key = record[field]
        if current and (len(current) >= UPSERT_BATCH_SIZE or key in keys):
            batches.append(current)
            current, keys = [], set()
        current.append(record)
        keys.add(key)
    if current:
        batches.append(current)
    return batches


def _prepared(records: Sequence[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    prepared = []
    for index, record in enumerate(records):
        key = record.get(field)
        if not isinstance(key, str) or not key:
            raise ValueError(f"record {index} has no {field} value to upsert by")
        body = {name: value for name, value in record.items() if name != "attributes"}
        prepared.append({"attributes": {"type": "Task"}, **body})
    return prepared


def _outcome(key: str, result: dict[str, Any]) -> UpsertOutcome:
    errors = error_entries(result.get("errors") or [])
    success = bool(result.get("success"))
    return UpsertOutcome(
        key=key,
        success=success,
        created=bool(result.get("created")) if success else False,
        record_id=result.get("id"),
        error_code=error_code_of(errors[0]) if errors else None,
        message="; ".join(str(error.get("message", "")) for error in errors),
        fields=tuple(str(name) for name in errors[0].get("fields") or []) if errors else (),
    )


def upsert_batch(conn: OrgConnection, field: str, records: Sequence[dict[str, Any]]) -> list[UpsertOutcome]:
    """Send one sObject Collections upsert of at most 200 records with distinct keys.

    ``allOrNone`` is false, so one bad record does not stop the others. Returns
    one outcome per record in the given order. Errors of the call as a whole
    are raised as they come (simple-salesforce errors, SalesforceProblem,
    requests exceptions), and a result list that does not match the records
    as UpsertInterrupted with every key in doubt.
    """
    field = validate_field_api_name(field)
    if len(records) > UPSERT_BATCH_SIZE:
        raise ValueError(f"{len(records)} records for one Collections call, more than {UPSERT_BATCH_SIZE}")
    batch = _prepared(records, field)
    keys = [record[field] for record in batch]
    results = conn.request(
        "PATCH", f"composite/sobjects/Task/{field}", json={"allOrNone": False, "records": batch}
    )
    if not isinstance(results, list) or len(results) != len(batch):
        problem = SalesforceProblem(
            ProblemKind.BUG,
            "Salesforce returned a result list that does not match the records sent; "
            "look the keys up before sending them again.",
            f"sent {len(batch)} records, received: {results!r}"[:4000],
        )
        raise UpsertInterrupted(problem, [], keys)
    return [upsert_outcome(key, result) for key, result in zip(keys, results, strict=True)]


def upsert_outcome(key: str, result: dict[str, Any]) -> UpsertOutcome:
    """Read one record's entry of a Collections upsert response."""
    return _outcome(key, result)


def upsert_tasks(
    conn: OrgConnection,
    field: str,
    records: Sequence[dict[str, Any]],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[UpsertOutcome]:
    """Upsert Tasks by ``field`` through sObject Collections, 200 records a request.

    Each record is a dict of Task fields and must carry its key under ``field``.
    Returns one outcome per record in the given order. Raises UpsertCancelled
    when ``cancel`` is set between requests, and UpsertInterrupted when a
    request fails as a whole (limits, session, network).
    """
    field = validate_field_api_name(field)
    _prepared(records, field)
    outcomes: list[UpsertOutcome] = []
    total = len(records)

    for batch in _batches(list(records), field):
        if cancel is not None and cancel.is_set():
            raise UpsertCancelled(outcomes)
        keys = [record[field] for record in batch]
        try:
            outcomes.extend(upsert_batch(conn, field, batch))
        except UpsertInterrupted as interrupted:
            raise UpsertInterrupted(interrupted.problem, outcomes, interrupted.in_doubt) from interrupted
        except (SalesforceError, SalesforceProblem, requests.RequestException) as exc:
            in_doubt = keys if isinstance(exc, requests.RequestException) else []
            raise UpsertInterrupted(explain(exc), outcomes, in_doubt) from exc
        if progress is not None:
            progress(len(outcomes), total, f"Sent {len(outcomes)} of {total} Tasks")

    failed = sum(1 for outcome in outcomes if not outcome.success)
    logger.info("Upserted %d Tasks by %s: %d failed", total, field, failed)
    return outcomes
