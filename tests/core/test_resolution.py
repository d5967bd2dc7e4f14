"""Resolution plans of duplicate Task groups: survivor, fills, keys cleared, deletes, restores first."""

from __future__ import annotations

import json

import pytest

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind
from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.resolution import (
    FILLABLE_FIELDS,
    KEY_FIELD_CHOICE,
    FieldFill,
    ResolutionChoice,
    ResolutionPlan,
    ResolveAction,
    default_choice,
    fillable,
    plan_resolution,
)

KEY = "Message_ID__c"


def _record(record_id: str, key: str | None, *, deleted: bool = False) -> TaskRecord:
    return TaskRecord(id=record_id, key=key, is_deleted=deleted)


def _group(*records: TaskRecord, survivor: str, kind: GroupKind = GroupKind.EXACT) -> DuplicateGroup:
    return DuplicateGroup(kind=kind, key="<a@x>", records=records, reason="test group",
                          group_id=min(record.id for record in records), survivor_id=survivor)


def _values(record_id: str, key: str | None, created: str, *, deleted: bool = False,
            **fields: object) -> dict[str, object]:
    return {"Id": record_id, KEY: key, "CreatedDate": created, "IsDeleted": deleted, **fields}


def _all_fields(group_id: str, survivor: str) -> ResolutionChoice:
    return ResolutionChoice(group_id, survivor, (*FILLABLE_FIELDS, KEY_FIELD_CHOICE))


def test_fillable__takes_oldest_value() -> None:
    survivor = {"Id": "s", "Description": "", "Subject": "kept"}
    newer = {"Id": "b", "CreatedDate": "2026-02-01T00:00:00.000+0000", "Description": "newer body"}
    older = {"Id": "a", "CreatedDate": "2026-01-01T00:00:00.000+0000", "Description": "older body"}

    fills = fillable(survivor, [newer, older], ["Description", "Subject"])

    assert fills == {"Description": FieldFill("Description", "older body", "a")}


def test_fillable__whitespace_counts_as_empty() -> None:
    fills = fillable({"Id": "s", "Subject": "  "}, [{"Id": "a", "Subject": "Re: pricing"}], ["Subject"])

    assert fills["Subject"].value == "Re: pricing"


def test_plan__live_duplicate_cleared_then_deleted() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000001AAA")
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", "<a@x>", "2026-01-01", WhoId=None),
        "00T000000000002AAA": _values("00T000000000002AAA", "<a@x>", "2026-01-02",
                                      WhoId="003000000000001AAA"),
    }

    plan = plan_resolution(group, _all_fields(group.group_id, "00T000000000001AAA"), current, KEY)

    assert plan.clear_key_ids == ("00T000000000002AAA",)
    assert plan.delete_ids == ("00T000000000002AAA",)
    assert plan.undelete_first_ids == ()
    assert plan.fills == (FieldFill("WhoId", "003000000000001AAA", "00T000000000002AAA"),)


def test_plan__recycled_member_restored_first() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "a@x", deleted=True),
                   survivor="00T000000000001AAA", kind=GroupKind.NORMALISED)
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", "<a@x>", "2026-01-01"),
        "00T000000000002AAA": _values("00T000000000002AAA", "a@x", "2026-01-02", deleted=True),
    }

    plan = plan_resolution(group, _all_fields(group.group_id, "00T000000000001AAA"), current, KEY)

    assert plan.undelete_first_ids == ("00T000000000002AAA",)
    assert plan.clear_key_ids == ("00T000000000002AAA",)
    assert plan.delete_ids == ("00T000000000002AAA",)
    assert "- delete 00T000000000002AAA again (it stays in the recycle bin for 15 days)" in plan.lines()


def test_plan__keyless_recycled_member_left_alone() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", None, deleted=True),
                   survivor="00T000000000001AAA", kind=GroupKind.PROBABLE)
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", "<a@x>", "2026-01-01"),
        "00T000000000002AAA": _values("00T000000000002AAA", None, "2026-01-02", deleted=True),
    }

    plan = plan_resolution(group, _all_fields(group.group_id, "00T000000000001AAA"), current, KEY)

    assert not plan.has_changes
    assert plan.touched_ids == ()


def test_plan__keyless_survivor_takes_key_after_clear() -> None:
    group = _group(_record("00T000000000001AAA", None), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000001AAA", kind=GroupKind.PROBABLE)
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", None, "2026-01-01"),
        "00T000000000002AAA": _values("00T000000000002AAA", "<a@x>", "2026-01-02"),
    }

    plan = plan_resolution(group, _all_fields(group.group_id, "00T000000000001AAA"), current, KEY)

    assert plan.fills == (FieldFill(KEY, "<a@x>", "00T000000000002AAA"),)
    assert plan.clear_key_ids == ("00T000000000002AAA",)


def test_plan__only_chosen_fields_filled() -> None:
    group = _group(_record("00T000000000001AAA", None), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000001AAA", kind=GroupKind.PROBABLE)
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", None, "2026-01-01", Subject=""),
        "00T000000000002AAA": _values("00T000000000002AAA", "<a@x>", "2026-01-02", Subject="Re: pricing"),
    }
    choice = ResolutionChoice(group.group_id, "00T000000000001AAA", ("Subject",))

    plan = plan_resolution(group, choice, current, KEY)

    assert [fill.field for fill in plan.fills] == ["Subject"]


def test_plan__recycled_survivor_stays_in_bin() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>", deleted=True),
                   _record("00T000000000002AAA", "<a@x>", deleted=True), survivor="00T000000000001AAA")
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", "<a@x>", "2026-01-01", deleted=True),
        "00T000000000002AAA": _values("00T000000000002AAA", "<a@x>", "2026-01-02", deleted=True),
    }

    plan = plan_resolution(group, _all_fields(group.group_id, "00T000000000001AAA"), current, KEY)

    assert plan.undelete_first_ids == ("00T000000000002AAA",)
    assert plan.clear_key_ids == ("00T000000000002AAA",)
    assert plan.delete_ids == ("00T000000000002AAA",)
    assert plan.fills == ()
    assert "00T000000000001AAA" not in plan.touched_ids


def test_plan__clones_keep_every_task() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "<a@x>"),
                   _record("00T000000000003AAA", "<a@x>", deleted=True),
                   survivor="00T000000000001AAA", kind=GroupKind.CLONES)
    current = {
        "00T000000000001AAA": _values("00T000000000001AAA", "<a@x>", "2026-01-01", Description=""),
        "00T000000000002AAA": _values("00T000000000002AAA", "<a@x>", "2026-01-02", Description="body"),
        "00T000000000003AAA": _values("00T000000000003AAA", "<a@x>", "2026-01-03", deleted=True),
    }

    plan = plan_resolution(group, default_choice(group), current, KEY)

    assert plan.action is ResolveAction.CLEAR_KEY_ON_OTHERS
    assert plan.clear_key_ids == ("00T000000000002AAA", "00T000000000003AAA")
    assert plan.delete_ids == ("00T000000000003AAA",)
    assert plan.fills == ()


def test_plan__survivor_outside_group_rejected() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000001AAA")

    with pytest.raises(ValueError, match="is not a Task of group"):
        plan_resolution(group, ResolutionChoice(group.group_id, "00T000000000009AAA"), {}, KEY)


def test_plan__unread_survivor_rejected() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000001AAA")

    with pytest.raises(ValueError, match="could not be read"):
        plan_resolution(group, ResolutionChoice(group.group_id, "00T000000000001AAA"), {}, KEY)


def test_default_choice__uses_group_survivor() -> None:
    group = _group(_record("00T000000000001AAA", "<a@x>"), _record("00T000000000002AAA", "<a@x>"),
                   survivor="00T000000000002AAA")

    choice = default_choice(group)

    assert choice.survivor_id == "00T000000000002AAA"
    assert choice.action is ResolveAction.DELETE_OTHERS
    assert KEY_FIELD_CHOICE in choice.fill_fields


def test_plan_lines__show_values_and_sources() -> None:
    fill = FieldFill("Description", "line one\nline two", "o")
    plan = ResolutionPlan("g", "s", (fill,), ("o",), ("o",), (), key_field=KEY,
                          cleared_keys=(("o", "<a@x>"),))

    assert plan.lines() == [
        "= keep s (group g)",
        "~ o: Message_ID__c: '<a@x>' -> (empty)",
        "~ s: Description: (empty) -> 'line one\\nline two' (from o)",
        "- delete o (it stays in the recycle bin for 15 days)",
    ]


def test_plan_json__round_trip() -> None:
    plan = ResolutionPlan("g", "s", (FieldFill("ActivityDate", "2026-01-02", "o"),), ("o",), ("o",), ("o",),
                          key_field=KEY, action=ResolveAction.DELETE_OTHERS, cleared_keys=(("o", "k"),),
                          kind=GroupKind.EXACT)

    assert ResolutionPlan.from_json(json.loads(json.dumps(plan.as_json()))) == plan


def test_plan_lines__whitespace_of_key_kept() -> None:
    plan = ResolutionPlan("g", "s", (), ("o",), ("o",), (), key_field=KEY,
                          cleared_keys=(("o", " <a@x>  "),))

    assert plan.lines()[1] == "~ o: Message_ID__c: ' <a@x>  ' -> (empty)"


FLAG = "Created_by_Backstory__c"


def test_plan__survivor_takes_flag() -> None:
    group = _group(_record("a", "<a@x>"), _record("b", "<a@x>"), survivor="a")
    current = {"a": _values("a", "<a@x>", "2026-01-01", **{FLAG: False}),
               "b": _values("b", "<a@x>", "2026-01-02", **{FLAG: True})}

    plan = plan_resolution(group, _all_fields("a", "a"), current, KEY, flag_field=FLAG)

    assert plan.fills == (FieldFill(FLAG, True, "b"),)
    assert f"~ a: {FLAG}: false -> true (from b)" in plan.lines()


def test_plan__flag_already_set() -> None:
    group = _group(_record("a", "<a@x>"), _record("b", "<a@x>"), survivor="a")
    current = {"a": _values("a", "<a@x>", "2026-01-01", **{FLAG: True}),
               "b": _values("b", "<a@x>", "2026-01-02", **{FLAG: True})}

    plan = plan_resolution(group, _all_fields("a", "a"), current, KEY, flag_field=FLAG)

    assert plan.fills == ()
