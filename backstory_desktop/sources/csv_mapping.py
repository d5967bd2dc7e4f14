"""The column mapping of a CSV export: which header gives each field of an activity.

The admin maps the file's columns to ours (``CsvMapping``). ``guess_mapping``
proposes a mapping from the header row, and ``mapping_faults`` lists what is
wrong with one, each fault with its kind so that callers can word it their own way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

DATA_LOADER_LABEL = "Data Loader Task export"
CADENCE_LABEL = "Cadence tool activity export"
CUSTOM_LABEL = "Custom"


class CsvColumn(StrEnum):
    """The fields of an activity that a CSV column can give."""

    MESSAGE_ID = "message_id"
    SUBJECT = "subject"
    BODY = "body"
    SENDER = "sender"
    RECIPIENTS = "recipients"
    SENT_AT = "sent_at"
    WHO_ID = "who_id"
    OWNER_ID = "owner_id"


# The column names shown to the admin.
COLUMN_LABELS: Mapping[CsvColumn, str] = {
    CsvColumn.MESSAGE_ID: "Message-ID",
    CsvColumn.SUBJECT: "Subject",
    CsvColumn.BODY: "Body",
    CsvColumn.SENDER: "From",
    CsvColumn.RECIPIENTS: "To",
    CsvColumn.SENT_AT: "Date sent",
    CsvColumn.WHO_ID: "Contact or Lead Id (WhoId)",
    CsvColumn.OWNER_ID: "Owner Id (OwnerId)",
}

# Header names that mean each column, written without case, spaces or punctuation, best first.
_KNOWN_HEADERS: Mapping[CsvColumn, tuple[str, ...]] = {
    CsvColumn.MESSAGE_ID: (
        "messageid", "internetmessageid", "emailmessageid", "mailmessageid", "rfc822messageid",
    ),
    CsvColumn.SUBJECT: ("subject", "emailsubject", "mailsubject", "title"),
    CsvColumn.BODY: (
        "description", "body", "emailbody", "bodytext", "textbody", "plaintextbody", "htmlbody",
        "bodyhtml", "comments",
    ),
    CsvColumn.SENDER: (
        "from", "sender", "fromaddress", "fromemail", "fromemailaddress", "senderemail",
        "senderaddress", "senderemailaddress",
    ),
    CsvColumn.RECIPIENTS: (
        "to", "recipients", "recipient", "toaddress", "toaddresses", "toemail", "toemailaddress",
        "recipientemail", "recipientemails", "recipientemailaddress",
    ),
    CsvColumn.SENT_AT: (
        "sentat", "sentdate", "datesent", "deliveredat", "date", "activitydate", "timestamp",
        "createdat", "createddate",
    ),
    CsvColumn.WHO_ID: ("whoid",),
    CsvColumn.OWNER_ID: ("ownerid",),
}


@dataclass(frozen=True)
class CsvMapping:
    """The file header that gives each of our columns, and the kind of export (its label)."""

    columns: Mapping[CsvColumn, str]
    label: str


def guess_mapping(headers: Sequence[str], *, key_field: str = "Message_ID__c") -> CsvMapping:
    """Propose a mapping from a header row; a column whose header is not recognised stays unmapped.

    ``key_field`` is the API name of the Message-ID field, the column a Data
    Loader Task export has for it (Data Loader writes it in capitals).
    """
    by_name: dict[str, str] = {}
    for header in headers:
        by_name.setdefault(_normalised(header), header)

    columns: dict[CsvColumn, str] = {}
    for column, known in _KNOWN_HEADERS.items():
        if column is CsvColumn.MESSAGE_ID:
            known = (_normalised(key_field), *known)
        found = next((by_name[name] for name in known if name in by_name), None)
        if found is not None:
            columns[column] = found
    return CsvMapping(columns=columns, label=_export_label(set(by_name)))


class MappingFaultKind(StrEnum):
    """The kind of fault in one column of a mapping."""

    NO_KEY_COLUMN = "no_key_column"  # no column is chosen for the Message-ID
    MISSING_COLUMN = "missing_column"  # the chosen header is not in the file
    REPEATED_COLUMN = "repeated_column"  # the file has several columns with the chosen header
    SHARED_COLUMN = "shared_column"  # the Message-ID's column is chosen for another field too


@dataclass(frozen=True)
class MappingFault:
    """One fault of a mapping for a header row, with the sentence shown to the admin."""

    kind: MappingFaultKind
    column: CsvColumn | None
    header: str | None
    message: str


def mapping_faults(mapping: CsvMapping, headers: Sequence[str]) -> list[MappingFault]:
    """Return the faults of a mapping for these headers, or [] when the mapping can be used."""
    faults: list[MappingFault] = []
    if CsvColumn.MESSAGE_ID not in mapping.columns:
        faults.append(MappingFault(
            MappingFaultKind.NO_KEY_COLUMN, CsvColumn.MESSAGE_ID, None,
            "No column is chosen for the Message-ID: choose the column that contains each e-mail's "
            f"Message-ID (the file's columns are {listed_headers(headers)}).",
        ))
    for column, header in mapping.columns.items():
        label = COLUMN_LABELS[column]
        count = list(headers).count(header)
        if count == 0:
            faults.append(MappingFault(
                MappingFaultKind.MISSING_COLUMN, column, header,
                f"The column {header!r} chosen for {label} is not in the file: choose one of "
                f"{listed_headers(headers)}.",
            ))
        elif count > 1:
            faults.append(MappingFault(
                MappingFaultKind.REPEATED_COLUMN, column, header,
                f"The file has {count} columns named {header!r}, chosen for {label}: rename them in "
                "the file so that the right one can be chosen.",
            ))
    faults.extend(_shared_key_column(mapping))
    return faults


def _shared_key_column(mapping: CsvMapping) -> list[MappingFault]:
    """Return a fault for each other field read from the Message-ID's column."""
    key_header = mapping.columns.get(CsvColumn.MESSAGE_ID)
    if key_header is None:
        return []
    return [
        MappingFault(
            MappingFaultKind.SHARED_COLUMN, column, header,
            f"The column {header!r} is chosen for both Message-ID and {COLUMN_LABELS[column]}: choose "
            f"another column for {COLUMN_LABELS[column]}.",
        )
        for column, header in mapping.columns.items()
        if column is not CsvColumn.MESSAGE_ID and header == key_header
    ]


def check_mapping(mapping: CsvMapping, headers: Sequence[str]) -> list[str]:
    """Return one sentence per fault of a mapping for these headers, or [] when the mapping can be used."""
    return [fault.message for fault in mapping_faults(mapping, headers)]


def _normalised(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def _export_label(names: set[str]) -> str:
    if {"id", "subject"} <= names and names & {"whoid", "ownerid", "activitydate"}:
        return DATA_LOADER_LABEL
    if names & set(_KNOWN_HEADERS[CsvColumn.MESSAGE_ID]) and names & set(_KNOWN_HEADERS[CsvColumn.SENDER]):
        return CADENCE_LABEL
    return CUSTOM_LABEL


def listed_headers(headers: Sequence[str]) -> str:
    """Return the first twelve headers quoted, and how many more there are."""
    listed = ", ".join(repr(header) for header in headers[:12])
    return listed + (f" and {len(headers) - 12} more" if len(headers) > 12 else "")
