"""The bundled sample mailbox reads whole, with the counts its SOURCES.md states."""

from __future__ import annotations

from collections import Counter

import pytest

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.core.activity import MailActivity
from backstory_desktop.sources.mbox import read_mbox


@pytest.fixture(scope="module")
def sample() -> list[MailActivity]:
    items = list(read_mbox(sample_mailbox_path()))
    read = [item for item in items if isinstance(item, MailActivity)]
    assert len(read) == len(items), "the sample mailbox must not hold unreadable parts"
    return read


def test_sample_mailbox__message_and_key_counts(sample: list[MailActivity]) -> None:
    keys = [activity.message_id.key for activity in sample]
    assert len(sample) == 50
    assert sum(1 for key in keys if key is not None) == 43
    assert sum(1 for key in keys if key is None) == 7
    assert len({key for key in keys if key is not None}) == 37


def test_sample_mailbox__unkeyed_messages_lack_the_header(sample: list[MailActivity]) -> None:
    unkeyed = [number for number, activity in enumerate(sample, 1) if activity.message_id.key is None]
    assert unkeyed == [8, 9, 12, 18, 19, 47, 50]
    assert all(sample[number - 1].message_id.problem == "no Message-ID header" for number in unkeyed)


def test_sample_mailbox__shared_keys(sample: list[MailActivity]) -> None:
    counts = Counter(activity.message_id.key for activity in sample if activity.message_id.key)
    shared = {key: count for key, count in counts.items() if count > 1}
    assert shared == {
        "<15090.61304.110929.45684@aaa.zzz.org>": 4,
        "<15261.36209.358846.118674@anthem.python.org>": 2,
        "<1234@local.machine.example>": 2,
        "<54AD68C9E3B0184CAC6041320424FD1B5B81E74D@localhost.localdomain>": 2,
    }


def test_sample_mailbox__odd_id_spellings(sample: list[MailActivity]) -> None:
    bare = sample[31].message_id
    assert bare.key == "<201002191008.30117.foo.bar@company.com>"
    assert "the id has no angle brackets" in bare.warnings

    without_at = sample[19].message_id
    assert without_at.key == "<102.10200000000105>"
    assert "no @ in the id" in without_at.warnings

    folded = sample[33].message_id
    assert folded.raw.startswith("\n ")
    assert folded.key == "<473FFE27.20003@xxx.org>"

    with_comment = sample[30].message_id
    assert with_comment.raw == "<1234   @   local(blah)  .machine .example>"
    assert with_comment.key == "<1234@local.machine.example>"


def test_sample_mailbox__people(sample: list[MailActivity]) -> None:
    senders = {activity.sender.email for activity in sample if activity.sender is not None}
    recipients = {person.email for activity in sample for person in activity.recipients}
    assert all(activity.sender is not None for activity in sample)
    assert all(activity.recipients for activity in sample)
    assert all(activity.sent_at is not None for activity in sample)
    assert len(senders) == 40
    assert len(recipients) == 50
    assert len(senders | recipients) == 82
    assert all(email == email.lower() for email in senders | recipients)
