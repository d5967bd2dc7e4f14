"""Filters, sort keys and counts of duplicate groups for the duplicate viewer."""

from __future__ import annotations

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.group_view import (
    KEY,
    NEWEST,
    OTHER_WRITERS,
    TASKS,
    WRITERS,
    GroupFilter,
    counts_by_kind,
    counts_by_month,
    counts_by_tool,
    group_facts,
    matches,
    shown_key,
    sort_keys,
    writer_source,
)
from backstory_desktop.core.records import TaskRecord

TOOLS = ("Outreach", "SalesLoft")


def task(task_id: str, *, key: str | None = None, subject: str = "Re: pricing", writer: str = "",
         owner: str = "Noel Hayes", created: str = "2026-11-02T10:00:01.000+0000") -> TaskRecord:
    return TaskRecord(id=task_id, key=key, subject=subject, owner_name=owner, writer=writer,
                      created_date=created)


def group(kind: GroupKind, *records: TaskRecord, key: str = "") -> DuplicateGroup:
    return DuplicateGroup(kind, key, records, "reason", group_id=min(record.id for record in records))


EXACT = group(GroupKind.EXACT,
              task("00T01", key="<a@x>", writer="Outreach (jane@x.example)"),
              task("00T02", key="<a@x>", writer="Backstory", created="2026-12-01T09:00:00.000+0000"),
              key="<a@x>")
PROBABLE = group(GroupKind.PROBABLE,
                 task("00T03", subject="Re: shipping", writer="SalesLoft (bob@x.example)", owner="Kai Lane",
                      created="2026-10-30T10:00:01.000+0000"),
                 task("00T04", subject="Re: shipping", writer="Jane Doe (Contractor)", owner="Kai Lane",
                      created="2026-10-30T10:00:03.000+0000"))
CLONES = group(GroupKind.CLONES,
               task("00T05", key="<c@x>", writer="Outreach, enriched by Backstory"),
               task("00T06", key="<c@x>", writer="Outreach, enriched by Backstory"),
               key="<c@x>")
GROUPS = (EXACT, PROBABLE, CLONES)


def test_writer_source__tool_user_with_username() -> None:
    assert writer_source("Outreach (jane@x.example)", TOOLS) == "Outreach"


def test_writer_source__enriched_by_backstory_is_the_tool() -> None:
    assert writer_source("SalesLoft, enriched by Backstory", TOOLS) == "SalesLoft"


def test_writer_source__backstory_and_other_users() -> None:
    assert writer_source("Backstory", TOOLS) == "Backstory"
    assert writer_source("Outreach Admin", TOOLS) == OTHER_WRITERS
    assert writer_source("Jane Doe (Contractor)", TOOLS) == OTHER_WRITERS
    assert writer_source("", TOOLS) == OTHER_WRITERS


def test_shown_key__keyless_group_shows_subject() -> None:
    assert shown_key(EXACT) == "<a@x>"
    assert shown_key(PROBABLE) == "(no key) Re: shipping"


def test_facts__writers_owners_and_dates() -> None:
    facts = group_facts(PROBABLE, TOOLS)

    assert facts.sources == {"SalesLoft", OTHER_WRITERS}
    assert facts.writers == "SalesLoft, Jane Doe (Contractor)"
    assert facts.owner == "Kai Lane"
    assert facts.oldest == "2026-10-30T10:00:01.000+0000"
    assert facts.newest == "2026-10-30T10:00:03.000+0000"


def test_matches__empty_filter_lets_every_group_through() -> None:
    assert all(matches(each, GroupFilter(), tools=TOOLS) for each in GROUPS)


def test_matches__kinds_and_clones() -> None:
    assert [matches(each, GroupFilter(kinds=frozenset({GroupKind.PROBABLE}))) for each in GROUPS] == [
        False, True, False]
    assert [matches(each, GroupFilter(include_clones=False)) for each in GROUPS] == [True, True, False]


def test_matches__tool_names_a_source_of_any_member() -> None:
    outreach = GroupFilter(tool="Outreach")
    assert [matches(each, outreach, tools=TOOLS) for each in GROUPS] == [True, False, True]
    backstory = GroupFilter(tool="Backstory")
    assert [matches(each, backstory, tools=TOOLS) for each in GROUPS] == [True, False, False]
    others = GroupFilter(tool=OTHER_WRITERS)
    assert [matches(each, others, tools=TOOLS) for each in GROUPS] == [False, True, False]


def test_matches__owner_is_exact() -> None:
    assert [matches(each, GroupFilter(owner="Kai Lane")) for each in GROUPS] == [False, True, False]
    assert not matches(PROBABLE, GroupFilter(owner="Kai"))


def test_matches__dates_overlap_the_created_span() -> None:
    # EXACT spans 2026-11-02 to 2026-12-01.
    assert matches(EXACT, GroupFilter(date_from="2026-11-15", date_to="2026-11-20"))
    assert matches(EXACT, GroupFilter(date_from="2026-12-01"))
    assert matches(EXACT, GroupFilter(date_to="2026-11-02"))
    assert not matches(EXACT, GroupFilter(date_from="2026-12-02"))
    assert not matches(EXACT, GroupFilter(date_to="2026-11-01"))


def test_matches__text_searches_key_and_subject_case_folded() -> None:
    assert matches(EXACT, GroupFilter(text="<A@X"))
    assert matches(PROBABLE, GroupFilter(text="SHIPPING"))
    assert not matches(PROBABLE, GroupFilter(text="pricing"))


def test_sort_keys__per_column() -> None:
    keys = sort_keys(PROBABLE, group_facts(PROBABLE, TOOLS))

    assert keys[KEY] == "(no key) re: shipping"
    assert keys[TASKS] == 2
    assert keys[WRITERS] == "salesloft, jane doe (contractor)"
    assert keys[NEWEST] == "2026-10-30T10:00:03.000+0000"
    ordered = sorted(GROUPS, key=lambda each: sort_keys(each)[0])
    assert [each.kind for each in ordered] == [GroupKind.EXACT, GroupKind.PROBABLE, GroupKind.CLONES]


def test_counts_by_tool__group_once_per_source() -> None:
    assert counts_by_tool(GROUPS, TOOLS) == {"Outreach": 2, "Backstory": 1, "SalesLoft": 1, OTHER_WRITERS: 1}


def test_counts_by_kind__every_kind_listed() -> None:
    assert counts_by_kind(GROUPS) == {"exact": 1, "normalised": 0, "probable": 1, "clones": 1}


def test_counts_by_month__newest_task_decides() -> None:
    undated = group(GroupKind.EXACT, task("00T07", created=""), task("00T08", created=""))
    assert counts_by_month([*GROUPS, undated]) == {"2026-10": 1, "2026-11": 1, "2026-12": 1}


def test_counts_by_tool__ties_ordered_by_name() -> None:
    assert list(counts_by_tool(GROUPS, TOOLS)) == ["Outreach", "Backstory", OTHER_WRITERS, "SalesLoft"]
