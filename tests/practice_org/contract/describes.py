"""Compare describe results with recorded ones: keys, JSON types and field types.

Fields are matched by name, not by position, and only fields both describes have are
compared. The key sets of Salesforce's describe grow with the API version, so a key
the practice org sends beyond one recording is accepted when another recorded
describe has it, and reported otherwise.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tests.practice_org.contract.cassettes import SHARED_CASSETTES, load_cassette
from tests.practice_org.contract.shapes import shape_differences

DESCRIBED_OBJECTS = ("Account", "Contact", "Event", "Lead", "Opportunity")


@functools.cache
def recorded_describe(sobject: str) -> dict[str, Any]:
    """Return the describe of an object recorded by CumulusCI's shared cassettes."""
    relative = (SHARED_CASSETTES / f"GET_sobjects_{sobject}_describe.yaml").relative_to(
        SHARED_CASSETTES.parent.parent.parent)
    (interaction,) = load_cassette(str(relative))
    result: dict[str, Any] = json.loads(interaction.response_body)
    return result


@functools.cache
def known_keys() -> tuple[frozenset[str], frozenset[str]]:
    """Return every object-level and every field-level key of the recorded describes."""
    object_keys: set[str] = set()
    field_keys: set[str] = set()
    for sobject in DESCRIBED_OBJECTS:
        describe = recorded_describe(sobject)
        object_keys.update(describe)
        for entry in describe["fields"]:
            field_keys.update(entry)
    return frozenset(object_keys), frozenset(field_keys)


def describe_differences(recorded: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Return how a practice org describe differs from a recorded one."""
    object_keys, field_keys = known_keys()
    differences = _key_differences(recorded, actual, object_keys, "$")
    for key in sorted(set(recorded) & set(actual) - {"fields"}):
        differences += shape_differences(recorded[key], actual[key], f"$.{key}")
    recorded_fields = {entry["name"]: entry for entry in recorded["fields"]}
    for entry in actual["fields"]:
        template = recorded_fields.get(entry["name"])
        if template is None:
            continue
        where = f"$.fields[{entry['name']}]"
        differences += _key_differences(template, entry, field_keys, where)
        for key in sorted(set(template) & set(entry)):
            differences += shape_differences(template[key], entry[key], f"{where}.{key}")
        if template["type"] != entry["type"]:
            differences.append(f"{where}.type: recorded {template['type']}, "
                               f"practice org {entry['type']}")
    return differences


def global_differences(recorded: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Compare a global describe: top-level keys and the entries of objects both list."""
    differences = shape_differences({**recorded, "sobjects": []}, {**actual, "sobjects": []})
    recorded_entries = {entry["name"]: entry for entry in recorded["sobjects"]}
    for entry in actual["sobjects"]:
        template = recorded_entries.get(entry["name"])
        if template is not None:
            differences += shape_differences(template, entry, f"$.sobjects[{entry['name']}]")
    return differences


def _key_differences(
    recorded: dict[str, Any], actual: dict[str, Any], known: frozenset[str], where: str
) -> list[str]:
    missing = [f"{where}.{key}: missing" for key in sorted(set(recorded) - set(actual))]
    unknown = [f"{where}.{key}: in no recorded describe"
               for key in sorted(set(actual) - set(recorded) - known)]
    return missing + unknown
