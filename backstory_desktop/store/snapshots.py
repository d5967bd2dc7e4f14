"""Snapshots of the Tasks a duplicate resolution touches, written before the org is changed.

One JSON file per resolution, in the data folder under ``snapshots/<org id>/``. A
snapshot contains every field read of every touched Task (IsDeleted included), the
plans that were applied, and each Task's outcome, so that undo can restore Tasks
from the recycle bin and put every changed value back. The files contain org data,
so they are owner-only (0600) in an owner-only folder, and each write replaces
the file in one step through a temporary file, so a crash never leaves half a snapshot.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backstory_desktop.core.resolution import ResolutionPlan
from backstory_desktop.store import paths

log = logging.getLogger(__name__)

SNAPSHOT_FOLDER = "snapshots"
OWNER_ONLY_FILE_MODE = paths.OWNER_ONLY_FILE_MODE
# The status of a snapshot: written before any change, then applied (every group), partly
# applied (some groups failed or the run stopped), undone, or partly undone (undo stopped, or
# some Tasks could not be restored).
WRITTEN = "written"
APPLIED = "applied"
PARTLY_APPLIED = "partly applied"
UNDONE = "undone"
PARTLY_UNDONE = "partly undone"
STATUSES = (WRITTEN, APPLIED, PARTLY_APPLIED, UNDONE, PARTLY_UNDONE)
# The version of the file's layout, so that a later release can read older snapshots.
FORMAT_VERSION = 1

# An org Id and a snapshot Id become file and folder names, so only letters, digits and "-" pass.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


class SnapshotError(Exception):
    """An error on a snapshot file that cannot be read or written.

    The message names the file, what is wrong and what to do.
    """


@dataclass
class Snapshot:
    """The Tasks of one resolution as they were before it, what it planned, and how it went.

    ``records`` maps each touched Task's Id to every field read before the change.
    ``outcomes`` maps each Task's Id to None once written, or to Salesforce's reason.
    ``group_outcomes`` maps each group's Id to None once resolved, or to the reason it failed.
    ``undo_outcomes`` maps each Task's Id to None once undo put it back, or to the reason it could not.
    """

    snapshot_id: str
    org_id: str
    username: str
    created_at: str
    key_field: str
    plans: list[dict[str, Any]]
    records: dict[str, dict[str, object]]
    status: str = WRITTEN
    outcomes: dict[str, str | None] = field(default_factory=dict)
    group_outcomes: dict[str, str | None] = field(default_factory=dict)
    undo_outcomes: dict[str, str | None] = field(default_factory=dict)
    undone_at: str = ""
    path: Path | None = None
    ran_group_ids: list[str] | None = None
    """The groups the resolution started writing, or None in a file that predates this list."""

    @property
    def resolution_plans(self) -> list[ResolutionPlan]:
        """The plans of the snapshot as ResolutionPlan values."""
        return [ResolutionPlan.from_json(plan) for plan in self.plans]

    def as_json(self) -> dict[str, Any]:
        """Return the snapshot as the file stores it."""
        return {
            "format": FORMAT_VERSION,
            "snapshot_id": self.snapshot_id,
            "org_id": self.org_id,
            "username": self.username,
            "created_at": self.created_at,
            "key_field": self.key_field,
            "status": self.status,
            "plans": self.plans,
            "records": self.records,
            "outcomes": self.outcomes,
            "group_outcomes": self.group_outcomes,
            "undo_outcomes": self.undo_outcomes,
            "undone_at": self.undone_at,
            "ran_groups": self.ran_group_ids,
        }


def new_snapshot(org_id: str, username: str, key_field: str, plans: list[ResolutionPlan],
                 records: Mapping[str, Mapping[str, object]]) -> Snapshot:
    """Return a new snapshot, not yet written, with an Id that sorts by creation time."""
    now = datetime.now(UTC)
    snapshot_id = f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
    return Snapshot(
        snapshot_id=snapshot_id,
        org_id=_safe_name(org_id, "org Id"),
        username=username,
        created_at=now.isoformat(timespec="seconds"),
        key_field=key_field,
        plans=[plan.as_json() for plan in plans],
        records={record_id: dict(values) for record_id, values in records.items()},
        ran_group_ids=[],
    )


def snapshot_folder(org_id: str) -> Path:
    """Return the folder of an org's snapshots (not created here)."""
    return paths.data_dir() / SNAPSHOT_FOLDER / _safe_name(org_id, "org Id")


def write_snapshot(snapshot: Snapshot) -> Path:
    """Write ``snapshot`` to its file (owner-only, replaced in one step) and return the path.

    Raises SnapshotError when the folder or the file cannot be written, and the
    caller must then make no change to the org.
    """
    folder = snapshot_folder(snapshot.org_id)
    path = folder / f"{_safe_name(snapshot.snapshot_id, 'snapshot Id')}.json"
    try:
        paths.ensure_private_dir(folder.parent)
        paths.ensure_private_dir(folder)
        paths.write_private_file(path, json.dumps(snapshot.as_json(), indent=1, ensure_ascii=False))
    except OSError as error:
        raise SnapshotError(
            f"The snapshot {path} cannot be written ({error.strerror or error}), so nothing was changed "
            "in the org: check that the data folder belongs to your user and the disk has room."
        ) from error
    snapshot.path = path
    log.info("Wrote snapshot %s of %d Tasks (status %s)", snapshot.snapshot_id, len(snapshot.records),
             snapshot.status)
    return path


def update_snapshot(snapshot: Snapshot) -> Path:
    """Write the snapshot's new status and outcomes over its file.

    Raises SnapshotError when the file cannot be replaced, and the file then keeps its last written
    contents.
    """
    path = snapshot.path
    if path is None:
        return write_snapshot(snapshot)
    try:
        paths.write_private_file(path, json.dumps(snapshot.as_json(), indent=1, ensure_ascii=False))
    except OSError as error:
        raise SnapshotError(
            f"The snapshot {path} could not be updated ({error.strerror or error}), so it keeps what it "
            "contained before: check that the data folder belongs to your user and the disk has room."
        ) from error
    log.info("Updated snapshot %s (status %s)", snapshot.snapshot_id, snapshot.status)
    return path


def load_snapshot(path: Path) -> Snapshot:
    """Read a snapshot file. Raises SnapshotError for one that is missing, unreadable or damaged."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SnapshotError(f"The snapshot {path} cannot be read ({error.strerror or error}); check that "
                            "the file exists and belongs to your user.") from error
    except ValueError as error:
        raise SnapshotError(f"The snapshot {path} is damaged ({error}), so it cannot be undone; keep the "
                            "file for the record.") from error
    try:
        return _snapshot_from(values, path)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SnapshotError(f"The snapshot {path} is damaged (missing or invalid {error}), so it cannot be "
                            "undone; keep the file for the record.") from error


def _snapshot_from(values: Any, path: Path) -> Snapshot:
    if not isinstance(values, dict):
        raise TypeError("top-level object")
    status = str(values["status"])
    if status not in STATUSES:
        raise ValueError(f"status {status!r}")
    snapshot = Snapshot(
        snapshot_id=str(values["snapshot_id"]),
        org_id=str(values["org_id"]),
        username=str(values.get("username", "")),
        created_at=_checked_time(values["created_at"]),
        key_field=str(values["key_field"]),
        plans=[dict(plan) for plan in values["plans"]],
        records={str(key): dict(record) for key, record in dict(values["records"]).items()},
        status=status,
        outcomes=_outcome_map(values.get("outcomes", {})),
        group_outcomes=_outcome_map(values.get("group_outcomes", {})),
        undo_outcomes=_outcome_map(values.get("undo_outcomes", {})),
        undone_at=str(values.get("undone_at", "")),
        path=path,
        ran_group_ids=(None if values.get("ran_groups") is None
                       else [str(item) for item in values["ran_groups"]]),
    )
    snapshot.resolution_plans  # noqa: B018 - reading the plans checks them
    return snapshot


def _checked_time(value: Any) -> str:
    """Return ``value`` when it is an ISO 8601 time with a time zone, and raise ValueError otherwise."""
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"created_at {value!r} without a time zone")
    return str(value)


def _outcome_map(values: Any) -> dict[str, str | None]:
    return {str(key): None if value is None else str(value) for key, value in dict(values).items()}


def list_snapshots(org_id: str) -> list[Snapshot]:
    """Return the org's snapshots, newest first.

    A damaged file, or one of another org put in this org's folder, is logged and left out.
    """
    folder = snapshot_folder(org_id)
    if not folder.is_dir():
        return []
    snapshots: list[Snapshot] = []
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            snapshots.append(_of_org(load_snapshot(path), org_id))
        except SnapshotError as error:
            log.warning("Snapshot left out of the list: %s", error)
    return snapshots


def _of_org(snapshot: Snapshot, org_id: str) -> Snapshot:
    """Return ``snapshot`` when it belongs to ``org_id``, and raise SnapshotError otherwise."""
    if snapshot.org_id != org_id:
        raise SnapshotError(f"The snapshot {snapshot.path} belongs to the org {snapshot.org_id}, not "
                            f"this org {org_id}; undo it while connected to that org.")
    return snapshot


def find_snapshot(org_id: str, snapshot_id: str) -> Snapshot:
    """Return the org's snapshot ``snapshot_id``. Raises SnapshotError when there is none."""
    path = snapshot_folder(org_id) / f"{_safe_name(snapshot_id, 'snapshot Id')}.json"
    if not path.is_file():
        raise SnapshotError(f"No snapshot {snapshot_id} of this org is in {path.parent}; list the "
                            "snapshots with conflicts history.")
    return _of_org(load_snapshot(path), org_id)


def _safe_name(value: str, what: str) -> str:
    if not _SAFE_NAME.fullmatch(value):
        raise SnapshotError(f"{value!r} is not a valid {what} for a snapshot file name.")
    return value
