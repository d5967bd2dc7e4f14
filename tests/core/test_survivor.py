"""Specification of the body digest, the writer label and the default survivor of a group."""

from __future__ import annotations

import pytest

from backstory_desktop.core.records import TaskRecord
from backstory_desktop.core.survivor import (
    SURVIVOR_RULE,
    default_survivor,
    description_digest,
    readable_time,
    writer_label,
)

TOOL_USER = "005000000000002AAA"
REP = "005000000000001AAA"
TOOLS = {TOOL_USER: "Outreach (outreach@x.example)"}


def task(
    record_id: str,
    key: str | None = "<k@x.example>",
    *,
    created: str = "2026-11-03T10:00:00.000+0000",
    creator: str = REP,
    deleted: bool = False,
    archived: bool = False,
) -> TaskRecord:
    return TaskRecord(id=record_id, key=key, created_by_id=creator, created_date=created,
                      is_deleted=deleted, is_archived=archived)


# -- description_digest ------------------------------------------------------------------


def test_digest__sixteen_hex_characters() -> None:
    digest = description_digest("Pricing attached.")

    assert len(digest) == 16
    assert int(digest, 16) >= 0


def test_digest__ignores_case_and_spacing() -> None:
    assert description_digest("Pricing  attached.\r\n\tBest") == description_digest("pricing attached. best")


def test_digest__differs_for_other_text() -> None:
    assert description_digest("Pricing attached.") != description_digest("Pricing withdrawn.")


def test_digest__empty_for_no_body() -> None:
    assert description_digest(None) == ""
    assert description_digest("") == ""
    assert description_digest(" \n\t ") == ""


def test_digest__reads_first_two_thousand_characters() -> None:
    start = "a " * 1000  # 2,000 characters once normalised

    assert description_digest(start + "signature one") == description_digest(start + "signature two")
    assert description_digest(start[:-2] + "b signature") != description_digest(start)


# -- writer_label ---------------------------------------------------------------------


def test_writer__tool_user_gets_tool_label() -> None:
    assert writer_label(TOOL_USER, "Outreach Integration", False, TOOLS) == "Outreach (outreach@x.example)"


def test_writer__tool_user_with_flag_is_enriched() -> None:
    assert writer_label(TOOL_USER, "Outreach Integration", True, TOOLS) == (
        "Outreach (outreach@x.example), enriched by Backstory"
    )


def test_writer__flag_without_tool_user_is_backstory() -> None:
    assert writer_label(REP, "Ann Rep", True, TOOLS) == "Backstory"


def test_writer__others_get_creator_name_or_id() -> None:
    assert writer_label(REP, "Ann Rep", False, TOOLS) == "Ann Rep"
    assert writer_label(REP, "", False, TOOLS) == REP
    assert writer_label(None, "", False, TOOLS) == ""


# -- default_survivor -------------------------------------------------------------------


def test_survivor__live_task_beats_recycle_bin() -> None:
    records = [task("00T1", deleted=True, creator=TOOL_USER, created="2020-01-01T00:00:00.000+0000"),
               task("00T2")]

    survivor, reason = default_survivor(records, {TOOL_USER})

    assert survivor.id == "00T2"
    assert reason == "It is the only Task of the group that is not in the recycle bin."


def test_survivor__live_task_beats_archived() -> None:
    records = [task("00T1", archived=True, creator=TOOL_USER, created="2020-01-01T00:00:00.000+0000"),
               task("00T2")]

    survivor, reason = default_survivor(records, {TOOL_USER})

    assert survivor.id == "00T2"
    assert reason == "It is the only Task of the group that is neither in the recycle bin nor archived."


def test_survivor__archived_task_beats_recycle_bin() -> None:
    records = [task("00T1", deleted=True), task("00T2", archived=True)]

    survivor, reason = default_survivor(records, ())

    assert survivor.id == "00T2"
    assert reason == "It is the only Task of the group that is not in the recycle bin."


def test_survivor__keyed_task_beats_keyless() -> None:
    records = [task("00T1", None, creator=TOOL_USER, created="2020-01-01T00:00:00.000+0000"),
               task("00T2")]

    survivor, reason = default_survivor(records, {TOOL_USER})

    assert survivor.id == "00T2"
    assert reason == "It is the only Task of the group that holds the Message-ID key."


def test_survivor__tool_user_beats_older_task() -> None:
    tool_task = TaskRecord(id="00T2", key="<k@x.example>", created_by_id=TOOL_USER,
                           created_date="2026-11-03T10:00:00.000+0000",
                           writer="Outreach (outreach@x.example)")
    records = [task("00T1", created="2020-01-01T00:00:00.000+0000"), tool_task]

    survivor, reason = default_survivor(records, {TOOL_USER})

    assert survivor.id == "00T2"
    assert reason == "It was written by a cadence tool's user (Outreach (outreach@x.example))."


def test_survivor__bracketed_key_beats_older_bare_key() -> None:
    records = [task("00T1", "k@x.example", created="2020-01-01T00:00:00.000+0000"),
               task("00T2", " <k@x.example>", created="2021-01-01T00:00:00.000+0000"),
               task("00T3", "<k@x.example>")]

    survivor, reason = default_survivor(records, ())

    assert survivor.id == "00T3"
    assert reason == "Its key <k@x.example> is in angle brackets, the form the product writes."


def test_survivor__tool_user_beats_bracketed_key() -> None:
    records = [task("00T1", "<k@x.example>"), task("00T2", "k@x.example", creator=TOOL_USER)]

    survivor, _reason = default_survivor(records, {TOOL_USER})

    assert survivor.id == "00T2"


def test_survivor__oldest_among_equals() -> None:
    records = [task("00T1", created="2026-11-03T10:00:05.000+0000"),
               task("00T2", created="2026-11-03T10:00:01.000+0000")]

    survivor, reason = default_survivor(records, ())

    assert survivor.id == "00T2"
    assert reason == "It is the oldest Task of the group, created 2026-11-03 10:00:01 UTC."


def test_survivor__lowest_id_breaks_tie() -> None:
    records = [task("00T9"), task("00T3")]

    survivor, reason = default_survivor(records, ())

    assert survivor.id == "00T3"
    assert reason == "The Tasks tie on every other part of the rule, and it has the lowest Id."


def test_survivor__missing_created_date_sorts_last() -> None:
    records = [task("00T1", created=""), task("00T2")]

    survivor, _reason = default_survivor(records, ())

    assert survivor.id == "00T2"


def test_survivor__empty_group_rejected() -> None:
    with pytest.raises(ValueError, match="no Tasks"):
        default_survivor([], ())


def test_survivor__rule_names_every_criterion() -> None:
    criteria = ("recycle bin", "archived", "Message-ID key", "cadence tool", "<...>", "oldest", "lowest Id")
    for words in criteria:
        assert words in SURVIVOR_RULE


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-27T12:11:30.000+0000", "2026-11-27 12:11:30 UTC"),
    ("2026-11-27T13:11:30.000+0100", "2026-11-27 12:11:30 UTC"),
    ("2026-11-27T12:11:30", "2026-11-27 12:11:30 UTC"),
    ("yesterday", "yesterday"),
    ("", "unknown"),
])
def test_readable_time__utc_with_seconds(value: str, expected: str) -> None:
    assert readable_time(value) == expected
