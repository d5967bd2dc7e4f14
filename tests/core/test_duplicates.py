"""Specification of duplicate grouping: by Message-ID key, by likeness, and clones."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backstory_desktop.core.duplicates import (
    DuplicateGroup,
    GroupKind,
    Thresholds,
    _key_family,
    group_duplicates,
)
from backstory_desktop.core.message_id import normalise_key
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
    assert not groups[0].flagged
    assert groups[0].reason == (
        "2 Tasks hold keys that differ only in case; the field is case-sensitive, so Salesforce "
        "treats them as different keys, and they are shown as possible duplicates but not flagged"
    )


def test_duplicates__case_sensitive_identical_pair_flagged() -> None:
    groups = group_duplicates(
        [task("00T1", "<ABC@x.example>"), task("00T2", "<ABC@x.example>"), task("00T3", "<abc@x.example>")],
        case_sensitive=True,
    )
    assert groups[0].flagged
    assert groups[0].reason == (
        "3 Tasks hold keys that differ only in case (the field is case-sensitive, so Salesforce treats "
        "them as different keys); 2 of them hold the identical key"
    )


def test_duplicates__case_sensitive_bracket_variants_unflagged() -> None:
    (group,) = group_duplicates([task("00T1", "<ABC@x.example>"), task("00T2", "abc@x.example")],
                                case_sensitive=True)

    assert not group.flagged


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


def test_duplicates__identical_junk_keys_form_exact_group() -> None:
    records = [task("00T1", "<>"), task("00T2", "<>"), task("00T3", "< >"), task("00T4", "<a@x.example>")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert (group.kind, group.key, group.flagged) == (GroupKind.EXACT, "<>", True)
    assert [record.id for record in group.records] == ["00T1", "00T2"]


def test_duplicates__junk_key_variant_shown_unmarked() -> None:
    (group,) = group_duplicates([task("00T1", "<>"), task("00T2", " <> ")], case_sensitive=False)

    assert (group.kind, group.key) == (GroupKind.NORMALISED, "<>")


UNICODE_VARIANTS = [("<STRASSE@x.example>", "<straße@x.example>"), ("<K@x.example>", "<\u212a@x.example>")]


@pytest.mark.parametrize("keys", UNICODE_VARIANTS)
def test_duplicates__unicode_case_variants_not_flagged(keys: tuple[str, str]) -> None:
    (group,) = group_duplicates([task("00T1", keys[0]), task("00T2", keys[1])], case_sensitive=False)

    assert group.kind is GroupKind.NORMALISED
    assert not group.flagged
    assert group.reason == (
        "2 Tasks hold keys that differ in case or Unicode folding, which Salesforce may count as "
        "different keys, so they are shown as possible duplicates but not flagged")


@pytest.mark.parametrize("keys", UNICODE_VARIANTS)
def test_duplicates__unicode_folding_named_case_sensitive(keys: tuple[str, str]) -> None:
    (group,) = group_duplicates([task("00T1", keys[0]), task("00T2", keys[1])], case_sensitive=True)

    assert not group.flagged
    assert group.reason.startswith(
        "2 Tasks hold keys that differ only in case or Unicode folding; the field is case-sensitive")


def test_duplicates__ascii_case_copy_still_flagged() -> None:
    records = [task("00T1", "<STRASSE@x.example>"), task("00T2", "<strasse@x.example>"),
               task("00T3", "<straße@x.example>")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.flagged
    assert group.reason == "3 Tasks hold keys that differ only in case or Unicode folding"


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


# -- probable duplicates and clones ------------------------------------------------------

OWNER = "005000000000001AAA"
OUTREACH_USER = "005000000000002AAA"
SALESLOFT_USER = "005000000000003AAA"
CONTACT = "003000000000001AAA"
PRICING_BODY = "Hi Ann,\n\nthe pricing for next year is attached.\n\nBest, Joe"


def logged(
    record_id: str,
    key: str | None = None,
    *,
    at: str = "10:00:01",
    subject: str = "Re: pricing",
    body: str = PRICING_BODY,
    who: str | None = CONTACT,
    what: str | None = None,
    owner: str = OWNER,
    creator: str = OUTREACH_USER,
    writer: str = "",
    subtype: str | None = "Email",
    deleted: bool = False,
) -> TaskRecord:
    """Return a Task as a capture tool logs an e-mail, created at ``at`` on 3 November 2026 (UTC)."""
    return TaskRecord(
        id=record_id,
        key=key,
        subject=subject,
        description=body,
        who_id=who,
        what_id=what,
        owner_id=owner,
        created_by_id=creator,
        created_date=f"2026-11-03T{at}.000+0000",
        subtype=subtype,
        writer=writer,
        is_deleted=deleted,
    )


def ids(group: DuplicateGroup) -> list[str]:
    return [record.id for record in group.records]


def test_duplicates__capture_tools_and_key_form_probable_group() -> None:
    records = [
        logged("00T1", at="10:00:01", creator=OUTREACH_USER, writer="Outreach (outreach@x.example)"),
        logged("00T2", at="10:00:03", creator=SALESLOFT_USER, writer="SalesLoft (salesloft@x.example)"),
        logged("00T3", "<pricing-1@x.example>", at="10:00:00", creator=OWNER, writer="Backstory"),
    ]

    (group,) = group_duplicates(records, case_sensitive=False, tool_user_ids={OUTREACH_USER})

    assert group.kind is GroupKind.PROBABLE
    assert group.flagged
    assert group.key == "<pricing-1@x.example>"
    assert ids(group) == ["00T3", "00T1", "00T2"]
    assert group.subject == "Re: pricing"
    assert group.group_id == "00T1"
    assert group.survivor_id == "00T3"
    assert group.reason == (
        "3 Tasks look like one e-mail logged more than once (2 have no key): the same owner and "
        "contact, created within 3 seconds, identical subjects, the same body; written by "
        "Backstory, Outreach (outreach@x.example) and SalesLoft (salesloft@x.example)"
    )


def test_duplicates__one_email_per_opportunity_is_clones() -> None:
    key = "<quote@x.example>"
    records = [logged(f"00T{n}", key, what=f"006000000000{n}AAA") for n in range(1, 4)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.CLONES
    assert not group.flagged
    assert group.key == key
    assert group.reason.startswith(
        "3 Tasks are one e-mail logged once for each of 3 different related records (WhatId)"
    )


def test_duplicates__keyless_email_per_contact_is_clones() -> None:
    records = [logged(f"00T{n}", who=f"003000000000{n}AAA", at=f"10:00:0{n}") for n in range(1, 4)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.CLONES
    assert group.key == ""
    assert ids(group) == ["00T1", "00T2", "00T3"]
    assert "3 different contacts or leads (WhoId)" in group.reason


def test_duplicates__mixed_what_ids_are_duplicates() -> None:
    key = "<quote@x.example>"
    records = [logged("00T1", key, what="0060000000001AAA"), logged("00T2", key, what=None)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.EXACT
    assert group.flagged


def test_duplicates__same_opportunity_twice_is_no_clone_set() -> None:
    key = "<quote@x.example>"
    records = [logged(f"00T{n}", key, what="0060000000001AAA") for n in range(1, 3)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.EXACT


def test_duplicates__different_contacts_without_body_match_are_apart() -> None:
    records = [
        logged("00T1", who="0030000000001AAA", body="first body"),
        logged("00T2", who="0030000000002AAA", body="second body"),
    ]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__different_keys_never_pair() -> None:
    records = [logged("00T1", "<one@x.example>"), logged("00T2", "<two@x.example>")]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__keyless_joins_only_the_closest_family() -> None:
    records = [
        logged("00T1", "<one@x.example>", at="10:00:00"),
        logged("00T2", "<two@x.example>", at="10:00:30"),
        logged("00T3", None, at="10:00:25"),
    ]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.PROBABLE
    assert group.key == "<two@x.example>"
    assert ids(group) == ["00T3", "00T2"]


def test_duplicates__keyless_chain_stays_in_one_family() -> None:
    records = [
        logged("00T1", "<one@x.example>", at="10:00:00"),
        logged("00T2", None, at="10:05:00"),
        logged("00T3", None, at="10:10:00"),
        logged("00T4", "<two@x.example>", at="10:15:00"),
    ]

    groups = group_duplicates(records, case_sensitive=False)

    keys = [group.key for group in groups]
    assert len(keys) == len(set(keys))
    seen = [record.id for group in groups for record in group.records]
    assert len(seen) == len(set(seen))
    for group in groups:
        assert len({record.key for record in group.records if record.key}) <= 1


def test_duplicates__outside_time_window_is_apart() -> None:
    records = [logged("00T1", at="10:00:00"), logged("00T2", at="10:16:00")]

    assert group_duplicates(records, case_sensitive=False) == []
    (group,) = group_duplicates(records, case_sensitive=False, thresholds=Thresholds(window_minutes=20))
    assert group.kind is GroupKind.PROBABLE
    assert "created within 16 minutes" in group.reason


def test_duplicates__subject_similarity_is_adjustable() -> None:
    records = [logged("00T1", subject="Re: pricing"), logged("00T2", subject="Re: pricing for 2027")]

    assert group_duplicates(records, case_sensitive=False) == []
    (group,) = group_duplicates(records, case_sensitive=False, thresholds=Thresholds(subject_similarity=60))
    assert "subjects 71% alike (the rule asks at least 60%)" in group.reason


def test_duplicates__different_bodies_are_apart_unless_ignored() -> None:
    records = [logged("00T1", "<k@x.example>", body="Pricing attached."),
               logged("00T2", body="Pricing withdrawn.")]

    assert group_duplicates(records, case_sensitive=False) == []
    relaxed = Thresholds(bodies_must_match=False)
    assert len(group_duplicates(records, case_sensitive=False, thresholds=relaxed)) == 1


def test_duplicates__empty_body_matches_any_body() -> None:
    records = [logged("00T1", "<k@x.example>", body=""), logged("00T2")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.PROBABLE
    assert group.reason.endswith("identical subjects, the same body where there is one")


def test_duplicates__keyless_tasks_need_the_same_body() -> None:
    one_empty = [logged("00T1", body=""), logged("00T2")]
    bodies_ignored = [logged("00T1", body="Pricing attached."), logged("00T2", body="Pricing withdrawn.")]

    assert group_duplicates(one_empty, case_sensitive=False) == []
    assert group_duplicates(bodies_ignored, case_sensitive=False,
                            thresholds=Thresholds(bodies_must_match=False)) == []


def test_duplicates__calls_with_one_subject_are_apart() -> None:
    records = [logged(f"00T{n}", at=at, subject="Call", body="", subtype="Call")
               for n, at in ((1, "10:00:00"), (2, "10:04:00"), (3, "10:09:00"))]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__probable_group_within_window() -> None:
    records = [logged(f"00T{n}", at=f"10:{minute:02d}:00", subject="Weekly check-in")
               for n, minute in enumerate(range(0, 60, 10))]

    groups = group_duplicates(records, case_sensitive=False)

    assert [ids(group) for group in groups] == [["00T0", "00T1"], ["00T2", "00T3"], ["00T4", "00T5"]]
    assert all("created within 10 minutes" in group.reason for group in groups)


def test_duplicates__keyless_bin_tasks_join_no_group() -> None:
    resolved = [logged("00T1", "<k@x.example>", at="10:00:00"), logged("00T2", at="10:00:01", deleted=True),
                logged("00T3", at="10:00:03", deleted=True)]
    beside_live = [logged("00T1", at="10:00:01"), logged("00T2", at="10:00:03", deleted=True)]

    assert group_duplicates(resolved, case_sensitive=False) == []
    assert group_duplicates(beside_live, case_sensitive=False) == []


def test_duplicates__keyed_bin_task_still_pairs() -> None:
    records = [logged("00T1", "<k@x.example>", at="10:00:00", deleted=True), logged("00T2", at="10:00:01")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.PROBABLE
    assert group.flagged


def test_duplicates__keyless_bin_member_not_flagged() -> None:
    live = logged("00T1", "<k@x.example>")
    keyless_in_bin = logged("00T2", deleted=True)
    keyed_in_bin = logged("00T3", "<k@x.example>", deleted=True)

    def group(*records: TaskRecord) -> DuplicateGroup:
        return DuplicateGroup(GroupKind.PROBABLE, "<k@x.example>", records, "reason")

    assert not group(live, keyless_in_bin).flagged
    assert group(live, keyed_in_bin).flagged
    assert group(live, logged("00T4")).flagged


def test_duplicates__subject_likeness_and_rule_named() -> None:
    records = [logged("00T1", subject="Re: pricing for 2026"), logged("00T2", subject="Re: pricing for 2027")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert "subjects 95% alike (the rule asks at least 90%)" in group.reason


def test_duplicates__other_subject_per_opportunity_no_clone() -> None:
    records = [logged("00T1", "<k@x.example>", what="006000000000001AAA", subject="Re: pricing for 2026"),
               logged("00T2", what="006000000000002AAA", subject="Re: pricing for 2027")]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__other_subject_per_contact_no_clone() -> None:
    records = [logged("00T1", who="003000000000001AAA", subject="Re: pricing for 2026"),
               logged("00T2", who="003000000000002AAA", subject="Re: pricing for 2027"),
               logged("00T3", who="003000000000003AAA", subject="Re: pricing for 2026")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.CLONES
    assert ids(group) == ["00T1", "00T3"]


def test_duplicates__keyless_copy_per_opportunity_is_clone() -> None:
    records = [logged("00T1", "<k@x.example>", what="006000000000001AAA"),
               logged("00T2", what="006000000000002AAA")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.CLONES
    assert group.key == "<k@x.example>"


# -- split by related record -------------------------------------------------------------

OPPORTUNITY_A = "006000000000001AAA"
OPPORTUNITY_B = "006000000000002AAA"
OPPORTUNITY_C = "006000000000003AAA"


def test_duplicates__keyed_duplicate_and_clone_are_apart() -> None:
    key = "<quote@x.example>"
    records = [logged("00T1", key, what=OPPORTUNITY_A, at="10:00:01"),
               logged("00T2", key, what=OPPORTUNITY_A, at="10:00:02"),
               logged("00T3", key, what=OPPORTUNITY_B, at="10:00:03")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.EXACT
    assert ids(group) == ["00T1", "00T2"]
    assert group.reason == ("2 Tasks hold the same key; one more Task logs the same e-mail on another "
                            "related record and is kept apart")


def test_duplicates__keyless_duplicate_and_clone_are_apart() -> None:
    records = [logged("00T1", at="10:00:01"), logged("00T2", at="10:00:02"),
               logged("00T3", who="003000000000002AAA", at="10:00:03")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.PROBABLE
    assert ids(group) == ["00T1", "00T2"]


def test_duplicates__clones_beside_duplicate_grouped_apart() -> None:
    key = "<quote@x.example>"
    records = [logged("00T1", key, what=OPPORTUNITY_A), logged("00T2", key, what=OPPORTUNITY_A),
               logged("00T3", key, what=OPPORTUNITY_B), logged("00T4", key, what=OPPORTUNITY_C)]

    exact, clones = group_duplicates(records, case_sensitive=False)

    assert (exact.kind, ids(exact)) == (GroupKind.EXACT, ["00T1", "00T2"])
    assert (clones.kind, ids(clones)) == (GroupKind.CLONES, ["00T3", "00T4"])
    assert clones.reason.endswith("so the Message-ID field cannot be Unique until all but one lose it")
    assert "2 more Tasks log the same e-mail on other related records" in exact.reason


def test_duplicates__task_without_what_id_is_clone() -> None:
    key = "<quote@x.example>"
    records = [logged("00T1", key, what=OPPORTUNITY_A), logged("00T2", key, what=OPPORTUNITY_B),
               logged("00T3", key)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.kind is GroupKind.CLONES
    assert "3 different related records (WhatId or WhoId)" in group.reason


def test_duplicates__archived_member_loses_survivor_rule() -> None:
    records = [replace(logged("00T1", "<k@x.example>", at="09:00:00"), is_archived=True),
               logged("00T2", "<k@x.example>", at="10:00:00")]

    (group,) = group_duplicates(records, case_sensitive=False, tool_user_ids={OUTREACH_USER})

    assert group.survivor_id == "00T2"


def test_duplicates__body_compared_without_case_and_spacing() -> None:
    records = [logged("00T1", body="Pricing   attached.\n"), logged("00T2", body="pricing attached.")]

    assert len(group_duplicates(records, case_sensitive=False)) == 1


def test_duplicates__other_owner_or_contact_is_apart() -> None:
    other_owner = [logged("00T1"), logged("00T2", owner="0050000000009AAA")]
    other_contact_with_what = [logged("00T1", what="0060000000001AAA"),
                               logged("00T2", who="0030000000009AAA")]

    assert group_duplicates(other_owner, case_sensitive=False) == []
    assert group_duplicates(other_contact_with_what, case_sensitive=False) == []


def test_duplicates__call_and_email_are_apart() -> None:
    records = [logged("00T1", subtype="Call"), logged("00T2", subtype="Email")]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__blank_tasks_are_apart() -> None:
    records = [logged("00T1", subject="", body=""), logged("00T2", subject="", body="")]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__unreadable_created_date_is_apart() -> None:
    records = [logged("00T1"), replace(logged("00T2"), created_date="")]

    assert group_duplicates(records, case_sensitive=False) == []


def test_duplicates__probable_groups_ignore_input_order() -> None:
    records = [
        logged("00T5", at="10:00:01"),
        logged("00T2", at="10:00:09"),
        logged("00T9", "<k@x.example>", at="10:00:05"),
        logged("00T4", at="11:00:00", subject="Other"),
        logged("00T7", at="11:00:04", subject="Other"),
    ]

    forward = group_duplicates(records, case_sensitive=False)
    backward = group_duplicates(list(reversed(records)), case_sensitive=False)

    assert forward == backward
    assert [group.key for group in forward] == ["<k@x.example>", ""]
    assert [ids(group) for group in forward] == [["00T5", "00T9", "00T2"], ["00T4", "00T7"]]


def test_duplicates__recycle_bin_member_loses_survivor_rule() -> None:
    records = [
        logged("00T1", "<k@x.example>", at="09:00:00", deleted=True),
        logged("00T2", "<k@x.example>", at="10:00:00"),
    ]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.survivor_id == "00T2"
    assert group.survivor_reason == "It is the only Task of the group that is not in the recycle bin."
    assert group.reason == "2 Tasks hold the same key; one of them is in the recycle bin"


def test_duplicates__group_id_is_smallest_member_id() -> None:
    records = [logged("00T9", "<k@x.example>"), logged("00T3", "<k@x.example>")]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.group_id == "00T3"


def test_duplicates__writers_named_once() -> None:
    records = [logged(f"00T{n}", "<k@x.example>", writer="Outreach (o@x.example)") for n in range(1, 3)]

    (group,) = group_duplicates(records, case_sensitive=False)

    assert group.writers == ("Outreach (o@x.example)",)
    assert group.reason == "2 Tasks hold the same key; all written by Outreach (o@x.example)"


def test_duplicates__case_variants_grouped_under_either_case_rule() -> None:
    records = [logged("00T1", "<ABC123@EXAMPLE.COM>"), logged("00T2", "<abc123@example.com>")]

    for case_sensitive in (True, False):
        (group,) = group_duplicates(records, case_sensitive=case_sensitive)
        assert group.kind is GroupKind.NORMALISED
        assert group.key == "abc123@example.com"
        assert group.flagged is not case_sensitive


# -- thresholds ---------------------------------------------------------------------


def test_thresholds__lines_name_each_value() -> None:
    lines = Thresholds(window_minutes=5, subject_similarity=80, bodies_must_match=False).lines()

    assert "The two Tasks were created within 5 minutes of each other." in lines
    assert "Their subjects are at least 80% alike once case and punctuation are ignored." in lines
    assert "Their bodies are not compared when one of them has a key." in lines
    assert "Two Tasks without a key are paired only when they have the same body." in lines


def test_thresholds__out_of_range_values_rejected() -> None:
    with pytest.raises(ValueError, match="subject similarity of 101%"):
        Thresholds(subject_similarity=101)
    with pytest.raises(ValueError, match="time window of -1 minutes"):
        Thresholds(window_minutes=-1)


@pytest.mark.parametrize(
    "key",
    ["<a@b.example>", "a@b.example", "<a@b.example", "a@b.example>", "<>", "<", "<<a>>", "A@B.EXAMPLE",
     " <a@b.example> ", "<a\t@b.example>", "<ä@b.example>", "<a b@c.example>", "\x1f<a@b.example>",
     "<a\u00a0@b.example>"],
)
def test_duplicates__family_matches_normalised_key(key: str) -> None:
    assert _key_family(key) == normalise_key(key, case_sensitive=False)
