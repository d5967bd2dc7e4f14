"""The Conflicts step against the practice org: every Task read, grouped, and nothing changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstory_desktop import enablement
from backstory_desktop.core.checklist import Step, StepStatus
from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind, Thresholds
from backstory_desktop.enablement.conflicts import tool_users
from backstory_desktop.enablement.resolution import apply_resolution, groups_for_bulk, preview_resolution
from backstory_desktop.enablement.summary import open_work
from backstory_desktop.practice_org.seed import (
    ADMIN_USERNAME,
    FLAG_FIELD,
    MESSAGE_ID_FIELD,
    OUTREACH_USERNAME,
    SALESLOFT_USERNAME,
)
from backstory_desktop.practice_org.seed_duplicates import (
    DUPLICATES_SCENARIO,
    EXPECTED_DUPLICATE_GROUPS,
    UNGROUPED_TASKS,
)
from backstory_desktop.practice_org.server import PracticeOrg
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.field_fix import plan_field_fix
from backstory_desktop.salesforce.task_scan import count_tasks
from backstory_desktop.store.settings import OrgProfile
from tests.conftest import StartOrg

PRICING_BODY = "Hi Ann,\n\nthe pricing for next year is attached.\n\nBest, Joe"
CADENCE_USERS = {"Outreach": [OUTREACH_USERNAME], "SalesLoft": [SALESLOFT_USERNAME, "gone@x.example"]}


@dataclass
class CaptureTasks:
    """The Tasks of one e-mail logged by several capture tools, and of one e-mail cloned per Opportunity."""

    keyed: str
    by_outreach: str
    by_salesloft: str
    clones: list[str]
    other_subject: str
    hours_later: str


def user_id(org: PracticeOrg, username: str) -> str:
    (user,) = org.store.find_by_field("User", "Username", username, case_sensitive=False)
    return user.id


def insert_task(org: PracticeOrg, created_by: str, at: str, **fields: Any) -> str:
    values = {"Subject": "Re: pricing", "Description": PRICING_BODY, "TaskSubtype": "Email",
              "Status": "Completed", FLAG_FIELD: False, **fields}
    record = org.store.insert_record("Task", values, created_by_id=created_by,
                                     created_date=f"2026-11-03T{at}.000+0000")
    return record.id


def log_capture_tasks(org: PracticeOrg) -> CaptureTasks:
    """Log one e-mail three times (Backstory with a key, Outreach and SalesLoft without) and clones."""
    store = org.store
    contact = store.records_of("Contact")[0].id
    owner = user_id(org, ADMIN_USERNAME)
    outreach, salesloft = user_id(org, OUTREACH_USERNAME), user_id(org, SALESLOFT_USERNAME)
    same = {"WhoId": contact, "OwnerId": owner}
    keyed = insert_task(org, owner, "10:00:00", **same, **{MESSAGE_ID_FIELD: "<pricing@x.example>",
                                                          FLAG_FIELD: True})
    by_outreach = insert_task(org, outreach, "10:00:01", **same)
    by_salesloft = insert_task(org, salesloft, "10:00:03", **same)
    other_subject = insert_task(org, outreach, "10:00:05", **same, Subject="Meeting notes",
                                Description="Notes from the meeting.")
    hours_later = insert_task(org, outreach, "13:00:01", **same)
    opportunities = [store.insert_record("Opportunity", {"Name": f"Deal {n}", "StageName": "Prospecting",
                                                         "CloseDate": "2026-12-31"},
                                         created_by_id=owner).id for n in range(3)]
    clones = [insert_task(org, outreach, "15:00:00", **same, WhatId=opportunity, Subject="Quote",
                          Description="The quote.", **{MESSAGE_ID_FIELD: "<quote@x.example>"})
              for opportunity in opportunities]
    return CaptureTasks(keyed, by_outreach, by_salesloft, clones, other_subject, hours_later)


def ready_run(org: PracticeOrg) -> enablement.EnablementRun:
    connection = connect_practice_org(org.base_url, org.ca_bundle, org.admin_username, org.client_id)
    profile = OrgProfile(alias="practice", cadence_users=CADENCE_USERS)
    run = enablement.EnablementRun(profile, connection=connection)
    enablement.check_field(run)  # fails on a field that is not Unique, but reads the field all the same
    assert run.field_state is not None
    return run


def group_of(run: enablement.EnablementRun, record_id: str) -> DuplicateGroup | None:
    return next((group for group in run.groups if any(r.id == record_id for r in group.records)), None)


def task_fields(connection: OrgConnection) -> dict[str, dict[str, Any]]:
    soql = f"SELECT Id, Subject, {MESSAGE_ID_FIELD}, IsDeleted, LastModifiedDate FROM Task"
    return {row["Id"]: row for row in connection.query_all(soql, include_deleted=True)}


def test_conflicts__capture_tools_form_one_probable_group(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    tasks = log_capture_tasks(org)
    run = ready_run(org)

    result = enablement.scan_conflicts(run)

    assert "groups" in result.details, result.reason
    group = group_of(run, tasks.by_outreach)
    assert group is not None
    assert group.kind is GroupKind.PROBABLE
    assert group.flagged
    assert group.key == "<pricing@x.example>"
    assert [record.id for record in group.records] == [tasks.keyed, tasks.by_outreach, tasks.by_salesloft]
    assert group.survivor_id == tasks.keyed
    assert [record.writer for record in group.records] == [
        "Backstory", f"Outreach ({OUTREACH_USERNAME})", f"SalesLoft ({SALESLOFT_USERNAME})"]
    assert group_of(run, tasks.other_subject) is None
    assert group_of(run, tasks.hours_later) is None


def test_conflicts__clones_labelled_not_flagged(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    tasks = log_capture_tasks(org)
    run = ready_run(org)

    result = enablement.scan_conflicts(run)

    group = group_of(run, tasks.clones[0])
    assert group is not None
    assert group.kind is GroupKind.CLONES
    assert not group.flagged
    assert sorted(record.id for record in group.records) == sorted(tasks.clones)
    assert result.details["by_kind"]["clones"] >= 1
    assert result.details["flagged"] == sum(1 for group in run.groups if group.flagged)
    assert "clones logged once per related record on purpose" in result.reason


def test_conflicts__scan_changes_nothing(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    log_capture_tasks(org)
    run = ready_run(org)
    connection = run.require_connection()
    before = task_fields(connection)

    enablement.scan_conflicts(run)

    assert task_fields(connection) == before


def test_conflicts__scan_counts_every_task(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = ready_run(org)

    result = enablement.scan_conflicts(run)

    total = count_tasks(run.require_connection())
    assert run.tasks_scanned == total
    assert result.details["tasks"] == total
    assert result.details["groups"] == len(run.groups)
    assert run.checklist.results[Step.CONFLICTS] == result


def test_conflicts__thresholds_kept_for_rescan(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    tasks = log_capture_tasks(org)
    run = ready_run(org)
    strict = Thresholds(window_minutes=0)

    enablement.scan_conflicts(run, thresholds=strict)
    after_strict = group_of(run, tasks.by_outreach)
    enablement.scan_conflicts(run)

    assert after_strict is None
    assert run.thresholds == strict
    assert group_of(run, tasks.by_outreach) is None


def test_conflicts__case_variants_grouped_by_field_rule(start_org: StartOrg) -> None:
    for scenario, case_note in (("default", True), ("non-unique", False)):
        org = start_org(scenario)
        upper = insert_task(org, user_id(org, OUTREACH_USERNAME), "08:00:00",
                            **{MESSAGE_ID_FIELD: "<ABC123@EXAMPLE.COM>"})
        lower = insert_task(org, user_id(org, OUTREACH_USERNAME), "08:30:00",
                            **{MESSAGE_ID_FIELD: "<abc123@example.com>"})
        run = ready_run(org)
        assert run.field_state is not None
        assert bool(run.field_state.case_sensitive) is case_note

        enablement.scan_conflicts(run)

        group = group_of(run, upper)
        assert group is not None
        assert group.kind is GroupKind.NORMALISED
        assert group.key == "abc123@example.com"
        assert sorted(record.id for record in group.records) == sorted([upper, lower])
        assert ("Salesforce treats them as different keys" in group.reason) is case_note
        assert group.flagged is not case_note


def test_conflicts__other_opportunity_clone_left_out(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    owner = user_id(org, ADMIN_USERNAME)
    deals = [{"Name": f"Deal {n}", "StageName": "Prospecting", "CloseDate": "2026-12-31"} for n in range(2)]
    first, second = (org.store.insert_record("Opportunity", deal, created_by_id=owner).id for deal in deals)
    key = {MESSAGE_ID_FIELD: "<renewal@x.example>"}
    twice = [insert_task(org, owner, at, WhatId=first, **key) for at in ("09:00:00", "09:00:02")]
    clone = insert_task(org, owner, "09:00:04", WhatId=second, **key)
    run = ready_run(org)

    enablement.scan_conflicts(run)

    group = group_of(run, twice[0])
    assert group is not None
    assert group.kind is GroupKind.EXACT
    assert sorted(record.id for record in group.records) == sorted(twice)
    assert group_of(run, clone) is None


def test_conflicts__calls_with_one_subject_not_grouped(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    contact = org.store.records_of("Contact")[0].id
    owner = user_id(org, ADMIN_USERNAME)
    calls = [insert_task(org, owner, at, WhoId=contact, OwnerId=owner, Subject="Call", Description="",
                         TaskSubtype="Call") for at in ("11:00:00", "11:04:00", "11:09:00")]
    run = ready_run(org)

    enablement.scan_conflicts(run)

    assert [group_of(run, call) for call in calls] == [None, None, None]


def test_conflicts__tool_users_by_id(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    run = ready_run(org)

    users = tool_users(run)

    assert users == {
        user_id(org, OUTREACH_USERNAME): f"Outreach ({OUTREACH_USERNAME})",
        user_id(org, SALESLOFT_USERNAME): f"SalesLoft ({SALESLOFT_USERNAME})",
    }


def test_conflicts__open_work_counts_flagged_groups_only(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    log_capture_tasks(org)
    run = ready_run(org)
    enablement.scan_conflicts(run)
    flagged = sum(1 for group in run.groups if group.flagged)

    (line,) = [line for line in open_work(run, [Step.CONFLICTS])]

    assert flagged < len(run.groups)
    assert line.startswith(f"Resolve {flagged} groups of Tasks that record one e-mail more than once")


def test_conflicts__duplicates_scenario_groups(start_org: StartOrg) -> None:
    run = ready_run(start_org(DUPLICATES_SCENARIO))

    enablement.scan_conflicts(run)

    found = sorted((group.kind.value, sorted(record.key or "" for record in group.records),
                    sum(record.is_deleted for record in group.records),
                    sum(record.is_archived for record in group.records)) for group in run.groups)
    expected = sorted((group.kind, sorted(group.keys), group.deleted, group.archived)
                      for group in EXPECTED_DUPLICATE_GROUPS)
    assert found == expected
    subjects = {group.subject for group in run.groups}
    for group in EXPECTED_DUPLICATE_GROUPS:
        assert group.subject in subjects
    grouped_keys = {record.key for group in run.groups for record in group.records}
    for single in UNGROUPED_TASKS:
        if single.key:
            assert single.key not in grouped_keys
    probable = next(group for group in run.groups if group.kind is GroupKind.PROBABLE)
    assert [record.writer for record in probable.records][:2] == [
        f"Outreach ({OUTREACH_USERNAME})", f"SalesLoft ({SALESLOFT_USERNAME})"]
    assert probable.survivor_id == next(record.id for record in probable.records if record.key)
    with_archived = next(group for group in run.groups if any(record.is_archived for record in group.records))
    survivor = next(record for record in with_archived.records if record.id == with_archived.survivor_id)
    assert not survivor.is_archived


def test_conflicts__flagged_groups_fail_the_step(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    log_capture_tasks(org)
    run = ready_run(org)

    result = enablement.scan_conflicts(run)

    flagged = sum(1 for group in run.groups if group.flagged)
    assert flagged > 1
    assert result.status is StepStatus.FAILED
    assert result.details["flagged"] == flagged
    assert result.reason.endswith(f"; resolve those {flagged} groups on the Conflicts page.")


def test_conflicts__resolved_groups_gone_on_rescan(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    tasks = log_capture_tasks(org)
    run = ready_run(org)
    enablement.scan_conflicts(run)
    outcome = apply_resolution(run, preview_resolution(run, groups_for_bulk(run.groups)))
    assert outcome.failed == {}

    result = enablement.scan_conflicts(run)

    assert result.status is StepStatus.PASSED, result.reason
    assert [group.reason for group in run.groups if group.flagged] == []
    assert group_of(run, tasks.by_outreach) is None
    assert group_of(run, tasks.by_salesloft) is None


def test_conflicts__counts_have_thousands_separators(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    owner = user_id(org, ADMIN_USERNAME)
    for number in range(1_000):
        insert_task(org, owner, "07:00:00", Subject=f"Note {number}", Description=f"Note {number}.")
    run = ready_run(org)

    result = enablement.scan_conflicts(run)

    assert result.details["tasks"] > 1_000
    assert result.reason.startswith(f"Read {result.details['tasks']:,} Tasks and found ")


def test_conflicts__junk_keys_grouped_like_field_blockers(start_org: StartOrg) -> None:
    org = start_org("non-unique")
    owner = user_id(org, ADMIN_USERNAME)
    junk = [insert_task(org, owner, at, Subject="Note", **{MESSAGE_ID_FIELD: "<>"})
            for at in ("07:00:00", "09:00:00")]
    run = ready_run(org)
    assert run.field_state is not None
    plan = plan_field_fix(run.require_connection(), run.field_state, case_sensitive=True)

    enablement.scan_conflicts(run)

    group = group_of(run, junk[0])
    assert group is not None
    assert (group.kind, group.key, group.flagged) == (GroupKind.EXACT, "<>", True)
    assert sorted(record.id for record in group.records) == sorted(junk)
    assert any(blocker.value == "<>" for blocker in plan.blockers)
