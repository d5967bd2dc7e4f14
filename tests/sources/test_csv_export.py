"""CSV exports of activities: Data Loader Task exports, a cadence tool's export, mappings and bad rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from backstory_desktop.core.activity import MailActivity, SourceProblem
from backstory_desktop.core.jobs import Cancelled
from backstory_desktop.core.plan import FieldRules, PlanLookups, ReasonCode, classify_activities
from backstory_desktop.core.records import UserRef
from backstory_desktop.practice_org.ids import make_id
from backstory_desktop.sources.base import SourceError
from backstory_desktop.sources.csv_export import (
    CADENCE_LABEL,
    CUSTOM_LABEL,
    DATA_LOADER_LABEL,
    CsvColumn,
    CsvMapping,
    MappingFault,
    MappingFaultKind,
    check_mapping,
    csv_encoding,
    guess_mapping,
    mapping_faults,
    read_csv_export,
    read_csv_header,
)
from backstory_desktop.sources.record_ids import checksum_suffix, record_id_18

CONTACT = make_id("003", 7)
LEAD = make_id("00Q", 8)
USER = make_id("005", 9)

DATA_LOADER_HEADER = '"ID","SUBJECT","DESCRIPTION","ACTIVITYDATE","WHOID","OWNERID","MESSAGE_ID__C"\n'
PLUS_ONE = timezone(timedelta(hours=1))
CADENCE_HEADER = "Message ID,Subject,Body,From,To,Sent At\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read_all(path: Path) -> list[MailActivity | SourceProblem]:
    headers = read_csv_header(path)
    return list(read_csv_export(path, guess_mapping(headers)))


def only_activity(items: list[MailActivity | SourceProblem]) -> MailActivity:
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, MailActivity), item
    return item


def only_problem(items: list[MailActivity | SourceProblem]) -> SourceProblem:
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, SourceProblem), item
    return item


# Mappings


def test_guess_mapping__data_loader_export() -> None:
    headers = ["ID", "SUBJECT", "DESCRIPTION", "ACTIVITYDATE", "WHOID", "OWNERID", "MESSAGE_ID__C"]

    mapping = guess_mapping(headers)

    assert mapping.label == DATA_LOADER_LABEL
    assert dict(mapping.columns) == {
        CsvColumn.MESSAGE_ID: "MESSAGE_ID__C",
        CsvColumn.SUBJECT: "SUBJECT",
        CsvColumn.BODY: "DESCRIPTION",
        CsvColumn.SENT_AT: "ACTIVITYDATE",
        CsvColumn.WHO_ID: "WHOID",
        CsvColumn.OWNER_ID: "OWNERID",
    }


def test_guess_mapping__custom_key_field_name() -> None:
    mapping = guess_mapping(["Id", "Subject", "OwnerId", "Email_Key__c"], key_field="Email_Key__c")

    assert mapping.columns[CsvColumn.MESSAGE_ID] == "Email_Key__c"


def test_guess_mapping__cadence_export() -> None:
    headers = ["Message-ID", "Subject", "Body", "From", "To", "Date", "Sent At"]

    mapping = guess_mapping(headers)

    assert mapping.label == CADENCE_LABEL
    assert mapping.columns[CsvColumn.MESSAGE_ID] == "Message-ID"
    assert mapping.columns[CsvColumn.SENDER] == "From"
    assert mapping.columns[CsvColumn.RECIPIENTS] == "To"
    assert mapping.columns[CsvColumn.SENT_AT] == "Sent At"


def test_guess_mapping__unknown_headers_are_custom() -> None:
    mapping = guess_mapping(["a", "b"])

    assert mapping.label == CUSTOM_LABEL
    assert dict(mapping.columns) == {}


def test_guess_mapping__title_is_subject() -> None:
    mapping = guess_mapping(["Message ID", "Title", "Body"])

    assert mapping.columns[CsvColumn.SUBJECT] == "Title"


def test_mapping_faults__key_column_chosen_twice() -> None:
    headers = ["Message ID", "Subject"]
    mapping = CsvMapping({CsvColumn.MESSAGE_ID: "Message ID", CsvColumn.SUBJECT: "Message ID"}, CUSTOM_LABEL)

    (fault,) = mapping_faults(mapping, headers)

    assert fault == MappingFault(
        MappingFaultKind.SHARED_COLUMN, CsvColumn.SUBJECT, "Message ID",
        "The column 'Message ID' is chosen for both Message-ID and Subject: choose another column for "
        "Subject.",
    )


def test_check_mapping__sentences_for_each_fault() -> None:
    headers = ["Subject", "Subject", "From"]
    mapping = CsvMapping({CsvColumn.SUBJECT: "Subject", CsvColumn.SENDER: "Sender"}, CUSTOM_LABEL)

    problems = check_mapping(mapping, headers)

    assert problems == [
        "No column is chosen for the Message-ID: choose the column that contains each e-mail's "
        "Message-ID (the file's columns are 'Subject', 'Subject', 'From').",
        "The file has 2 columns named 'Subject', chosen for Subject: rename them in the file so "
        "that the right one can be chosen.",
        "The column 'Sender' chosen for From is not in the file: choose one of 'Subject', "
        "'Subject', 'From'.",
    ]


def test_mapping_faults__kind_column_and_header() -> None:
    headers = ["Subject", "Subject", "From"]
    mapping = CsvMapping({CsvColumn.SUBJECT: "Subject", CsvColumn.SENDER: "Sender"}, CUSTOM_LABEL)

    faults = mapping_faults(mapping, headers)

    assert [(fault.kind, fault.column, fault.header) for fault in faults] == [
        (MappingFaultKind.NO_KEY_COLUMN, CsvColumn.MESSAGE_ID, None),
        (MappingFaultKind.REPEATED_COLUMN, CsvColumn.SUBJECT, "Subject"),
        (MappingFaultKind.MISSING_COLUMN, CsvColumn.SENDER, "Sender"),
    ]
    assert [fault.message for fault in faults] == check_mapping(mapping, headers)


def test_mapping_faults__key_column_missing_from_file() -> None:
    mapping = CsvMapping({CsvColumn.MESSAGE_ID: "Ident"}, CUSTOM_LABEL)

    (fault,) = mapping_faults(mapping, ["Message ID", "Subject"])

    assert fault == MappingFault(
        MappingFaultKind.MISSING_COLUMN, CsvColumn.MESSAGE_ID, "Ident",
        "The column 'Ident' chosen for Message-ID is not in the file: choose one of 'Message ID', 'Subject'.",
    )


def test_check_mapping__good_mapping_has_no_problems() -> None:
    headers = ["Message ID", "Subject"]

    assert check_mapping(guess_mapping(headers), headers) == []


def test_read_csv_export__wrong_mapping_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", CADENCE_HEADER + "<a@x.example>,s,b,,,2024-01-15\n")
    mapping = CsvMapping({CsvColumn.MESSAGE_ID: "Key"}, CUSTOM_LABEL)

    with pytest.raises(SourceError) as raised:
        read_csv_export(path, mapping)

    assert str(raised.value).startswith(f"{path} cannot be read with this column mapping. The column 'Key'")


# Rows


def test_data_loader__row_becomes_activity_with_ids(tmp_path: Path) -> None:
    row = (
        f'"00T000000000001AAA","Intro call","Notes","2024-01-15","{CONTACT[:15]}","{USER}",'
        '"a@x.example"\n'
    )
    path = write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + row)

    activity = only_activity(read_all(path))

    assert activity.source_ref == "tasks.csv, row 2"
    assert activity.message_id.key == "<a@x.example>"
    assert activity.subject == "Intro call"
    assert activity.body_text == "Notes"
    assert activity.sent_at == datetime(2024, 1, 15, tzinfo=UTC)
    assert activity.who_id == CONTACT
    assert activity.owner_id == USER
    assert activity.sender is None


def test_data_loader__lead_is_a_who(tmp_path: Path) -> None:
    row = f'"","s","","2024-01-15","{LEAD}","","<b@x.example>"\n'

    activity = only_activity(read_all(write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + row)))

    assert activity.who_id == LEAD
    assert activity.owner_id is None


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (USER, f"WhoId {USER} has the key prefix 005, not 003 or 00Q"),
        ("12345", "WhoId '12345' is not a Salesforce record Id (15 or 18 letters and digits)"),
        (CONTACT[:15] + "AAB", f"WhoId {CONTACT[:15]}AAB has a wrong checksum in its last 3 characters"),
    ],
)
def test_data_loader__bad_who_id_is_a_problem(tmp_path: Path, who: str, reason: str) -> None:
    row = f'"","s","","2024-01-15","{who}","","<c@x.example>"\n'

    problem = only_problem(read_all(write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + row)))

    assert problem.reason.startswith(reason)
    assert problem.raw_header == "<c@x.example>"
    assert problem.source_ref == "tasks.csv, row 2"


def test_cadence__row_with_people_and_html_body(tmp_path: Path) -> None:
    row = (
        '"faff5b13bff19cf16f0fbf46edb721e3@example.com",Offer,"<p>Hi&nbsp;Bob</p><p>Terms</p>",'
        '"Ann Lee <Ann@Example.com>","bob@example.com; Carla <carla@example.org>",2024-01-15T10:22:33Z\n'
    )
    path = write(tmp_path / "outbox.csv", CADENCE_HEADER + row)

    activity = only_activity(read_all(path))

    assert activity.message_id.key == "<faff5b13bff19cf16f0fbf46edb721e3@example.com>"
    assert "the id has no angle brackets" in activity.message_id.warnings
    assert activity.sender is not None
    assert activity.sender.email == "ann@example.com"
    assert [person.email for person in activity.recipients] == ["bob@example.com", "carla@example.org"]
    assert activity.sent_at == datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)
    assert "<p>" not in activity.body_text
    assert "Hi\u00a0Bob" in activity.body_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 10:22:33 UTC", datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)),
        ("2024-01-15T10:22:33.000+0100", datetime(2024, 1, 15, 10, 22, 33, tzinfo=PLUS_ONE)),
        ("2024-01-15 10:22:33", datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)),
        ("Mon, 15 Jan 2024 10:22:33 +0000", datetime(2024, 1, 15, 10, 22, 33, tzinfo=UTC)),
        ("1/15/2024 2:05 PM", datetime(2024, 1, 15, 14, 5, tzinfo=UTC)),
        ("15/01/2024", datetime(2024, 1, 15, tzinfo=UTC)),
        ("15.01.2024 09:30", datetime(2024, 1, 15, 9, 30, tzinfo=UTC)),
        ("", None),
    ],
)
def test_cadence__date_spellings(tmp_path: Path, text: str, expected: datetime | None) -> None:
    row = f'<d@x.example>,s,b,a@x.example,b@x.example,"{text}"\n'

    activity = only_activity(read_all(write(tmp_path / "dates.csv", CADENCE_HEADER + row)))

    assert activity.sent_at == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("02/03/2024", "the date '02/03/2024' could be read day first or month first"),
        ("next Tuesday", "the date 'next Tuesday' cannot be read"),
        ("2024-13-45", "the date '2024-13-45' cannot be read"),
    ],
)
def test_cadence__unreadable_date_is_a_problem(tmp_path: Path, text: str, reason: str) -> None:
    row = f"<d@x.example>,s,b,a@x.example,b@x.example,{text}\n"

    problem = only_problem(read_all(write(tmp_path / "dates.csv", CADENCE_HEADER + row)))

    assert problem.reason.startswith(reason)
    assert problem.raw_header == "<d@x.example>"


def test_cadence__bad_rows_are_problems(tmp_path: Path) -> None:
    rows = (
        ",no key,b,a@x.example,b@x.example,2024-01-15\n"
        "<>,empty brackets,b,a@x.example,b@x.example,2024-01-15\n"
        "<e@x.example>,short row\n"
        "\n"
        "<f@x.example>,fine,b,a@x.example,b@x.example,2024-01-15,,\n"
    )
    items = read_all(write(tmp_path / "bad.csv", CADENCE_HEADER + rows))

    refs = [item.source_ref for item in items]
    assert refs == ["bad.csv, row 2", "bad.csv, row 3", "bad.csv, row 4", "bad.csv, row 6"]
    no_key, empty, short, fine = items
    assert isinstance(no_key, SourceProblem)
    assert no_key.reason == "no usable Message-ID: the Message-ID cell is empty"
    assert no_key.raw_header is None
    assert isinstance(empty, SourceProblem)
    assert empty.reason == "no usable Message-ID: the id is empty (<>)"
    assert empty.raw_header == "<>"
    assert isinstance(short, SourceProblem)
    assert short.reason.startswith("the row has 2 cells but the header has 6")
    assert isinstance(fine, MailActivity)


def test_cadence__unreadable_addresses_say_what_to_do(tmp_path: Path) -> None:
    nested = "g:" * 2000 + "x@y.example" + ";" * 2000
    row = f"<a@x.example>,s,b,a@x.example,{nested},2024-01-15\n"

    (problem,) = read_all(write(tmp_path / "deep.csv", CADENCE_HEADER + row))

    assert isinstance(problem, SourceProblem)
    assert problem.reason.endswith(
        "cannot be read: separate them with commas and quote display names that contain commas")
    assert "Error" not in problem.reason


def test_csv__multi_line_cell_keeps_row_numbers(tmp_path: Path) -> None:
    rows = '<a@x.example>,s,"line one\nline two",a@x.example,b@x.example,\n<b@x.example>,s,b,,,\n'

    items = read_all(write(tmp_path / "multi.csv", CADENCE_HEADER + rows))

    assert [item.source_ref for item in items] == ["multi.csv, row 2", "multi.csv, row 3"]
    first = items[0]
    assert isinstance(first, MailActivity)
    assert first.body_text == "line one\nline two"


def test_csv__windows_1252_file_is_read(tmp_path: Path) -> None:
    subject = "Caf\u00e9 \u2013 plan"
    text = CADENCE_HEADER + f"<a@x.example>,{subject},b,,,\n"
    path = write(tmp_path / "excel.csv", text, encoding="cp1252")
    reports: list[str] = []
    mapping = guess_mapping(read_csv_header(path))

    items = list(read_csv_export(path, mapping, progress=lambda done, total, text: reports.append(text)))

    assert csv_encoding(path) == "cp1252"
    assert only_activity(items).subject == subject
    assert reports[-1] == "Reading excel.csv as Windows-1252 (it is not UTF-8)"


def test_csv__utf8_bom_and_semicolons(tmp_path: Path) -> None:
    path = write(tmp_path / "eu.csv", "\ufeffMessage-ID;Subject\n<a@x.example>;Grüße\n")

    assert read_csv_header(path) == ["Message-ID", "Subject"]
    assert csv_encoding(path) == "utf-8-sig"
    assert only_activity(read_all(path)).subject == "Grüße"


def test_csv__utf16_export_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "unicode.csv", "Message-ID\tSubject\r\n<a@x.example>\tÉté\r\n", encoding="utf-16")

    assert only_activity(read_all(path)).subject == "Été"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"PK\x03\x04\x14\x00", "perhaps an Excel workbook (.xlsx)"),
        (b"a,b\x00,c\n", "is binary data"),
    ],
)
def test_read_csv_header__not_a_csv_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)

    with pytest.raises(SourceError) as raised:
        read_csv_header(path)

    assert str(raised.value).startswith(str(path))
    assert expected in str(raised.value)


def test_csv__progress_in_bytes_and_cancel(tmp_path: Path) -> None:
    rows = "".join(f"<m{n}@x.example>,s{n},body,,,\n" for n in range(2000))
    path = write(tmp_path / "big.csv", CADENCE_HEADER + rows)
    reports: list[tuple[int, int, str]] = []
    mapping = guess_mapping(read_csv_header(path))

    items = list(read_csv_export(path, mapping, progress=lambda d, t, m: reports.append((d, t, m))))

    total = path.stat().st_size
    assert len(items) == 2000
    assert reports[-1] == (total, total, "Reading big.csv")
    assert [done for done, _, _ in reports] == sorted(done for done, _, _ in reports)
    assert len(reports) <= 103

    cancel = threading.Event()
    iterator = read_csv_export(path, mapping, cancel=cancel)
    next(iterator)
    cancel.set()
    with pytest.raises(Cancelled):
        next(iterator)


# Record Ids


def test_record_ids__checksum_matches_practice_org() -> None:
    for sequence in (1, 61, 62, 3844, 10**9):
        record_id = make_id("003", sequence)
        assert checksum_suffix(record_id[:15]) == record_id[15:]
        assert record_id_18(record_id[:15], ("003",), "WhoId") == (record_id, None)


def _reason_codes(path: Path) -> list[ReasonCode]:
    problems = [item for item in read_all(path) if isinstance(item, SourceProblem)]
    admin = UserRef(USER, "Avery Admin", "admin@org.example", "admin@org.example", True)
    lookups = PlanLookups(
        tasks=[], contacts_by_email={}, leads_by_email={}, users_by_email={}, running_user=admin
    )
    rules = FieldRules("Message_ID__c", case_sensitive=True)
    return [row.reason_code for row in classify_activities([], problems, lookups, rules).rows]


def test_problem_kind__bad_key_is_no_key(tmp_path: Path) -> None:
    rows = '"","s","","2024-01-15","","",""\n"","s","","2024-01-15","","","a b@x.example"\n'

    codes = _reason_codes(write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + rows))

    assert codes == [ReasonCode.NO_KEY, ReasonCode.NO_KEY]


def test_problem_kind__bad_id_is_unknown_reference(tmp_path: Path) -> None:
    account = make_id("001", 5)
    rows = (f'"","s","","2024-01-15","{account}","","<a@x.example>"\n'
            f'"","s","","2024-01-15","","{CONTACT}","<b@x.example>"\n')

    codes = _reason_codes(write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + rows))

    assert codes == [ReasonCode.UNKNOWN_REFERENCE, ReasonCode.UNKNOWN_REFERENCE]


def test_problem_kind__other_fault_is_unreadable(tmp_path: Path) -> None:
    rows = '"","s","","next Tuesday","","","<a@x.example>"\n"","s","","2024-01-15","<c@x.example>"\n'

    codes = _reason_codes(write(tmp_path / "tasks.csv", DATA_LOADER_HEADER + rows))

    assert codes == [ReasonCode.UNREADABLE, ReasonCode.UNREADABLE]
