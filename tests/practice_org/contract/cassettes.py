"""Read recorded Salesforce traffic: CumulusCI's vcrpy cassettes and plain JSON bodies.

CumulusCI's cassettes extend vcrpy's YAML format: an interaction may be
``{include_file: NAME}``, which stands for the single interaction stored in
``tests/shared_cassettes/NAME`` of the same checkout, and YAML anchors repeat
interactions. Scrubbed headers come in two layouts: ``{Content-Type: [...],
Others: Elided}`` or the same mapping under ``Response-Headers``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

RECORDED = Path(__file__).resolve().parent.parent / "recorded"
CUMULUSCI = RECORDED / "cumulusci"
SHARED_CASSETTES = CUMULUSCI / "tests" / "shared_cassettes"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Interaction:
    """One recorded request and the response Salesforce sent to it."""

    source: str              # cassette path below recorded/, with the interaction's index
    method: str
    path: str                # path and query string, without scheme and host
    request_body: str | None
    status: int
    content_type: str | None
    response_body: str

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body.strip() else None

    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    @property
    def route(self) -> str:
        """The path without the query string."""
        return self.path.split("?", 1)[0]


def recorded_json(name: str) -> Any:
    """Return a recorded JSON body stored below recorded/."""
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


@functools.cache
def load_cassette(relative: str) -> tuple[Interaction, ...]:
    """Return the interactions of a cassette below recorded/, includes resolved."""
    path = RECORDED / relative
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    entries = document.get("interactions", [document])
    return tuple(
        _interaction(f"{relative}#{index}", _resolved(entry))
        for index, entry in enumerate(entries)
    )


def cassette_names() -> list[str]:
    """Return every cassette copied below recorded/cumulusci/, as paths below recorded/."""
    return sorted(str(path.relative_to(RECORDED)) for path in CUMULUSCI.rglob("*.yaml"))


def _resolved(entry: dict[str, Any]) -> dict[str, Any]:
    if "include_file" not in entry:
        return entry
    name = str(entry["include_file"]).split("#", 1)[0].strip()
    included = yaml.load((SHARED_CASSETTES / name).read_text(encoding="utf-8"), Loader=_Loader)
    return dict(included)


def _interaction(source: str, entry: dict[str, Any]) -> Interaction:
    request, response = entry["request"], entry["response"]
    parts = urlsplit(request["uri"])
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = response.get("body")
    text = body.get("string", "") if isinstance(body, dict) else (body or "")
    return Interaction(
        source=source,
        method=request["method"],
        path=path,
        request_body=request.get("body"),
        status=int(response["status"]["code"]),
        content_type=_content_type(response.get("headers") or {}),
        response_body=text if isinstance(text, str) else text.decode("utf-8"),
    )


def _content_type(headers: dict[str, Any]) -> str | None:
    nested = headers.get("Response-Headers")
    if isinstance(nested, dict):
        headers = nested
    for name, value in headers.items():
        if name.lower() == "content-type":
            return str(value[0] if isinstance(value, list) else value)
    return None
