"""Compare JSON bodies by shape: the same keys and JSON types, recursively.

Values are not compared, because the practice org contains other records than the
org a body was recorded from. ``null`` on either side matches any type, because a field
empty in one org may be set in the other. Numbers match numbers whether integral or
not; ``true``/``false`` do not count as numbers.
"""

from __future__ import annotations

from typing import Any

# Maps whose keys differ between orgs and API versions, so only their values' types count.
# "urls" links resources such as layouts and list views, which the practice org does
# not serve. "httpHeaders" of a composite result lists whichever headers one call sent.
FREE_KEY_MAPS = frozenset({"urls", "httpHeaders"})


def json_type(value: Any) -> str:
    """Return the JSON type name of a parsed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_differences(recorded: Any, actual: Any, where: str = "$") -> list[str]:
    """Return how ``actual`` differs in shape from ``recorded``; empty when they match."""
    if recorded is None or actual is None:
        return []
    recorded_type, actual_type = json_type(recorded), json_type(actual)
    if recorded_type != actual_type:
        return [f"{where}: recorded {recorded_type}, practice org {actual_type}"]
    if recorded_type == "object":
        return _object_differences(recorded, actual, where)
    if recorded_type == "array":
        return _array_differences(recorded, actual, where)
    return []


def _object_differences(recorded: dict[str, Any], actual: dict[str, Any], where: str) -> list[str]:
    if where.rsplit(".", 1)[-1] in FREE_KEY_MAPS:
        return [f"{where}.{key}: not a string" for key, value in actual.items()
                if not isinstance(value, str)]
    differences = [f"{where}.{key}: missing" for key in sorted(set(recorded) - set(actual))]
    differences += [f"{where}.{key}: not in the recording" for key in sorted(set(actual) - set(recorded))]
    for key in sorted(set(recorded) & set(actual)):
        differences += shape_differences(recorded[key], actual[key], f"{where}.{key}")
    return differences


def _array_differences(recorded: list[Any], actual: list[Any], where: str) -> list[str]:
    """Compare elements pairwise; elements beyond the recording compare with its first."""
    if not recorded or not actual:
        return []
    differences: list[str] = []
    for index, element in enumerate(actual):
        template = recorded[index] if index < len(recorded) else recorded[0]
        differences += shape_differences(template, element, f"{where}[{index}]")
    return differences
