"""Task records as read from an org, shared by the sync plan and the duplicate scan."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One Task row with the fields that matter for keys and duplicates.

    ``key`` is the raw value of the Message-ID field exactly as stored, or
    None when the Task has none. Dates are ISO 8601 strings as Salesforce
    returns them. A full scan keeps ``description`` empty and sets only
    ``description_digest`` (see core.survivor.description_digest), so that a
    million records fit in memory; ``writer`` names who wrote the Task (see
    core.survivor.writer_label).
    """

    id: str
    key: str | None
    subject: str = ""
    description: str = ""
    who_id: str | None = None
    what_id: str | None = None
    owner_id: str | None = None
    owner_name: str = ""
    created_by_id: str | None = None
    created_by_name: str = ""
    created_date: str = ""
    activity_date: str | None = None
    subtype: str | None = None
    created_by_backstory: bool = False
    is_deleted: bool = False
    is_archived: bool = False
    description_digest: str = ""
    writer: str = ""


@dataclass(frozen=True)
class UserRef:
    """A Salesforce User as the planner needs it: who owns a Task."""

    id: str
    name: str
    username: str
    email: str
    is_active: bool
