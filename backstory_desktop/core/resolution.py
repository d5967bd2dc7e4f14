"""Plan how a group of duplicate Tasks is resolved: one survivor, its empty fields filled, the others deleted.

Salesforce cannot merge Tasks (``merge()`` does not take Task), so a resolution
keeps one Task, copies into its empty fields what the others contain, and deletes
the others. Deleted Tasks stay in the recycle bin for RECYCLE_BIN_DAYS days, and a Unique
field's index counts them, so each Task that is deleted first has its key
cleared. A member already in the recycle bin is restored, cleared and deleted
again. Intentional clones (one Task per related record) keep every Task and
only clear the key on all but one.

Plans are built from values read just before they are shown, never from the
scan alone. Nothing here talks to the org.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from backstory_desktop.core.duplicates import DuplicateGroup, GroupKind

FILLABLE_FIELDS: tuple[str, ...] = ("Subject", "Description", "WhoId", "WhatId", "ActivityDate")
"""Task fields a survivor may take from the others when its own is empty.

The Message-ID field is fillable too, named KEY_FIELD_CHOICE in a choice because its
API name is known only at run time. TaskSubtype is set on create only, so it is never filled.
"""
KEY_FIELD_CHOICE = "key"
"""The name used for the Message-ID field in ``ResolutionChoice.fill_fields``."""

RECYCLE_BIN_DAYS = 15
"""Days Salesforce keeps a deleted record in the recycle bin before purging it.

Apex Developer Guide, "Restoring Deleted Records":
https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/apexcode/langCon_apex_dml_examples_undelete.htm
"""

# Shown values are cut to this many characters in the diff lines.
SHOWN_VALUE_LENGTH = 60


class ResolveAction(StrEnum):
    """The handling of every Task of a group except the survivor."""

    DELETE_OTHERS = "delete"
    CLEAR_KEY_ON_OTHERS = "clear-key"  # for intentional clones: every Task stays


@dataclass(frozen=True)
class ResolutionChoice:
    """The admin's choice for one group: the surviving Task, the fields it takes, what happens to the rest."""

    group_id: str
    survivor_id: str
    fill_fields: tuple[str, ...] = ()
    action: ResolveAction = ResolveAction.DELETE_OTHERS


@dataclass(frozen=True)
class FieldFill:
    """A value the survivor takes into an empty field, and the Task it comes from."""

    field: str
    value: object
    from_id: str


@dataclass(frozen=True)
class ResolutionPlan:
    """The writes that resolve one group, in the order they are sent.

    ``undelete_first_ids`` are restored from the recycle bin before anything else,
    ``clear_key_ids`` get the key field set to null, the survivor takes ``fills``,
    and ``delete_ids`` are deleted last. ``cleared_keys`` contains the key each cleared
    Task had, for the diff lines.
    """

    group_id: str
    survivor_id: str
    fills: tuple[FieldFill, ...]
    clear_key_ids: tuple[str, ...]
    delete_ids: tuple[str, ...]
    undelete_first_ids: tuple[str, ...]
    key_field: str = ""
    action: ResolveAction = ResolveAction.DELETE_OTHERS
    cleared_keys: tuple[tuple[str, str], ...] = ()
    kind: GroupKind = GroupKind.EXACT

    @property
    def touched_ids(self) -> tuple[str, ...]:
        """Every Task the plan writes to, survivor first, each once."""
        ids = [self.survivor_id] if self.fills else []
        ids += [*self.undelete_first_ids, *self.clear_key_ids, *self.delete_ids]
        return tuple(dict.fromkeys(ids))

    @property
    def has_changes(self) -> bool:
        """Tell whether the plan writes anything at all."""
        return bool(self.fills or self.clear_key_ids or self.delete_ids or self.undelete_first_ids)

    def lines(self) -> list[str]:
        """Return the diff lines shown before the admin confirms, one write a line."""
        lines = [f"= keep {self.survivor_id} (group {self.group_id})"]
        cleared = dict(self.cleared_keys)
        for record_id in self.undelete_first_ids:
            if record_id == self.survivor_id:
                lines.append(f"+ restore {record_id} from the recycle bin, as the survivor")
            else:
                lines.append(f"+ restore {record_id} from the recycle bin, to clear its key")
        for record_id in self.clear_key_ids:
            lines.append(f"~ {record_id}: {self.key_field}: {diff_value(cleared.get(record_id))} -> (empty)")
        for fill in self.fills:
            before = "false" if fill.value is True else "(empty)"
            lines.append(f"~ {self.survivor_id}: {fill.field}: {before} -> {diff_value(fill.value)} "
                         f"(from {fill.from_id})")
        for record_id in self.delete_ids:
            again = " again" if record_id in self.undelete_first_ids else ""
            lines.append(f"- delete {record_id}{again} "
                         f"(it stays in the recycle bin for {RECYCLE_BIN_DAYS} days)")
        return lines

    def as_json(self) -> dict[str, Any]:
        """Return the plan as JSON values, for the snapshot file."""
        return {
            "group_id": self.group_id,
            "survivor_id": self.survivor_id,
            "fills": [{"field": fill.field, "value": fill.value, "from_id": fill.from_id}
                      for fill in self.fills],
            "clear_key_ids": list(self.clear_key_ids),
            "delete_ids": list(self.delete_ids),
            "undelete_first_ids": list(self.undelete_first_ids),
            "key_field": self.key_field,
            "action": self.action.value,
            "cleared_keys": [list(pair) for pair in self.cleared_keys],
            "kind": self.kind.value,
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> ResolutionPlan:
        """Read a plan written by ``as_json``; raises KeyError or ValueError on a damaged one."""
        return cls(
            group_id=str(values["group_id"]),
            survivor_id=str(values["survivor_id"]),
            fills=tuple(FieldFill(str(fill["field"]), fill["value"], str(fill["from_id"]))
                        for fill in values.get("fills", [])),
            clear_key_ids=tuple(str(item) for item in values.get("clear_key_ids", [])),
            delete_ids=tuple(str(item) for item in values.get("delete_ids", [])),
            undelete_first_ids=tuple(str(item) for item in values.get("undelete_first_ids", [])),
            key_field=str(values.get("key_field", "")),
            action=ResolveAction(values.get("action", ResolveAction.DELETE_OTHERS.value)),
            cleared_keys=tuple((str(pair[0]), str(pair[1])) for pair in values.get("cleared_keys", [])),
            kind=GroupKind(values.get("kind") or GroupKind.EXACT.value),
        )


@dataclass(frozen=True)
class _Member:
    record_id: str
    values: Mapping[str, object] = field(repr=False)

    @property
    def deleted(self) -> bool:
        return bool(self.values.get("IsDeleted"))


def default_choice(group: DuplicateGroup) -> ResolutionChoice:
    """Return the choice the default rule makes: the group's survivor, every fillable field.

    Intentional clones keep every Task and only lose the key on all but the survivor.
    """
    survivor_id = group.survivor_id or _first_live_id(group)
    action = (ResolveAction.CLEAR_KEY_ON_OTHERS if group.kind is GroupKind.CLONES
              else ResolveAction.DELETE_OTHERS)
    return ResolutionChoice(group_id=group.group_id or _smallest_id(group), survivor_id=survivor_id,
                            fill_fields=(*FILLABLE_FIELDS, KEY_FIELD_CHOICE), action=action)


def _first_live_id(group: DuplicateGroup) -> str:
    for record in group.records:
        if not record.is_deleted:
            return record.id
    return group.records[0].id


def _smallest_id(group: DuplicateGroup) -> str:
    return min(record.id for record in group.records)


def is_empty(value: object) -> bool:
    """Tell whether a field value counts as empty: null, or text of whitespace only."""
    return value is None or (isinstance(value, str) and not value.strip())


def fillable(survivor: Mapping[str, object], others: Sequence[Mapping[str, object]],
             fields: Sequence[str]) -> dict[str, FieldFill]:
    """Return, for each of ``fields`` empty on the survivor, the value another Task has.

    ``others`` are searched oldest first (by CreatedDate, then Id), so the value
    comes from the oldest Task that has one. Fields no other Task fills are left out.
    """
    ordered = sorted(others, key=lambda values: (str(values.get("CreatedDate") or ""),
                                                 str(values.get("Id") or "")))
    fills: dict[str, FieldFill] = {}
    for name in fields:
        if not is_empty(survivor.get(name)):
            continue
        for other in ordered:
            value = other.get(name)
            if not is_empty(value):
                fills[name] = FieldFill(name, value, str(other.get("Id") or ""))
                break
    return fills


def plan_resolution(group: DuplicateGroup, choice: ResolutionChoice,
                    current: Mapping[str, Mapping[str, object]], key_field: str, *,
                    flag_field: str = "") -> ResolutionPlan:
    """Plan the writes that resolve ``group`` by ``choice``, from each member's fresh values.

    ``current`` maps each member's Id to the values read just before (``IsDeleted``,
    ``CreatedDate``, the key field and the fillable fields). Members missing from it
    are left alone. ``flag_field`` is the "Created by Backstory" checkbox, or "" when
    the org has none. When a deleted Task has it set, the survivor gets it set too,
    because Backstory sets it on every Task it creates or enriches. Raises ValueError
    when the survivor is not a member with fresh values.
    """
    members = {record.id for record in group.records}
    if choice.survivor_id not in members:
        raise ValueError(f"the survivor {choice.survivor_id} is not a Task of group {choice.group_id}")
    if choice.survivor_id not in current:
        raise ValueError(f"the survivor {choice.survivor_id} could not be read from the org")
    survivor = _Member(choice.survivor_id, current[choice.survivor_id])
    others = [_Member(record.id, current[record.id]) for record in group.records
              if record.id != survivor.record_id and record.id in current]

    fills: tuple[FieldFill, ...] = ()
    if choice.action is ResolveAction.DELETE_OTHERS and not survivor.deleted:
        fill_fields = _fill_field_names(choice.fill_fields, key_field)
        found = fillable(survivor.values, [other.values for other in others], fill_fields)
        fills = tuple(found[name] for name in fill_fields if name in found)
        flagged = [other for other in others if other.values.get(flag_field) is True]
        if flag_field and flagged and survivor.values.get(flag_field) is False:
            fills += (FieldFill(flag_field, True, min(flagged, key=_age_order).record_id),)

    keyed = [other for other in others if not is_empty(other.values.get(key_field))]
    if choice.action is ResolveAction.DELETE_OTHERS:
        # A keyless Task already in the recycle bin blocks nothing, so it stays there untouched.
        to_delete = [other for other in others if not other.deleted or other in keyed]
    else:
        # A clone in the recycle bin goes back there once its key is cleared.
        to_delete = [other for other in keyed if other.deleted]
    # A survivor in the recycle bin stays there: restoring it would bring back a Task
    # the admin deleted. Only its keyed others are restored, cleared and deleted again.
    undelete_first = [other.record_id for other in others if other.deleted and other in to_delete]

    return ResolutionPlan(
        group_id=choice.group_id,
        survivor_id=survivor.record_id,
        fills=fills,
        clear_key_ids=tuple(other.record_id for other in keyed),
        delete_ids=tuple(other.record_id for other in to_delete),
        undelete_first_ids=tuple(undelete_first),
        key_field=key_field,
        action=choice.action,
        cleared_keys=tuple((other.record_id, str(other.values.get(key_field))) for other in keyed),
        kind=group.kind,
    )


def _age_order(member: _Member) -> tuple[str, str]:
    return str(member.values.get("CreatedDate") or ""), member.record_id


def _fill_field_names(chosen: Iterable[str], key_field: str) -> list[str]:
    """Return the API names of the chosen fields that may be filled, in FILLABLE_FIELDS order, key last."""
    requested = set(chosen)
    names = [name for name in FILLABLE_FIELDS if name in requested]
    if KEY_FIELD_CHOICE in requested or key_field in requested:
        names.append(key_field)
    return names


def diff_value(value: object) -> str:
    """Return a value as a diff line shows it: quoted, on one line, cut to SHOWN_VALUE_LENGTH.

    The value keeps its spaces, and line breaks and tabs show as \\n and \\t, so a key
    that differs only in whitespace shows how it differs. A checkbox shows as true or false.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_empty(value):
        return "(empty)"
    text = str(value)
    if len(text) > SHOWN_VALUE_LENGTH:
        text = text[: SHOWN_VALUE_LENGTH - 1] + "…"
    return repr(text)
