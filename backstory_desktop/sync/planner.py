"""Build the dry-run plan of a local sync, chunk by chunk, into the sync journal.

Reads only: existing Tasks by every spelling of each key (deleted and
archived included, through queryAll), Contacts and Leads by e-mail and by
the WhoIds a source names, and Users by e-mail and by Id. The source is read
as a stream: each chunk is looked up, classified and written to the journal
before the next is read, so memory stays bounded by the chunk size plus the
caches of e-mail addresses, WhoIds and users.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TypeVar

import requests
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.plan import FieldRules, Plan, PlanClassifier, PlanLookups
from backstory_desktop.core.records import TaskRecord, UserRef
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.errors import SalesforceProblem, SignInRequired, explain, is_daily_limit
from backstory_desktop.salesforce.schema import FieldState
from backstory_desktop.salesforce.tasks import (
    USER_QUERY,
    find_people_by_email,
    find_tasks_by_keys,
    find_users_by_email,
    get_user,
    in_queries,
    user_ref,
)
from backstory_desktop.sources.record_ids import CONTACT_PREFIX, LEAD_PREFIX
from backstory_desktop.store.journal import Journal

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 500
# Lookups only read, so a lookup that fails with a transient error is sent
# again after waits of 1, 2, 4 and 8 seconds before the plan stops.
LOOKUP_ATTEMPTS = 5
FIRST_LOOKUP_WAIT_SECONDS = 1.0
# Error codes of a failed read that may succeed when sent again. REQUEST_LIMIT_EXCEEDED
# counts only for the concurrent-request limit, because a spent daily allowance stays spent.
TRANSIENT_LOOKUP_ERRORS = frozenset({"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_LIMIT_EXCEEDED"})

SourceItem = MailActivity | SourceProblem
V = TypeVar("V")


def build_plan(
    connection: OrgConnection,
    source: Iterable[SourceItem],
    *,
    journal: Journal,
    source_label: str,
    source_kind: str,
    field: FieldState,
    flag_field: str | None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Plan:
    """Plan every message of ``source`` into a new journal run and return the journal-backed plan.

    Writes nothing to the org. When the source or a lookup fails, or the admin
    cancels, the unfinished run is removed from the journal and the error raised.
    """
    started = time.monotonic()
    rules = FieldRules(field.api_name, bool(field.case_sensitive), flag_field)
    run_id = journal.start_run(
        org_id=connection.org_id,
        instance_url=connection.instance_url,
        username=connection.username,
        source=source_label,
        source_kind=source_kind,
        rules=rules,
    )
    try:
        classifier = PlanClassifier(rules)
        lookups = _OrgLookups(connection, rules, cancel)
        planned = 0
        for chunk in _chunks(source, chunk_size):
            check_cancel(cancel)
            keys = _keys(chunk)
            earlier = journal.first_rows(run_id, {rules.fold(key) for key in keys})
            earlier_any_case = (
                journal.first_rows(run_id, {key.casefold() for key in keys}, any_case=True)
                if rules.case_sensitive else None
            )
            rows = classifier.classify(chunk, lookups.for_chunk(chunk), earlier, earlier_any_case)
            journal.add_rows(run_id, rows)
            planned += len(rows)
            progress(planned, 0, f"Planned {planned} messages")
        check_cancel(cancel)
        journal.finish_plan(run_id, classifier.inactive_owners())
    except BaseException:
        journal.discard_run(run_id)
        raise

    plan = journal.plan(run_id)
    log.info("planned %d messages of %s in %.1f s as run %s: %s", len(plan.rows), source_label,
             time.monotonic() - started, run_id, plan.counts())
    return plan


def _chunks(source: Iterable[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    items = iter(source)
    while chunk := list(islice(items, size)):
        yield chunk


def _keys(chunk: Sequence[SourceItem]) -> list[str]:
    return [item.message_id.key for item in chunk if isinstance(item, MailActivity) and item.message_id.key]


class _OrgLookups:
    """The org's Tasks, people and users for each chunk, with people and users cached across chunks."""

    def __init__(
        self, connection: OrgConnection, rules: FieldRules, cancel: threading.Event | None = None
    ) -> None:
        self._connection = connection
        self._rules = rules
        self._cancel = cancel
        self._running_user: UserRef | None = None
        # E-mail -> Id, or None when the org has no such record.
        self._contacts: dict[str, str | None] = {}
        self._leads: dict[str, str | None] = {}
        self._users_by_email: dict[str, UserRef | None] = {}
        self._users_by_id: dict[str, UserRef | None] = {}
        # WhoId -> whether the org has a Contact or Lead with that Id.
        self._who_ids: dict[str, bool] = {}

    def for_chunk(self, chunk: Sequence[SourceItem]) -> PlanLookups:
        activities = [item for item in chunk if isinstance(item, MailActivity)]
        emails = sorted(_participant_emails(activities))
        self._look_up_people(emails)
        self._look_up_users(emails, {a.owner_id for a in activities if a.owner_id})
        who_ids = {a.who_id for a in activities if a.who_id}
        self._look_up_who_ids(who_ids)
        return PlanLookups(
            tasks=self._tasks(activities),
            contacts_by_email=_known(self._contacts, emails),
            leads_by_email=_known(self._leads, emails),
            users_by_email=_known(self._users_by_email, emails),
            running_user=self._running(),
            users_by_id={k: v for k, v in self._users_by_id.items() if v is not None},
            unknown_who_ids=frozenset(who_id for who_id in who_ids if not self._who_ids[who_id]),
        )

    def _tasks(self, activities: Sequence[MailActivity]) -> list[TaskRecord]:
        # find_tasks_by_keys looks each key up in every bracket spelling, so the keys go in as they are.
        spellings = {a.message_id.key for a in activities if a.message_id.key}
        if self._rules.case_sensitive:
            spellings.update(variant for key in list(spellings) for variant in case_variants(key))
        keys = sorted(spellings)
        if not keys:
            return []
        found = self._read(lambda: find_tasks_by_keys(
            self._connection, self._rules.api_name, keys, flag_field=self._rules.flag_field
        ))
        return list({task.id: task for tasks in found.values() for task in tasks}.values())

    def _look_up_people(self, emails: Sequence[str]) -> None:
        missing = [email for email in emails if email not in self._contacts]
        if not missing:
            return
        contacts, leads = self._read(lambda: find_people_by_email(self._connection, missing))
        for email in missing:
            self._contacts[email] = contacts.get(email)
            self._leads[email] = leads.get(email)

    def _look_up_who_ids(self, who_ids: set[str]) -> None:
        missing = sorted(who_id for who_id in who_ids if who_id not in self._who_ids)
        if not missing:
            return
        found = self._read(lambda: _people_ids(self._connection, missing))
        for who_id in missing:
            self._who_ids[who_id] = who_id[:15] in found

    def _look_up_users(self, emails: Sequence[str], owner_ids: set[str]) -> None:
        missing = [email for email in emails if email not in self._users_by_email]
        if missing:
            users = self._read(lambda: find_users_by_email(self._connection, missing))
            for email in missing:
                self._users_by_email[email] = users.get(email)
        missing_ids = sorted(owner_id for owner_id in owner_ids if owner_id not in self._users_by_id)
        if missing_ids:
            found = self._read(lambda: _users_by_id(self._connection, missing_ids))
            for user_id in missing_ids:
                self._users_by_id[user_id] = found.get(user_id)

    def _running(self) -> UserRef:
        if self._running_user is None:
            self._running_user = self._read(lambda: get_user(self._connection, self._connection.user_id))
        return self._running_user

    def _read(self, lookup: Callable[[], V]) -> V:
        """Run a read-only lookup, and run it again after a wait when it fails with a transient error."""
        wait = FIRST_LOOKUP_WAIT_SECONDS
        attempt = 1
        while True:
            try:
                return lookup()
            except (SalesforceError, SalesforceProblem, requests.RequestException) as error:
                problem = explain(error)
                if attempt >= LOOKUP_ATTEMPTS or not _transient(error, problem):
                    raise
                log.info("lookup failed (%s), attempt %d of %d: trying again in %.0f s",
                         problem.error_code or type(error).__name__, attempt, LOOKUP_ATTEMPTS, wait)
            self._pause(wait)
            attempt += 1
            wait *= 2

    def _pause(self, seconds: float) -> None:
        """Wait before the next attempt, ending the wait at once when the admin cancels."""
        if self._cancel is None:
            time.sleep(seconds)
            return
        self._cancel.wait(seconds)
        check_cancel(self._cancel)


def _transient(error: BaseException, problem: SalesforceProblem) -> bool:
    """Return True when a failed read may succeed when sent again: a network or transient error."""
    if isinstance(error, SignInRequired):
        return False
    if isinstance(error, requests.RequestException):
        return True
    if is_daily_limit(problem):
        return False
    return problem.error_code in TRANSIENT_LOOKUP_ERRORS


def _users_by_id(connection: OrgConnection, user_ids: Sequence[str]) -> dict[str, UserRef]:
    """Return Users by Id; a source may name an owner by its 15- or 18-character Id."""
    found: dict[str, UserRef] = {}
    groups = [[user_id] for user_id in user_ids]
    for soql in in_queries(USER_QUERY + " WHERE Id", groups, max_groups=100):
        for row in connection.query_all(soql):
            user = user_ref(row)
            found[user.id] = user
            found[user.id[:15]] = user
    return found


def case_variants(key: str) -> list[str]:
    """Return the case variants of ``key`` that planning looks up on a case-sensitive field.

    SOQL compares a Unique case-sensitive field case-sensitively with =, IN and
    LIKE alike ("Comparisons on strings are case-sensitive for unique
    case-sensitive fields", SOQL and SOSL Reference, Comparison Operators:
    https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-comparisonoperators.html),
    so no query pattern finds every case variant of a key, and each variant is
    asked for by value. The variants are the whole key in lower case and in
    upper case, and the domain in lower case, because a tool that changes the
    case of a key changes the whole key or only its case-insensitive domain.
    Each variant adds up to two values to the lookup queries.
    """
    # NOTE: a key stored in any other mix of cases is not found while planning.
    # The conflict scan reads every Task with a key, so it groups such a Task.
    local, at, domain = key.rpartition("@")
    variants = [key.lower(), key.upper()]
    if at:
        variants.append(local + at + domain.lower())
    return [variant for variant in dict.fromkeys(variants) if variant != key]


def _people_ids(connection: OrgConnection, who_ids: Sequence[str]) -> set[str]:
    """Return the 15-character Ids of the live Contacts and Leads among ``who_ids``."""
    found: set[str] = set()
    for sobject, prefix in (("Contact", CONTACT_PREFIX), ("Lead", LEAD_PREFIX)):
        groups = [[who_id] for who_id in who_ids if who_id.startswith(prefix)]
        for soql in in_queries(f"SELECT Id FROM {sobject} WHERE Id", groups, max_groups=100):
            found.update(str(row["Id"])[:15] for row in connection.query_all(soql))
    return found


def _known(cache: Mapping[str, V | None], emails: Sequence[str]) -> dict[str, V]:
    """Return the cached records of these e-mails, leaving out those the org has none for."""
    known: dict[str, V] = {}
    for email in emails:
        value = cache.get(email)
        if value is not None:
            known[email] = value
    return known


def _participant_emails(activities: Sequence[MailActivity]) -> set[str]:
    emails: set[str] = set()
    for activity in activities:
        if activity.sender is not None and activity.sender.email:
            emails.add(activity.sender.email)
        emails.update(p.email for p in activity.recipients if p.email)
    return emails
