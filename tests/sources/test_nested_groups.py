"""A message whose address header nests groups deeply enough to make Python's getaddresses recurse out.

The sample is MimeKit's stack-overflow.txt from the real mail corpus: its To header nests hundreds of
groups, while its Message-ID header is plain.
"""

from __future__ import annotations

import re
from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.sources.registry import read_source

SAMPLE = Path("mimekit", "messages", "stack-overflow.txt")
NEXT_MESSAGE = (b"From: Ann <ann@example.com>\nTo: bob@example.com\nSubject: after\n"
                b"Message-ID: <after@x.example>\n\nBody.\n")


def _read_folder(folder: Path, nested: bytes) -> list[MailActivity | SourceProblem]:
    folder.mkdir()
    (folder / "1-nested.eml").write_bytes(nested)
    (folder / "2-after.eml").write_bytes(NEXT_MESSAGE)
    return list(read_source(folder))


def test_nested_groups__reason_names_message_id(mail_corpus: Path, tmp_path: Path) -> None:
    nested = (mail_corpus / SAMPLE).read_bytes()

    problem, after = _read_folder(tmp_path / "mail", nested)

    assert isinstance(problem, SourceProblem)
    assert problem.raw_header == "<aasfasdfasdfa@bb>"
    assert problem.reason.startswith("the message <aasfasdfasdfa@bb> could not be read because its To "
                                     "header nests too deeply")
    assert problem.reason.endswith("so log this e-mail by hand or remove the broken addresses from the file")
    assert isinstance(after, MailActivity)
    assert after.message_id.key == "<after@x.example>"


def test_nested_groups__no_message_id_header(mail_corpus: Path, tmp_path: Path) -> None:
    nested = re.sub(rb"(?m)^Message-ID:.*\r?\n", b"", (mail_corpus / SAMPLE).read_bytes())

    problem, _ = _read_folder(tmp_path / "mail", nested)

    assert isinstance(problem, SourceProblem)
    assert problem.raw_header is None
    assert problem.reason.startswith("the message could not be read because its To header nests too deeply")


def test_nested_groups__unprintable_message_id_left_out(mail_corpus: Path, tmp_path: Path) -> None:
    nested = (mail_corpus / SAMPLE).read_bytes().replace(b"<aasfasdfasdfa@bb>", b"<a\x1b[2Jb@bb>")

    problem, _ = _read_folder(tmp_path / "mail", nested)

    assert isinstance(problem, SourceProblem)
    assert problem.raw_header == "<a\x1b[2Jb@bb>"
    assert problem.reason.startswith("the message could not be read because its To header")
