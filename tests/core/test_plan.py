"""The dry-run plan classifies each message the way the upsert will treat it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from backstory_desktop.core.activity import MailActivity, Participant, SourceProblem
from backstory_desktop.core.message_id import canonical_message_id
from backstory_desktop.core.plan import (
    Action,
    FieldRules,
    FirstRow,
    InactiveOwner,
    Plan,
    PlanClassifier,
    PlanLookups,
    PlanRow,
    ReasonCode,
    classify_activities,
    retry_create_as_update,
    stored_spelling_advice,
)
from backstory_desktop.core.records import TaskRecord, UserRef

ADMIN = UserRef("005000000000001AAA", "Avery Admin", "admin@org.example", "admin@org.example", True)
REP = UserRef("005000000000002AAA", "Rita Rep", "rita@org.example", "rita@sales.example", True)
GONE = UserRef("005000000000003AAA", "Gus Gone", "gus@org.example", "gus@sales.example", False)
RULES = FieldRules("Message_ID__c", case_sensitive=True, flag_field="peopleai__Created_by_PeopleAI__c")


def _activity(
    raw_id: str | None,
    *,
    sender: str = "rita@sales.example",
    ref: str = "m.mbox, message 1",
    recipient: str = "carla@customer.example",
) -> MailActivity:
    return MailActivity(
        source_ref=ref,
        message_id=canonical_message_id(raw_id),
        subject="Re: pricing",
        sender=Participant("Sender", sender),
        recipients=(Participant("Carla", recipient),),
        sent_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        body_text="Let us talk on Monday.",
    )


def _lookups(*tasks: TaskRecord) -> PlanLookups:
    return PlanLookups(
        tasks=list(tasks),
        contacts_by_email={"carla@customer.example": "003000000000001AAA"},
        leads_by_email={"liam@prospect.example": "00Q000000000001AAA"},
        users_by_email={"rita@sales.example": REP, "gus@sales.example": GONE},
        running_user=ADMIN,
    )


def test_plan__new_key_is_a_create_with_subtype_and_flag() -> None:
    plan = classify_activities([_activity("<new@x.example>")], [], _lookups(), RULES)

    row = plan.rows[0]
    assert row.action is Action.CREATE
    assert row.upsert_key == "<new@x.example>"
    assert row.record["TaskSubtype"] == "Email"
    assert row.record["peopleai__Created_by_PeopleAI__c"] is True
    assert row.record["OwnerId"] == REP.id
    assert row.record["WhoId"] == "003000000000001AAA"
    assert row.record["ActivityDate"] == "2026-03-02"


def test_plan__existing_key_without_brackets_is_an_update_of_that_spelling() -> None:
    logged = TaskRecord("00T000000000001AAA", "known@x.example", created_by_name="Outreach Integration")

    plan = classify_activities([_activity("<known@x.example>")], [], _lookups(logged), RULES)

    row = plan.rows[0]
    assert row.action is Action.UPDATE
    assert row.upsert_key == "known@x.example"
    assert "TaskSubtype" not in row.record
    assert "Outreach Integration" in row.reason


def test_plan__update_fills_empty_fields_and_keeps_the_rest() -> None:
    logged = TaskRecord(
        "00T000000000001AAA",
        "<known@x.example>",
        description="Logged by the tool",
        who_id=None,
        activity_date="2026-03-02",
    )

    row = classify_activities([_activity("<known@x.example>")], [], _lookups(logged), RULES).rows[0]

    assert row.record == {"WhoId": "003000000000001AAA", "peopleai__Created_by_PeopleAI__c": True}


def test_plan__two_spellings_in_the_org_are_a_conflict() -> None:
    bracketed = TaskRecord("00T000000000001AAA", "<twice@x.example>")
    bare = TaskRecord("00T000000000002AAA", "twice@x.example")

    row = classify_activities([_activity("<twice@x.example>")], [], _lookups(bracketed, bare), RULES).rows[0]

    assert row.action is Action.CONFLICT
    assert {task.id for task in row.existing} == {bracketed.id, bare.id}


def test_plan__conflict_names_archived_holder() -> None:
    live = TaskRecord("00T000000000001AAA", "<twice@x.example>")
    archived = TaskRecord("00T000000000002AAA", "twice@x.example", is_archived=True)

    row = classify_activities([_activity("<twice@x.example>")], [], _lookups(live, archived), RULES).rows[0]

    assert "00T000000000001AAA as <twice@x.example>" in row.reason
    assert "00T000000000002AAA as twice@x.example, archived" in row.reason


def test_plan__key_held_only_in_the_recycle_bin_is_a_conflict() -> None:
    recycled = TaskRecord("00T000000000001AAA", "<gone@x.example>", is_deleted=True)

    row = classify_activities([_activity("<gone@x.example>")], [], _lookups(recycled), RULES).rows[0]

    assert row.action is Action.CONFLICT
    assert "recycle bin" in row.reason


def test_plan__case_variant_matches_only_when_the_field_ignores_case() -> None:
    upper = TaskRecord("00T000000000001AAA", "<ABC123@EXAMPLE.COM>")
    insensitive = FieldRules("Message_ID__c", case_sensitive=False)

    sensitive_row = classify_activities([_activity("<abc123@example.com>")], [], _lookups(upper), RULES).rows[
        0
    ]
    insensitive_row = classify_activities(
        [_activity("<abc123@example.com>")], [], _lookups(upper), insensitive
    ).rows[0]

    assert sensitive_row.action is Action.CREATE
    assert insensitive_row.action is Action.UPDATE
    assert insensitive_row.upsert_key == "<ABC123@EXAMPLE.COM>"


def test_plan__message_without_message_id_is_invalid_with_its_reason() -> None:
    row = classify_activities([_activity(None)], [], _lookups(), RULES).rows[0]

    assert row.action is Action.INVALID
    assert row.reason


def test_plan__source_problem_is_invalid() -> None:
    problem = SourceProblem("m.mbox, message 7", "the header block could not be parsed", "<[x]@y>")

    row = classify_activities([], [problem], _lookups(), RULES).rows[0]

    assert row.action is Action.INVALID
    assert row.reason == "the header block could not be parsed"


def test_plan__same_key_twice_in_one_mailbox_is_sent_once() -> None:
    first = _activity("<dup@x.example>", ref="m.mbox, message 1")
    again = _activity("dup@x.example", ref="m.mbox, message 2")

    plan = classify_activities([first, again], [], _lookups(), RULES)

    assert [row.action for row in plan.rows] == [Action.CREATE, Action.EXCLUDED]
    assert "message 1" in plan.rows[1].reason


def test_plan__inactive_sender_hands_the_task_to_the_running_user() -> None:
    row = classify_activities(
        [_activity("<o@x.example>", sender="gus@sales.example")], [], _lookups(), RULES
    ).rows[0]

    assert row.record["OwnerId"] == ADMIN.id
    assert "inactive" in row.reason


def test_plan__lead_matches_when_no_contact_does() -> None:
    activity = _activity("<l@x.example>", recipient="liam@prospect.example")

    row = classify_activities([activity], [], _lookups(), RULES).rows[0]

    assert row.record["WhoId"] == "00Q000000000001AAA"


def test_plan__counts_list_every_action() -> None:
    plan = classify_activities([_activity("<a@x.example>"), _activity(None)], [], _lookups(), RULES)

    assert plan.counts() == {"create": 1, "update": 0, "conflict": 0, "invalid": 1, "excluded": 0}


def test_plan__subject_with_line_breaks_and_nul_becomes_one_line() -> None:
    activity = _activity("<s@x.example>")
    odd = MailActivity(
        activity.source_ref,
        activity.message_id,
        "Quote\r\n attached\x00\x1b[31m",
        activity.sender,
        activity.recipients,
        activity.sent_at,
        activity.body_text,
    )

    row = classify_activities([odd], [], _lookups(), RULES).rows[0]

    assert row.record["Subject"] == "Quote  attached [31m"


def _from_source(raw_id: str, *, who_id: str | None = None, owner_id: str | None = None) -> MailActivity:
    activity = _activity(raw_id)
    return MailActivity(
        activity.source_ref,
        activity.message_id,
        activity.subject,
        activity.sender,
        activity.recipients,
        activity.sent_at,
        activity.body_text,
        who_id=who_id,
        owner_id=owner_id,
    )


def test_plan__duplicate_of_an_earlier_chunk_is_excluded() -> None:
    classifier = PlanClassifier(RULES)
    first = classifier.classify([_activity("<dup@x.example>", ref="m.mbox, message 1")], _lookups())
    earlier = {RULES.fold(first[0].key or ""): FirstRow(first[0].source_ref, first[0].action)}

    (row,) = classifier.classify([_activity("dup@x.example", ref="m.mbox, message 900")], _lookups(), earlier)

    assert row.action is Action.EXCLUDED
    assert row.reason == "same Message-ID as m.mbox, message 1, which this plan already syncs"


def test_plan__duplicate_of_conflict_excluded() -> None:
    recycled = TaskRecord("00T000000000001AAA", "<gone@x.example>", is_deleted=True)
    first = _activity("<gone@x.example>", ref="m.mbox, message 1")
    again = _activity("<gone@x.example>", ref="m.mbox, message 2")

    plan = classify_activities([first, again], [], _lookups(recycled), RULES)

    assert [row.action for row in plan.rows] == [Action.CONFLICT, Action.EXCLUDED]
    assert plan.rows[1].reason == (
        "same Message-ID as m.mbox, message 1, which this plan does not sync either (conflict)"
    )


def test_plan__other_case_key_warns() -> None:
    upper = TaskRecord("00T000000000001AAA", "<ABC123@EXAMPLE.COM>")

    row = classify_activities([_activity("<abc123@example.com>")], [], _lookups(upper), RULES).rows[0]

    assert row.action is Action.CREATE
    assert "Task 00T000000000001AAA holds this key in another case (<ABC123@EXAMPLE.COM>)" in row.reason


def test_plan__same_case_key_has_no_case_warning() -> None:
    same = TaskRecord("00T000000000001AAA", "<abc123@example.com>")

    row = classify_activities([_activity("<abc123@example.com>")], [], _lookups(same), RULES).rows[0]

    assert row.action is Action.UPDATE
    assert "another case" not in row.reason


def test_plan__source_who_and_owner_win_over_matching() -> None:
    activity = _from_source("<src@x.example>", who_id="003000000000099AAA", owner_id=ADMIN.id)
    lookups = replace(_lookups(), users_by_id={ADMIN.id: ADMIN})

    row = classify_activities([activity], [], lookups, RULES).rows[0]

    assert row.record["WhoId"] == "003000000000099AAA"
    assert row.record["OwnerId"] == ADMIN.id


def test_plan__unknown_source_owner_replaced() -> None:
    activity = _from_source("<src@x.example>", owner_id="005000000000404AAA")

    row = classify_activities([activity], [], _lookups(), RULES).rows[0]

    assert row.record["OwnerId"] == ADMIN.id
    assert "005000000000404AAA is not a user in this org" in row.reason


def test_plan__inactive_owners_are_listed_with_their_replacement() -> None:
    by_sender = _activity("<a@x.example>", sender="gus@sales.example")
    by_source = _from_source("<b@x.example>", owner_id=GONE.id)
    lookups = replace(_lookups(), users_by_id={GONE.id: GONE})

    plan = classify_activities([by_sender, by_source], [], lookups, RULES)

    assert plan.inactive_owners == [InactiveOwner(GONE.id, GONE.username, ADMIN.username, 2)]
    assert all(row.record["OwnerId"] == ADMIN.id for row in plan.rows)


def test_plan__inbound_mail_owned_by_recipient() -> None:
    inbound = _activity("<in@x.example>", sender="carla@customer.example", recipient="rita@sales.example")

    row = classify_activities([inbound], [], _lookups(), RULES).rows[0]

    assert row.record["OwnerId"] == REP.id
    assert "the recipient rita@org.example owns it" in row.reason


def test_plan__no_user_participant_noted() -> None:
    outside = _activity("<out@x.example>", sender="carla@customer.example", recipient="liam@prospect.example")

    row = classify_activities([outside], [], _lookups(), RULES).rows[0]

    assert row.record["OwnerId"] == ADMIN.id
    assert "no sender or recipient is an active user of this org, so admin@org.example owns it" in row.reason


def test_plan__missing_sender_noted() -> None:
    unsent = replace(_activity("<nosender@x.example>", recipient="liam@prospect.example"), sender=None)

    row = classify_activities([unsent], [], _lookups(), RULES).rows[0]

    assert row.record["OwnerId"] == ADMIN.id
    assert "the message names no sender, so admin@org.example owns it" in row.reason


def test_plan__user_participants_not_matched_as_people() -> None:
    internal = _activity("<internal@x.example>", recipient="gus@sales.example")

    row = classify_activities([internal], [], _lookups(), RULES).rows[0]

    assert "WhoId" not in row.record
    assert "no Contact or Lead matches a participant who is not a user of this org" in row.reason


def test_reason_code__new_key() -> None:
    row = classify_activities([_activity("<new@x.example>")], [], _lookups(), RULES).rows[0]

    assert row.reason_code is ReasonCode.NEW_KEY


def test_reason_code__update_of_same_spelling() -> None:
    logged = TaskRecord("00T000000000001AAA", "<known@x.example>")

    row = classify_activities([_activity("<known@x.example>")], [], _lookups(logged), RULES).rows[0]

    assert row.reason_code is ReasonCode.UPDATE
    assert "stored as" not in row.reason


def test_reason_code__update_of_stored_spelling() -> None:
    logged = TaskRecord("00T000000000001AAA", "known@x.example", created_by_name="Outreach Integration")

    row = classify_activities([_activity("<known@x.example>")], [], _lookups(logged), RULES).rows[0]

    assert row.reason_code is ReasonCode.UPDATE_STORED_SPELLING
    assert row.upsert_key == "known@x.example"
    assert "key stays stored as known@x.example" in row.reason
    assert "finds the Task by that spelling" in row.reason


def test_reason_code__insensitive_other_case() -> None:
    upper = TaskRecord("00T000000000001AAA", "<KNOWN@X.EXAMPLE>")
    insensitive = FieldRules("Message_ID__c", case_sensitive=False)

    row = classify_activities([_activity("<known@x.example>")], [], _lookups(upper), insensitive).rows[0]

    assert row.reason_code is ReasonCode.UPDATE_STORED_SPELLING
    assert row.upsert_key == "<KNOWN@X.EXAMPLE>"


def test_reason_code__several_tasks() -> None:
    bracketed = TaskRecord("00T000000000001AAA", "<twice@x.example>")
    bare = TaskRecord("00T000000000002AAA", "twice@x.example")

    row = classify_activities([_activity("<twice@x.example>")], [], _lookups(bracketed, bare), RULES).rows[0]

    assert row.reason_code is ReasonCode.SEVERAL_TASKS


def test_reason_code__recycle_bin() -> None:
    recycled = TaskRecord("00T000000000001AAA", "<gone@x.example>", is_deleted=True)

    row = classify_activities([_activity("<gone@x.example>")], [], _lookups(recycled), RULES).rows[0]

    assert row.reason_code is ReasonCode.RECYCLE_BIN


def test_reason_code__live_and_recycled_is_update() -> None:
    live = TaskRecord("00T000000000001AAA", "<both@x.example>")
    recycled = TaskRecord("00T000000000002AAA", "both@x.example", is_deleted=True)

    row = classify_activities([_activity("<both@x.example>")], [], _lookups(live, recycled), RULES).rows[0]

    assert row.action is Action.UPDATE
    assert row.reason_code is ReasonCode.UPDATE


def test_reason_code__repeated_key() -> None:
    first = _activity("<dup@x.example>", ref="m.mbox, message 1")
    again = _activity("<dup@x.example>", ref="m.mbox, message 2")

    rows = classify_activities([first, again], [], _lookups(), RULES).rows

    assert rows[1].reason_code is ReasonCode.REPEATED_KEY


def test_reason_code__no_key() -> None:
    row = classify_activities([_activity(None)], [], _lookups(), RULES).rows[0]

    assert row.reason_code is ReasonCode.NO_KEY


def test_reason_code__unreadable() -> None:
    problem = SourceProblem("m.mbox, message 7", "the header block could not be parsed", None)

    row = classify_activities([], [problem], _lookups(), RULES).rows[0]

    assert row.reason_code is ReasonCode.UNREADABLE


def test_reason_code__unknown_reference() -> None:
    activity = _from_source("<who@x.example>", who_id="003000000000404AAA")
    lookups = replace(_lookups(), unknown_who_ids=frozenset({"003000000000404AAA"}))

    row = classify_activities([activity], [], lookups, RULES).rows[0]

    assert row.action is Action.INVALID
    assert row.reason_code is ReasonCode.UNKNOWN_REFERENCE
    assert row.key == "<who@x.example>"
    assert row.reason.startswith("the WhoId 003000000000404AAA is neither a Contact nor a Lead in this org")
    assert "correct or clear it in the source" in row.reason


def test_reason_code__retry_keeps_stored_spelling() -> None:
    create = classify_activities([_activity("<late@x.example>")], [], _lookups(), RULES).rows[0]
    late = TaskRecord("00T000000000001AAA", "late@x.example")

    update = retry_create_as_update(create, [late], RULES)

    assert update is not None
    assert update.reason_code is ReasonCode.UPDATE_STORED_SPELLING


def test_reason_counts__every_code_listed() -> None:
    logged = TaskRecord("00T000000000001AAA", "known@x.example")
    activities = [_activity("<known@x.example>"), _activity("<new@x.example>"), _activity(None)]

    counts = classify_activities(activities, [], _lookups(logged), RULES).reason_counts()

    assert set(counts) == {code.value for code in ReasonCode}
    assert counts["update_stored_spelling"] == 1
    assert counts["new_key"] == 1
    assert counts["no_key"] == 1
    assert sum(counts.values()) == 3


class _CountingRows(list[PlanRow]):
    """Rows that count their reason codes themselves, as the journal's rows do."""

    def reason_counts(self) -> dict[str, int]:
        return {"several_tasks": 7}


def test_reason_counts__rows_that_count_themselves() -> None:
    plan = Plan(_CountingRows(), RULES)

    counts = plan.reason_counts()

    assert counts["several_tasks"] == 7
    assert counts["new_key"] == 0


def test_case_only_variant__later_message_warned() -> None:
    first = _activity("<MixedCase@x.example>", ref="m.mbox, message 1")
    later = _activity("<mixedcase@x.example>", ref="m.mbox, message 2")

    rows = classify_activities([first, later], [], _lookups(), RULES).rows

    assert [row.action for row in rows] == [Action.CREATE, Action.CREATE]
    assert "differs only in case" not in rows[0].reason
    assert "the key differs only in case from the key of m.mbox, message 1" in rows[1].reason


def test_case_only_variant__insensitive_field_excludes() -> None:
    insensitive = FieldRules("Message_ID__c", case_sensitive=False)
    first = _activity("<MixedCase@x.example>", ref="m.mbox, message 1")
    later = _activity("<mixedcase@x.example>", ref="m.mbox, message 2")

    rows = classify_activities([first, later], [], _lookups(), insensitive).rows

    assert rows[1].action is Action.EXCLUDED
    assert "differs only in case" not in rows[1].reason


def test_case_only_variant__earlier_chunk_warned() -> None:
    classifier = PlanClassifier(RULES)
    (first,) = classifier.classify([_activity("<MixedCase@x.example>", ref="m.mbox, message 1")], _lookups())
    earlier_any_case = {"<mixedcase@x.example>": FirstRow(first.source_ref, first.action)}

    (row,) = classifier.classify(
        [_activity("<mixedcase@x.example>", ref="m.mbox, message 900")], _lookups(), {}, earlier_any_case
    )

    assert row.action is Action.CREATE
    assert "the key differs only in case from the key of m.mbox, message 1" in row.reason


def test_case_only_variant__third_spelling_names_first() -> None:
    spellings = ["<Case@x.example>", "<CASE@x.example>", "<case@x.example>"]
    activities = [_activity(key, ref=f"m.mbox, message {n}") for n, key in enumerate(spellings, 1)]

    rows = classify_activities(activities, [], _lookups(), RULES).rows

    assert "from the key of m.mbox, message 1" in rows[1].reason
    assert "from the key of m.mbox, message 1" in rows[2].reason


def test_stored_spelling_advice__names_count() -> None:
    advice = stored_spelling_advice({ReasonCode.UPDATE_STORED_SPELLING.value: 1_204})

    assert advice == (
        "1,204 updates keep the key spelling their Tasks already hold (such as without angle brackets), so "
        "the tool that wrote them still finds them. New e-mail is keyed as <local@domain>: set that tool to "
        "write the same spelling, as the Cadence-tool mapping step shows, or each new e-mail will be logged "
        "twice."
    )


def test_stored_spelling_advice__one_update() -> None:
    advice = stored_spelling_advice({ReasonCode.UPDATE_STORED_SPELLING.value: 1})

    assert advice.startswith("1 update keeps the key spelling its Task already holds")


def test_stored_spelling_advice__none_is_empty() -> None:
    assert stored_spelling_advice({ReasonCode.UPDATE_STORED_SPELLING.value: 0}) == ""
    assert stored_spelling_advice({}) == ""


def test_case_insensitive_field__lower_case_rule() -> None:
    insensitive = FieldRules("Message_ID__c", case_sensitive=False)
    keys = ["<STRASSE@x.example>", "<straße@x.example>", "<ﬁle@x.example>", "<FILE@x.example>",
            "<ÄÖÜ@x.example>", "<äöü@x.example>"]
    activities = [_activity(key, ref=f"m.mbox, message {number}") for number, key in enumerate(keys, 1)]

    rows = classify_activities(activities, [], _lookups(), insensitive).rows

    assert [row.action for row in rows] == [Action.CREATE] * 5 + [Action.EXCLUDED]
    assert rows[5].reason.startswith("same Message-ID as m.mbox, message 5")


def test_case_insensitive_field__sharp_s_not_an_update() -> None:
    insensitive = FieldRules("Message_ID__c", case_sensitive=False)
    logged = TaskRecord("00T000000000001AAA", "<STRASSE@x.example>")

    rows = classify_activities([_activity("<straße@x.example>"), _activity("<Strasse@x.example>")], [],
                               _lookups(logged), insensitive).rows

    assert [row.action for row in rows] == [Action.CREATE, Action.UPDATE]
    assert rows[1].upsert_key == "<STRASSE@x.example>"
