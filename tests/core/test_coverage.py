"""Key forms of stored Message-ID values, and their counts per cadence tool."""

from __future__ import annotations

import pytest

from backstory_desktop.core.coverage import EXAMPLES_PER_FORM, KeyCounts, KeyForm, classify_key, percent

CASES = [
    (None, KeyForm.MISSING),
    ("", KeyForm.MISSING),
    ("<abc.123@mail.example.com>", KeyForm.CANONICAL),
    ("abc.123@mail.example.com", KeyForm.WITHOUT_BRACKETS),
    (" <abc.123@mail.example.com>", KeyForm.NOT_CANONICAL),
    ("<abc.123@mail.example.com> (sent by the tool)", KeyForm.NOT_CANONICAL),
    ("<abc.123@mail.example.com> <def.456@mail.example.com>", KeyForm.NOT_CANONICAL),
    ("abc.123 @ mail.example.com", KeyForm.NOT_CANONICAL),
    ("<>", KeyForm.UNUSABLE),
    ("   ", KeyForm.UNUSABLE),
    ("<abc\u202e123@mail.example.com>", KeyForm.UNUSABLE),
]


@pytest.mark.parametrize(("value", "form"), CASES)
def test_classify_key__forms(value: str | None, form: KeyForm) -> None:
    assert classify_key(value)[0] is form


def test_classify_key__reason_names_the_canonical_key() -> None:
    form, reason = classify_key("abc@mail.example.com")

    assert form is KeyForm.WITHOUT_BRACKETS
    assert "<abc@mail.example.com>" in reason


def test_classify_key__case_counts_only_when_sensitive() -> None:
    assert classify_key("<ABC@Mail.Example.com>")[0] is KeyForm.CANONICAL
    assert classify_key("ABC@Mail.Example.com", case_sensitive=False)[0] is KeyForm.WITHOUT_BRACKETS


def test_key_counts__forms_do_not_overlap() -> None:
    counts = KeyCounts()
    values = [None, "<a@x.example>", "<b@x.example>", "c@x.example", "<d@x.example> (note)", "<>"]
    for index, value in enumerate(values):
        counts.add(f"00T{index}", value)

    assert counts.tasks == 6
    assert counts.with_key == 5
    assert counts.without_key == 1
    assert counts.canonical == 2
    assert counts.without_brackets == 1
    assert counts.not_canonical == 1
    assert counts.unusable == 1
    assert counts.problems == 4


def test_key_counts__examples_capped_per_form() -> None:
    counts = KeyCounts()
    counts.add("00Tcanonical", "<ok@x.example>")
    for index in range(EXAMPLES_PER_FORM + 3):
        counts.add(f"00T{index}", f"bare{index}@x.example")
    counts.add("00Tcomment", "<late@x.example> (comment)")
    counts.add("00Tempty", "<>")

    assert [example.task_id for example in counts.examples] == [
        *(f"00T{i}" for i in range(EXAMPLES_PER_FORM)), "00Tcomment", "00Tempty"]
    assert [example.form for example in counts.examples[-2:]] == [KeyForm.NOT_CANONICAL, KeyForm.UNUSABLE]
    assert counts.without_brackets == EXAMPLES_PER_FORM + 3


def test_key_counts__missing_value_is_no_example() -> None:
    counts = KeyCounts()
    counts.add("00T1", None)

    assert counts.examples == []
    assert counts.problems == 1


def test_percent__rounds_and_handles_zero() -> None:
    assert percent(1, 3) == 33
    assert percent(2, 3) == 67
    assert percent(5, 0) == 0
