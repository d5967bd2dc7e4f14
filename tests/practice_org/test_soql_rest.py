"""SOQL through the REST query and queryAll resources, one construct per test, via simple-salesforce.

Each test compares the practice org's result with the same selection made in
Python over every Task that queryAll returns, so a construct that is evaluated
wrongly fails here even when the query itself is accepted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.practice_org.practice_login import Login

FIELD = "Message_ID__c"
ALL_FIELDS = (f"SELECT Id, Subject, Status, IsClosed, IsDeleted, IsArchived, ActivityDate, "
              f"CallDurationInSeconds, TaskSubtype, OwnerId, {FIELD} FROM Task")


@pytest.fixture(scope="module")
def every_task(admin: Login) -> list[dict[str, Any]]:
    return list(admin.sf.query_all(ALL_FIELDS, include_deleted=True)["records"])


@pytest.fixture(scope="module")
def live_tasks(every_task: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [task for task in every_task if not task["IsDeleted"] and not task["IsArchived"]]


def ids(result: dict[str, Any]) -> set[str]:
    return {record["Id"] for record in result["records"]}


def test_rest_soql__parent_relationship_fields(admin: Login) -> None:
    result = admin.sf.query("SELECT Id, Owner.Name, Owner.Email, CreatedBy.Username FROM Task "
                            "LIMIT 5")

    record = result["records"][0]
    assert record["Owner"]["Name"]
    assert "@" in record["Owner"]["Email"]
    assert record["CreatedBy"]["attributes"]["type"] == "User"
    assert "Username" in record["CreatedBy"]


def test_rest_soql__and_or_not_with_parentheses(admin: Login,
                                                live_tasks: list[dict[str, Any]]) -> None:
    result = admin.sf.query_all(
        "SELECT Id FROM Task WHERE (TaskSubtype = 'Call' OR TaskSubtype = 'Task') "
        f"AND NOT ({FIELD} = null)")

    expected = {task["Id"] for task in live_tasks
                if task["TaskSubtype"] in ("Call", "Task") and task[FIELD] is not None}
    assert ids(result) == expected


def test_rest_soql__mixed_and_or_without_parentheses_is_malformed(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.query("SELECT Id FROM Task WHERE Status = 'Completed' AND IsClosed = true "
                       "OR Priority = 'High'")

    assert raised.value.status == 400
    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"


@pytest.mark.parametrize("operator", ["=", "!=", "<", ">", "<=", ">="])
def test_rest_soql__number_comparisons(admin: Login, live_tasks: list[dict[str, Any]],
                                       operator: str) -> None:
    compare = {
        "=": lambda v: v == 180, "!=": lambda v: v != 180, "<": lambda v: v is not None and v < 180,
        ">": lambda v: v is not None and v > 180, "<=": lambda v: v is not None and v <= 180,
        ">=": lambda v: v is not None and v >= 180,
    }[operator]

    result = admin.sf.query_all(f"SELECT Id FROM Task WHERE CallDurationInSeconds {operator} 180")

    expected = {task["Id"] for task in live_tasks if compare(task["CallDurationInSeconds"])}
    assert ids(result) == expected
    assert expected or operator in ("=",)


def test_rest_soql__in_and_not_in(admin: Login, live_tasks: list[dict[str, Any]]) -> None:
    keys = [task[FIELD] for task in live_tasks if task[FIELD]][:3]
    quoted = ", ".join(f"'{key}'" for key in keys)

    inside = admin.sf.query_all(f"SELECT Id FROM Task WHERE {FIELD} IN ({quoted})")
    outside = admin.sf.query_all(f"SELECT Id FROM Task WHERE {FIELD} NOT IN ({quoted})")

    assert ids(inside) == {task["Id"] for task in live_tasks if task[FIELD] in keys}
    # NOT IN keeps Tasks whose key is null, as SOQL does.
    assert ids(outside) == {task["Id"] for task in live_tasks if task[FIELD] not in keys}


def test_rest_soql__like_is_case_insensitive_on_subject(admin: Login,
                                                        live_tasks: list[dict[str, Any]]) -> None:
    result = admin.sf.query_all("SELECT Id FROM Task WHERE Subject LIKE 'call:%'")

    expected = {task["Id"] for task in live_tasks
                if (task["Subject"] or "").lower().startswith("call:")}
    assert expected
    assert ids(result) == expected


def test_rest_soql__null_and_not_null(admin: Login, live_tasks: list[dict[str, Any]]) -> None:
    without_key = admin.sf.query_all(f"SELECT Id FROM Task WHERE {FIELD} = null")
    with_key = admin.sf.query_all(f"SELECT Id FROM Task WHERE {FIELD} != null")

    assert ids(without_key) == {task["Id"] for task in live_tasks if task[FIELD] is None}
    assert ids(with_key) == {task["Id"] for task in live_tasks if task[FIELD] is not None}


def test_rest_soql__date_literal_and_last_n_days(admin: Login,
                                                 live_tasks: list[dict[str, Any]]) -> None:
    today = datetime.now(UTC).date()
    since = today - timedelta(days=10)

    recent = admin.sf.query_all("SELECT Id FROM Task WHERE ActivityDate = LAST_N_DAYS:10")
    before = admin.sf.query_all(f"SELECT Id FROM Task WHERE ActivityDate < {since.isoformat()}")

    def activity_date(task: dict[str, Any]) -> date | None:
        return date.fromisoformat(task["ActivityDate"]) if task["ActivityDate"] else None

    expected_recent = {task["Id"] for task in live_tasks
                       if (day := activity_date(task)) is not None and since <= day <= today}
    expected_before = {task["Id"] for task in live_tasks
                       if (day := activity_date(task)) is not None and day < since}
    assert expected_recent
    assert ids(recent) == expected_recent
    assert ids(before) == expected_before


def test_rest_soql__created_date_literal(admin: Login, live_tasks: list[dict[str, Any]]) -> None:
    result = admin.sf.query_all("SELECT Id FROM Task WHERE CreatedDate < YESTERDAY")

    assert 0 < len(result["records"]) <= len(live_tasks)


def test_rest_soql__group_by_having_count(admin: Login,
                                          every_task: list[dict[str, Any]]) -> None:
    result = admin.sf.query(
        f"SELECT {FIELD}, COUNT(Id) c FROM Task WHERE {FIELD} != null "
        f"GROUP BY {FIELD} HAVING COUNT(Id) > 1", include_deleted=True)

    counts: dict[str, int] = {}
    for task in every_task:
        if task[FIELD]:
            counts[task[FIELD]] = counts.get(task[FIELD], 0) + 1
    expected = {key: count for key, count in counts.items() if count > 1}
    assert {row[FIELD]: row["c"] for row in result["records"]} == expected
    assert all(row["attributes"]["type"] == "AggregateResult" for row in result["records"])
    assert "nextRecordsUrl" not in result


def test_rest_soql__group_by_unaliased_count_is_expr0(admin: Login) -> None:
    result = admin.sf.query("SELECT TaskSubtype, COUNT(Id) FROM Task GROUP BY TaskSubtype")

    assert result["records"]
    assert all(set(row) == {"attributes", "TaskSubtype", "expr0"} for row in result["records"])


def test_rest_soql__order_by_limit_offset(admin: Login, live_tasks: list[dict[str, Any]]) -> None:
    ordered = sorted((task for task in live_tasks if task["CallDurationInSeconds"] is not None),
                     key=lambda task: (-task["CallDurationInSeconds"], task["Id"]))

    result = admin.sf.query(
        "SELECT Id, CallDurationInSeconds FROM Task WHERE CallDurationInSeconds != null "
        "ORDER BY CallDurationInSeconds DESC LIMIT 2 OFFSET 1")

    assert [r["CallDurationInSeconds"] for r in result["records"]] == [
        task["CallDurationInSeconds"] for task in ordered[1:3]]
    assert result["totalSize"] == 2


def test_rest_soql__count(admin: Login, live_tasks: list[dict[str, Any]],
                          every_task: list[dict[str, Any]]) -> None:
    live = admin.sf.query("SELECT COUNT() FROM Task")
    everything = admin.sf.query("SELECT COUNT() FROM Task", include_deleted=True)

    assert live["totalSize"] == len(live_tasks)
    assert live["records"] == []
    assert everything["totalSize"] == len(every_task)


def test_rest_soql__key_lookup_matches_full_scan(admin: Login,
                                                 every_task: list[dict[str, Any]]) -> None:
    key = next(task[FIELD] for task in every_task if task[FIELD] and not task["IsDeleted"])

    by_index = admin.sf.query_all(f"SELECT Id FROM Task WHERE {FIELD} = '{key}' "
                                  "AND IsDeleted = false", include_deleted=True)
    # An OR cannot use the key field's index, so this one scans every Task.
    by_scan = admin.sf.query_all(f"SELECT Id FROM Task WHERE ({FIELD} = '{key}' OR "
                                 f"{FIELD} = '{key}') AND IsDeleted = false",
                                 include_deleted=True)

    assert ids(by_index) == ids(by_scan)
    assert ids(by_index) == {task["Id"] for task in every_task
                             if task[FIELD] == key and not task["IsDeleted"]}


def test_rest_soql__key_lookup_hides_deleted_and_archived(admin: Login,
                                                          every_task: list[dict[str, Any]]) -> None:
    hidden = next(task for task in every_task
                  if task[FIELD] and (task["IsDeleted"] or task["IsArchived"]))

    live = admin.sf.query(f"SELECT Id FROM Task WHERE {FIELD} = '{hidden[FIELD]}'")
    everything = admin.sf.query(f"SELECT Id FROM Task WHERE {FIELD} = '{hidden[FIELD]}'",
                                include_deleted=True)

    assert hidden["Id"] not in ids(live)
    assert hidden["Id"] in ids(everything)


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Task WHERE ActivityDate = THIS_WEEK",
    "SELECT Id, (SELECT Id FROM Tasks) FROM Contact",
    "SELECT MAX(CallDurationInSeconds) FROM Task",
    "SELECT Id FROM Task WITH SECURITY_ENFORCED",
    "SELECT Id FROM Task FOR UPDATE",
    "SELECT FIELDS(ALL) FROM Task LIMIT 1",
    "SELECT Id FROM Task WHERE TaskSubtype INCLUDES ('Call')",
    "SELECT Id FROM Task WHERE Subject NOTIN ('x')",
    "SELECT Id FROM Task WHERE Subject LIKEX 'x'",
])
def test_rest_soql__unsupported_construct_is_malformed_query(admin: Login, soql: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.query(soql)

    error = raised.value.content[0]
    assert raised.value.status == 400
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in error["message"]


def test_rest_soql__small_result_is_one_page(admin: Login,
                                             every_task: list[dict[str, Any]]) -> None:
    # Paging past 2,000 records is tested with the large scenario.
    first = admin.sf.query("SELECT Id FROM Task", include_deleted=True)

    assert first["done"] is True
    assert "nextRecordsUrl" not in first
    assert first["totalSize"] == len(every_task)


def test_rest_soql__operator_is_a_whole_word(admin: Login) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        admin.sf.query("SELECT Id FROM Task WHERE TaskSubtype INCLUDES ('Call')")

    assert raised.value.content[0]["message"].endswith("unexpected token: 'INCLUDES'")
