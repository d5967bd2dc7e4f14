"""Specification of duplicate grouping by Message-ID key."""

from __future__ import annotations

from backstory_desktop.core.duplicates import GroupKind, group_duplicates
from backstory_desktop.core.records import TaskRecord


def task(record_id: str, key: str | None, *, deleted: bool = False, archived: bool = False) -> TaskRecord:
    return TaskRecord(id=record_id, key=key, is_deleted=deleted, is_archived=archived)


def test_duplicates__identical_keys_form_exact_group() -> None:
    groups = group_duplicates(
        [task("00T1", "<x@y.example>"), task("00T2", "<x@y.example>"), task("00T3", "<z@y.example>")],
        case_sensitive=True,
    )
    assert len(groups) == 1
    assert groups[0].kind is GroupKind.EXACT
    assert groups[0].key == "<x@y.example>"
    assert [record.id for record in groups[0].records] == ["00T1", "00T2"]
    assert groups[0].reason == "2 Tasks hold the same key"


def test_duplicates__unique_keys_and_empty_keys_form_no_group() -> None:
    groups = group_duplicates(
        [task("00T1", "<a@y.example>"), task("00T2", None), task("00T3", None), task("00T4", "")],
        case_sensitive=False,
    )
    assert groups == []


def test_duplicates__recycle_bin_is_named_in_reason() -> None:
    groups = group_duplicates(
        [task("00T1", "<x@y.example>"), task("00T2", "<x@y.example>", deleted=True)],
        case_sensitive=True,
    )
    assert groups[0].reason == "2 Tasks hold the same key; one of them is in the recycle bin"


def test_duplicates__archived_and_deleted_are_counted() -> None:
    groups = group_duplicates(
        [
            task("00T1", "<x@y.example>", deleted=True),
            task("00T2", "<x@y.example>", deleted=True),
            task("00T3", "<x@y.example>", archived=True),
        ],
        case_sensitive=True,
    )
    assert groups[0].reason == (
        "3 Tasks hold the same key; 2 of them are in the recycle bin and one of them is archived"
    )


def test_duplicates__bracket_spellings_form_normalised_group() -> None:
    groups = group_duplicates(
        [task("00T1", "<x@y.example>"), task("00T2", "x@y.example"), task("00T3", "x@y.example")],
        case_sensitive=True,
    )
    assert len(groups) == 1
    assert groups[0].kind is GroupKind.NORMALISED
    assert groups[0].key == "x@y.example"
    assert groups[0].reason == (
        "3 Tasks hold keys that differ only in angle brackets; 2 of them hold the identical key"
    )


def test_duplicates__exact_group_joins_its_normalised_family() -> None:
    records = [task("00T1", "<x@y.example>"), task("00T2", "<x@y.example>"), task("00T3", " x@y.example")]
    groups = group_duplicates(records, case_sensitive=True)
    assert len(groups) == 1
    assert groups[0].kind is GroupKind.NORMALISED
    assert {record.id for record in groups[0].records} == {"00T1", "00T2", "00T3"}


def test_duplicates__case_only_variants_on_case_sensitive_field() -> None:
    groups = group_duplicates(
        [task("00T1", "<ABC123@EXAMPLE.COM>"), task("00T2", "<abc123@example.com>")],
        case_sensitive=True,
    )
    assert len(groups) == 1
    assert groups[0].kind is GroupKind.NORMALISED
    assert groups[0].reason == (
        "2 Tasks hold keys that differ only in case (the field is case-sensitive, "
        "so Salesforce treats them as different keys)"
    )


def test_duplicates__case_only_variants_on_case_insensitive_field() -> None:
    groups = group_duplicates(
        [task("00T1", "<ABC123@EXAMPLE.COM>"), task("00T2", "<abc123@example.com>")],
        case_sensitive=False,
    )
    assert groups[0].kind is GroupKind.NORMALISED
    assert groups[0].key == "abc123@example.com"
    assert groups[0].reason == "2 Tasks hold keys that differ only in case"


def test_duplicates__several_differences_are_all_named() -> None:
    groups = group_duplicates(
        [task("00T1", "<ABC@example.com>"), task("00T2", " abc@example.com ")],
        case_sensitive=False,
    )
    assert groups[0].reason == (
        "2 Tasks hold keys that differ only in angle brackets, whitespace and case"
    )


def test_duplicates__record_appears_in_one_group_only() -> None:
    records = [
        task("00T1", "<a@x.example>"),
        task("00T2", "<a@x.example>"),
        task("00T3", "a@x.example"),
        task("00T4", "<b@x.example>"),
        task("00T5", "<B@x.example>"),
    ]
    groups = group_duplicates(records, case_sensitive=True)
    seen = [record.id for group in groups for record in group.records]
    assert sorted(seen) == ["00T1", "00T2", "00T3", "00T4", "00T5"]
    assert len(seen) == len(set(seen))


def test_duplicates__order_is_by_key_whatever_the_input_order() -> None:
    records = [
        task("00T9", "<zeta@x.example>"),
        task("00T1", "<alpha@x.example>"),
        task("00T8", "<zeta@x.example>"),
        task("00T2", "<alpha@x.example>"),
    ]
    forward = group_duplicates(records, case_sensitive=True)
    backward = group_duplicates(list(reversed(records)), case_sensitive=True)
    assert [group.key for group in forward] == ["<alpha@x.example>", "<zeta@x.example>"]
    assert forward == backward
    assert [record.id for record in forward[1].records] == ["00T8", "00T9"]
