"""The Plan tab's sentences: reason labels, the apply confirmation, a stopped apply and source references."""

from __future__ import annotations

from backstory_desktop.core.plan import Action, FieldRules, Plan, PlanRow, ReasonCode
from backstory_desktop.gui.models import short_source_ref
from backstory_desktop.gui.pages.plan_text import REASON_LABELS, apply_confirmation, stopped_apply_text
from backstory_desktop.sync.settings import SyncSettings


def test_reason_labels__every_code_named() -> None:
    assert set(REASON_LABELS) == set(ReasonCode)
    assert len(set(REASON_LABELS.values())) == len(ReasonCode)


def plan_of(actions: dict[Action, int]) -> Plan:
    rows = [PlanRow(action, f"box.mbox, message {number}", f"<m{number}@example.com>", "Hello", "reason")
            for action, count in actions.items() for number in range(count)]
    return Plan(rows, FieldRules("Message_ID__c", case_sensitive=False))


def test_apply_confirmation__zero_lines_left_out() -> None:
    plan = plan_of({Action.CREATE: 3})

    question, lines = apply_confirmation(plan, SyncSettings(bulk_threshold=2000), "https://org.example")

    assert question == "Create 3 Tasks in the org at https://org.example?"
    assert lines[0] == "+ create 3 Tasks"
    assert not any("update" in line for line in lines)
    assert not any("not sent" in line for line in lines)
    assert lines[-1] == "• through sObject Collections, 200 records a call (3 rows, Bulk API from 2,000)"


def test_apply_confirmation__bulk_and_not_sent() -> None:
    plan = plan_of({Action.CREATE: 1, Action.UPDATE: 2, Action.CONFLICT: 1, Action.EXCLUDED: 2})

    question, lines = apply_confirmation(plan, SyncSettings(bulk_threshold=3), "https://org.example")

    assert question == "Create 1 Task and update 2 Tasks in the org at https://org.example?"
    assert "  not sent: 1 conflict, 2 excluded" in lines
    assert lines[-1] == "• through Bulk API 2.0 (3 rows, Bulk API from 3)"


def test_stopped_apply_text__reason_is_a_sentence() -> None:
    text = stopped_apply_text("cancelled by the user", 2, 1_000, 3)

    assert text.startswith("The sync stopped before the end: cancelled by the user. 2 Tasks created, ")
    assert "1,000 updated, 3 in doubt." in text
    assert "(" not in text


def test_short_source_ref__keeps_message_or_row() -> None:
    assert short_source_ref("sample.mbox, message 3 (byte 1091)") == "message 3"
    assert short_source_ref("export, 2026.csv, row 12") == "row 12"
    assert short_source_ref("tasks.csv, row 12 (read as Windows-1252)") == "row 12"
    assert short_source_ref("mail/cur/1700000000.M1P2.host:2,S") == "mail/cur/1700000000.M1P2.host:2,S"
