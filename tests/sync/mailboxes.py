"""Small mbox files of generated messages for the sync tests."""

from __future__ import annotations

from pathlib import Path


def write_mbox(path: Path, count: int, prefix: str = "engine", subject: str | None = None) -> Path:
    """Write an mbox of ``count`` messages keyed <prefix-N@x.example>, from a user to a Contact.

    Each message's Subject is ``subject``, or "Message N" without it.
    """
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            out.write(
                f"From rita@sales.example Mon Jan  1 10:00:00 2024\n"
                f"Message-ID: <{prefix}-{number}@x.example>\n"
                "From: Rita Rep <rita@sales.example>\n"
                "To: Carla <carla@customer.example>\n"
                f"Subject: {subject if subject is not None else f'Message {number}'}\n"
                "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
                "\n"
                "Body.\n"
            )
    return path
