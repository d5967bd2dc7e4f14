"""The "duplicates" scenario: its Tasks as seeded, and the groups the product's scan finds in it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backstory_desktop.core.duplicates import DuplicateGroup, group_duplicates
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.seed import (
    FLAG_FIELD,
    MESSAGE_ID_FIELD,
    OUTREACH_USERNAME,
    SALESLOFT_USERNAME,
    SCENARIOS,
)
from backstory_desktop.practice_org.seed_duplicates import (
    DUPLICATES_SCENARIO,
    EXPECTED_DUPLICATE_GROUPS,
    PRICING_SUBJECT,
    SINGLE_KEYS,
    UNGROUPED_TASKS,
    ExpectedGroup,
)
from backstory_desktop.practice_org.seed_large import (
    LARGE_SCENARIO,
    PROBABLE_KIND,
    LargeScenario,
    generated_rows,
)
from backstory_desktop.salesforce.connection import OrgConnection, connect_practice_org
from backstory_desktop.salesforce.task_scan import scan_all_tasks
from tests.practice_org.conftest import admin_connection


@pytest.fixture(scope="module")
def connection(duplicates_org: PracticeOrg) -> OrgConnection:
    return admin_connection(duplicates_org)


@pytest.fixture(scope="module")
def tasks(connection: OrgConnection) -> list[dict[str, Any]]:
    soql = (f"SELECT Id, Subject, {MESSAGE_ID_FIELD}, WhoId, WhatId, OwnerId, CreatedById, "
            f"CreatedDate, IsDeleted, IsArchived, {FLAG_FIELD} FROM Task")
    return [row for page in connection.query_pages(soql, include_deleted=True)
            for row in page["records"]]


@pytest.fixture(scope="module")
def groups(duplicates_org: PracticeOrg, connection: OrgConnection) -> list[DuplicateGroup]:
    tools = {_user_id(duplicates_org, OUTREACH_USERNAME): "Outreach",
             _user_id(duplicates_org, SALESLOFT_USERNAME): "SalesLoft"}
    records = list(scan_all_tasks(connection, MESSAGE_ID_FIELD, flag_field=FLAG_FIELD,
                                  tools_by_user_id=tools, use_bulk=False))
    return group_duplicates(records, case_sensitive=False, tool_user_ids=tools)


def _user_id(org: PracticeOrg, username: str) -> str:
    users = org.store.find_by_field("User", "Username", username, case_sensitive=False)
    return users[0].id


def _members(tasks: list[dict[str, Any]], expected: ExpectedGroup) -> list[dict[str, Any]]:
    """Return the scenario's Tasks of an expected group: same subject, and keyed like it."""
    rows = [row for row in tasks if row["Subject"] == expected.subject]
    if expected.kind == "probable":
        # The probable group's subject is also on a later reply that must stay out of it.
        rows = [row for row in rows if "T10:00:0" in row["CreatedDate"]]
    return sorted(rows, key=lambda row: row["CreatedDate"])


def _signature(records: tuple[TaskRecord, ...] | list[dict[str, Any]]) -> Counter[str]:
    keys = [(record.key if isinstance(record, TaskRecord) else record[MESSAGE_ID_FIELD]) or ""
            for record in records]
    return Counter(keys)


def test_scenario_registered() -> None:
    assert DUPLICATES_SCENARIO in SCENARIOS


def test_key_field_not_unique(connection: OrgConnection) -> None:
    fields = {field["name"]: field for field in connection.describe("Task")["fields"]}

    key_field = fields[MESSAGE_ID_FIELD]

    assert key_field["unique"] is False
    assert key_field["caseSensitive"] is False
    assert key_field["externalId"] is True


def test_seeded_groups_as_documented(tasks: list[dict[str, Any]]) -> None:
    for expected in EXPECTED_DUPLICATE_GROUPS:
        members = _members(tasks, expected)

        assert [row[MESSAGE_ID_FIELD] or "" for row in members] == list(expected.keys), expected
        assert sum(row["IsDeleted"] for row in members) == expected.deleted, expected
        assert sum(row["IsArchived"] for row in members) == expected.archived, expected


def test_probable_members_writers(duplicates_org: PracticeOrg, tasks: list[dict[str, Any]]) -> None:
    probable = next(group for group in EXPECTED_DUPLICATE_GROUPS if group.kind == "probable")

    members = _members(tasks, probable)

    assert [row["CreatedDate"][11:19] for row in members] == ["10:00:01", "10:00:03", "10:00:05"]
    assert [row["CreatedById"] for row in members] == [
        _user_id(duplicates_org, OUTREACH_USERNAME), _user_id(duplicates_org, SALESLOFT_USERNAME),
        _user_id(duplicates_org, duplicates_org.integration_username)]
    assert [row[FLAG_FIELD] for row in members] == [False, False, True]
    assert len({row["WhoId"] for row in members}) == 1
    assert len({row["OwnerId"] for row in members}) == 1


def test_clone_sets_differ_in_relation(tasks: list[dict[str, Any]]) -> None:
    keyed, keyless = [group for group in EXPECTED_DUPLICATE_GROUPS if group.kind == "clones"]

    what_ids = [row["WhatId"] for row in _members(tasks, keyed)]
    who_ids = [row["WhoId"] for row in _members(tasks, keyless)]

    assert len(set(what_ids)) == 3
    assert all(what_id and what_id.startswith("006") for what_id in what_ids)
    assert len(set(who_ids)) == 3
    assert all(who_ids)
    assert all(row["WhatId"] is None for row in _members(tasks, keyless))


def test_ungrouped_tasks_seeded(tasks: list[dict[str, Any]]) -> None:
    keys = Counter(row[MESSAGE_ID_FIELD] for row in tasks)
    later_pricing = [row for row in tasks
                     if row["Subject"] == PRICING_SUBJECT and "T13:00:01" in row["CreatedDate"]]

    assert all(keys[key] == 1 for key in SINGLE_KEYS)
    assert len(later_pricing) == 1
    assert len(tasks) == sum(group.size for group in EXPECTED_DUPLICATE_GROUPS) + len(UNGROUPED_TASKS)


def test_scan_finds_expected_groups(groups: list[DuplicateGroup]) -> None:
    found = sorted((group.kind.value, group.subject, sorted(_signature(group.records).elements()))
                   for group in groups)
    expected = sorted((group.kind, group.subject, sorted(group.keys))
                      for group in EXPECTED_DUPLICATE_GROUPS)

    assert found == expected


def test_scan_leaves_ungrouped_out(groups: list[DuplicateGroup], tasks: list[dict[str, Any]]) -> None:
    grouped = {record.id for group in groups for record in group.records}
    shipping = [row["Id"] for row in tasks if row["Subject"] == "Re: shipping dates"]
    later_pricing = [row["Id"] for row in tasks
                     if row["Subject"] == PRICING_SUBJECT and "T13:00:01" in row["CreatedDate"]]
    singles = [row["Id"] for row in tasks if row[MESSAGE_ID_FIELD] in SINGLE_KEYS]

    assert grouped.isdisjoint(shipping)
    assert grouped.isdisjoint(later_pricing)
    assert grouped.isdisjoint(singles)


# -- the large scenario's chosen shares ------------------------------------------------

SHARES = LargeScenario(tasks=2000, exact_share=0.02, normalised_share=0.03, probable_share=0.025)


def test_large_shares_kind_counts() -> None:
    rows = list(generated_rows(SHARES))
    kinds = Counter(row.kind for row in rows if row.kind is not None)

    assert kinds["exact"] == 40
    assert kinds["brackets"] + kinds["case"] + kinds["whitespace"] == 60
    assert kinds[PROBABLE_KIND] == 50
    assert len(rows) == 2000


def test_large_shares_probable_rows() -> None:
    rows = list(generated_rows(SHARES))
    probable = [row for row in rows if row.kind == PROBABLE_KIND]

    assert all(row.key is None for row in probable)
    assert all(rows[row.source].kind is None for row in probable)


def test_large_shares_validation() -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        LargeScenario(tasks=10, exact_share=0.6, probable_share=0.5)
    with pytest.raises(ValueError, match="probable_share must be a number"):
        LargeScenario(tasks=10, probable_share=1.5)


def test_large_shares_same_rows() -> None:
    assert list(generated_rows(SHARES)) == list(generated_rows(SHARES))
    assert list(generated_rows(SHARES)) != list(generated_rows(
        LargeScenario(tasks=2000, exact_share=0.02, normalised_share=0.03, probable_share=0.025,
                      random_seed=2)))


def test_large_shares_scan_groups(start_org_large: PracticeOrg) -> None:
    connection = connect_practice_org(start_org_large.base_url, start_org_large.ca_bundle,
                                      start_org_large.admin_username, start_org_large.client_id)
    salesloft = _user_id(start_org_large, SALESLOFT_USERNAME)
    records = list(scan_all_tasks(connection, MESSAGE_ID_FIELD, flag_field=FLAG_FIELD,
                                  use_bulk=False))
    groups = group_duplicates(records, case_sensitive=False)

    probable_rows = [record for record in records if record.created_by_id == salesloft]
    grouped = {record.id: group for group in groups for record in group.records}
    assert len(probable_rows) == 50
    assert all(record.key is None for record in probable_rows)
    assert all(record.id in grouped for record in probable_rows)
    assert len(records) == 2000


@pytest.fixture
def start_org_large(tmp_path: Path) -> Iterator[PracticeOrg]:
    with PracticeOrg(tmp_path / "large.db", scenario=LARGE_SCENARIO, large=SHARES) as org:
        yield org
