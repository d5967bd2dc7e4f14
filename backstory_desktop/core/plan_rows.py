"""The rows of a sync plan: the action of each message, why, and the key field's rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from backstory_desktop.core.records import TaskRecord


class Action(StrEnum):
    """The change the sync would make for one message."""

    CREATE = "create"
    UPDATE = "update"
    CONFLICT = "conflict"
    INVALID = "invalid"
    EXCLUDED = "excluded"


class ReasonCode(StrEnum):
    """The cause of a row's action, for grouping and counting rows. The row's reason gives it in words."""

    NEW_KEY = "new_key"  # create: no Task has the key
    UPDATE = "update"  # update: a Task has the key in its canonical spelling
    UPDATE_STORED_SPELLING = "update_stored_spelling"  # update: the Task has another spelling of the key
    SEVERAL_TASKS = "several_tasks"  # conflict: more than one live Task has the key
    RECYCLE_BIN = "recycle_bin"  # conflict: only a deleted Task has the key
    REPEATED_KEY = "repeated_key"  # excluded: an earlier message of the source has the key
    NO_KEY = "no_key"  # invalid: the Message-ID gives no usable key
    UNREADABLE = "unreadable"  # invalid: the source could not give a message here
    UNKNOWN_REFERENCE = "unknown_reference"  # invalid: an Id the source names is not in the org


@dataclass(frozen=True)
class PlanRow:
    """One message and what would happen to it.

    ``upsert_key`` is the spelling sent as the external ID: the canonical key
    for a create, and the spelling the existing Task already holds for an
    update, so that the upsert finds that Task instead of adding a second one.
    ``record`` contains the Task fields to send, without the key. For an update,
    ``existing`` starts with the Task it will change. ``reason_code`` names
    the kind of ``reason``, which may add warnings after its first clause.
    """

    action: Action
    source_ref: str
    key: str | None
    subject: str
    reason: str
    upsert_key: str | None = None
    existing: tuple[TaskRecord, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)
    reason_code: ReasonCode = ReasonCode.NEW_KEY


@dataclass(frozen=True)
class FieldRules:
    """The settings of the org's key field and flag field that matching needs."""

    api_name: str
    case_sensitive: bool
    flag_field: str | None = None

    def fold(self, key: str) -> str:
        """Return the form under which the field treats two keys as equal.

        Salesforce documents that a case-insensitive unique field matches "ABC123" with
        "abc123", but not that it folds "ß" to "ss" or "ﬁ" to "fi" as ``str.casefold`` does.
        ``str.lower`` is the narrower rule, so a key is excluded as a repeat of another key
        only when both are equal in lower case.
        https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/apexcode/langCon_apex_dml_examples_upsert.htm
        """
        return key if self.case_sensitive else key.lower()
