"""Cadence-tool coverage on the practice org: keys per tool, calls without TaskSubtype Call, and both steps.

Every expected number is counted here independently, from plain SOQL rows
filtered in Python, and compared with what the product reports.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.practice_org.seed import OUTREACH_USERNAME, SALESLOFT_USERNAME
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.coverage import key_coverage, unmarked_calls, users_by_username
from backstory_desktop.store.settings import OrgProfile, load_profiles

FIELD = "Message_ID__c"
CALL_FIELDS = ("CallType", "CallDurationInSeconds", "CallDisposition")


def created_day(row: dict[str, Any]) -> date:
    return datetime.strptime(row["CreatedDate"][:10], "%Y-%m-%d").replace(tzinfo=UTC).date()


def in_window(row: dict[str, Any], days: int) -> bool:
    """Tell whether a row falls in LAST_N_DAYS:days: today and the ``days`` days before it, in UTC."""
    return created_day(row) >= datetime.now(UTC).date() - timedelta(days=days)


def outreach_rows(admin: OrgConnection) -> list[dict[str, Any]]:
    """Return every live Task the Outreach user created, with the fields the checks look at."""
    soql = (f"SELECT Id, {FIELD}, TaskSubtype, CreatedDate, {', '.join(CALL_FIELDS)} FROM Task "
            f"WHERE CreatedBy.Username = '{OUTREACH_USERNAME}'")
    return list(admin.query_all(soql))


def is_call(row: dict[str, Any]) -> bool:
    return any(row.get(name) is not None for name in CALL_FIELDS)


def outreach_coverage(admin: OrgConnection, days: int) -> Any:
    users = list(users_by_username(admin, [OUTREACH_USERNAME]).values())
    [coverage] = key_coverage(admin, FIELD, {"Outreach": users}, days, case_sensitive=True)
    return coverage


def test_key_coverage__outreach_counts_match_soql(admin: OrgConnection) -> None:
    rows = [row for row in outreach_rows(admin)
            if in_window(row, 30) and not is_call(row) and row["TaskSubtype"] not in ("Call", "LinkedIn")]
    keyed = [row for row in rows if row[FIELD]]

    coverage = outreach_coverage(admin, 30)

    assert coverage.usernames == (OUTREACH_USERNAME,)
    assert coverage.tasks == len(rows)
    assert coverage.with_key == len(keyed)
    assert coverage.without_brackets == sum(1 for row in keyed if not row[FIELD].startswith("<"))
    assert coverage.without_brackets > 0, "the default scenario seeds keys without brackets"
    assert coverage.canonical == sum(1 for row in keyed if row[FIELD].startswith("<"))
    assert {example.task_id for example in coverage.examples} <= {row["Id"] for row in keyed}


@pytest.mark.parametrize("days", [3, 10, 365])
def test_key_coverage__window_leaves_out_older_tasks(admin: OrgConnection, days: int) -> None:
    rows = [row for row in outreach_rows(admin) if not is_call(row)]
    older = [row for row in rows if not in_window(row, days)]

    coverage = outreach_coverage(admin, days)

    assert coverage.tasks == len(rows) - len(older)
    if days < 365:
        assert older, "the seeded Tasks must reach back further than the window"


def test_key_coverage__tasks_the_tool_writes_now(default_org: PracticeOrg, admin: OrgConnection) -> None:
    tool = connect_practice_org(default_org.base_url, default_org.ca_bundle, OUTREACH_USERNAME,
                                default_org.client_id)
    before = outreach_coverage(admin, 30)
    new_tasks: list[dict[str, Any]] = [
        {"Subject": "Email: no key"},
        {"Subject": "Email: comment", FIELD: "<fresh.1@mail.example.com> (logged by the tool)"},
        {"Subject": "Email: empty id", FIELD: "<>"},
        {"Subject": "Email: canonical", FIELD: "<fresh.2@mail.example.com>"},
        {"Subject": "Call: not an e-mail", "CallType": "Outbound", "TaskSubtype": "Task"},
        {"Subject": "LinkedIn: not an e-mail", "TaskSubtype": "LinkedIn"},
    ]
    for task in new_tasks:
        tool.request("POST", "sobjects/Task", json={"Status": "Completed", **task})

    after = outreach_coverage(admin, 30)

    assert after.tasks == before.tasks + 4
    assert after.without_key == before.without_key + 1
    assert after.not_canonical == before.not_canonical + 1
    assert after.unusable == before.unusable + 1
    assert after.canonical == before.canonical + 1


def test_key_coverage__tool_without_users_counts_nothing(admin: OrgConnection) -> None:
    [coverage] = key_coverage(admin, FIELD, {"SendBloom": []}, 30, case_sensitive=True)

    assert coverage.tasks == 0
    assert coverage.usernames == ()


@pytest.mark.parametrize("days", [0, 366, True])
def test_key_coverage__window_outside_range_is_rejected(admin: OrgConnection, days: int) -> None:
    with pytest.raises(ValueError, match="1 to 365 days"):
        key_coverage(admin, FIELD, {}, days, case_sensitive=True)


def test_key_coverage__cancel_stops_before_reading(admin: OrgConnection) -> None:
    cancel = threading.Event()
    cancel.set()
    users = list(users_by_username(admin, [OUTREACH_USERNAME]).values())

    with pytest.raises(Cancelled):
        key_coverage(admin, FIELD, {"Outreach": users}, 30, case_sensitive=True, cancel=cancel)


def expected_calls(admin: OrgConnection, days: int) -> dict[str, int]:
    """Count per owner username the calls without TaskSubtype Call in the window, from plain rows."""
    soql = f"SELECT Id, Owner.Username, TaskSubtype, CreatedDate, {', '.join(CALL_FIELDS)} FROM Task"
    counts: dict[str, int] = {}
    for row in admin.query_all(soql):
        if is_call(row) and row["TaskSubtype"] != "Call" and in_window(row, days):
            username = row["Owner"]["Username"]
            counts[username] = counts.get(username, 0) + 1
    return counts


@pytest.mark.parametrize("days", [3, 30])
def test_unmarked_calls__per_owner_counts_match_soql(admin: OrgConnection, days: int) -> None:
    expected = expected_calls(admin, days)

    calls = unmarked_calls(admin, days)

    assert {user.username: user.count for user in calls} == expected
    assert expected, "the default scenario seeds calls without TaskSubtype Call"
    assert all(user.name and user.example_ids for user in calls)


def test_unmarked_calls__names_the_tool_that_logged_them(admin: OrgConnection) -> None:
    calls = unmarked_calls(admin, 30)

    assert any(OUTREACH_USERNAME in user.logged_by for user in calls)


def test_unmarked_calls__call_with_subtype_is_not_counted(admin: OrgConnection) -> None:
    before = sum(user.count for user in unmarked_calls(admin, 30))
    admin.request("POST", "sobjects/Task", json={
        "Subject": "Call: marked", "Status": "Completed", "TaskSubtype": "Call", "CallType": "Inbound",
        "CallDurationInSeconds": 0, "CallDisposition": "No answer"})
    admin.request("POST", "sobjects/Task", json={
        "Subject": "Call: unmarked", "Status": "Completed", "CallDisposition": "No answer"})

    after = unmarked_calls(admin, 30)

    assert sum(user.count for user in after) == before + 1


# -- the two enablement steps -------------------------------------------------------


@pytest.fixture
def run(default_org: PracticeOrg, tmp_path: Path) -> enablement.EnablementRun:
    profile = OrgProfile(alias="practice", kind="practice", practice_db=str(tmp_path / "org.sqlite3"))
    run = enablement.EnablementRun(profile)
    assert enablement.connect(run, default_org).status is StepStatus.PASSED
    return run


def inactive_username(admin: OrgConnection) -> str:
    return str(next(iter(admin.query_all("SELECT Username FROM User WHERE IsActive = false")))["Username"])


def test_record_cadence_tools__saves_existing_users(
    run: enablement.EnablementRun, admin: OrgConnection, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles.toml"
    inactive = inactive_username(admin)

    users = {"Outreach": [OUTREACH_USERNAME.upper(), " "], "SalesLoft": ["nobody@nowhere.example", inactive]}

    result = enablement.record_cadence_tools(run, users, profiles_file=profiles)

    assert result.status is StepStatus.PASSED
    assert run.profile.cadence_users == {"Outreach": [OUTREACH_USERNAME], "SalesLoft": [inactive]}
    assert "nobody@nowhere.example (SalesLoft)" in result.reason
    assert f"Inactive, so the tool cannot log Tasks as them: {inactive} (SalesLoft)" in result.reason
    assert load_profiles(profiles)["practice"].cadence_users == run.profile.cadence_users


def test_record_cadence_tools__no_user_found_fails(run: enablement.EnablementRun, tmp_path: Path) -> None:
    result = enablement.record_cadence_tools(
        run, {"SendBloom": ["nobody@nowhere.example"]}, profiles_file=tmp_path / "profiles.toml")

    assert result.status is StepStatus.FAILED
    assert "No cadence tool has a user in this org" in result.reason
    assert "nobody@nowhere.example (SendBloom)" in result.reason
    assert run.checklist.status(Step.CADENCE_TOOLS) is StepStatus.FAILED


def test_record_cadence_tools__unknown_tool_is_rejected(run: enablement.EnablementRun) -> None:
    with pytest.raises(ValueError, match="unknown cadence tool 'Mailchimp'"):
        enablement.record_cadence_tools(run, {"Mailchimp": [OUTREACH_USERNAME]})


def test_check_coverage__default_org_fails_with_reasons(
    run: enablement.EnablementRun, admin: OrgConnection, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles.toml"
    enablement.record_cadence_tools(run, {"Outreach": [OUTREACH_USERNAME]}, profiles_file=profiles)
    enablement.check_field(run)

    result = enablement.check_coverage(run, days=45, profiles_file=profiles)

    assert result.status is StepStatus.FAILED
    [tool] = result.details["tools"]
    assert tool["tool"] == "Outreach"
    assert tool["without_brackets"] == outreach_coverage(admin, 45).without_brackets
    assert "without angle brackets" in result.reason
    assert "get logged twice" in result.reason
    assert "unanswered ones" in result.reason
    assert sum(user["count"] for user in result.details["calls"]) == sum(expected_calls(admin, 45).values())
    assert result.details["days"] == 45
    assert load_profiles(profiles)["practice"].coverage_days == 45


def clean_outreach_run(start_org: Any, tmp_path: Path) -> enablement.EnablementRun:
    """Return a run on the empty org whose Outreach user logged one e-mail Task with a canonical key."""
    org = start_org("empty")
    profile = OrgProfile(alias="practice", kind="practice", practice_db=str(tmp_path / "empty.sqlite3"))
    run = enablement.EnablementRun(profile)
    enablement.connect(run, org)
    enablement.check_field(run)
    enablement.create_field(run, case_sensitive=True)
    enablement.record_cadence_tools(run, {"Outreach": [OUTREACH_USERNAME]}, profiles_file=tmp_path / "p.toml")
    tool = connect_practice_org(org.base_url, org.ca_bundle, OUTREACH_USERNAME, org.client_id)
    admin = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    # Creating the field grants it to the admin only, so the tool's permission set gets it here.
    soql = "SELECT Id FROM PermissionSet WHERE Name = 'Outreach_Integration'"
    outreach_set = next(iter(admin.query_all(soql)))
    for sobject in ("Task", "Event"):
        admin.request("POST", "sobjects/FieldPermissions", json={
            "ParentId": outreach_set["Id"], "SobjectType": sobject, "Field": f"{sobject}.{FIELD}",
            "PermissionsRead": True, "PermissionsEdit": True})
    tool.request("POST", "sobjects/Task", json={"Subject": "Email: canonical", "Status": "Completed",
                                                FIELD: "<clean.1@mail.example.com>"})
    return run


def test_check_coverage__clean_tool_and_no_calls_passes(start_org: Any, tmp_path: Path) -> None:
    run = clean_outreach_run(start_org, tmp_path)

    result = enablement.check_coverage(run, days=30, profiles_file=tmp_path / "p.toml")

    assert result.status is StepStatus.PASSED, result.reason
    assert result.details["tools"][0]["canonical"] == 1
    assert result.details["calls"] == []
    assert "Every call logged in the last 30 days has TaskSubtype Call." in result.reason


def test_check_coverage__tool_without_tasks_does_not_pass(start_org: Any, tmp_path: Path) -> None:
    run = clean_outreach_run(start_org, tmp_path)
    run.profile.cadence_users["SalesLoft"] = [SALESLOFT_USERNAME]

    result = enablement.check_coverage(run, days=30, profiles_file=tmp_path / "p.toml")

    assert result.status is StepStatus.FAILED
    salesloft = next(tool for tool in result.details["tools"] if tool["tool"] == "SalesLoft")
    assert salesloft["tasks"] == 0
    assert "SalesLoft logged no e-mail Tasks in the last 30 days, which proves nothing" in result.reason
    assert salesloft["reason"] in enablement.open_work(run)


def test_check_coverage__tool_users_not_in_org_are_named(start_org: Any, tmp_path: Path) -> None:
    run = clean_outreach_run(start_org, tmp_path)
    run.profile.cadence_users["SendBloom"] = ["gone@nowhere.example"]

    result = enablement.check_coverage(run, days=30, profiles_file=tmp_path / "p.toml")

    assert result.status is StepStatus.FAILED
    sendbloom = next(tool for tool in result.details["tools"] if tool["tool"] == "SendBloom")
    assert sendbloom["missing"] == ["gone@nowhere.example"]
    assert "None of the users named for SendBloom is in this org (gone@nowhere.example)" in result.reason


def test_check_coverage__no_tools_named_checks_calls_only(
    run: enablement.EnablementRun, tmp_path: Path
) -> None:
    enablement.check_field(run)

    result = enablement.check_coverage(run, days=30, profiles_file=tmp_path / "profiles.toml")

    assert result.details["tools"] == []
    assert "No cadence tool users are named" in result.reason
    assert result.status is StepStatus.FAILED, "the seeded calls lack TaskSubtype Call"
