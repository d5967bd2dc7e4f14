"""Choosing the reader for a path, and the sentences for paths that are no source at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import CUSTOM_LABEL, CsvColumn, CsvMapping
from backstory_desktop.sources.mbox import MailboxError
from backstory_desktop.sources.message_files import OLE_SIGNATURE
from backstory_desktop.sources.registry import SourceKind, describe_source, detect_source, read_source

MESSAGE = b"From: Ann <ann@example.com>\nSubject: hi\nMessage-ID: <a@x.example>\n\nBody.\n"


def keys(path: Path, mapping: CsvMapping | None = None) -> list[str | None]:
    items = read_source(path, mapping=mapping)
    return [item.message_id.key for item in items if isinstance(item, MailActivity)]


def test_registry__mbox_file(tmp_path: Path) -> None:
    path = tmp_path / "archive"
    path.write_bytes(b"From sender@example.com Sat Jan  3 01:05:34 2004\n" + MESSAGE)

    assert detect_source(path) is SourceKind.MBOX
    assert keys(path) == ["<a@x.example>"]


def test_registry__apple_mail_export_folder(tmp_path: Path) -> None:
    folder = tmp_path / "Inbox.mbox"
    folder.mkdir()
    (folder / "Info.plist").write_text("<plist/>")
    (folder / "mbox").write_bytes(b"From sender@example.com Sat Jan  3 01:05:34 2004\n" + MESSAGE)

    assert detect_source(folder) is SourceKind.MBOX
    assert keys(folder) == ["<a@x.example>"]


def test_registry__maildir_folder(tmp_path: Path) -> None:
    for name in ("cur", "new", "tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "new" / "1.host").write_bytes(MESSAGE)

    assert detect_source(tmp_path) is SourceKind.MAILDIR
    assert keys(tmp_path) == ["<a@x.example>"]


def test_registry__eml_folder(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "a.eml").write_bytes(MESSAGE)

    assert detect_source(tmp_path) is SourceKind.EML_FOLDER
    assert keys(tmp_path) == ["<a@x.example>"]


def test_registry__csv_by_suffix_or_by_header(tmp_path: Path) -> None:
    by_suffix = tmp_path / "export.csv"
    by_suffix.write_text("Message-ID,Subject\n<a@x.example>,hi\n", encoding="utf-8")
    by_header = tmp_path / "export.txt"
    by_header.write_text("Message-ID,Subject\n<a@x.example>,hi\n", encoding="utf-8")

    assert detect_source(by_suffix) is SourceKind.CSV
    assert detect_source(by_header) is SourceKind.CSV
    assert keys(by_suffix) == keys(by_header) == ["<a@x.example>"]


def test_registry__csv_header_starting_with_from(tmp_path: Path) -> None:
    path = tmp_path / "export"
    path.write_text("From Address,Message ID\nann@x.example,<a@x.example>\n", encoding="utf-8")

    assert detect_source(path) is SourceKind.CSV
    assert keys(path) == ["<a@x.example>"]


def test_registry__csv_without_key_column_needs_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Key,Subject\n<a@x.example>,hi\n", encoding="utf-8")

    with pytest.raises(SourceError) as raised:
        read_source(path)

    assert str(raised.value) == (
        f"{path} cannot be read with the guessed column mapping. No column is chosen for the Message-ID: "
        "choose the column that contains each e-mail's Message-ID (the file's columns are 'Key', 'Subject')."
    )
    mapping = CsvMapping({CsvColumn.MESSAGE_ID: "Key", CsvColumn.SUBJECT: "Subject"}, CUSTOM_LABEL)
    assert keys(path, mapping) == ["<a@x.example>"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.mbox", None, "not found"),
        ("empty.mbox", b"", "is empty: it holds no messages"),
        ("one.eml", MESSAGE, "is a single message: choose the folder that contains it"),
        ("one", MESSAGE, "is a single message"),
        ("mail.msg", OLE_SIGNATURE + b"\x00" * 64, "is an Outlook .msg message, which is not read"),
        ("report.pdf", b"%PDF-1.7\n", "a PDF document"),
        ("table.txt", b"a,b,c\n1,2,3\n", "perhaps a CSV file"),
        ("archive.mbox.gz", b"\x1f\x8b\x08\x00", "is gzip-compressed data: decompress the file"),
    ],
)
def test_registry__file_that_is_no_source(
    tmp_path: Path, name: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(SourceError) as raised:
        detect_source(path)

    assert str(raised.value).startswith(str(path))
    assert expected in str(raised.value)


def test_registry__folder_without_mail(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("text")

    with pytest.raises(SourceError) as raised:
        detect_source(tmp_path)

    assert str(raised.value) == f"{tmp_path} contains no .eml files, in it or in its subfolders"


def test_registry__folder_of_csv_exports_names_one(tmp_path: Path) -> None:
    for name in ("b.csv", "a.CSV"):
        (tmp_path / name).write_text("Message-ID,Subject\n<a@x.example>,hi\n")

    with pytest.raises(SourceError) as raised:
        detect_source(tmp_path)

    assert str(raised.value) == (
        f"{tmp_path} is a folder of CSV files, and a CSV export is read one file at a time: choose one of "
        f"them, such as {tmp_path / 'a.CSV'}"
    )


def test_registry__parent_of_maildirs_names_them(tmp_path: Path) -> None:
    for name in ("cur", "new"):
        (tmp_path / "work" / name).mkdir(parents=True)

    with pytest.raises(SourceError) as raised:
        detect_source(tmp_path)

    assert str(raised.value) == (
        f"{tmp_path} is not a Maildir folder (it contains no cur/ or new/ folder): choose one of the "
        "Maildirs inside it (work)"
    )


def test_registry__folder_of_outlook_messages(tmp_path: Path) -> None:
    (tmp_path / "a.msg").write_bytes(OLE_SIGNATURE)

    with pytest.raises(SourceError, match=r"contains only Outlook \.msg files \(1\), which are not read"):
        read_source(tmp_path)


def test_registry__mailbox_error_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "x.mbox"
    path.write_bytes(b"%PDF-1.7\n")

    with pytest.raises(MailboxError) as raised:
        read_source(path)

    assert isinstance(raised.value, SourceError)


def test_describe_source__every_kind() -> None:
    assert [describe_source(kind) for kind in SourceKind] == [
        "mbox file",
        "Maildir folder",
        "folder of .eml files",
        "CSV export",
    ]
