"""Maildir folders and folders of .eml files: order, references, odd files, progress and cancel."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.eml_folder import read_eml_folder
from backstory_desktop.sources.maildir import read_maildir
from backstory_desktop.sources.message_files import OLE_SIGNATURE


def message(number: int, *, subject: str = "hello") -> bytes:
    return (
        f"From: Ann <ann@example.com>\nTo: bob@example.com\nSubject: {subject} {number}\n"
        f"Date: Sat, 3 Jan 2004 01:05:34 +0100\nMessage-ID: <m{number}@x.example>\n\nBody {number}.\n"
    ).encode()


def make_maildir(root: Path) -> Path:
    for name in ("cur", "new", "tmp"):
        (root / name).mkdir(parents=True)
    return root


def keys(items: list[MailActivity | SourceProblem]) -> list[str | None]:
    return [item.message_id.key for item in items if isinstance(item, MailActivity)]


def test_maildir__cur_then_new_sorted_tmp_ignored(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    (root / "new" / "1700000003.M3P1.host").write_bytes(message(3))
    (root / "cur" / "1700000002.M2P1.host:2,S").write_bytes(message(2))
    (root / "cur" / "1700000001.M1P1.host:2,S").write_bytes(message(1))
    (root / "tmp" / "1700000004.M4P1.host").write_bytes(message(4))

    items = list(read_maildir(root))

    assert keys(items) == ["<m1@x.example>", "<m2@x.example>", "<m3@x.example>"]
    assert [item.source_ref for item in items] == [
        "Maildir/cur/1700000001.M1P1.host:2,S",
        "Maildir/cur/1700000002.M2P1.host:2,S",
        "Maildir/new/1700000003.M3P1.host",
    ]


def test_maildir__subfolders_are_read_after_top(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    make_maildir(root / ".Sent")
    (root / "cur" / "1.host:2,S").write_bytes(message(1))
    (root / ".Sent" / "cur" / "2.host:2,S").write_bytes(message(2))

    items = list(read_maildir(root))

    assert keys(items) == ["<m1@x.example>", "<m2@x.example>"]
    assert items[1].source_ref == "Maildir/.Sent/cur/2.host:2,S"


def test_maildir__odd_files_become_problems(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    (root / "cur" / "1.host").write_bytes(b"")
    (root / "cur" / "2.host").write_bytes(b"no headers here\njust text\n")
    (root / "cur" / "3.host").write_bytes(message(3))

    items = list(read_maildir(root))

    assert len(items) == 3
    empty, text, good = items
    assert isinstance(empty, SourceProblem)
    assert empty.reason == "the file is empty"
    assert isinstance(text, SourceProblem)
    assert "no mail headers" in text.reason
    assert isinstance(good, MailActivity)


def test_maildir__empty_maildir_is_rejected(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")

    with pytest.raises(SourceError) as raised:
        read_maildir(root)

    assert str(raised.value) == f"{root} contains no messages: its cur/ and new/ folders are empty"


def test_maildir__parent_of_maildirs_names_them(tmp_path: Path) -> None:
    make_maildir(tmp_path / "mail" / "work")

    with pytest.raises(SourceError) as raised:
        read_maildir(tmp_path / "mail")

    assert "is not a Maildir folder" in str(raised.value)
    assert "(work)" in str(raised.value)


def test_maildir__progress_counts_files_and_cancel_stops(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    for number in range(5):
        (root / "cur" / f"{number}.host").write_bytes(message(number))
    reports: list[tuple[int, int, str]] = []

    items = list(read_maildir(root, progress=lambda done, total, text: reports.append((done, total, text))))

    assert len(items) == 5
    assert reports[0] == (0, 5, "Reading Maildir")
    assert reports[-1] == (5, 5, "Reading Maildir")

    cancel = threading.Event()
    iterator = read_maildir(root, cancel=cancel)
    next(iterator)
    cancel.set()
    with pytest.raises(Cancelled):
        next(iterator)


def test_eml_folder__recursive_sorted_with_references(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    (root / "2024" / "b").mkdir(parents=True)
    (root / "2024" / "b" / "z.eml").write_bytes(message(3))
    (root / "2024" / "a.EML").write_bytes(message(2))
    (root / "0.eml").write_bytes(message(1))
    (root / "notes.txt").write_text("not a message")
    (root / "._0.eml").write_bytes(b"\x00\x05\x16\x07 resource fork")

    items = list(read_eml_folder(root))

    assert keys(items) == ["<m1@x.example>", "<m2@x.example>", "<m3@x.example>"]
    refs = [item.source_ref for item in items]
    assert refs == ["exports/0.eml", "exports/2024/a.EML", "exports/2024/b/z.eml"]


def test_eml_folder__unix_from_and_bom_skipped(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    (root / "a.eml").write_bytes(b"From ann@example.com\r\n" + message(1).replace(b"\n", b"\r\n"))
    (root / "b.eml").write_bytes(b"\xef\xbb\xbf" + message(2))

    assert keys(list(read_eml_folder(root))) == ["<m1@x.example>", "<m2@x.example>"]


def test_eml_folder__unreadable_subfolder_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "exports"
    (root / "locked").mkdir(parents=True)
    (root / "a.eml").write_bytes(message(1))
    scandir = os.scandir

    def scandir_without_permission(path: Path) -> Iterator[os.DirEntry[str]]:
        # Tests may run as root, which chmod cannot lock out, so the denial is made here.
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_without_permission)
    items = list(read_eml_folder(root))

    assert len(items) == 2
    assert isinstance(items[0], MailActivity)
    assert isinstance(items[1], SourceProblem)
    assert items[1].source_ref == "exports/locked"
    assert items[1].reason == "the folder cannot be read: Permission denied"


def test_eml_folder__outlook_msg_is_reported_not_read(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    (root / "a.eml").write_bytes(message(1))
    (root / "b.msg").write_bytes(OLE_SIGNATURE + b"\x00" * 100)
    (root / "c.msg").write_bytes(message(3))

    items = list(read_eml_folder(root))

    assert len(items) == 3
    assert isinstance(items[1], SourceProblem)
    assert items[1].reason.startswith("Outlook .msg files are not read")
    assert isinstance(items[2], SourceProblem)
    assert "rename it to .eml" in items[2].reason


def test_eml_folder__only_msg_files_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "b.msg").write_bytes(OLE_SIGNATURE)

    with pytest.raises(SourceError, match=r"contains only Outlook \.msg files"):
        read_eml_folder(tmp_path)


def test_eml_folder__no_eml_files_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("text")

    with pytest.raises(SourceError) as raised:
        read_eml_folder(tmp_path)

    assert str(raised.value) == f"{tmp_path} contains no .eml files, in it or in its subfolders"


def test_eml_folder__file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "a.eml"
    path.write_bytes(message(1))

    with pytest.raises(SourceError, match="is a file: choose the folder"):
        read_eml_folder(path)


@pytest.mark.parametrize("reader", [read_maildir, read_eml_folder])
def test_message_folder__unreadable_folder_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: Callable[[Path], object]
) -> None:
    root = make_maildir(tmp_path / "mail")
    (root / "cur" / "a.eml").write_bytes(message(1))
    scandir = os.scandir

    def scandir_without_permission(path: Path) -> Iterator[os.DirEntry[str]]:
        # Tests may run as root, which chmod cannot lock out, so the denial is made here.
        if Path(path) == root:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_without_permission)
    with pytest.raises(SourceError) as raised:
        reader(root)

    assert str(raised.value) == f"{root} cannot be read: Permission denied"


# Entries that are not regular files


Items = list[MailActivity | SourceProblem]


def read_within_seconds(read: Callable[[], Items]) -> Items:
    """Run ``read`` in a thread, failing the test instead of hanging when it blocks on a named pipe."""
    result: list[Items] = []
    thread = threading.Thread(target=lambda: result.append(read()), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "reading blocked on an entry that is not a regular file"
    assert result
    return result[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_eml_folder__named_pipe_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.eml").write_bytes(message(1))
    os.mkfifo(folder / "b.eml")
    (folder / "c.eml").write_bytes(message(3))

    items = read_within_seconds(lambda: list(read_eml_folder(folder)))

    assert keys(items) == ["<m1@x.example>", "<m3@x.example>"]
    pipe = items[1]
    assert isinstance(pipe, SourceProblem)
    assert pipe.source_ref == "exports/b.eml"
    assert pipe.reason.startswith("this is a named pipe (FIFO), not a message file, so it is skipped")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_maildir__named_pipe_and_broken_link_skipped(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    (root / "cur" / "1.host:2,S").write_bytes(message(1))
    os.mkfifo(root / "cur" / "2.host:2,S")
    (root / "new" / "3.host").symlink_to(tmp_path / "gone")

    items = read_within_seconds(lambda: list(read_maildir(root)))

    assert keys(items) == ["<m1@x.example>"]
    problems = {item.source_ref: item.reason for item in items if isinstance(item, SourceProblem)}
    assert problems["Maildir/cur/2.host:2,S"].startswith("this is a named pipe (FIFO)")
    assert problems["Maildir/new/3.host"].startswith("this is a broken link")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_maildir__only_pipes_and_broken_links_rejected(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    os.mkfifo(root / "cur" / "1.host:2,S")
    os.mkfifo(root / "cur" / "2.host:2,S")
    (root / "new" / "3.host").symlink_to(tmp_path / "gone")

    with pytest.raises(SourceError) as raised:
        read_maildir(root)

    message_text = str(raised.value)
    assert "contains no readable messages" in message_text
    assert "(1 broken link, 2 named pipes (FIFO))" in message_text
    assert "are empty" not in message_text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_eml_folder__only_named_pipes_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    os.mkfifo(folder / "a.eml")

    with pytest.raises(SourceError) as raised:
        read_eml_folder(folder)

    assert "contains no readable .eml files: 1 of its entries" in str(raised.value)
