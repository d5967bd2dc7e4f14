"""Build the dry-run plan of a local sync: look up what the org holds, then classify.

Reads only: existing Tasks by every spelling of each key (deleted and
archived included), Contacts and Leads by e-mail, and Users by e-mail.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import ProgressCallback, check_cancel, no_progress
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.core.plan import FieldRules, Plan, PlanLookups, classify_activities
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.schema import FieldState
from backstory_desktop.salesforce.tasks import (
    find_people_by_email,
    find_tasks_by_keys,
    find_users_by_email,
    get_user,
)

log = logging.getLogger(__name__)


def build_plan(
    connection: OrgConnection,
    activities: Sequence[MailActivity],
    problems: Sequence[SourceProblem],
    *,
    field: FieldState,
    flag_field: str | None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> Plan:
    """Look up the org for these messages and classify each one; writes nothing."""
    started = time.monotonic()
    rules = FieldRules(field.api_name, bool(field.case_sensitive), flag_field)

    # NOTE: SOQL compares a Unique case-sensitive field case-sensitively, so
    # Tasks whose key differs only in case are not found here. The conflict
    # scan groups them as possible duplicates.
    progress(0, 4, "Looking up existing Tasks by Message-ID")
    spellings = {
        spelling for a in activities if a.message_id.key for spelling in key_spellings(a.message_id.key)
    }
    tasks_by_key = find_tasks_by_keys(connection, field.api_name, sorted(spellings), flag_field=flag_field)
    tasks = list({task.id: task for found in tasks_by_key.values() for task in found}.values())
    check_cancel(cancel)

    progress(1, 4, "Matching participants to Contacts and Leads")
    emails = sorted(_participant_emails(activities))
    contacts, leads = find_people_by_email(connection, emails)
    check_cancel(cancel)

    progress(2, 4, "Matching senders to Users")
    users = find_users_by_email(connection, emails)
    running_user = get_user(connection, connection.user_id)
    check_cancel(cancel)

    progress(3, 4, "Classifying messages")
    lookups = PlanLookups(tasks, contacts, leads, users, running_user)
    plan = classify_activities(activities, problems, lookups, rules)
    progress(4, 4, "Plan ready")
    log.info(
        "planned %d messages in %.1f s: %s",
        len(plan.rows),
        time.monotonic() - started,
        plan.counts(),
    )
    return plan


def _participant_emails(activities: Sequence[MailActivity]) -> set[str]:
    emails: set[str] = set()
    for activity in activities:
        if activity.sender is not None and activity.sender.email:
            emails.add(activity.sender.email)
        emails.update(p.email for p in activity.recipients if p.email)
    return emails
