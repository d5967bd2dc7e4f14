"""Mail activities as read from a source, before anything is matched or written.

A source (an mbox file, a folder of messages) yields ``MailActivity`` for
every message it could read and ``SourceProblem`` for what it could not. The
planner turns activities into Task creates and updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from backstory_desktop.core.message_id import MessageIdKey


@dataclass(frozen=True)
class Participant:
    """A sender or recipient: display name and lower-cased e-mail address."""

    name: str
    email: str


@dataclass(frozen=True)
class MailActivity:
    """One message as the sync needs it.

    ``source_ref`` locates the message for the admin, for example
    "sample.mbox, message 12 (byte 34567)". ``message_id.key`` is None when
    the message has no usable Message-ID; the planner reports it as invalid.
    ``who_id`` and ``owner_id`` are a Contact or Lead Id and an owner User Id
    when the source names them (a Data Loader Task export does); the planner
    prefers them over matching e-mail addresses.
    """

    source_ref: str
    message_id: MessageIdKey
    subject: str
    sender: Participant | None
    recipients: tuple[Participant, ...]
    sent_at: datetime | None
    body_text: str
    who_id: str | None = None
    owner_id: str | None = None


class ProblemKind(StrEnum):
    """The fault that kept a part of a source from becoming a message, so the plan counts it by fault."""

    NO_KEY = "no_key"  # the Message-ID is missing or gives no usable key
    BAD_REFERENCE = "bad_reference"  # an Id the source names (a WhoId, an OwnerId) is not a usable Id
    UNREADABLE = "unreadable"  # anything else: the bytes or the row could not be read


@dataclass(frozen=True)
class SourceProblem:
    """A part of a source that could not be read as a message, and why.

    ``raw_header`` is the raw Message-ID header when one was found. ``kind``
    records whether the key, a named Id or the reading itself failed.
    """

    source_ref: str
    reason: str
    raw_header: str | None
    kind: ProblemKind = ProblemKind.UNREADABLE
