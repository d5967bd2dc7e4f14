"""Fixing an existing Message-ID field in the practice org: access, type, length, External ID, Unique.

Each test breaks the field through the API as an admin could in Setup, then plans
and applies the fix through the product's code and reads describe afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import format_soql
from simple_salesforce.exceptions import SalesforceError

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.fields import InvalidFieldName
from backstory_desktop.practice_org import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.salesforce.field_fix import apply_field_fix, plan_field_fix
from backstory_desktop.salesforce.field_room import EXTERNAL_ID_LIMIT, custom_field_room
from backstory_desktop.salesforce.schema import create_message_id_field, inspect_message_id_field
from backstory_desktop.store.settings import OrgProfile, load_profiles
from tests.conftest import StartOrg
from tests.field_access import hide_field_from_admin

FIELD = "Message_ID__c"


def _admin_of(org: PracticeOrg) -> OrgConnection:
    return connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)


def _describe_entry(conn: OrgConnection, name: str) -> dict[str, Any] | None:
    for entry in conn.describe("Task")["fields"]:
        if entry["name"] == name:
            return dict(entry)
    return None


def _admin_profile_set(conn: OrgConnection) -> str:
    rows = conn.query_all("SELECT Id FROM PermissionSet WHERE Profile.Name = 'System Administrator'")
    return str(next(iter(rows))["Id"])


def _create_field(conn: OrgConnection, name: str, metadata: dict[str, Any]) -> None:
    """Create an Activity field through the Tooling API and grant the admin's profile access to it."""
    conn.request("POST", "tooling/sobjects/CustomField",
                 json={"FullName": f"Activity.{name}", "Metadata": metadata})
    profile_set = _admin_profile_set(conn)
    for sobject in ("Task", "Event"):
        conn.request("POST", "sobjects/FieldPermissions", json={
            "ParentId": profile_set, "SobjectType": sobject, "Field": f"{sobject}.{name}",
            "PermissionsRead": True, "PermissionsEdit": True,
        })


def _grant_lines(username: str, name: str = FIELD) -> list[str]:
    """The diff lines of a grant that creates the field set and assigns it to ``username``."""
    quoted = '"Backstory Message ID Access"'
    return [f"+ Create permission set {quoted} (API name Backstory_Message_ID_Access).",
            f"+ Add field permission Read and Edit on Task.{name} to {quoted}.",
            f"+ Add field permission Read and Edit on Event.{name} to {quoted}.",
            f"+ Assign {quoted} to {username}."]


def _clear_key(conn: OrgConnection, task_id: str) -> None:
    conn.request("PATCH", f"sobjects/Task/{task_id}", json={FIELD: None})


def test_fix__hidden_field_granted_to_admin(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    hide_field_from_admin(admin)

    hidden = inspect_message_id_field(admin)
    plan = plan_field_fix(admin, hidden, case_sensitive=True)
    fixed = apply_field_fix(admin, plan)

    assert hidden.exists
    assert not hidden.visible_in_describe
    assert any("field-level security hides it" in problem for problem in hidden.problems)
    assert plan.grant_access
    assert not plan.changes_definition
    assert plan.lines == _grant_lines(default_org.admin_username)
    assert fixed.visible_in_describe
    assert fixed.problems == []


def test_fix__short_field_made_key_field(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, FIELD, {"label": "Mail Key", "type": "Text", "length": 80,
                                 "description": "Keys written by the old mail tool",
                                 "unique": False, "externalId": False})

    before = inspect_message_id_field(admin)
    plan = plan_field_fix(admin, before, case_sensitive=True)
    after = apply_field_fix(admin, plan)

    assert plan.lines == ["~ Length: 80 -> 255", "~ External ID: no -> yes",
                          "~ Unique: no -> yes (case-sensitive)"]
    assert plan.blockers == []
    assert plan.can_apply
    assert after.problems == []
    entry = _describe_entry(admin, FIELD)
    assert entry is not None
    assert entry["length"] == 255
    assert entry["externalId"] is True
    assert entry["unique"] is True
    assert entry["caseSensitive"] is True
    # The whole Metadata went back, so what the fix did not touch stayed.
    assert after.label == "Mail Key"
    assert after.description == "Keys written by the old mail tool"


@pytest.mark.parametrize(("field_type", "warning"), [
    ("Number", "converts its numbers to text"),
    ("LongTextArea", "longer than 255 characters"),
])
def test_fix__wrong_type_explained_and_changed(
    fresh_org: PracticeOrg, field_type: str, warning: str
) -> None:
    admin = _admin_of(fresh_org)
    metadata: dict[str, Any] = {"label": "Other Key", "type": field_type}
    if field_type == "Number":
        metadata.update({"precision": 18, "scale": 0, "externalId": True})
    else:
        metadata.update({"length": 32768, "visibleLines": 3})
    _create_field(admin, "Other_Key__c", metadata)

    before = inspect_message_id_field(admin, "Other_Key__c")
    plan = plan_field_fix(admin, before, case_sensitive=True)
    after = apply_field_fix(admin, plan)

    assert any(f"is a {field_type} field, not Text" in problem for problem in before.problems)
    assert plan.lines[0] == f"~ Type: {field_type} -> Text(255)"
    assert len(plan.warnings) == 1
    assert warning in plan.warnings[0]
    assert "precision" not in plan.metadata
    assert "visibleLines" not in plan.metadata
    assert after.type == "Text"
    assert after.problems == []


def test_fix__number_values_become_text(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, "Other_Key__c", {"label": "Other Key", "type": "Number", "precision": 18,
                                          "scale": 0, "externalId": True})
    task_id = admin.request("POST", "sobjects/Task", json={"Subject": "numbered", "Other_Key__c": 42})["id"]

    plan = plan_field_fix(admin, inspect_message_id_field(admin, "Other_Key__c"), case_sensitive=True)
    apply_field_fix(admin, plan)

    row = admin.request("GET", f"sobjects/Task/{task_id}")
    assert row["Other_Key__c"] == "42"


def test_fix__copies_block_unique_until_cleared(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    admin = _admin_of(org)
    state = inspect_message_id_field(admin)

    blocked = plan_field_fix(admin, state, case_sensitive=True)

    assert blocked.unique_requested
    assert not blocked.can_apply
    assert len(blocked.blockers) == 3
    holders = [record for blocker in blocked.blockers for record in blocker.records]
    assert any(record.deleted for record in holders)
    assert any(record.archived for record in holders)
    with pytest.raises(SalesforceProblem) as refused:
        apply_field_fix(admin, blocked)
    assert refused.value.error_code == "UNIQUE_BLOCKED"
    assert refused.value.sentence == ("3 values still block Unique on Message_ID__c; resolve the Tasks that "
                                      "share them on the Conflicts page, then run the scan again.")

    # Clear the second holder of each value: restore a recycled Task first, since Salesforce
    # does not update records in the recycle bin.
    for blocker in blocked.blockers:
        copy = blocker.records[1]
        if copy.deleted:
            assert org.undelete([copy.record_id]) == {copy.record_id: None}
        _clear_key(admin, copy.record_id)
    cleared = plan_field_fix(admin, inspect_message_id_field(admin), case_sensitive=True)
    after = apply_field_fix(admin, cleared)

    assert cleared.blockers == []
    assert cleared.can_apply
    assert cleared.lines == ["~ Unique: no -> yes (case-sensitive)"]
    assert after.unique is True
    entry = _describe_entry(admin, FIELD)
    assert entry is not None
    assert entry["unique"] is True
    assert entry["caseSensitive"] is True


def test_fix__events_named_apart(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    admin = _admin_of(org)
    admin.request("POST", "sobjects/Event", json={
        "Subject": "Call", "DurationInMinutes": 30, "ActivityDateTime": "2026-11-03T10:00:00.000+0000",
        FIELD: "<event-copy@x.example>"})
    admin.request("POST", "sobjects/Task", json={"Subject": "Call", FIELD: "<event-copy@x.example>"})
    blocked = plan_field_fix(admin, inspect_message_id_field(admin), case_sensitive=True)

    with pytest.raises(SalesforceProblem) as refused:
        apply_field_fix(admin, blocked)

    assert refused.value.sentence.endswith(
        "resolve the Tasks that share them on the Conflicts page and clear or delete the Events, then run "
        "the scan again.")


def test_fix__copy_written_after_scan_is_reported(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    admin = _admin_of(org)
    plan = plan_field_fix(admin, inspect_message_id_field(admin), case_sensitive=True)
    plan.blockers = []  # as if the scan ran before the copies were written

    with pytest.raises(SalesforceProblem) as refused:
        apply_field_fix(admin, plan)

    assert refused.value.error_code == "DUPLICATE_VALUE"
    assert "run the scan again" in refused.value.sentence


def test_plan__case_rule_decides_the_scan(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    state = inspect_message_id_field(admin)
    assert state.unique and state.case_sensitive

    stricter = plan_field_fix(admin, state, case_sensitive=False)
    state.case_sensitive = False
    looser = plan_field_fix(admin, state, case_sensitive=True)

    # The default org has two keys that differ only in case.
    assert stricter.lines == ["~ Case sensitivity: case-sensitive -> case-insensitive"]
    assert len(stricter.blockers) == 1
    assert looser.blockers == []
    # Without the case change nothing is left to do, and the field stays Unique.
    kept = stricter.without_unique()
    assert kept.lines == []
    assert kept.metadata["unique"] is True
    assert kept.metadata["caseSensitive"] is True


def test_plan__without_unique_keeps_other_changes(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    admin = _admin_of(org)
    state = inspect_message_id_field(admin)
    state.metadata["length"] = 80
    state.length = 80

    plan = plan_field_fix(admin, state, case_sensitive=True).without_unique()

    assert plan.lines == ["~ Length: 80 -> 255"]
    assert plan.metadata["unique"] is False
    assert plan.can_apply


def test_room__counts_activity_fields(default_org: PracticeOrg) -> None:
    room = custom_field_room(_admin_of(default_org))

    assert room.custom_fields == 1  # Message_ID__c; the flag field comes from a package
    assert room.packaged_fields == 1
    assert room.external_ids == 1
    assert room.external_ids_left == EXTERNAL_ID_LIMIT - 1
    assert room.warnings == []


def test_room__warns_when_external_ids_run_out(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    for number in range(EXTERNAL_ID_LIMIT - 1):
        _create_field(admin, f"Key_{number}__c", {"label": f"Key {number}", "type": "Text",
                                                  "length": 20, "externalId": True})

    room = custom_field_room(admin)

    assert room.external_ids_left == 1
    assert len(room.warnings) == 1
    assert "room for 1 more External ID fields of 25" in room.warnings[0]


def test_room__without_tooling_says_so(default_org: PracticeOrg) -> None:
    integration = connect_practice_org(default_org.base_url, default_org.ca_bundle,
                                       default_org.integration_username, default_org.client_id)

    room = custom_field_room(integration)

    assert room.custom_fields is None
    assert any("may not read field definitions" in note for note in room.notes)


def test_check_field__details_of_non_unique_field(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=_admin_of(org))

    result = enablement.check_field(run)

    assert result.status is StepStatus.FAILED
    assert result.details["label"] == "Message ID"
    assert result.details["description"] == "RFC 5322 Message-ID of the logged e-mail"
    assert result.details["room"]["external_ids_left"] == EXTERNAL_ID_LIMIT - 1
    consequences = result.details["not_unique_consequences"]
    assert any("View All Data" in line for line in consequences)
    assert any("300 Multiple Choices" in line for line in consequences)


def test_apply_field_fix__records_the_change(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, FIELD, {"label": "Message ID", "type": "Text", "length": 80,
                                 "externalId": True, "unique": True, "caseSensitive": True})
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)

    plan = enablement.plan_field_fix(run, case_sensitive=True)
    result = enablement.apply_field_fix(run, plan)

    assert result.status is StepStatus.PASSED
    assert run.checklist.status(Step.MESSAGE_ID_FIELD) is StepStatus.PASSED
    (change,) = run.changes
    assert change.summary == f"Changed Activity.{FIELD}"
    assert change.lines == ("~ Length: 80 -> 255",)
    assert change.made_by == fresh_org.admin_username


def test_create_field__records_the_change(fresh_org: PracticeOrg) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=_admin_of(fresh_org))
    enablement.check_field(run)

    enablement.create_field(run, case_sensitive=True)

    (change,) = run.changes
    assert change.summary == f"Created Activity.{FIELD}"
    assert "+     Unique: yes, case-sensitive" in change.lines
    assert list(change.lines[-4:]) == _grant_lines(fresh_org.admin_username)


def test_create_field__recorded_when_grant_fails(fresh_org: PracticeOrg) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=_admin_of(fresh_org))
    enablement.check_field(run)
    # Single-record writes fail; the Tooling POST that creates the field is not one of them.
    fresh_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    try:
        result = enablement.create_field(run, case_sensitive=True)
    finally:
        fresh_org.faults = FaultPlan()

    assert result.status is StepStatus.FAILED
    assert result.details["error_code"] == "FIELD_CREATED_UNFINISHED"
    assert result.reason.startswith(f"Activity.{FIELD} was created, but granting Read and Edit")
    (change,) = run.changes
    assert change.summary == f"Created Activity.{FIELD}"
    assert change.lines[0] == f"+ Custom field Activity.{FIELD}"
    assert not any("permission set" in line for line in change.lines)
    assert inspect_message_id_field(_admin_of(fresh_org)).exists


def test_apply_field_fix__change_recorded_when_grant_fails(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, FIELD, {"label": "Message ID", "type": "Text", "length": 80,
                                 "externalId": True, "unique": True, "caseSensitive": True})
    _make_read_only(admin)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    plan = enablement.plan_field_fix(run, case_sensitive=True)
    fresh_org.faults = FaultPlan(unable_to_lock_row_rate=1.0)
    try:
        result = enablement.apply_field_fix(run, plan)
    finally:
        fresh_org.faults = FaultPlan()

    assert result.status is StepStatus.FAILED
    assert "was not granted" in result.reason
    (change,) = run.changes
    assert change.lines == ("~ Length: 80 -> 255",)
    assert inspect_message_id_field(admin).length == 255


def test_create_field__room_counts_the_new_field(fresh_org: PracticeOrg) -> None:
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=_admin_of(fresh_org))
    before = enablement.check_field(run).details["room"]

    after = enablement.create_field(run, case_sensitive=True).details["room"]

    assert after["external_ids"] == before["external_ids"] + 1
    assert after["custom_fields_left"] == before["custom_fields_left"] - 1


def test_set_flag_field__saved_in_profile(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    run = enablement.EnablementRun(OrgProfile(alias="practice"))

    saved = enablement.set_flag_field(run, "Logged_by_Backstory", profiles_file=profiles)
    with pytest.raises(InvalidFieldName):
        enablement.set_flag_field(run, "1st_Flag__c", profiles_file=profiles)

    assert saved == "Logged_by_Backstory__c"
    assert load_profiles(profiles)["practice"].flag_field_api_name == "Logged_by_Backstory__c"


def test_check_field__other_case_uses_org_spelling(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    run = enablement.EnablementRun(OrgProfile(alias="practice", field_api_name="message_id__c"),
                                   connection=admin)

    exact = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(exact)

    result = enablement.check_field(run)
    access = enablement.check_integration_user(run, default_org.admin_username)

    assert run.field_state is not None
    assert run.field_state.api_name == FIELD
    assert result.details["field"] == FIELD
    assert "org spells it Message_ID__c" in result.reason
    assert run.profile.field_api_name == FIELD
    assert access.details == enablement.check_integration_user(exact, default_org.admin_username).details


def test_create__existing_field_typed_in_other_case(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    hide_field_from_admin(admin)

    creation = create_message_id_field(admin, "MESSAGE_ID__c", case_sensitive=True)
    state = creation.state

    assert not creation.created
    assert creation.lines == _grant_lines(default_org.admin_username)
    assert state.api_name == FIELD
    assert state.problems == []
    assert _describe_entry(admin, FIELD) is not None


def test_fix__hidden_non_unique_field_granted_before_scan(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    admin = _admin_of(org)
    hide_field_from_admin(admin)

    hidden = inspect_message_id_field(admin)
    grant = plan_field_fix(admin, hidden, case_sensitive=True)
    granted = apply_field_fix(admin, grant)
    rest = plan_field_fix(admin, granted, case_sensitive=True)

    assert not hidden.visible_in_describe
    assert grant.access_only
    assert grant.lines == _grant_lines(org.admin_username)
    assert grant.blockers == []
    assert grant.can_apply
    assert granted.visible_in_describe
    assert granted.unique is False
    assert not rest.access_only
    assert rest.lines == ["~ Unique: no -> yes (case-sensitive)"]
    assert len(rest.blockers) == 3


def test_fix__long_values_block_the_change_to_text(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, "Other_Key__c", {"label": "Other Key", "type": "LongTextArea",
                                          "length": 32768, "visibleLines": 3})
    head = "<" + "a" * 254
    ids = [admin.request("POST", "sobjects/Task", json={"Subject": "long", "Other_Key__c": value})["id"]
           for value in (head + "1>", head + "2>", "<short@x>")]

    plan = plan_field_fix(admin, inspect_message_id_field(admin, "Other_Key__c"), case_sensitive=True)
    with pytest.raises(SalesforceProblem) as refused:
        apply_field_fix(admin, plan)
    with pytest.raises(SalesforceError) as refused_by_org:
        admin.request("PATCH", f"tooling/sobjects/CustomField/{plan.tooling_id}",
                      json={"Metadata": plan.metadata})

    assert sorted(record.record_id for record in plan.long_values) == sorted(ids[:2])
    # Cut to 255 characters, the two long values would be one key.
    (collision,) = plan.blockers
    assert sorted(record.record_id for record in collision.records) == sorted(ids[:2])
    assert not plan.can_apply
    assert not plan.without_unique().can_apply
    assert refused.value.error_code == "VALUES_TOO_LONG"
    assert "2 values of Other_Key__c are longer than 255 characters" in refused.value.sentence
    assert "FIELD_INTEGRITY_EXCEPTION" in str(refused_by_org.value)
    assert inspect_message_id_field(admin, "Other_Key__c").type == "LongTextArea"


def _make_read_only(conn: OrgConnection, name: str = FIELD) -> None:
    """Take Edit on the field away from the admin's profile, so the fix needs a grant."""
    soql = format_soql("SELECT Id FROM FieldPermissions WHERE ParentId = {} AND Field IN {}",
                       _admin_profile_set(conn), [f"Task.{name}", f"Event.{name}"])
    for row in list(conn.query_all(soql)):
        conn.request("PATCH", f"sobjects/FieldPermissions/{row['Id']}", json={"PermissionsEdit": False})


def _add_set_granting_more(conn: OrgConnection) -> None:
    """Create a set with the grant's API name that grants more, so the grant may not reuse it."""
    conn.request("POST", "sobjects/PermissionSet", json={
        "Name": "Backstory_Message_ID_Access", "Label": "Backstory Message ID Access",
        "PermissionsModifyAllData": True})


def test_fix__blocked_grant_changes_nothing(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, FIELD, {"label": "Message ID", "type": "Text", "length": 80,
                                 "externalId": True, "unique": True, "caseSensitive": True})
    _make_read_only(admin)
    _add_set_granting_more(admin)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    plan = enablement.plan_field_fix(run, case_sensitive=True)

    result = enablement.apply_field_fix(run, plan)

    assert plan.lines[0] == "~ Length: 80 -> 255"
    assert any("also grants Modify All Data" in warning for warning in plan.warnings)
    assert not plan.can_apply
    assert result.status is StepStatus.FAILED
    assert result.details["error_code"] == "ACCESS_BLOCKED"
    assert "also grants Modify All Data" in result.reason
    assert run.changes == []
    assert inspect_message_id_field(admin).length == 80


def test_fix__grant_shown_is_the_grant_applied(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, FIELD, {"label": "Message ID", "type": "Text", "length": 80,
                                 "externalId": True, "unique": True, "caseSensitive": True})
    _make_read_only(admin)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    plan = enablement.plan_field_fix(run, case_sensitive=True)

    result = enablement.apply_field_fix(run, plan)

    assert plan.lines == ["~ Length: 80 -> 255", *_grant_lines(fresh_org.admin_username)]
    assert result.status is StepStatus.PASSED
    (change,) = run.changes
    assert change.summary == f"Changed Activity.{FIELD}"
    assert list(change.lines) == plan.lines
    assignments = admin.query_all(format_soql(
        "SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = {} "
        "AND PermissionSet.Name = 'Backstory_Message_ID_Access'", admin.user_id))
    assert len(list(assignments)) == 1


def test_create__blocked_grant_creates_nothing(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _add_set_granting_more(admin)

    with pytest.raises(SalesforceProblem) as refused:
        create_message_id_field(admin, case_sensitive=True)

    assert refused.value.error_code == "ACCESS_BLOCKED"
    assert not inspect_message_id_field(admin).exists


def test_create_field__existing_field_with_access_records_nothing(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)
    enablement.check_field(run)
    enablement.create_field(run, case_sensitive=True)

    result = enablement.create_field(run, case_sensitive=True)

    assert result.status is StepStatus.PASSED
    # The first run assigned the set; the second one changed nothing and recorded nothing.
    assert [change.summary for change in run.changes] == [f"Granted access to Activity.{FIELD}"]


def _api_calls_used(conn: OrgConnection) -> int:
    limit = conn.limits()["DailyApiRequests"]
    return int(limit["Max"]) - int(limit["Remaining"])


def test_plan__long_text_rows_read_once(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    _create_field(admin, "Other_Key__c", {"label": "Other Key", "type": "LongTextArea",
                                          "length": 32768, "visibleLines": 3})
    admin.request("POST", "sobjects/Task", json={"Subject": "long", "Other_Key__c": "<" + "a" * 300 + ">"})
    state = inspect_message_id_field(admin, "Other_Key__c")
    before = _api_calls_used(admin)
    plan = plan_field_fix(admin, state, case_sensitive=True)
    used = _api_calls_used(admin) - before - 1  # the second count is an API call too

    assert len(plan.long_values) == 1
    assert plan.blockers == []
    # One queryAll each of Task and Event, shared by the check of length and the one of Unique.
    assert used == 2


def test_apply_field_fix__one_blocker_in_singular(default_org: PracticeOrg) -> None:
    admin = _admin_of(default_org)
    plan = plan_field_fix(admin, inspect_message_id_field(admin), case_sensitive=False)

    with pytest.raises(SalesforceProblem) as refused:
        apply_field_fix(admin, plan)

    assert len(plan.blockers) == 1
    assert refused.value.sentence == ("1 value still blocks Unique on Message_ID__c; resolve the Tasks that "
                                      "share it on the Conflicts page, then run the scan again.")


def test_room__hidden_external_ids_counted_as_not_checked(fresh_org: PracticeOrg) -> None:
    admin = _admin_of(fresh_org)
    # Fields created through the Tooling API have no field-level security, so the admin's describe hides them.
    for number in range(EXTERNAL_ID_LIMIT):
        admin.request("POST", "tooling/sobjects/CustomField", json={
            "FullName": f"Activity.Key_{number}__c",
            "Metadata": {"label": f"Key {number}", "type": "Text", "length": 20, "externalId": True}})
    with pytest.raises(SalesforceError) as refused:
        admin.request("POST", "tooling/sobjects/CustomField", json={
            "FullName": "Activity.One_Too_Many__c",
            "Metadata": {"label": "One Too Many", "type": "Text", "length": 20, "externalId": True}})
    run = enablement.EnablementRun(OrgProfile(alias="practice"), connection=admin)

    room = custom_field_room(admin)
    details = enablement.check_field(run).details["room"]

    assert "LIMIT_EXCEEDED" in str(refused.value)
    assert room.external_ids == 0
    assert room.hidden_fields == EXTERNAL_ID_LIMIT
    assert room.external_ids_left == EXTERNAL_ID_LIMIT
    assert room.external_ids_left_at_least == 0
    assert any("may have no room for another External ID field" in line for line in room.warnings)
    assert details["hidden_fields"] == EXTERNAL_ID_LIMIT
