"""Damaged sources: stray bytes, unclosed quotes, lying Content-Length, NUL bytes, undeclared charsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.sources.base import SourceError, looks_binary
from backstory_desktop.sources.csv_export import csv_encoding, guess_mapping, read_csv_export, read_csv_header
from backstory_desktop.sources.mbox import read_mbox
from backstory_desktop.sources.message import parse_message

CADENCE_HEADER = b"Message ID,Subject,Body,From,To,Sent At\n"
SEPARATOR = b"From sender@example.com Sat Jan  3 01:05:34 2004\n"


def read_csv(path: Path, progress_texts: list[str] | None = None) -> list[MailActivity | SourceProblem]:
    mapping = guess_mapping(read_csv_header(path))
    texts = progress_texts if progress_texts is not None else []
    return list(read_csv_export(path, mapping, progress=lambda done, total, text: texts.append(text)))


def by_ref(items: list[MailActivity | SourceProblem]) -> dict[str, MailActivity | SourceProblem]:
    return {item.source_ref: item for item in items}


def activity(item: MailActivity | SourceProblem) -> MailActivity:
    assert isinstance(item, MailActivity), item
    return item


def problem(item: MailActivity | SourceProblem) -> SourceProblem:
    assert isinstance(item, SourceProblem), item
    return item


# CSV encodings


def test_csv_utf8__stray_byte_is_one_row_problem(tmp_path: Path) -> None:
    first = "<café@x.example>,Café,b,,,\n".encode()
    damaged = b"<b@x.example>,Caf\xe9 bad,b,,,\n"
    last = "<c@x.example>,Grüße,b,,,\n".encode()
    path = tmp_path / "stray.csv"
    path.write_bytes(CADENCE_HEADER + first + damaged + last)
    bad_offset = len(CADENCE_HEADER + first) + damaged.index(b"\xe9")

    items = by_ref(read_csv(path))

    assert csv_encoding(path) == "utf-8-sig"
    assert list(items) == ["stray.csv, row 2", "stray.csv, row 3", "stray.csv, row 4"]
    assert activity(items["stray.csv, row 2"]).subject == "Café"
    assert activity(items["stray.csv, row 2"]).message_id.key == "<café@x.example>"
    assert activity(items["stray.csv, row 4"]).subject == "Grüße"
    reason = problem(items["stray.csv, row 3"]).reason
    assert reason.startswith("the row is not valid UTF-8")
    assert f"byte 0xe9 at byte offset {bad_offset}" in reason
    assert problem(items["stray.csv, row 3"]).raw_header == "<b@x.example>"


def test_csv_utf8__stray_byte_in_multi_line_row(tmp_path: Path) -> None:
    rows = '<a@x.example>,Å,"one\ntwo '.encode() + b'\xe9",,,\n' + "<b@x.example>,Ø,b,,,\n".encode()
    path = tmp_path / "multi.csv"
    path.write_bytes(CADENCE_HEADER + "<z@x.example>,Ä,b,,,\n".encode() + rows)

    items = by_ref(read_csv(path))

    assert activity(items["multi.csv, row 2"]).subject == "Ä"
    assert "not valid UTF-8" in problem(items["multi.csv, row 3"]).reason
    assert activity(items["multi.csv, row 4"]).message_id.key == "<b@x.example>"


def test_csv_utf8__stray_byte_before_utf8_text(tmp_path: Path) -> None:
    rows = b"<a@x.example>,Caf\xe9,b,,,\n" + "<b@x.example>,Café,b,,,\n<c@x.example>,Grüße,b,,,\n".encode()
    path = tmp_path / "early.csv"
    path.write_bytes(CADENCE_HEADER + rows)

    items = by_ref(read_csv(path))

    assert csv_encoding(path) == "utf-8-sig"
    assert "not valid UTF-8" in problem(items["early.csv, row 2"]).reason
    assert activity(items["early.csv, row 3"]).subject == "Café"
    assert activity(items["early.csv, row 4"]).subject == "Grüße"


def test_csv_windows_1252__named_in_every_row(tmp_path: Path) -> None:
    rows = "<a@x.example>,Café,b,,,\n<b@x.example>,Grüße,b,,,\n".encode("cp1252")
    path = tmp_path / "excel.csv"
    path.write_bytes(CADENCE_HEADER + rows)
    texts: list[str] = []

    items = read_csv(path, texts)

    assert csv_encoding(path) == "cp1252"
    assert [item.source_ref for item in items] == [
        "excel.csv, row 2 (read as Windows-1252)",
        "excel.csv, row 3 (read as Windows-1252)",
    ]
    assert [activity(item).subject for item in items] == ["Café", "Grüße"]
    assert texts[-1] == "Reading excel.csv as Windows-1252 (it is not UTF-8)"


def test_csv_header__invalid_utf8_after_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes("Résumé,".encode() + b"Caf\xe9,Message ID\n<a@x.example>,b,c\n")

    with pytest.raises(SourceError) as raised:
        read_csv_header(path)

    assert "header row that is not valid UTF-8 (byte 0xe9 at byte offset 12)" in str(raised.value)


# CSV quoting


def test_csv_quote__unclosed_quote_rows_are_read_again(tmp_path: Path) -> None:
    rows = (
        b'<a@x.example>,"never closed,b,,,\n'
        b"<b@x.example>,second,b,,,\n"
        b'<c@x.example>,"third",b,,,\n'
        b"<d@x.example>,fourth,b,,,\n"
    )
    path = tmp_path / "quote.csv"
    path.write_bytes(CADENCE_HEADER + rows)

    items = by_ref(read_csv(path))

    assert list(items) == ["quote.csv, row 2", "quote.csv, row 3", "quote.csv, row 4", "quote.csv, row 5"]
    opened = problem(items["quote.csv, row 2"])
    assert "a quote that opens in this row (line 2 of the file) is never closed" in opened.reason
    assert "the 2 lines after it ran into one cell" in opened.reason
    assert opened.raw_header == "<a@x.example>"
    assert activity(items["quote.csv, row 3"]).subject == "second"
    assert activity(items["quote.csv, row 4"]).subject == "third"
    assert activity(items["quote.csv, row 5"]).subject == "fourth"


def test_csv_quote__unclosed_at_end_of_file(tmp_path: Path) -> None:
    rows = b'<a@x.example>,first,b,,,\n<b@x.example>,"open,b,,,\nno row here\n<c@x.example>,last,b,,,'
    path = tmp_path / "end.csv"
    path.write_bytes(CADENCE_HEADER + rows)

    items = by_ref(read_csv(path))

    assert activity(items["end.csv, row 2"]).subject == "first"
    assert "line 3 of the file) is never closed" in problem(items["end.csv, row 3"]).reason
    assert problem(items["end.csv, row 4"]).raw_header == "no row here"
    assert activity(items["end.csv, row 5"]).subject == "last"


def test_csv_quote__last_line_opens_quote(tmp_path: Path) -> None:
    path = tmp_path / "last.csv"
    path.write_bytes(CADENCE_HEADER + b'<a@x.example>,"open,b,,,\n')

    items = read_csv(path)

    assert len(items) == 1
    assert "is never closed" in problem(items[0]).reason


def test_csv_quote__multi_line_body_kept(tmp_path: Path) -> None:
    body = '"Hi,\nsee the thread below:\n<old@x.example> wrote, on Monday:\n""fine"""'
    path = tmp_path / "body.csv"
    path.write_bytes(CADENCE_HEADER + f"<a@x.example>,s,{body},,,\n<b@x.example>,t,b,,,\n".encode())

    items = read_csv(path)

    assert [item.source_ref for item in items] == ["body.csv, row 2", "body.csv, row 3"]
    assert activity(items[0]).body_text.endswith('<old@x.example> wrote, on Monday:\n"fine"')


# NUL and control bytes


def test_csv_nul__row_problem_names_column(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(CADENCE_HEADER + b"<a@x.example>,fine,b,,,\n<b@x.example>,s,bo\x00dy,,,\n")

    items = by_ref(read_csv(path))

    assert activity(items["nul.csv, row 2"]).subject == "fine"
    nul = problem(items["nul.csv, row 3"])
    assert nul.reason.startswith("the cell in column 'Body' contains a NUL byte")
    assert nul.raw_header == "<b@x.example>"


def test_csv_controls__removed_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "controls.csv"
    path.write_bytes(CADENCE_HEADER + b"<a@x.example>,Sub\x07ject,one\x0btwo\tthree,,,\n")

    only = activity(read_csv(path)[0])

    assert only.subject == "Subject"
    assert only.body_text == "onetwo\tthree"
    assert "1 control character was removed from the subject (such as NUL bytes)" in only.message_id.warnings
    assert "1 control character was removed from the body (such as NUL bytes)" in only.message_id.warnings


def test_binary_check__share_of_controls() -> None:
    text = b"Message ID,Subject\n" + b"<a@x.example>,s\x00\n" * 20

    assert not looks_binary(text)
    assert looks_binary(bytes(range(256)) * 4)
    assert looks_binary(b"\x00\x00\x00\x01PK" * 100)


def test_csv_binary__file_still_rejected(tmp_path: Path) -> None:
    path = tmp_path / "image.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(32)) * 64)

    with pytest.raises(SourceError) as raised:
        read_csv_header(path)

    assert "is binary data, not a CSV file" in str(raised.value)


# mbox: Content-Length headers that cover later messages


def counted(message_id: str, body: bytes, length: int) -> bytes:
    header = (
        f"From: Ann <ann@example.com>\nSubject: {message_id}\nMessage-ID: {message_id}\n"
        f"Content-Length: {length}\n\n"
    ).encode()
    return SEPARATOR + header + body


def plain(message_id: str, body: bytes) -> bytes:
    return SEPARATOR + f"From: Bob <bob@example.com>\nMessage-ID: {message_id}\n\n".encode() + body


def test_content_length__count_reaching_later_separator(tmp_path: Path) -> None:
    second = b"\n" + plain("<two@x.example>", b"Two.\n")
    body = b"One.\n"
    path = tmp_path / "lying.mbox"
    path.write_bytes(
        counted("<one@x.example>", body, len(body) + len(second)) + second + b"\n"
        + plain("<three@x.example>", b"Three.\n")
    )

    items = [activity(item) for item in read_mbox(path)]

    keys = [item.message_id.key for item in items]
    assert keys == ["<one@x.example>", "<two@x.example>", "<three@x.example>"]
    assert items[0].body_text == "One."
    assert any("Content-Length header" in warning for warning in items[0].message_id.warnings)
    assert not items[1].message_id.warnings


def test_content_length__count_reaching_end_of_file(tmp_path: Path) -> None:
    second = b"\n" + plain("<two@x.example>", b"Two.\n")
    body = b"One.\n"
    path = tmp_path / "to-end.mbox"
    path.write_bytes(counted("<one@x.example>", body, len(body) + len(second)) + second)

    items = [activity(item) for item in read_mbox(path)]

    assert [item.message_id.key for item in items] == ["<one@x.example>", "<two@x.example>"]
    warning = items[0].message_id.warnings[-1]
    assert warning.startswith(f"its Content-Length header ({len(body) + len(second)} bytes) is wrong")


def test_content_length__quoted_separator_keeps_count(tmp_path: Path) -> None:
    body = b"See below.\n" + SEPARATOR + b"Subject: old\nDate: Mon, 5 Jan 2004 10:00:00 +0000\n\nOld text.\n"
    path = tmp_path / "quoted.mbox"
    path.write_bytes(counted("<one@x.example>", body, len(body)))

    items = [activity(item) for item in read_mbox(path)]

    assert len(items) == 1
    assert items[0].body_text.endswith("Old text.")
    assert not items[0].message_id.warnings


# mbox: NUL bytes and undeclared charsets


def test_mbox_nul__removed_from_subject_and_body(tmp_path: Path) -> None:
    path = tmp_path / "nul.mbox"
    header = b"From: a@x.example\nSubject: Hel\x00lo\nMessage-ID: <a@x.example>\n\n"
    path.write_bytes(SEPARATOR + header + b"Bo\x00\x01dy\n")

    only = activity(next(read_mbox(path)))

    assert only.subject == "Hello"
    assert only.body_text == "Body"
    assert "1 control character was removed from the subject (such as NUL bytes)" in only.message_id.warnings
    assert "2 control characters were removed from the body (such as NUL bytes)" in only.message_id.warnings


def test_mbox_charset__undeclared_latin1_body(tmp_path: Path) -> None:
    path = tmp_path / "latin.mbox"
    path.write_bytes(
        SEPARATOR + b"From: a@x.example\nSubject: Caf\xe9\nMessage-ID: <a@x.example>\n\nCaf\xe9 cr\xe8me\n"
    )

    only = activity(next(read_mbox(path)))

    assert only.subject == "Café"
    assert only.body_text == "Café crème"
    assert only.message_id.warnings == (
        "the body declares no charset and is not UTF-8: it was read as Windows-1252",
    )


def test_mbox_charset__undeclared_utf8_body_has_no_note(tmp_path: Path) -> None:
    path = tmp_path / "utf8.mbox"
    path.write_bytes(SEPARATOR + "From: a@x.example\nMessage-ID: <a@x.example>\n\nCafé crème\n".encode())

    only = activity(next(read_mbox(path)))

    assert only.body_text == "Café crème"
    assert not only.message_id.warnings


def test_mbox_charset__ascii_label_on_latin1_body(tmp_path: Path) -> None:
    path = tmp_path / "ascii.mbox"
    path.write_bytes(
        SEPARATOR + b"From: a@x.example\nMessage-ID: <a@x.example>\n"
        b"Content-Type: text/plain; charset=us-ascii\n\nna\xefve\n"
    )

    only = activity(next(read_mbox(path)))

    assert only.body_text == "naïve"
    assert only.message_id.warnings


def test_unreadable_message__warning_repeats_plan_reason(caplog: pytest.LogCaptureFixture) -> None:
    nested = "g:" * 2000 + "x@y.example" + ";" * 2000
    data = f"From: a@x.example\nTo: {nested}\nMessage-ID: <m1@x.example>\nSubject: s\n\nbody\n".encode()

    with caplog.at_level("WARNING", logger="backstory_desktop.sources.message"):
        problem = parse_message(data, "k18/deep.eml")

    assert isinstance(problem, SourceProblem)
    assert [record.getMessage() for record in caplog.records] == [f"k18/deep.eml: {problem.reason}"]
    assert "RecursionError" not in caplog.text
