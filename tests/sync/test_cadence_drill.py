"""The cadence-tool drill on the practice org: the tool writes Tasks by upsert before, during and
after the local sync, and every e-mail ends as one Task with the tool's fields and the Backstory flag.

By default the tool writes as each rep's own user, so the drill passes on the default org. When
one shared user writes every rep's e-mails, the org rejects its backfill of the Tasks the sync
created, and the drill reports that. The simulator is checked on its own too: its failed writes
go to its backfill, and the backfill with the canonical spelling reaches the Task the other
spelling would have missed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cadence_drill import (
    DRILL_DOMAIN,
    KEY_FIELD,
    NO_EDIT_ACCESS,
    CadenceTool,
    Moment,
    ToolUser,
    bare,
    cadence_subject,
    canonical,
    run_cadence_drill,
    write_drill_mailbox,
)
from backstory_desktop.core.activity import MailActivity
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.sources.mbox import read_mbox


def _user(org: PracticeOrg) -> Callable[[str], OrgConnection]:
    def connect(username: str) -> OrgConnection:
        return connect_practice_org(org.base_url, org.ca_bundle, username, org.client_id)

    return connect


def _drill_activities(tmp_path: Path, count: int | None = None) -> list[MailActivity]:
    target = tmp_path / "drill.mbox"
    write_drill_mailbox(sample_mailbox_path(), target, count=count, token="t1")
    return [item for item in read_mbox(target) if isinstance(item, MailActivity)]


def _tasks(admin: OrgConnection, key: str) -> list[dict[str, Any]]:
    spellings = ", ".join(f"'{spelling}'" for spelling in (canonical(key), bare(key)))
    soql = f"SELECT Id, Subject, OwnerId, {KEY_FIELD} FROM Task WHERE {KEY_FIELD} IN ({spellings})"
    return list(admin.query_all(soql))


def test_drill_mailbox__new_keys_same_mail(tmp_path: Path) -> None:
    activities = _drill_activities(tmp_path, count=60)

    keys = [activity.message_id.key for activity in activities]
    assert len(keys) == 60 == len(set(keys))
    assert all(key is not None and key.endswith(f"@{DRILL_DOMAIN}>") for key in keys)
    sample = [item for item in read_mbox(sample_mailbox_path()) if isinstance(item, MailActivity)]
    assert activities[0].subject == sample[0].subject
    assert activities[0].sender == sample[0].sender


def test_drill_mailbox__sender_replaced(tmp_path: Path) -> None:
    target = tmp_path / "drill.mbox"
    write_drill_mailbox(sample_mailbox_path(), target, token="t2", sender=("Outreach Rep", OUTREACH_USERNAME))

    activities = [item for item in read_mbox(target) if isinstance(item, MailActivity)]
    sample = [item for item in read_mbox(sample_mailbox_path()) if isinstance(item, MailActivity)]
    assert {(a.sender.name, a.sender.email) for a in activities if a.sender} == {
        ("Outreach Rep", OUTREACH_USERNAME)}
    assert len([a for a in activities if a.sender]) == len(activities)
    assert [a.subject for a in activities] == [a.subject for a in sample if a.message_id.key]
    assert activities[0].recipients == sample[0].recipients


def test_cadence_tool__upsert_logs_one_task_per_key(tmp_path: Path, default_org: PracticeOrg,
                                                      admin: OrgConnection) -> None:
    activities = _drill_activities(tmp_path)[:4]
    tool = CadenceTool(_user(default_org)(OUTREACH_USERNAME), owners={})

    first = tool.log(activities, bare)
    again = tool.log(activities, bare)

    assert [outcome.created for outcome in first] == [True] * 4
    assert [outcome.created for outcome in again] == [False] * 4
    assert tool.backfill == []
    key = activities[0].message_id.key
    assert key is not None
    assert [(task[KEY_FIELD], task["Subject"]) for task in _tasks(admin, key)] == [
        (bare(key), cadence_subject(activities[0]))]


def test_cadence_tool__failed_writes_backfilled(tmp_path: Path, default_org: PracticeOrg,
                                                admin: OrgConnection) -> None:
    activities = _drill_activities(tmp_path)[:3]
    tool = CadenceTool(_user(default_org)(OUTREACH_USERNAME), owners={})
    default_org.faults = FaultPlan(server_unavailable_rate=1.0)

    tool.log(activities, bare)

    assert tool.failures == 3
    assert len(tool.backfill) == 3
    default_org.faults = FaultPlan()
    outcomes = tool.run_backfill(canonical)
    assert [outcome.success for outcome in outcomes] == [True] * 3
    assert tool.backfill == []
    key = activities[1].message_id.key
    assert key is not None
    assert [task[KEY_FIELD] for task in _tasks(admin, key)] == [canonical(key)]


def test_cadence_tool__writes_as_sender_user(tmp_path: Path, default_org: PracticeOrg,
                                             admin: OrgConnection) -> None:
    activities = _drill_activities(tmp_path)
    first = activities[0]
    other = next(a for a in activities if a.sender != first.sender)
    assert first.sender is not None
    rep = _user(default_org)(OUTREACH_USERNAME)
    tool = CadenceTool(admin, owners={}, reps={first.sender.email.lower(): rep})

    outcomes = tool.log([first, other], canonical)

    assert [outcome.created for outcome in outcomes] == [True, True]
    first_key, other_key = first.message_id.key, other.message_id.key
    assert first_key is not None and other_key is not None
    assert [task["OwnerId"] for task in _tasks(admin, first_key)] == [rep.user_id]
    assert [task["OwnerId"] for task in _tasks(admin, other_key)] == [admin.user_id]


def test_cadence_tool__bare_backfill_doubles_synced_task(tmp_path: Path, default_org: PracticeOrg,
                                                         admin: OrgConnection) -> None:
    # Why the mapping step recommends the canonical spelling: on a case-sensitive Unique field
    # the bare spelling is another value, so a backfill with it adds a second Task.
    activity = _drill_activities(tmp_path)[0]
    key = activity.message_id.key
    assert key is not None
    CadenceTool(admin, owners={}).log([activity], canonical)
    tool = CadenceTool(_user(default_org)(OUTREACH_USERNAME), owners={})

    tool.log([activity], bare)

    assert sorted(task[KEY_FIELD] for task in _tasks(admin, key)) == sorted([canonical(key), bare(key)])


def _modify_all_data(admin: OrgConnection, username: str) -> None:
    """Give a user Modify All Data through a new permission set, as an admin would in Setup."""
    user = next(iter(admin.query_all(f"SELECT Id FROM User WHERE Username = '{username}'")))
    created = admin.request("POST", "sobjects/PermissionSet", json={
        "Name": "Cadence_Modify_All", "Label": "Cadence Modify All", "PermissionsApiEnabled": True,
        "PermissionsViewAllData": True, "PermissionsModifyAllData": True, "PermissionsEditTask": True})
    admin.request("POST", "sobjects/PermissionSetAssignment",
                  json={"AssigneeId": user["Id"], "PermissionSetId": created["id"]})


def test_drill__every_email_one_task(tmp_path: Path, default_org: PracticeOrg, admin: OrgConnection) -> None:
    steps: list[str] = []

    report = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path,
                               progress=lambda done, total, message: steps.append(message))

    assert report.passed, report.summary()
    assert {row.moment for row in report.rows} == set(Moment)
    assert report.tool_failures > 0
    assert all(row.tasks == 1 for row in report.rows)
    assert all(row.flag_ok and row.subject_ok and row.owner_ok for row in report.rows)
    assert {row.tool_user for row in report.rows} == {OUTREACH_USERNAME}
    assert report.access_finding() == ""
    assert default_org.faults == FaultPlan()
    assert steps[-1] == report.summary()


def test_drill__tasks_owned_by_sender_user(tmp_path: Path, default_org: PracticeOrg,
                                           admin: OrgConnection) -> None:
    report = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path)

    outreach = next(iter(admin.query_all(f"SELECT Id FROM User WHERE Username = '{OUTREACH_USERNAME}'")))
    owners = {task["OwnerId"] for row in report.rows for task in _tasks(admin, row.key)}
    assert owners == {outreach["Id"]}


def test_drill__second_run_passes_again(tmp_path: Path, default_org: PracticeOrg,
                                        admin: OrgConnection) -> None:
    first = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path / "a")

    second = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path / "b")

    assert first.passed, first.summary()
    assert second.passed, second.summary()
    assert not {row.key for row in first.rows} & {row.key for row in second.rows}


def test_drill__shared_user_backfill_rejected(tmp_path: Path, default_org: PracticeOrg,
                                              admin: OrgConnection) -> None:
    # One integration user writing every rep's e-mails owns none of the Tasks the local sync
    # creates, and activity sharing "Controlled by Parent" lets it edit only its own, so the
    # org rejects its later writes of them. The drill reports that, with the fix.
    report = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path,
                               tool_user=ToolUser.SHARED)

    assert not report.passed
    assert [row.tasks for row in report.rows] == [1] * len(report.rows)
    assert all(row.flag_ok for row in report.rows)
    failed = [row for row in report.rows if not row.passed]
    assert {row.moment for row in failed} <= {Moment.DURING, Moment.AFTER}
    assert Moment.AFTER in {row.moment for row in failed}
    assert all(row.tool_error.startswith(f"{NO_EDIT_ACCESS}: ") for row in failed)
    assert all("connect the cadence tool as each rep" in row.problem for row in failed)
    finding = report.access_finding()
    assert finding.startswith(f"The cadence tool wrote as {OUTREACH_USERNAME}, which does not own")
    assert f"rejected with {NO_EDIT_ACCESS}" in finding
    assert "connect the tool as each rep, or give its user edit access" in finding


def test_drill__shared_user_with_edit_access_passes(tmp_path: Path, default_org: PracticeOrg,
                                                    admin: OrgConnection) -> None:
    _modify_all_data(admin, OUTREACH_USERNAME)

    report = run_cadence_drill(_user(default_org), admin, sample_mailbox_path(), work_folder=tmp_path,
                               tool_user=ToolUser.SHARED)

    assert report.passed, report.summary()
    assert report.access_finding() == ""
