"""The mbox variants: Content-Length bodies (mboxcl, mboxcl2), quoting, CRLF and "From " lines in bodies."""

from __future__ import annotations

from pathlib import Path

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.sources.mbox import read_mbox

SEPARATOR = b"From sender@example.com Sat Jan  3 01:05:34 2004\n"
# A body line that has the shape of a separator, followed by a line that looks like a header.
SEPARATOR_IN_BODY = b"From bob@example.com Mon Jan  5 10:00:00 2004\nSubject: not a header\n"


def counted_message(message_id: str, body: bytes, *, length: int | None = None) -> bytes:
    header = (
        f"From: Ann <ann@example.com>\nSubject: counted\nMessage-ID: {message_id}\n"
        f"Content-Length: {len(body) if length is None else length}\n\n"
    ).encode()
    return SEPARATOR + header + body


def keys_and_bodies(path: Path) -> list[tuple[str | None, str]]:
    items = list(read_mbox(path))
    assert all(isinstance(item, MailActivity) for item in items), items
    return [(item.message_id.key, item.body_text) for item in items if isinstance(item, MailActivity)]


def test_mboxcl2__separator_in_counted_body_is_text(tmp_path: Path) -> None:
    body = b"Before.\n" + SEPARATOR_IN_BODY + b"After.\n"
    path = tmp_path / "cl2.mbox"
    second = counted_message("<two@x.example>", b"Two.\n")
    path.write_bytes(counted_message("<one@x.example>", body) + b"\n" + second)

    read = keys_and_bodies(path)

    assert [key for key, _ in read] == ["<one@x.example>", "<two@x.example>"]
    assert "Subject: not a header" in read[0][1]
    assert read[0][1].startswith("Before.\nFrom bob@example.com")
    assert read[0][1].endswith("After.")


def test_mboxcl2__unquoted_body_keeps_its_quote_marks(tmp_path: Path) -> None:
    body = b"From here on, we agree.\n>From a quote\n"
    path = tmp_path / "cl2.mbox"
    path.write_bytes(counted_message("<one@x.example>", body))

    assert keys_and_bodies(path) == [("<one@x.example>", "From here on, we agree.\n>From a quote")]


def test_mboxcl__quoted_body_is_unquoted(tmp_path: Path) -> None:
    body = b">From the start\nplain\n"
    path = tmp_path / "cl.mbox"
    path.write_bytes(counted_message("<one@x.example>", body))

    assert keys_and_bodies(path) == [("<one@x.example>", "From the start\nplain")]


def test_content_length__wrong_count_falls_back_to_lines(tmp_path: Path) -> None:
    body = b"Line one.\nFrom here on, we agree.\n"
    path = tmp_path / "wrong.mbox"
    path.write_bytes(
        counted_message("<one@x.example>", body, length=len(body) - 3)
        + b"\n"
        + counted_message("<two@x.example>", b"Two.\n", length=400)
    )

    read = keys_and_bodies(path)

    assert [key for key, _ in read] == ["<one@x.example>", "<two@x.example>"]
    assert read[0][1] == "Line one.\nFrom here on, we agree."


def test_content_length__count_past_end_ignored(tmp_path: Path) -> None:
    path = tmp_path / "past.mbox"
    path.write_bytes(counted_message("<one@x.example>", b"Short.\n", length=10_000))

    assert keys_and_bodies(path) == [("<one@x.example>", "Short.")]


def test_content_length__crlf_counts_are_trusted(tmp_path: Path) -> None:
    body = b"Before.\r\n" + SEPARATOR_IN_BODY.replace(b"\n", b"\r\n") + b"After.\r\n"
    first = counted_message("<one@x.example>", body).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    path = tmp_path / "crlf.mbox"
    path.write_bytes(first + b"\r\n" + counted_message("<two@x.example>", b"Two.\n").replace(b"\n", b"\r\n"))

    read = keys_and_bodies(path)

    assert [key for key, _ in read] == ["<one@x.example>", "<two@x.example>"]
    assert "Subject: not a header" in read[0][1]
    assert "\r" not in read[0][1]


def test_content_length__last_message_at_end(tmp_path: Path) -> None:
    body = b"Last.\n" + SEPARATOR_IN_BODY
    path = tmp_path / "last.mbox"
    first = counted_message("<one@x.example>", b"One.\n")
    path.write_bytes(first + b"\n" + counted_message("<two@x.example>", body))

    read = keys_and_bodies(path)

    assert [key for key, _ in read] == ["<one@x.example>", "<two@x.example>"]
    assert read[1][1].endswith("Subject: not a header")


def test_content_length__netscape_mailbox_keeps_29_messages(mail_corpus: Path) -> None:
    items = list(read_mbox(mail_corpus / "mimekit" / "mbox" / "content-length.mbox.txt"))

    assert len(items) == 29
    assert not [item for item in items if isinstance(item, SourceProblem)]


def test_mbox__from_paragraph_never_makes_a_fragment(tmp_path: Path) -> None:
    # Without Content-Length, a paragraph starting "From " stays in the body of its message.
    body = "We met.\n\nFrom here on, we agree.\n\nFrom the desk of Ann Lee\nRegards\n"
    data = (
        SEPARATOR
        + f"From: a@x.example\nSubject: deal\nMessage-ID: <deal@x.example>\n\n{body}".encode()
        + b"\n"
        + SEPARATOR
        + b"From: b@x.example\nSubject: next\nMessage-ID: <next@x.example>\n\nNext.\n"
    )
    path = tmp_path / "k21.mbox"
    path.write_bytes(data)

    read = keys_and_bodies(path)

    assert read == [("<deal@x.example>", body.strip()), ("<next@x.example>", "Next.")]


def test_mbox__mboxo_and_mboxrd_read_alike(tmp_path: Path) -> None:
    mboxo = tmp_path / "o.mbox"
    mboxrd = tmp_path / "rd.mbox"
    header = b"From: a@x.example\nSubject: q\nMessage-ID: <q@x.example>\n\n"
    mboxo.write_bytes(SEPARATOR + header + b">From the start\nend\n")
    mboxrd.write_bytes(SEPARATOR + header + b">From the start\nend\n")

    assert keys_and_bodies(mboxo) == keys_and_bodies(mboxrd) == [("<q@x.example>", "From the start\nend")]
