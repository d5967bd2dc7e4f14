"""The cadence-tool drill: a cadence tool and the local sync write the same e-mails on a practice org.

A cadence tool (Outreach, SalesLoft...) logs each e-mail it sends as a Task by an upsert
keyed on the Message-ID field. Each rep connects the tool with their own Salesforce user, so
the tool writes an e-mail as its sender's user and makes that user the owner. The local sync
makes the sender's active User the owner too, so one user owns the Task whichever of the two
creates it, and the tool may later update the Tasks the sync created.

On the practice org only the cadence tool's user (``outreach@...``) has what a rep needs to
connect the tool: API Enabled, Edit Tasks and edit access to the Message-ID field, from its
"Outreach Integration" permission set. So the drill's copies of the mailbox are sent by that
user: it is the rep, and the tool connects as it. The drill makes no change to permissions.

The drill plays the three moments at which the tool and the local sync meet:

- before the local sync: the tool has logged some e-mails already, some keys with angle
  brackets and some without (tools differ until the mapping step's spelling is mapped);
- during it: the tool logs e-mails after the plan was built and while it is applied, with
  the canonical spelling, so the sync's creates race the tool's upserts;
- after it: the tool's writes failed (its org was unavailable) and its backfill sends them
  again later, with the canonical spelling that the mapping step recommends.

Then each e-mail must be exactly one live Task with its key, with the cadence tool's
Subject and owner and the Backstory flag. The drill writes a copy of the mailbox with new
Message-IDs first, so it can run again on the same org.

``ToolUser.SHARED`` plays the other set-up: the tool connected once, as one integration
user, writes every rep's e-mails and makes each sender the owner. Activity sharing
"Controlled by Parent" lets a user edit only the Tasks they own, or whose parent records
they own, unless they have Modify All Data. So that user's later writes of Tasks the local
sync created are rejected with INSUFFICIENT_ACCESS_OR_READONLY. The report then contains
``DrillReport.access_finding``: connect the tool as each rep, or give its user edit access.

The tool's failure is made by the practice org's own fault control
(``/services/practice/faults``), so the drill runs on a practice org only.
"""

from __future__ import annotations

import io
import logging
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from enum import StrEnum
from pathlib import Path
from typing import Any

from simple_salesforce.format import format_soql

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, no_progress
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.salesforce.connection import OrgConnection
from backstory_desktop.salesforce.tasks import UpsertInterrupted, UpsertOutcome, upsert_tasks
from backstory_desktop.sources.mbox import read_mbox

log = logging.getLogger(__name__)

KEY_FIELD = "Message_ID__c"
FLAG_FIELD = "peopleai__Created_by_PeopleAI__c"
# The practice org's route that sets the faults injected into API calls.
FAULTS_PATH = "/services/practice/faults"
# The domain of the Message-IDs the drill makes, so its Tasks are easy to find.
DRILL_DOMAIN = "drill.backstory.example"
# The prefix the cadence tool gives the Subject of an e-mail Task. The local sync writes the
# subject unchanged, so the two Subjects differ.
CADENCE_SUBJECT_PREFIX = "Email: "
# The error of a write the org rejected because the user may not edit the record.
NO_EDIT_ACCESS = "INSUFFICIENT_ACCESS_OR_READONLY"

UserConnection = Callable[[str], OrgConnection]


class Moment(StrEnum):
    """When the cadence tool writes an e-mail, compared with the local sync."""

    BEFORE = "before"
    DURING = "during"
    AFTER = "after"


class ToolUser(StrEnum):
    """The Salesforce user the cadence tool writes each e-mail as."""

    EACH_REP = "each rep"  # each rep connects the tool with their own user, the e-mail's sender
    SHARED = "one shared user"  # the tool is connected once and writes every rep's e-mails


@dataclass(frozen=True)
class DrillRow:
    """The drill's finding for one e-mail."""

    key: str
    moment: Moment
    tasks: int  # live Tasks with the key, in any spelling
    subject_ok: bool
    owner_ok: bool
    flag_ok: bool
    problem: str  # "" when the e-mail is exactly one Task with the tool's fields and the flag
    tool_error: str = ""  # the cadence tool's last failed write of this e-mail, "CODE: message"
    tool_user: str = ""  # the username the cadence tool wrote this e-mail as

    @property
    def passed(self) -> bool:
        return not self.problem


@dataclass
class DrillReport:
    """Per-e-mail rows of the drill and whether every one of them passed."""

    rows: list[DrillRow] = field(default_factory=list)
    mailbox: Path | None = None
    run_id: str | None = None
    tool_failures: int = 0  # writes of the cadence tool that failed and went to its backfill
    sync_summary: str = ""
    tool_user: ToolUser = ToolUser.EACH_REP

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.passed for row in self.rows)

    def headline(self) -> str:
        """Return one sentence: how many e-mails are exactly one Task with the cadence tool's fields."""
        good = sum(1 for row in self.rows if row.passed)
        return f"{good} of {len(self.rows)} e-mails are exactly one Task with the cadence tool's fields."

    def summary(self) -> str:
        """Return the headline and, when an e-mail failed, what the first failure is."""
        text = self.headline()
        failed = [row for row in self.rows if not row.passed]
        if failed:
            text += f" First failure: {failed[0].key} ({failed[0].moment}): {failed[0].problem}"
        return text

    def access_finding(self) -> str:
        """Return the sentence on the cadence tool's writes rejected for lack of edit access, or ""."""
        rejected = [row for row in self.rows if row.tool_error.startswith(NO_EDIT_ACCESS)]
        if not rejected:
            return ""
        users = ", ".join(sorted({row.tool_user for row in rejected if row.tool_user})) or "its user"
        count = f"{len(rejected)} e-mail" + ("" if len(rejected) == 1 else "s")
        return (f"The cadence tool wrote as {users}, which does not own the Tasks the local sync created "
                f"and may not edit them, so its backfill of {count} was rejected with {NO_EDIT_ACCESS}: "
                "connect the tool as each rep, or give its user edit access to those Tasks "
                "(Modify All Data).")


@dataclass
class CadenceTool:
    """A cadence tool writing e-mail Tasks by upsert, with a backfill of its failures.

    The tool writes an e-mail as its sender's own connection in ``reps`` when the rep
    connected the tool, and as ``connection`` otherwise. It makes the sender's active User in
    ``owners`` the Task's owner. ``spell`` gives the key spelling the tool writes for an e-mail
    (tools differ: with or without angle brackets). Failed writes are kept in ``backfill`` and
    sent again by ``run_backfill``, as a tool's own retry job does.
    """

    connection: OrgConnection  # the user the tool writes as when the sender has not connected it
    owners: dict[str, str]  # sender e-mail -> active User Id the tool makes the owner
    reps: dict[str, OrgConnection] = field(default_factory=dict)  # sender e-mail -> the rep's own user
    key_field: str = KEY_FIELD
    backfill: list[MailActivity] = field(default_factory=list)
    failures: int = 0
    # The last failed write of each e-mail not written since, "CODE: message", by canonical key.
    errors: dict[str, str] = field(default_factory=dict)

    def connection_for(self, activity: MailActivity) -> OrgConnection:
        """Return the connection the tool writes an e-mail with: its sender's own, else the shared one."""
        sender = activity.sender.email.lower() if activity.sender else ""
        return self.reps.get(sender, self.connection)

    def record(self, activity: MailActivity, key: str) -> dict[str, Any]:
        """Return the Task the tool logs for an e-mail: its Subject, owner, body and key."""
        sender = activity.sender.email.lower() if activity.sender else ""
        record: dict[str, Any] = {
            self.key_field: key,
            "Subject": cadence_subject(activity),
            "Description": activity.body_text[:32000],
            "Status": "Completed",
            "OwnerId": self.owners.get(sender, ""),
        }
        if activity.sent_at is not None:
            record["ActivityDate"] = activity.sent_at.date().isoformat()
        if not record["OwnerId"]:
            del record["OwnerId"]
        return record

    def log(self, activities: Sequence[MailActivity], spell: Callable[[str], str]) -> list[UpsertOutcome]:
        """Upsert one Task per e-mail, each as the user the tool writes it as; failed ones go to the backfill.

        Returns the outcomes in the order of ``activities``.
        """
        by_user: dict[int, list[int]] = {}
        for position, activity in enumerate(activities):
            by_user.setdefault(id(self.connection_for(activity)), []).append(position)
        outcomes: list[UpsertOutcome | None] = [None] * len(activities)
        for positions in by_user.values():
            group = [activities[position] for position in positions]
            written = self._upsert(self.connection_for(group[0]), group, spell)
            for position, outcome in zip(positions, written, strict=True):
                outcomes[position] = outcome
        done = [outcome for outcome in outcomes if outcome is not None]
        for activity, outcome in zip(activities, done, strict=True):
            if outcome.success:
                self.errors.pop(_key(activity), None)
                continue
            self.failures += 1
            self.backfill.append(activity)
            self.errors[_key(activity)] = f"{outcome.error_code or 'FAILED'}: {outcome.message}"
        return done

    def _upsert(self, connection: OrgConnection, activities: Sequence[MailActivity],
                spell: Callable[[str], str]) -> list[UpsertOutcome]:
        records = [self.record(activity, spell(_key(activity))) for activity in activities]
        try:
            return upsert_tasks(connection, self.key_field, records)
        except UpsertInterrupted as stop:
            return [*stop.outcomes, *(
                UpsertOutcome(record[self.key_field], False, False, None, stop.problem.error_code,
                              stop.problem.sentence)
                for record in records[len(stop.outcomes):])]

    def run_backfill(self, spell: Callable[[str], str]) -> list[UpsertOutcome]:
        """Send the failed writes again; those that fail again stay in the backfill."""
        waiting, self.backfill = self.backfill, []
        return self.log(waiting, spell) if waiting else []


def cadence_subject(activity: MailActivity) -> str:
    """Return the Subject the cadence tool gives an e-mail's Task."""
    return f"{CADENCE_SUBJECT_PREFIX}{activity.subject}"[:255]


def canonical(key: str) -> str:
    """Return the spelling that the mapping step recommends: the key with its angle brackets."""
    return key_spellings(key)[0]


def bare(key: str) -> str:
    """Return the spelling without angle brackets, which some tools write."""
    spellings = key_spellings(key)
    return spellings[-1]


def _key(activity: MailActivity) -> str:
    key = activity.message_id.key
    if key is None:
        raise ValueError(f"{activity.source_ref} has no Message-ID key")
    return key


# -- the drill's mailbox -------------------------------------------------------------------------


def write_drill_mailbox(source: Path, target: Path, *, count: int | None = None,
                        token: str | None = None, sender: tuple[str, str] | None = None) -> list[str]:
    """Write an mbox of the keyed e-mails of ``source`` with new Message-IDs; return their keys in order.

    The senders, recipients, dates, subjects and bodies stay those of ``source``, except that
    ``sender``, a (display name, e-mail address) pair, sends every copy when it is given. With
    ``count``, the e-mails are repeated (each copy with its own Message-ID) until there are
    that many. ``token`` makes the Message-IDs of one drill; a new one is drawn without it.
    """
    activities = [item for item in read_mbox(source)
                  if isinstance(item, MailActivity) and item.message_id.key]
    if not activities:
        raise ValueError(f"{source} contains no e-mail with a Message-ID, so choose a mailbox with some")
    token = token or secrets.token_hex(4)
    total = len(activities) if count is None else count
    # Each source e-mail is rendered once; its copies differ in the Message-ID only.
    placeholder = f"<placeholder@{DRILL_DOMAIN}>"
    templates = [_mbox_entry(activity, placeholder, sender) for activity in activities]
    keys: list[str] = []
    with target.open("wb") as file:
        for index in range(total):
            key = f"<{token}.{index}@{DRILL_DOMAIN}>"
            file.write(templates[index % len(templates)].replace(placeholder.encode(), key.encode(), 1))
            keys.append(key)
    return keys


def _mbox_entry(activity: MailActivity, key: str, sender: tuple[str, str] | None) -> bytes:
    """Return one e-mail in the mboxo format: a "From " line, then the message with body lines
    that start with "From " written as ">From "."""
    buffer = io.BytesIO()
    buffer.write(b"From drill@" + DRILL_DOMAIN.encode() + b" Thu Jan  1 00:00:00 1970\n")
    BytesGenerator(buffer, mangle_from_=True).flatten(_message(activity, key, sender))
    buffer.write(b"\n")
    return buffer.getvalue()


def _message(activity: MailActivity, key: str, sender: tuple[str, str] | None) -> EmailMessage:
    message = EmailMessage()
    if sender is not None:
        message["From"] = formataddr(sender)
    elif activity.sender is not None:
        message["From"] = formataddr((activity.sender.name, activity.sender.email))
    message["To"] = ", ".join(formataddr((person.name, person.email)) for person in activity.recipients)
    message["Subject"] = activity.subject
    if activity.sent_at is not None:
        message["Date"] = format_datetime(activity.sent_at)
    message["Message-ID"] = key
    message.set_content(activity.body_text or "(no body)")
    return message


# -- the drill -------------------------------------------------------------------------------------


def run_cadence_drill(
    connection_for_user: UserConnection,
    admin_connection: OrgConnection,
    mailbox: Path,
    *,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    cadence_username: str = "outreach@practice.backstory.example",
    tool_user: ToolUser = ToolUser.EACH_REP,
    work_folder: Path | None = None,
) -> DrillReport:
    """Run the cadence-tool drill on a practice org and return its per-e-mail report.

    ``connection_for_user(username)`` signs in as a user of the org. With ``ToolUser.EACH_REP``
    the drill's copies are sent by ``cadence_username``'s user and the tool writes each e-mail
    as its sender's user. With ``ToolUser.SHARED`` the copies keep the senders of ``mailbox``
    and the tool writes every e-mail as ``cadence_username``. The local sync runs as
    ``admin_connection`` through the journal and the engine, as the local sync page runs it.
    The drill's mailbox, a copy of ``mailbox`` with new Message-IDs, is written to
    ``work_folder`` (a new temporary folder without it).
    """
    cancel = cancel or threading.Event()
    folder = work_folder or Path(tempfile.mkdtemp(prefix="cadence-drill-"))
    folder.mkdir(parents=True, exist_ok=True)
    drill_mailbox = folder / "cadence-drill.mbox"
    progress(0, 5, "Writing the drill's mailbox")
    cadence_user = _active_user(admin_connection, cadence_username)
    sender = (cadence_user.name, cadence_user.email) if tool_user is ToolUser.EACH_REP else None
    write_drill_mailbox(mailbox, drill_mailbox, sender=sender)
    activities = [item for item in read_mbox(drill_mailbox) if isinstance(item, MailActivity)]
    moments = {_key(activity): _moment(index, len(activities)) for index, activity in enumerate(activities)}
    groups = {moment: [a for a in activities if moments[_key(a)] is moment] for moment in Moment}

    senders = _active_senders(admin_connection, activities)
    shared = connection_for_user(cadence_username)
    reps: dict[str, OrgConnection] = {}
    if tool_user is ToolUser.EACH_REP:
        # The rep who is the cadence tool's user reuses its connection instead of signing in again.
        reps = {email: shared if user.username == cadence_username else connection_for_user(user.username)
                for email, user in senders.items()}
    tool = CadenceTool(shared, {email: user.id for email, user in senders.items()}, reps)
    report = DrillReport(mailbox=drill_mailbox, tool_user=tool_user)

    _check_cancel(cancel)
    progress(1, 5, "The cadence tool logs the first e-mails")
    # Before the mapping was fixed the tool wrote both spellings.
    tool.log(groups[Moment.BEFORE], lambda key: canonical(key) if _even(key) else bare(key))
    progress(2, 5, "The cadence tool fails while its org is unavailable")
    with _unavailable_org(admin_connection):
        tool.log(groups[Moment.AFTER], lambda key: canonical(key) if _even(key) else bare(key))
    report.tool_failures = tool.failures

    _check_cancel(cancel)
    progress(3, 5, "The local sync runs while the cadence tool logs more e-mails")
    report.run_id, report.sync_summary = _local_sync(admin_connection, drill_mailbox, tool,
                                                     groups[Moment.DURING], cancel)

    _check_cancel(cancel)
    progress(4, 5, "The cadence tool's backfill sends its failed writes again")
    tool.run_backfill(canonical)

    report.rows = check_emails(admin_connection, activities, moments, tool)
    progress(5, 5, report.summary())
    log.info("Cadence-tool drill (%s): %s %s", tool_user, report.summary(), report.access_finding())
    return report


def _moment(index: int, total: int) -> Moment:
    third = max(1, total // 3)
    if index < third:
        return Moment.BEFORE
    if index < 2 * third:
        return Moment.DURING
    return Moment.AFTER


def _even(key: str) -> bool:
    """Split the e-mails of one moment in two by the index in their key."""
    local = key.strip("<>").split("@", 1)[0]
    return int(local.rsplit(".", 1)[-1]) % 2 == 0


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Cancelled("cancelled by the user")


@dataclass(frozen=True)
class OrgUser:
    """An active User of the org: the tool's user, or the owner of a sender's Tasks."""

    id: str
    username: str
    name: str
    email: str


def _active_user(admin: OrgConnection, username: str) -> OrgUser:
    soql = format_soql("SELECT Id, Username, Name, Email FROM User WHERE Username = {} AND IsActive = true",
                       username)
    rows = list(admin.query_all(soql))
    if not rows:
        raise ValueError(f"The cadence tool's user {username} is not an active user of this org, "
                         "so activate it or run the drill with another user.")
    return _org_user(rows[0])


def _active_senders(admin: OrgConnection, activities: Sequence[MailActivity]) -> dict[str, OrgUser]:
    """Map each sender's e-mail, in lower case, to their active User: the Task's owner."""
    emails = sorted({a.sender.email.lower() for a in activities if a.sender is not None and a.sender.email})
    users: dict[str, OrgUser] = {}
    for start in range(0, len(emails), 100):
        soql = format_soql("SELECT Id, Username, Name, Email FROM User WHERE IsActive = true AND Email IN {}",
                           emails[start:start + 100])
        for row in admin.query_all(soql):
            users.setdefault(str(row["Email"]).lower(), _org_user(row))
    return users


def _org_user(row: dict[str, Any]) -> OrgUser:
    return OrgUser(str(row["Id"]), str(row["Username"]), str(row.get("Name") or ""), str(row["Email"]))


@contextmanager
def _unavailable_org(admin: OrgConnection) -> Iterator[None]:
    """Make every API call of the practice org fail with 503 SERVER_UNAVAILABLE, then restore its faults."""
    saved = _fault_control(admin, "GET")
    outage: dict[str, Any] = {"server_unavailable_rate": 1.0, "seed": saved.get("seed", 0)}
    if "daily_api_limit" in saved:
        outage["daily_api_limit"] = saved["daily_api_limit"]
    _fault_control(admin, "POST", outage)
    try:
        yield
    finally:
        _fault_control(admin, "POST", saved)


def _fault_control(admin: OrgConnection, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read or set the practice org's faults through its control route, as its admin."""
    response = admin.session.request(
        method, admin.instance_url + FAULTS_PATH, json=body, timeout=30,
        headers={"Authorization": f"Bearer {admin.tokens.access_token}"},
    )
    if response.status_code == 404:
        raise ValueError("The cadence-tool drill runs on a practice org only, and this org has no "
                         "fault control, so connect to the practice org first.")
    response.raise_for_status()
    plan: dict[str, Any] = response.json()
    return plan


def _local_sync(admin: OrgConnection, mailbox: Path, tool: CadenceTool,
                during: Sequence[MailActivity], cancel: threading.Event) -> tuple[str | None, str]:
    """Plan and apply the local sync of ``mailbox`` while the cadence tool logs ``during``.

    Half of ``during`` is logged after the plan was built and before it is applied, so the
    plan's creates find their keys taken. The other half is logged from another thread while
    the plan is applied.
    """
    from backstory_desktop.salesforce.schema import inspect_flag_field, inspect_message_id_field
    from backstory_desktop.sources.mbox import read_mbox as read_source
    from backstory_desktop.store.journal import Journal
    from backstory_desktop.sync.engine import apply_run
    from backstory_desktop.sync.planner import build_plan

    field_state = inspect_message_id_field(admin, KEY_FIELD)
    flag_state = inspect_flag_field(admin, FLAG_FIELD)
    journal = Journal.open()
    try:
        plan = build_plan(admin, read_source(mailbox), journal=journal, source_label=mailbox.name,
                          source_kind="mbox", field=field_state,
                          flag_field=None if flag_state.problems else flag_state.api_name,
                          progress=no_progress, cancel=cancel)
        assert plan.run_id is not None
        half = len(during) // 2
        tool.log(during[:half], canonical)
        racing = threading.Thread(target=tool.log, args=(during[half:], canonical),
                                  name="cadence-tool", daemon=True)
        racing.start()
        try:
            result = apply_run(admin, journal, plan.run_id, progress=no_progress, cancel=cancel)
        finally:
            racing.join(timeout=60)
        summary = (f"created {result.created}, updated {result.updated}, failed {result.failed}, "
                   f"queued {result.queued}")
        return plan.run_id, summary
    finally:
        journal.close()


def check_emails(admin: OrgConnection, activities: Sequence[MailActivity], moments: dict[str, Moment],
                 tool: CadenceTool) -> list[DrillRow]:
    """Look each e-mail's Tasks up, in every spelling of its key, and judge them."""
    spellings = {spelling: _key(a) for a in activities for spelling in key_spellings(_key(a))}
    tasks: dict[str, list[dict[str, Any]]] = {}
    values = sorted(spellings)
    for start in range(0, len(values), 100):
        quoted = ", ".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
                           for value in values[start:start + 100])
        soql = (f"SELECT Id, Subject, OwnerId, {KEY_FIELD}, {FLAG_FIELD} FROM Task "
                f"WHERE {KEY_FIELD} IN ({quoted})")
        for row in admin.query_all(soql):
            tasks.setdefault(spellings[str(row[KEY_FIELD])], []).append(row)
    return [_judge(activity, moments[_key(activity)], tasks.get(_key(activity), []), tool)
            for activity in activities]


def _judge(activity: MailActivity, moment: Moment, tasks: list[dict[str, Any]],
           tool: CadenceTool) -> DrillRow:
    key = _key(activity)
    expected = tool.record(activity, key)
    tool_error = tool.errors.get(key, "")
    tool_user = tool.connection_for(activity).username
    if len(tasks) != 1:
        problem = "no Task has the key" if not tasks else (
            f"{len(tasks)} Tasks have the key: " + ", ".join(f"{t['Id']} ({t[KEY_FIELD]})" for t in tasks))
        return DrillRow(key, moment, len(tasks), False, False, False, problem, tool_error, tool_user)
    task = tasks[0]
    subject_ok = task.get("Subject") == expected["Subject"]
    owner_ok = "OwnerId" not in expected or task.get("OwnerId") == expected["OwnerId"]
    flag_ok = task.get(FLAG_FIELD) is True
    problems = []
    if not subject_ok:
        problems.append(f"Subject is {task.get('Subject')!r}, not the cadence tool's {expected['Subject']!r}")
    if not owner_ok:
        problems.append(f"OwnerId is {task.get('OwnerId')}, not the cadence tool's {expected['OwnerId']}")
    if not flag_ok:
        problems.append("the Backstory flag is not set")
    if tool_error and problems:
        problems.append(f"the cadence tool's last write failed ({tool_error})")
        if tool_error.startswith(NO_EDIT_ACCESS):
            problems.append(f"{tool_user or 'its user'} does not own this Task, so connect the cadence "
                            "tool as each rep, or give its user edit access to the Tasks the local sync "
                            "creates (Modify All Data)")
    return DrillRow(key, moment, 1, subject_ok, owner_ok, flag_ok, "; ".join(problems), tool_error, tool_user)
