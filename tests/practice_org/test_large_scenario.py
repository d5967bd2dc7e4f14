"""The large scenario: generated Tasks with duplicate keys, read through query, queryAll and Bulk 2.0."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.cli import build_parser
from backstory_desktop.practice_org import PracticeOrg
from backstory_desktop.practice_org.seed_large import (
    ARCHIVED_EVERY,
    LargeScenario,
    generated_keys,
    seed_large_org,
)
from backstory_desktop.practice_org.store import Store
from tests.practice_org.practice_login import Login, login

FIELD = "Message_ID__c"
TASKS = 6000
SHARE = 0.1
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def large_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeOrg]:
    folder: Path = tmp_path_factory.mktemp("large")
    with PracticeOrg(folder / "practice.db", scenario="large", tasks=TASKS,
                     duplicate_share=SHARE) as org:
        yield org


@pytest.fixture(scope="module")
def large_admin(large_org: PracticeOrg) -> Login:
    return login(large_org, large_org.admin_username)


def generated(large_admin: Login) -> list[dict[str, object]]:
    records = large_admin.sf.query_all(
        f"SELECT Id, {FIELD}, IsDeleted, IsArchived FROM Task WHERE {FIELD} LIKE '%large%'",
        include_deleted=True)["records"]
    return list(records)


def test_large__same_options_give_same_keys() -> None:
    options = LargeScenario(tasks=500, duplicate_share=0.2, random_seed=7)

    assert list(generated_keys(options)) == list(generated_keys(options))
    assert list(generated_keys(options)) != list(generated_keys(
        LargeScenario(tasks=500, duplicate_share=0.2, random_seed=8)))


def seeded_tasks(path: Path, options: LargeScenario) -> list[tuple[str, str, dict[str, object]]]:
    store = Store(path)
    seed_large_org(store, sample_mailbox_path(), options, now=NOW)
    rows = [(task.id, task.created_date, task.fields) for task in store.records_of("Task")]
    store.close()
    return rows


def test_large__same_options_give_same_records(tmp_path: Path) -> None:
    options = LargeScenario(tasks=300, duplicate_share=0.2)

    first = seeded_tasks(tmp_path / "a.db", options)
    second = seeded_tasks(tmp_path / "b.db", options)

    assert len(first) == 300
    assert first == second


def test_large__duplicate_share_and_kinds() -> None:
    keys = list(generated_keys(LargeScenario(tasks=3000, duplicate_share=0.1)))

    kinds = Counter(kind for _key, kind in keys if kind is not None)
    assert sum(kinds.values()) == 300
    assert set(kinds) == {"exact", "brackets", "case"}
    assert len(keys) == 3000


def test_large__org_holds_requested_tasks(large_admin: Login) -> None:
    rows = generated(large_admin)

    assert len(rows) == TASKS
    assert any(row["IsArchived"] for row in rows)
    assert any(row["IsDeleted"] for row in rows)
    assert sum(1 for row in rows if row["IsArchived"]) == TASKS // ARCHIVED_EVERY


def test_large__key_variants_are_present(large_admin: Login) -> None:
    keys = [str(row[FIELD]) for row in generated(large_admin)]
    exact = Counter(keys)
    bare = Counter(key.strip("<>") for key in keys)
    folded = Counter(key.strip("<>").lower() for key in keys)

    assert any(count > 1 for count in exact.values())
    assert sum(bare.values()) - len(bare) > sum(exact.values()) - len(exact)
    assert sum(folded.values()) - len(folded) > sum(bare.values()) - len(bare)


def test_large__holds_exactly_the_tasks_asked_for(large_admin: Login) -> None:
    everything = large_admin.sf.query("SELECT COUNT() FROM Task", include_deleted=True)

    assert everything["totalSize"] == TASKS


@pytest.mark.parametrize("options", [{"tasks": True}, {"tasks": 2.5}, {"duplicate_share": "0.1"}])
def test_large__size_of_the_wrong_type_is_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"the large scenario needs|the duplicate share must"):
        LargeScenario(**options)  # type: ignore[arg-type]


def test_large__query_hides_archived_and_deleted(large_admin: Login) -> None:
    live = large_admin.sf.query(f"SELECT COUNT() FROM Task WHERE {FIELD} LIKE '%large%'")
    everything = large_admin.sf.query(f"SELECT COUNT() FROM Task WHERE {FIELD} LIKE '%large%'",
                                      include_deleted=True)

    hidden = sum(1 for row in generated(large_admin) if row["IsDeleted"] or row["IsArchived"])
    assert everything["totalSize"] == TASKS
    assert live["totalSize"] == TASKS - hidden


def test_large__query_all_pages_of_2000(large_admin: Login) -> None:
    first = large_admin.sf.query(f"SELECT Id, {FIELD} FROM Task", include_deleted=True)
    pages = [first]
    while not pages[-1]["done"]:
        pages.append(large_admin.sf.query_more(pages[-1]["nextRecordsUrl"], identifier_is_url=True))

    ids = [record["Id"] for page in pages for record in page["records"]]
    assert len(first["records"]) == 2000
    assert len(pages) == -(-first["totalSize"] // 2000)
    assert len(ids) == len(set(ids)) == first["totalSize"]


def test_large__group_by_having_finds_duplicates_ignoring_case(large_admin: Login) -> None:
    # The field is not Unique, so SOQL compares and groups it without regard to case.
    folded = Counter(str(row[FIELD]).lower() for row in generated(large_admin))

    result = large_admin.sf.query(
        f"SELECT {FIELD}, COUNT(Id) c FROM Task WHERE {FIELD} LIKE '%large%' "
        f"GROUP BY {FIELD} HAVING COUNT(Id) > 1", include_deleted=True)

    expected = {key: count for key, count in folded.items() if count > 1}
    assert expected
    assert {row[FIELD].lower(): row["c"] for row in result["records"]} == expected


def test_large__key_lookup_finds_every_copy_ignoring_case(large_admin: Login) -> None:
    folded = Counter(str(row[FIELD]).lower() for row in generated(large_admin))
    key, count = folded.most_common(1)[0]

    result = large_admin.sf.query(f"SELECT Id FROM Task WHERE {FIELD} = '{key}'",
                                  include_deleted=True)

    assert count > 1
    assert result["totalSize"] == count


def test_large__bulk_query_all_pages(large_admin: Login) -> None:
    pages = list(large_admin.sf.bulk2.Task.query_all(
        f"SELECT Id, {FIELD} FROM Task WHERE {FIELD} LIKE '%large%'", max_records=2500, wait=0))

    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(pages) == 3
    assert len(rows) == TASKS


def test_large__size_options_need_the_large_scenario(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="large scenario only"):
        PracticeOrg(tmp_path / "p.db", scenario="default", tasks=10)


def test_large__negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="0 or more Tasks"):
        LargeScenario(tasks=-1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        LargeScenario(duplicate_share=1.5)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--tasks", "0", "argument --tasks: 0 is below 1"),
    ("--tasks", "many", "argument --tasks: 'many' is not a whole number"),
    ("--duplicate-share", "1.5", "argument --duplicate-share: 1.5 is above the maximum of 1"),
])
def test_serve_options__bad_size_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["practice-org", "serve", "--scenario", "large", option, value])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err
