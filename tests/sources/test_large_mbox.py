"""A large mbox is read in bounded memory: the reader streams, it never keeps all messages."""

from __future__ import annotations

import base64
import random
import tracemalloc
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.sources.registry import read_source

TARGET_BYTES = 200 * 1024 * 1024
PEAK_LIMIT_BYTES = 64 * 1024 * 1024


def write_large_mbox(path: Path) -> int:
    """Write messages with a text part and a 60 KB attachment until the file reaches TARGET_BYTES."""
    attachment = base64.encodebytes(random.Random(7).randbytes(60_000))
    count = 0
    with path.open("wb") as stream:
        while stream.tell() < TARGET_BYTES:
            count += 1
            stream.write(b"From sender@example.com Sat Jan  3 01:05:34 2004\n")
            stream.write(
                (
                    f"From: Ann <ann@example.com>\nTo: bob@example.com\nSubject: message {count}\n"
                    f"Message-ID: <m{count}@x.example>\nDate: Sat, 3 Jan 2004 01:05:34 +0100\n"
                    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
                    f"--b\nContent-Type: text/plain\n\nHello {count}.\nFrom here on, we agree.\n\n"
                    "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                ).encode()
            )
            stream.write(attachment)
            stream.write(b"--b--\n\n")
    return count


@pytest.mark.slow
def test_large_mbox__read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "large.mbox"
    written = write_large_mbox(path)
    read = 0
    last_key = None

    tracemalloc.start()
    try:
        for item in read_source(path):
            assert isinstance(item, MailActivity)
            read += 1
            last_key = item.message_id.key
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert path.stat().st_size >= TARGET_BYTES
    assert read == written
    assert last_key == f"<m{written}@x.example>"
    assert peak < PEAK_LIMIT_BYTES
