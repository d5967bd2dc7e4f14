"""Specification of the mbox reader, on real mailboxes and on the shapes that broke other readers."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.sources import mbox
from backstory_desktop.sources.mbox import MailboxError, read_mbox

SEPARATOR = b"From sender@example.com Sat Jan  3 01:05:34 2004\n"


def message(subject: str, message_id: str | None, body: str = "Hello.\n") -> bytes:
    lines = [
        "From: Ann Lee <Ann.Lee@Example.com>",
        "To: Bob Roe <bob@example.com>, team@example.com",
        "Cc: Carla <CARLA@example.org>",
        f"Subject: {subject}",
        "Date: Sat, 3 Jan 2004 01:05:34 +0100",
    ]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def write_mbox(path: Path, *messages: bytes) -> Path:
    path.write_bytes(b"\n".join(SEPARATOR + data for data in messages))
    return path


def read_single(path: Path) -> MailActivity:
    """Read a mailbox that must hold exactly one readable message."""
    items = list(read_mbox(path))
    assert len(items) == 1
    only = items[0]
    assert isinstance(only, MailActivity)
    return only


def activities(items: list[MailActivity | SourceProblem]) -> list[MailActivity]:
    return [item for item in items if isinstance(item, MailActivity)]


def problems(items: list[MailActivity | SourceProblem]) -> list[SourceProblem]:
    return [item for item in items if isinstance(item, SourceProblem)]


# Real mailboxes


def test_mbox__unquoted_from_line_stays_in_body(mail_corpus: Path) -> None:
    items = list(read_mbox(mail_corpus / "cpython-test_email" / "mailbox_01.mbox"))
    assert len(items) == 1
    only = items[0]
    assert isinstance(only, MailActivity)
    assert only.subject == "unquoted From in body; extra info on From line"
    assert "From time to time" in only.body_text
    assert only.message_id.key is None
    assert only.message_id.problem == "no Message-ID header"


def test_mbox__mailing_list_archive_is_read_whole(mail_corpus: Path) -> None:
    path = mail_corpus / "linux-hyperv-list-archive" / "linux-hyperv.sample.mboxrd"
    items = list(read_mbox(path))
    read = activities(items)
    assert len(items) == 198
    assert problems(items) == []
    keys = [activity.message_id.key for activity in read]
    assert None not in keys
    assert all(key is not None and not any(char.isspace() for char in key) for key in keys)
    assert len(set(keys)) == 167


def test_mbox__same_message_delivered_18_times_has_one_key(mail_corpus: Path) -> None:
    path = mail_corpus / "linux-hyperv-list-archive" / "linux-hyperv.sample.mboxrd"
    counts = Counter(activity.message_id.key for activity in activities(list(read_mbox(path))))
    assert counts["<2024020526-playlist-december-b3f4@gregkh>"] == 18


def test_mbox__encoded_word_ids_are_decoded(mail_corpus: Path) -> None:
    path = mail_corpus / "linux-hyperv-list-archive" / "linux-hyperv.sample.mboxrd"
    encoded = [
        activity.message_id
        for activity in activities(list(read_mbox(path)))
        if activity.message_id.raw.startswith("=?")
    ]
    assert len(encoded) == 12
    assert all(result.key is not None and result.key.endswith("@samsung.com>") for result in encoded)
    assert (
        "<20230928-jag-sysctl_remove_empty_elem_drivers-v1-12-e59120fca9f9@samsung.com>"
        in {result.key for result in encoded}
    )


def test_mbox__folded_ids_are_unfolded(mail_corpus: Path) -> None:
    path = mail_corpus / "linux-hyperv-list-archive" / "linux-hyperv.sample.mboxrd"
    folded = [
        activity.message_id
        for activity in activities(list(read_mbox(path)))
        if activity.message_id.raw.startswith("\n")
    ]
    assert len(folded) >= 40
    assert all(result.key is not None and result.key.startswith("<") for result in folded)


def test_mbox__netscape_content_length_mailbox(mail_corpus: Path) -> None:
    items = list(read_mbox(mail_corpus / "mimekit" / "mbox" / "content-length.mbox.txt"))
    read = activities(items)
    assert len(items) == 29
    assert problems(items) == []
    keys = {activity.message_id.key for activity in read}
    assert "<MSG961029151201#15@server1.opensoft.com>" in keys
    assert "<19960722000255.AAA26598@navstar1.mcom.com>" in keys


def test_mbox__separator_without_date_after_blank_line(mail_corpus: Path) -> None:
    items = list(read_mbox(mail_corpus / "mimekit" / "mbox" / "issue1189.mbox.txt"))
    assert len(activities(items)) == 4
    assert problems(items) == []


def test_mbox__byte_order_mark_and_unmunged_from(mail_corpus: Path) -> None:
    items = list(read_mbox(mail_corpus / "mimekit" / "mbox" / "unmunged.mbox.txt"))
    read = activities(items)
    assert len(items) == 2
    assert "From Russia with love" in read[0].body_text
    assert "From Russia with love" in read[1].body_text


def test_mbox__crlf_copy_reads_like_lf(mail_corpus: Path, tmp_path: Path) -> None:
    original = mail_corpus / "linux-hyperv-list-archive" / "linux-hyperv.sample.mboxrd"
    crlf = tmp_path / "crlf.mbox"
    crlf.write_bytes(original.read_bytes().replace(b"\n", b"\r\n"))
    lf_items = activities(list(read_mbox(original)))
    crlf_items = activities(list(read_mbox(crlf)))
    assert len(crlf_items) == 198
    assert [a.message_id for a in crlf_items] == [a.message_id for a in lf_items]
    assert [a.subject for a in crlf_items] == [a.subject for a in lf_items]
    assert [a.sender for a in crlf_items] == [a.sender for a in lf_items]
    assert [a.body_text for a in crlf_items] == [a.body_text for a in lf_items]


def test_mbox__parser_crashes_do_not_stop_the_import(mail_corpus: Path, tmp_path: Path) -> None:
    nested = (mail_corpus / "mimekit" / "messages" / "stack-overflow.txt").read_bytes()
    path = write_mbox(
        tmp_path / "odd.mbox",
        message("square brackets", "<[ABCDEF====@mail.example.com]>"),
        nested,
        message("after the odd ones", "<after@example.com>"),
    )
    items = list(read_mbox(path))
    assert len(items) == 3

    first, second, third = items
    assert isinstance(first, MailActivity)
    assert first.message_id.raw == "<[ABCDEF====@mail.example.com]>"
    assert first.message_id.key == "<[ABCDEF====@mail.example.com]>"

    assert isinstance(second, SourceProblem)
    assert "nests too deeply" in second.reason
    assert second.raw_header == "<aasfasdfasdfa@bb>"
    first_length = len(SEPARATOR + message("square brackets", "<[ABCDEF====@mail.example.com]>"))
    assert second.source_ref == f"odd.mbox, message 2 (byte {first_length + 1})"

    assert isinstance(third, MailActivity)
    assert third.message_id.key == "<after@example.com>"


# Shapes that split or merged messages in other readers


def test_mbox__from_paragraph_does_not_split_message(tmp_path: Path) -> None:
    body = "We met today.\n\nFrom here on, we agree.\n\nThe contract follows.\n"
    path = write_mbox(
        tmp_path / "k21.mbox",
        message("agreement", "<one@example.com>", body),
        message("next", "<two@example.com>"),
    )
    items = list(read_mbox(path))
    assert problems(items) == []
    read = activities(items)
    assert [activity.message_id.key for activity in read] == ["<one@example.com>", "<two@example.com>"]
    assert read[0].body_text == body.strip()


def test_mbox__dated_from_line_in_body_without_headers_is_body(tmp_path: Path) -> None:
    body = "Quoted below:\n\nFrom bob@example.com Mon Jan  5 10:00:00 2004\nthanks for the call\n"
    path = write_mbox(tmp_path / "quoted.mbox", message("quote", "<one@example.com>", body))
    items = list(read_mbox(path))
    assert len(items) == 1
    only = items[0]
    assert isinstance(only, MailActivity)
    assert "thanks for the call" in only.body_text


def test_mbox__headerless_first_message_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "fragment.mbox"
    path.write_bytes(
        SEPARATOR + b"just some text\nwithout headers\n\n" + SEPARATOR + message("real", "<r@example.com>")
    )
    items = list(read_mbox(path))
    assert len(items) == 2
    fragment, real = items
    assert isinstance(fragment, SourceProblem)
    assert "no header lines" in fragment.reason
    assert isinstance(real, MailActivity)
    assert real.message_id.key == "<r@example.com>"


def test_mbox__mboxrd_quoting_is_undone_one_level(tmp_path: Path) -> None:
    body = ">From the start\n>>From a quote\nplain line\n"
    path = write_mbox(tmp_path / "quoted.mbox", message("quoting", "<q@example.com>", body))
    only = read_single(path)
    assert only.body_text == "From the start\n>From a quote\nplain line"


def test_mbox__message_without_message_id_is_an_activity(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "noid.mbox", message("no id", None))
    only = read_single(path)
    assert only.message_id.key is None
    assert only.message_id.problem == "no Message-ID header"
    assert only.subject == "no id"


def test_mbox__fields_of_an_activity(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "fields.mbox", message("=?utf-8?q?Caf=C3=A9_plans?=", "<f@example.com>"))
    only = read_single(path)
    assert only.source_ref == "fields.mbox, message 1 (byte 0)"
    assert only.subject == "Café plans"
    assert only.sender is not None
    assert only.sender.email == "ann.lee@example.com"
    assert only.sender.name == "Ann Lee"
    assert [p.email for p in only.recipients] == [
        "bob@example.com",
        "team@example.com",
        "carla@example.org",
    ]
    assert only.sent_at is not None
    assert only.sent_at.utcoffset() is not None
    assert only.sent_at.isoformat() == "2004-01-03T01:05:34+01:00"
    assert only.body_text == "Hello."


def test_mbox__html_only_body_is_stripped(tmp_path: Path) -> None:
    html = (
        b"From: a@example.com\nSubject: html\nMessage-ID: <h@example.com>\n"
        b"Content-Type: text/html; charset=utf-8\n\n"
        b"<html><style>p {color: red}</style><body><p>Price:&nbsp;10 &amp; up</p>"
        b"<p>Second</p></body></html>\n"
    )
    only = read_single(write_mbox(tmp_path / "html.mbox", html))
    assert "color" not in only.body_text
    assert "Price:\u00a010 & up" in only.body_text
    assert "Second" in only.body_text
    assert "<p>" not in only.body_text


def test_mbox__long_body_is_cut_to_32000_characters(tmp_path: Path) -> None:
    body = ("x" * 99 + "\n") * 500
    only = read_single(write_mbox(tmp_path / "long.mbox", message("long", "<l@x.example>", body)))
    assert len(only.body_text) == 32_000


def test_mbox__broken_address_header_is_tolerated(tmp_path: Path) -> None:
    data = (
        b"From: \"unterminated <a@example.com\nTo: undisclosed-recipients:;\n"
        b"Subject: broken\nDate: not a date\nMessage-ID: <b@example.com>\n\nbody\n"
    )
    only = read_single(write_mbox(tmp_path / "broken.mbox", data))
    assert only.recipients == ()
    assert only.sent_at is None
    assert only.message_id.key == "<b@example.com>"


# The file as a whole


def test_mbox__missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.mbox"
    with pytest.raises(MailboxError) as raised:
        read_mbox(path)
    assert str(raised.value) == f"{path} not found"


def test_mbox__empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mbox"
    path.write_bytes(b"")
    with pytest.raises(MailboxError) as raised:
        read_mbox(path)
    assert str(raised.value) == f"{path} is empty: it holds no messages"


def test_mbox__blank_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.mbox"
    path.write_bytes(b"\n\n  \n")
    with pytest.raises(MailboxError, match="contains only blank lines"):
        read_mbox(path)


@pytest.mark.parametrize(
    ("content", "description"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"From: Ann <ann@example.com>\nSubject: hi\n\nbody\n", "looks like a single message"),
        (b"Subject,Date,From\nhello,2024-01-01,ann@example.com\n", "perhaps a CSV file"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP archive"),
    ],
)
def test_mbox__not_an_mbox_is_rejected_before_reading(
    tmp_path: Path, content: bytes, description: str
) -> None:
    path = tmp_path / "input.file"
    path.write_bytes(content)
    with pytest.raises(MailboxError) as raised:
        read_mbox(path)
    assert str(raised.value).startswith(f"{path} is not an mbox file")
    assert description in str(raised.value)


def test_mbox__single_eml_file_is_rejected(mail_corpus: Path) -> None:
    path = mail_corpus / "mikel-mail" / "plain_emails" / "basic_email.eml"
    with pytest.raises(MailboxError, match="single message"):
        read_mbox(path)


def test_mbox__progress_reaches_total(tmp_path: Path) -> None:
    path = write_mbox(
        tmp_path / "progress.mbox", *(message(f"m{n}", f"<m{n}@x.example>") for n in range(300))
    )
    reports: list[tuple[int, int, str]] = []
    items = list(read_mbox(path, progress=lambda done, total, text: reports.append((done, total, text))))
    total = path.stat().st_size
    assert len(items) == 300
    assert reports[-1] == (total, total, "Reading progress.mbox")
    assert all(report[1] == total for report in reports)
    assert [report[0] for report in reports] == sorted(report[0] for report in reports)
    assert len(reports) <= 103


def test_mbox__cancel_stops_between_messages(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "cancel.mbox", *(message(f"m{n}", f"<m{n}@x.example>") for n in range(5)))
    cancel = threading.Event()
    iterator = read_mbox(path, cancel=cancel)
    first = next(iterator)
    assert isinstance(first, MailActivity)
    cancel.set()
    with pytest.raises(Cancelled):
        next(iterator)



def test_mbox__chunk_of_long_line_is_never_separator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With 64-byte chunks the second chunk of this line starts with a dated "From " line.
    monkeypatch.setattr(mbox, "_MAX_CHUNK_BYTES", 64)
    body = "x" * 64 + "From a@b.example Sat Jan  3 01:05:34 2004\nNote: not a header\n"
    path = write_mbox(
        tmp_path / "long-line.mbox",
        message("long line", "<long@x.example>", body),
        message("after", "<after@x.example>"),
    )
    items = list(read_mbox(path))
    assert problems(items) == []
    read = activities(items)
    assert [activity.message_id.key for activity in read] == ["<long@x.example>", "<after@x.example>"]
    assert "Note: not a header" in read[0].body_text


def test_read_mbox__path_that_cannot_be_read_is_a_mailbox_error(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 300)

    with pytest.raises(MailboxError) as raised:
        read_mbox(too_long)

    assert str(too_long) in str(raised.value)
    assert "cannot be read" in str(raised.value)


def test_read_mbox__folder_is_named_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MailboxError) as raised:
        read_mbox(tmp_path)

    assert str(raised.value) == f"{tmp_path} is a folder: choose an mbox file"
