"""Every message of the real mail corpus goes through read_source: keyed, or reported with its reason.

The corpus contains .eml files (read as a folder), mbox files, single messages
named .txt (copied into a Maildir here) and mime4j's plain-text messages named
.msg (copied into a folder of .eml files here, since .msg files are not read).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.sources.message import read_headers
from backstory_desktop.sources.registry import SourceKind, detect_source, read_source

MBOX_FILES = {
    "cpython-test_email/mailbox_01.mbox": 1,
    "james-mime4j/mbox/src/test/resources/test-1/mbox.rlug": 5,
    "linux-hyperv-list-archive/linux-hyperv.sample.mboxrd": 198,
    "mimekit/mbox/content-length.mbox.txt": 29,
    "mimekit/mbox/issue1189.mbox.txt": 4,
    "mimekit/mbox/simple.mbox.txt": 3,
    "mimekit/mbox/unmunged.mbox.txt": 2,
}
NOT_MAIL_SUFFIXES = {".json", ".md", ".csv"}


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(path for path in corpus.rglob("*") if path.is_file())


def single_messages(corpus: Path, suffix: str) -> list[Path]:
    return [
        path
        for path in corpus_files(corpus)
        if path.suffix == suffix and str(path.relative_to(corpus)) not in MBOX_FILES
    ]


def raw_message_id(path: Path) -> str | None:
    data = path.read_bytes()
    if data.startswith(b"From "):
        data = data[data.find(b"\n") + 1 :]
    headers = read_headers(data.removeprefix(b"\xef\xbb\xbf"))
    values = [value for name, value in headers if name == "message-id"]
    return values[0] if values else None


def assert_keyed_or_reported(item: MailActivity | SourceProblem) -> None:
    if isinstance(item, MailActivity):
        result = item.message_id
        if result.key is None:
            assert result.problem, item.source_ref
        else:
            assert result.problem is None, item.source_ref
            assert result.key.startswith("<"), item.source_ref
            assert result.key.endswith(">"), item.source_ref
            assert not any(char.isspace() for char in result.key), item.source_ref
    else:
        assert item.reason, item.source_ref


def test_corpus__every_file_has_a_route(mail_corpus: Path) -> None:
    routed = set(MBOX_FILES)
    routed |= {str(path.relative_to(mail_corpus)) for path in single_messages(mail_corpus, ".eml")}
    routed |= {str(path.relative_to(mail_corpus)) for path in single_messages(mail_corpus, ".txt")}
    routed |= {str(path.relative_to(mail_corpus)) for path in single_messages(mail_corpus, ".msg")}
    unrouted = [
        str(path.relative_to(mail_corpus))
        for path in corpus_files(mail_corpus)
        if path.suffix not in NOT_MAIL_SUFFIXES and path.name != "COPYING"
        and str(path.relative_to(mail_corpus)) not in routed
    ]

    assert unrouted == []


def test_corpus__eml_files_as_one_folder(mail_corpus: Path) -> None:
    eml_files = single_messages(mail_corpus, ".eml")
    msg_files = single_messages(mail_corpus, ".msg")
    by_ref = {f"{mail_corpus.name}/{path.relative_to(mail_corpus).as_posix()}": path for path in eml_files}

    assert detect_source(mail_corpus) is SourceKind.EML_FOLDER
    items = list(read_source(mail_corpus))

    assert len(items) == len(eml_files) + len(msg_files)
    for item in items:
        assert_keyed_or_reported(item)
        path = by_ref.get(item.source_ref)
        if path is None:
            assert isinstance(item, SourceProblem)
            assert ".msg" in item.reason
            continue
        raw = raw_message_id(path)
        if isinstance(item, MailActivity):
            assert item.message_id.raw == (raw or ""), item.source_ref
        else:
            assert item.raw_header == raw, item.source_ref
    activities = [item for item in items if isinstance(item, MailActivity)]
    assert len(activities) >= 300
    assert sum(1 for item in activities if item.message_id.key is not None) >= 280


def test_corpus__txt_messages_as_a_maildir(mail_corpus: Path, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for name in ("cur", "new", "tmp"):
        (maildir / name).mkdir(parents=True)
    sources = {}
    for number, path in enumerate(single_messages(mail_corpus, ".txt")):
        name = f"{1700000000 + number}.M{number}P1.corpus:2,S"
        shutil.copyfile(path, maildir / "cur" / name)
        sources[f"Maildir/cur/{name}"] = path

    items = list(read_source(maildir))

    assert len(items) == len(sources) > 60
    for item in items:
        assert_keyed_or_reported(item)
        raw = raw_message_id(sources[item.source_ref])
        if isinstance(item, SourceProblem):
            assert item.raw_header == raw, item.source_ref
        else:
            assert item.message_id.raw == (raw or ""), item.source_ref
    nested = next(item for item in items if sources[item.source_ref].name == "stack-overflow.txt")
    assert isinstance(nested, SourceProblem)
    assert "nests too deeply" in nested.reason
    assert nested.raw_header == "<aasfasdfasdfa@bb>"


def test_corpus__mime4j_msg_files_renamed_to_eml(mail_corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mime4j"
    folder.mkdir()
    for number, path in enumerate(single_messages(mail_corpus, ".msg")):
        shutil.copyfile(path, folder / f"{number:03d}-{path.stem}.eml")

    items = list(read_source(folder))

    assert len(items) == 81
    for item in items:
        assert_keyed_or_reported(item)
    keyed = {item.message_id.key for item in items if isinstance(item, MailActivity)}
    assert "<102.10200000000105>" in keyed


@pytest.mark.parametrize(("relative", "count"), sorted(MBOX_FILES.items()))
def test_corpus__mbox_files(mail_corpus: Path, relative: str, count: int) -> None:
    path = mail_corpus / relative

    assert detect_source(path) is SourceKind.MBOX
    items = list(read_source(path))

    assert len(items) == count
    for item in items:
        assert_keyed_or_reported(item)
    assert Counter(type(item) for item in items)[SourceProblem] == 0
