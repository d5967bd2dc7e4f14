"""The practice org's SOQL engine, specified by the queries the product sends.

Queries are built with simple-salesforce's ``format_soql`` wherever the product
builds them that way, so quoting is tested exactly as it reaches the org.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import pytest
from simple_salesforce.format import format_soql

from backstory_desktop.practice_org.soql import (
    FieldSchema,
    QueryResult,
    SObjectSchema,
    SoqlError,
    parse_soql,
    run_query,
)

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)


def make_id(prefix: str, number: int) -> str:
    return f"{prefix}{number:012d}AAA"


ADMIN = make_id("005", 1)
INTEGRATION = make_id("005", 2)
OUTREACH = make_id("005", 3)
REP = make_id("005", 4)
ADMIN_PROFILE = make_id("00e", 1)
API_ONLY_PROFILE = make_id("00e", 2)
ADMIN_PROFILE_SET = make_id("0PS", 1)
API_ONLY_PROFILE_SET = make_id("0PS", 2)
BACKSTORY_SET = make_id("0PS", 3)
OUTREACH_SET = make_id("0PS", 4)
CONTACT = make_id("003", 1)
LEAD = make_id("00Q", 1)


def reference(name: str, targets: tuple[str, ...], relationship: str) -> FieldSchema:
    return FieldSchema(name, "reference", reference_to=targets, relationship_name=relationship)


def text(name: str, *, case_sensitive: bool = False) -> FieldSchema:
    return FieldSchema(name, "string", case_sensitive=case_sensitive)


def flag(name: str) -> FieldSchema:
    return FieldSchema(name, "boolean")


def build_schemas(*, message_id_case_sensitive: bool = True,
                  message_id_visible: bool = True) -> dict[str, SObjectSchema]:
    task_fields = [
        FieldSchema("Id", "id"),
        text("Subject"),
        FieldSchema("Description", "textarea"),
        FieldSchema("Status", "picklist"),
        reference("OwnerId", ("User",), "Owner"),
        reference("CreatedById", ("User",), "CreatedBy"),
        reference("WhoId", ("Contact", "Lead"), "Who"),
        FieldSchema("CreatedDate", "datetime"),
        FieldSchema("ActivityDate", "date"),
        FieldSchema("CallDurationInSeconds", "int"),
        flag("IsDeleted"),
    ]
    if message_id_visible:
        task_fields.append(text("Message_ID__c", case_sensitive=message_id_case_sensitive))
    objects = [
        SObjectSchema("User", (
            FieldSchema("Id", "id"), text("Name"), text("Username"), FieldSchema("Email", "email"),
            flag("IsActive"), reference("ProfileId", ("Profile",), "Profile"),
        ), "005"),
        SObjectSchema("Profile", (FieldSchema("Id", "id"), text("Name")), "00e"),
        SObjectSchema("PermissionSet", (
            FieldSchema("Id", "id"), text("Name"), text("Label"), flag("IsOwnedByProfile"),
            reference("ProfileId", ("Profile",), "Profile"), flag("PermissionsApiEnabled"),
            flag("PermissionsViewAllData"), flag("PermissionsModifyAllData"),
            flag("PermissionsEditTask"), flag("PermissionsEditEvent"),
        ), "0PS"),
        SObjectSchema("PermissionSetAssignment", (
            FieldSchema("Id", "id"),
            reference("AssigneeId", ("User",), "Assignee"),
            reference("PermissionSetId", ("PermissionSet",), "PermissionSet"),
            reference("PermissionSetGroupId", ("PermissionSetGroup",), "PermissionSetGroup"),
            FieldSchema("ExpirationDate", "date"),
            flag("IsActive"),
        ), "0Pa"),
        SObjectSchema("FieldPermissions", (
            FieldSchema("Id", "id"), reference("ParentId", ("PermissionSet",), "Parent"),
            FieldSchema("SobjectType", "picklist"), text("Field"),
            flag("PermissionsRead"), flag("PermissionsEdit"),
        ), "01k"),
        SObjectSchema("Task", tuple(task_fields), "00T"),
        SObjectSchema("Contact", (FieldSchema("Id", "id"), text("Name"),
                                  FieldSchema("Email", "email")), "003"),
        SObjectSchema("Lead", (FieldSchema("Id", "id"), text("Name"),
                               FieldSchema("Email", "email"), text("Company")), "00Q"),
    ]
    return {item.name.lower(): item for item in objects}


def task(number: int, key: str | None, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "Id": make_id("00T", number),
        "Subject": f"Email: note {number}",
        "Message_ID__c": key,
        "OwnerId": REP,
        "CreatedById": OUTREACH,
        "WhoId": CONTACT,
        "CreatedDate": "2024-01-01T10:00:00.000+0000",
        "ActivityDate": "2024-01-01",
        "Status": "Completed",
        "IsDeleted": 0,
    }
    row.update(fields)
    return row


def build_rows() -> dict[str, list[dict[str, object]]]:
    return {
        "User": [
            {"Id": ADMIN, "Name": "Ada Admin", "Username": "admin@practice.backstory.example",
             "Email": "admin@practice.backstory.example", "IsActive": 1,
             "ProfileId": ADMIN_PROFILE},
            {"Id": INTEGRATION, "Name": "Backstory Integration",
             "Username": "integration@practice.backstory.example",
             "Email": "integration@practice.backstory.example", "IsActive": 1,
             "ProfileId": API_ONLY_PROFILE},
            {"Id": OUTREACH, "Name": "Outreach Sync", "Username": "outreach@practice.backstory.example",
             "Email": "outreach@practice.backstory.example", "IsActive": 1,
             "ProfileId": API_ONLY_PROFILE},
            {"Id": REP, "Name": "Rita Rep", "Username": "rita@example.com",
             "Email": "rita@example.com", "IsActive": 0, "ProfileId": None},
        ],
        "Profile": [
            {"Id": ADMIN_PROFILE, "Name": "System Administrator"},
            {"Id": API_ONLY_PROFILE, "Name": "Minimum Access - API Only Integrations"},
        ],
        "PermissionSet": [
            {"Id": ADMIN_PROFILE_SET, "Name": "X00ex000000001", "Label": "System Administrator",
             "IsOwnedByProfile": True, "ProfileId": ADMIN_PROFILE, "PermissionsApiEnabled": True,
             "PermissionsViewAllData": True, "PermissionsModifyAllData": True,
             "PermissionsEditTask": True, "PermissionsEditEvent": True},
            {"Id": API_ONLY_PROFILE_SET, "Name": "X00ex000000002", "Label": "API Only",
             "IsOwnedByProfile": True, "ProfileId": API_ONLY_PROFILE,
             "PermissionsApiEnabled": True, "PermissionsViewAllData": False,
             "PermissionsModifyAllData": False, "PermissionsEditTask": False,
             "PermissionsEditEvent": False},
            {"Id": BACKSTORY_SET, "Name": "Backstory_Integration", "Label": "Backstory Integration",
             "IsOwnedByProfile": False, "ProfileId": None, "PermissionsApiEnabled": True,
             "PermissionsViewAllData": True, "PermissionsModifyAllData": False,
             "PermissionsEditTask": True, "PermissionsEditEvent": False},
            {"Id": OUTREACH_SET, "Name": "Outreach_Integration", "Label": "Outreach Integration",
             "IsOwnedByProfile": False, "ProfileId": None, "PermissionsApiEnabled": True,
             "PermissionsViewAllData": False, "PermissionsModifyAllData": False,
             "PermissionsEditTask": True, "PermissionsEditEvent": True},
        ],
        "PermissionSetAssignment": [
            {"Id": make_id("0Pa", 1), "AssigneeId": ADMIN, "PermissionSetId": ADMIN_PROFILE_SET,
             "PermissionSetGroupId": None, "ExpirationDate": None, "IsActive": True},
            {"Id": make_id("0Pa", 2), "AssigneeId": INTEGRATION,
             "PermissionSetId": API_ONLY_PROFILE_SET, "PermissionSetGroupId": None,
             "ExpirationDate": None, "IsActive": True},
            {"Id": make_id("0Pa", 3), "AssigneeId": INTEGRATION, "PermissionSetId": BACKSTORY_SET,
             "PermissionSetGroupId": None, "ExpirationDate": "2030-01-01", "IsActive": True},
            {"Id": make_id("0Pa", 4), "AssigneeId": OUTREACH, "PermissionSetId": OUTREACH_SET,
             "PermissionSetGroupId": None, "ExpirationDate": None, "IsActive": True},
        ],
        "FieldPermissions": [
            {"Id": make_id("01k", 1), "ParentId": ADMIN_PROFILE_SET, "SobjectType": "Task",
             "Field": "Task.Message_ID__c", "PermissionsRead": True, "PermissionsEdit": True},
            {"Id": make_id("01k", 2), "ParentId": OUTREACH_SET, "SobjectType": "Task",
             "Field": "Task.Message_ID__c", "PermissionsRead": True, "PermissionsEdit": True},
            {"Id": make_id("01k", 3), "ParentId": OUTREACH_SET, "SobjectType": "Event",
             "Field": "Event.Message_ID__c", "PermissionsRead": True, "PermissionsEdit": True},
            {"Id": make_id("01k", 4), "ParentId": BACKSTORY_SET, "SobjectType": "Task",
             "Field": "Task.peopleai__Created_by_PeopleAI__c", "PermissionsRead": True,
             "PermissionsEdit": True},
        ],
        "Task": [
            task(1, "<o'neil.20240101@example.com>"),
            task(2, "<O'NEIL.20240101@example.com>"),
            task(3, "<o'neil.20240101@example.com.evil>"),
            task(4, "<a_b%c@example.com>"),
            task(5, "<aXbYc@example.com>"),
            task(6, "<a_b%cd@example.com>"),
            task(7, "<a_bZc@example.com>"),
            task(8, "<back\\slash@example.com>"),
            task(9, None, Subject="Call", OwnerId=ADMIN, WhoId=LEAD, ActivityDate=None,
                 CreatedDate="2024-06-14T23:30:00.000+0000", CallDurationInSeconds=30),
            task(10, "<dup@example.com>", Subject=None, WhoId=None,
                 CreatedDate="2024-06-15T08:00:00Z"),
            task(11, "<dup@example.com>", Subject="", WhoId=None, OwnerId=ADMIN),
            task(12, "<DUP@example.com>", WhoId=None, CreatedDate=datetime(2024, 6, 10, tzinfo=UTC)),
        ],
        "Contact": [{"Id": CONTACT, "Name": "Carla Contact", "Email": "carla@example.com"}],
        "Lead": [{"Id": LEAD, "Name": "Leo Lead", "Email": "leo@example.com", "Company": "Acme"}],
    }


class MiniOrg:
    """Rows and schemas of a small org, wired to run_query as the practice org wires it."""

    def __init__(self, **schema_options: bool) -> None:
        self.schemas = build_schemas(**schema_options)
        self.rows = build_rows()
        self.lookups: list[tuple[str, str]] = []

    def schema(self, name: str) -> SObjectSchema | None:
        return self.schemas.get(name.lower())

    def rows_of(self, name: str) -> Iterable[Mapping[str, object]]:
        return self.rows.get(name, [])

    def lookup(self, sobject: str, record_id: str) -> Mapping[str, object] | None:
        self.lookups.append((sobject, record_id))
        for row in self.rows.get(sobject, []):
            if row["Id"] == record_id:
                return row
        return None

    def query(self, soql: str, *, api_version: str = "64.0") -> QueryResult:
        parsed = parse_soql(soql)
        declared = self.schema(parsed.sobject)
        rows = self.rows_of(declared.name) if declared else []
        return run_query(parsed, rows, self.lookup, self.schema, subquery_rows=self.rows_of,
                         api_version=api_version, now=NOW)

    def ids(self, soql: str) -> list[str]:
        return [str(record["Id"]) for record in self.query(soql).records]

    def error(self, soql: str) -> SoqlError:
        with pytest.raises(SoqlError) as caught:
            self.query(soql)
        return caught.value


@pytest.fixture
def org() -> MiniOrg:
    return MiniOrg()


def task_ids(*numbers: int) -> list[str]:
    return [make_id("00T", number) for number in numbers]


# Queries the product sends


def test_soql__user_with_profile_name(org: MiniOrg) -> None:
    result = org.query(format_soql(
        "SELECT Id, Username, IsActive, ProfileId, Profile.Name FROM User WHERE Id = {}",
        INTEGRATION))

    assert result.total_size == 1
    assert result.records == [{
        "attributes": {"type": "User", "url": f"/services/data/v64.0/sobjects/User/{INTEGRATION}"},
        "Id": INTEGRATION,
        "Username": "integration@practice.backstory.example",
        "IsActive": True,
        "ProfileId": API_ONLY_PROFILE,
        "Profile": {
            "attributes": {"type": "Profile",
                           "url": f"/services/data/v64.0/sobjects/Profile/{API_ONLY_PROFILE}"},
            "Name": "Minimum Access - API Only Integrations",
        },
    }]


def test_soql__permission_set_assignments_of_user(org: MiniOrg) -> None:
    result = org.query(format_soql(
        "SELECT PermissionSetId, PermissionSetGroupId, ExpirationDate, IsActive, "
        "PermissionSet.Name, PermissionSet.IsOwnedByProfile, "
        "PermissionSet.PermissionsApiEnabled, PermissionSet.PermissionsViewAllData, "
        "PermissionSet.PermissionsModifyAllData, PermissionSet.PermissionsEditTask, "
        "PermissionSet.PermissionsEditEvent "
        "FROM PermissionSetAssignment WHERE AssigneeId = {}", INTEGRATION))

    assert [record["PermissionSetId"] for record in result.records] == [
        API_ONLY_PROFILE_SET, BACKSTORY_SET]
    backstory = result.records[1]
    assert backstory["ExpirationDate"] == "2030-01-01"
    assert backstory["PermissionSetGroupId"] is None
    assert backstory["PermissionSet"] == {
        "attributes": {"type": "PermissionSet",
                       "url": f"/services/data/v64.0/sobjects/PermissionSet/{BACKSTORY_SET}"},
        "Name": "Backstory_Integration",
        "IsOwnedByProfile": False,
        "PermissionsApiEnabled": True,
        "PermissionsViewAllData": True,
        "PermissionsModifyAllData": False,
        "PermissionsEditTask": True,
        "PermissionsEditEvent": False,
    }


def test_soql__real_permission_sets_only(org: MiniOrg) -> None:
    result = org.query(format_soql(
        "SELECT PermissionSetId FROM PermissionSetAssignment "
        "WHERE AssigneeId = {} AND PermissionSet.IsOwnedByProfile = false", INTEGRATION))

    assert [record["PermissionSetId"] for record in result.records] == [BACKSTORY_SET]


@pytest.mark.parametrize(("user", "expected"), [
    (ADMIN, [make_id("01k", 1)]),
    (INTEGRATION, [make_id("01k", 4)]),
    (OUTREACH, [make_id("01k", 2), make_id("01k", 3)]),
    (REP, []),
])
def test_soql__field_permissions_semi_join(org: MiniOrg, user: str, expected: list[str]) -> None:
    soql = format_soql(
        "SELECT Id, ParentId, Parent.Name, Parent.IsOwnedByProfile, SobjectType, Field, "
        "PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE ParentId IN (SELECT PermissionSetId FROM PermissionSetAssignment "
        "WHERE AssigneeId = {})", user)

    assert org.ids(soql) == expected


def test_soql__field_permissions_on_message_id(org: MiniOrg) -> None:
    result = org.query(format_soql(
        "SELECT ParentId, Parent.Name, Parent.IsOwnedByProfile, SobjectType, Field, "
        "PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE Field IN {fields} AND ParentId IN (SELECT PermissionSetId "
        "FROM PermissionSetAssignment WHERE AssigneeId = {uid})",
        fields=["Task.Message_ID__c", "Event.Message_ID__c"], uid=OUTREACH))

    assert [record["Field"] for record in result.records] == [
        "Task.Message_ID__c", "Event.Message_ID__c"]
    assert result.records[0]["Parent"] == {
        "attributes": {"type": "PermissionSet",
                       "url": f"/services/data/v64.0/sobjects/PermissionSet/{OUTREACH_SET}"},
        "Name": "Outreach_Integration",
        "IsOwnedByProfile": False,
    }


def test_soql__anti_join(org: MiniOrg) -> None:
    soql = format_soql(
        "SELECT Id FROM FieldPermissions WHERE ParentId NOT IN "
        "(SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = {})", OUTREACH)

    assert org.ids(soql) == [make_id("01k", 1), make_id("01k", 4)]


def test_soql__duplicate_keys_group_by_having(org: MiniOrg) -> None:
    result = org.query(
        "SELECT Message_ID__c, COUNT(Id) c FROM Task WHERE Message_ID__c != null "
        "GROUP BY Message_ID__c HAVING COUNT(Id) > 1")

    assert result.is_aggregate
    assert result.total_size == 1
    assert result.records == [{
        "attributes": {"type": "AggregateResult"},
        "Message_ID__c": "<dup@example.com>",
        "c": 2,
    }]


def test_soql__tasks_by_keys_with_owner_and_creator(org: MiniOrg) -> None:
    keys = ["<o'neil.20240101@example.com>", "<a_b%c@example.com>", "<back\\slash@example.com>"]
    result = org.query(format_soql(
        "SELECT Id, Message_ID__c, Subject, OwnerId, Owner.Name, CreatedById, CreatedBy.Name, "
        "CreatedDate, WhoId, IsDeleted FROM Task WHERE Message_ID__c IN {}", keys))

    assert [record["Message_ID__c"] for record in result.records] == keys
    first = result.records[0]
    assert list(first) == ["attributes", "Id", "Message_ID__c", "Subject", "OwnerId", "Owner",
                           "CreatedById", "CreatedBy", "CreatedDate", "WhoId", "IsDeleted"]
    assert first["Owner"] == {
        "attributes": {"type": "User", "url": f"/services/data/v64.0/sobjects/User/{REP}"},
        "Name": "Rita Rep",
    }
    assert first["IsDeleted"] is False
    assert first["CreatedDate"] == "2024-01-01T10:00:00.000+0000"


def test_soql__people_by_email(org: MiniOrg) -> None:
    emails = ["CARLA@example.com", "nobody@example.com"]

    contacts = org.query(format_soql("SELECT Id, Email FROM Contact WHERE Email IN {}", emails))
    leads = org.query(format_soql("SELECT Id, Email FROM Lead WHERE Email IN {}", emails))

    assert [record["Id"] for record in contacts.records] == [CONTACT]
    assert leads.records == []


def test_soql__users_by_email(org: MiniOrg) -> None:
    result = org.query(format_soql(
        "SELECT Id, Name, Username, Email, IsActive FROM User WHERE Email IN {}",
        ["rita@example.com"]))

    assert result.records[0]["Name"] == "Rita Rep"
    assert result.records[0]["IsActive"] is False


# Quoting of hostile keys


@pytest.mark.parametrize(("key", "expected"), [
    ("<o'neil.20240101@example.com>", [1]),
    ("<a_b%c@example.com>", [4]),
    ("<back\\slash@example.com>", [8]),
])
def test_soql__hostile_key_equality_matches_one_row(org: MiniOrg, key: str,
                                                     expected: list[int]) -> None:
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c = {}", key)

    assert org.ids(soql) == task_ids(*expected)


def test_soql__hostile_keys_in_list(org: MiniOrg) -> None:
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c IN {}",
                       ["<o'neil.20240101@example.com>", "<a_b%c@example.com>"])

    assert org.ids(soql) == task_ids(1, 4)


def test_soql__escaped_like_does_not_over_match(org: MiniOrg) -> None:
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c LIKE '{:like}'",
                       "<a_b%c@example.com>")

    assert org.ids(soql) == task_ids(4)


def test_soql__escaped_like_prefix(org: MiniOrg) -> None:
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c LIKE '{:like}%'", "<a_b%c")

    assert org.ids(soql) == task_ids(4, 6)


def test_soql__like_wildcards(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c LIKE '<a_b_c@%'") == task_ids(4, 5, 7)
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c LIKE '<a\\_b_c@%'") == task_ids(4, 7)
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c LIKE '%.evil>'") == task_ids(3)


def test_soql__unescaped_quote_is_malformed(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Task WHERE Message_ID__c = '<o'neil@example.com>'")

    assert error.error_code == "MALFORMED_QUERY"


def test_soql__string_escape_sequences(org: MiniOrg) -> None:
    org.rows["Task"].append(task(20, "line\nbreak\t\"quoted\" caf\u00e9"))

    soql = "SELECT Id FROM Task WHERE Message_ID__c = 'line\\nbreak\\t\\\"quoted\\\" caf\\u00e9'"

    assert org.ids(soql) == task_ids(20)


def test_soql__like_escape_outside_like_is_malformed(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Task WHERE Message_ID__c = 'a\\%b'")

    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith(
        "Invalid string literal 'a\\%b'. Illegal character sequence '\\%' in string literal.")


# Case rules


def test_soql__case_sensitive_unique_field_equality(org: MiniOrg) -> None:
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c = {}", "<dup@example.com>")

    assert org.ids(soql) == task_ids(10, 11)


def test_soql__case_insensitive_field_equality() -> None:
    org = MiniOrg(message_id_case_sensitive=False)
    soql = format_soql("SELECT Id FROM Task WHERE Message_ID__c = {}", "<dup@example.com>")

    assert org.ids(soql) == task_ids(10, 11, 12)


def test_soql__like_on_case_sensitive_field_keeps_case(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c LIKE '<dup%'") == task_ids(10, 11)
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c LIKE '<DUP%'") == task_ids(12)


def test_soql__checkbox_stored_as_integer(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM User WHERE IsActive = false") == [REP]
    assert org.ids("SELECT Id FROM User WHERE IsActive != false") == [ADMIN, INTEGRATION, OUTREACH]


def test_soql__text_equality_ignores_case(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE Subject = 'CALL'") == task_ids(9)
    assert org.ids("SELECT Id FROM User WHERE Name LIKE 'rita%'") == [REP]


def test_soql__case_insensitive_group_by_merges_case() -> None:
    org = MiniOrg(message_id_case_sensitive=False)
    result = org.query(
        "SELECT Message_ID__c, COUNT(Id) FROM Task WHERE Message_ID__c LIKE '<dup%' "
        "GROUP BY Message_ID__c")

    assert result.records == [{
        "attributes": {"type": "AggregateResult"},
        "Message_ID__c": "<dup@example.com>",
        "expr0": 3,
    }]


# Names, case and field-level security


def test_soql__names_follow_schema_case(org: MiniOrg) -> None:
    result = org.query("select id, message_id__c, owner.name from TASK where id = "
                       f"'{make_id('00T', 1)}'")

    record = result.records[0]
    assert list(record) == ["attributes", "Id", "Message_ID__c", "Owner"]
    assert record["attributes"] == {
        "type": "Task", "url": f"/services/data/v64.0/sobjects/Task/{make_id('00T', 1)}"}


def test_soql__row_keys_match_case_insensitively(org: MiniOrg) -> None:
    org.rows["Contact"] = [{"id": CONTACT, "NAME": "Carla Contact", "email": "carla@example.com"}]

    result = org.query("SELECT Id, Name FROM Contact WHERE Email = 'carla@example.com'")

    assert result.records[0]["Name"] == "Carla Contact"


def test_soql__api_version_in_urls(org: MiniOrg) -> None:
    result = org.query(f"SELECT Id, Owner.Name FROM Task WHERE Id = '{make_id('00T', 1)}'",
                       api_version="66.0")

    record = result.records[0]
    assert record["attributes"] == {
        "type": "Task", "url": f"/services/data/v66.0/sobjects/Task/{make_id('00T', 1)}"}
    owner = record["Owner"]
    assert isinstance(owner, dict)
    assert owner["attributes"]["url"] == f"/services/data/v66.0/sobjects/User/{REP}"


def test_soql__fifteen_character_id_matches(org: MiniOrg) -> None:
    assert org.ids(f"SELECT Id FROM User WHERE Id = '{ADMIN[:15]}'") == [ADMIN]


# Relationship fields


def test_soql__null_parent_is_null(org: MiniOrg) -> None:
    result = org.query(f"SELECT Id, Profile.Name FROM User WHERE Id = '{REP}'")

    assert result.records[0]["Profile"] is None


def test_soql__polymorphic_who(org: MiniOrg) -> None:
    result = org.query("SELECT Id, Who.Name, Who.Email FROM Task WHERE Id IN "
                       f"('{make_id('00T', 1)}', '{make_id('00T', 9)}', '{make_id('00T', 10)}')")

    contact, lead, nobody = (record["Who"] for record in result.records)
    assert contact == {
        "attributes": {"type": "Name", "url": f"/services/data/v64.0/sobjects/Contact/{CONTACT}"},
        "Name": "Carla Contact", "Email": "carla@example.com"}
    assert lead == {
        "attributes": {"type": "Name", "url": f"/services/data/v64.0/sobjects/Lead/{LEAD}"},
        "Name": "Leo Lead", "Email": "leo@example.com"}
    assert nobody is None


def test_soql__polymorphic_owner_is_typed_name(org: MiniOrg) -> None:
    task_schema = org.schemas["task"]
    fields = tuple(
        reference("OwnerId", ("Group", "User"), "Owner") if item.name == "OwnerId" else item
        for item in task_schema.fields)
    org.schemas["task"] = SObjectSchema("Task", fields, "00T")

    result = org.query(f"SELECT Owner.Name FROM Task WHERE Id = '{make_id('00T', 9)}'")

    assert result.records[0]["Owner"] == {
        "attributes": {"type": "Name", "url": f"/services/data/v64.0/sobjects/User/{ADMIN}"},
        "Name": "Ada Admin"}


def test_soql__two_level_relationship(org: MiniOrg) -> None:
    result = org.query(f"SELECT Owner.Profile.Name FROM Task WHERE Id = '{make_id('00T', 9)}'")

    owner = result.records[0]["Owner"]
    assert isinstance(owner, dict)
    assert owner["Profile"] == {
        "attributes": {"type": "Profile",
                       "url": f"/services/data/v64.0/sobjects/Profile/{ADMIN_PROFILE}"},
        "Name": "System Administrator"}


def test_soql__relationship_field_in_where(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE Owner.Name = 'ada admin'") == task_ids(9, 11)


def test_soql__each_parent_looked_up_once(org: MiniOrg) -> None:
    org.query("SELECT Id, Owner.Name, CreatedBy.Name FROM Task")

    assert len(org.lookups) == len(set(org.lookups))


# WHERE semantics


def test_soql__not_equal_includes_null(org: MiniOrg) -> None:
    not_equal = org.ids("SELECT Id FROM Task WHERE Message_ID__c != '<dup@example.com>'")

    assert make_id("00T", 9) in not_equal
    assert make_id("00T", 10) not in not_equal
    assert org.ids("SELECT Id FROM Task WHERE Message_ID__c = null") == task_ids(9)
    assert org.ids("SELECT Id FROM Task WHERE CreatedById = null") == []


def test_soql__empty_text_is_null(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE Subject = null") == task_ids(10, 11)

    result = org.query(f"SELECT Subject FROM Task WHERE Id = '{make_id('00T', 11)}'")
    assert result.records[0]["Subject"] is None


def test_soql__not_and_parentheses(org: MiniOrg) -> None:
    soql = ("SELECT Id FROM Task WHERE NOT (Message_ID__c LIKE '<a%' OR Message_ID__c LIKE '<o%') "
            "AND (OwnerId = '" + ADMIN + "' OR Message_ID__c = '<back\\\\slash@example.com>')")

    assert org.ids(soql) == task_ids(8, 9, 11)


def test_soql__number_comparison(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE CallDurationInSeconds >= 30") == task_ids(9)
    assert org.ids("SELECT Id FROM Task WHERE CallDurationInSeconds < 30") == []


def test_soql__not_in_list_includes_null(org: MiniOrg) -> None:
    ids = org.ids("SELECT Id FROM Task WHERE Message_ID__c NOT IN ('<dup@example.com>')")

    assert make_id("00T", 9) in ids
    assert make_id("00T", 10) not in ids
    assert make_id("00T", 12) in ids
    assert len(ids) == 10


# Dates


def test_soql__datetime_literals(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate > 2024-06-14T23:00:00Z") == task_ids(
        9, 10)
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate > 2024-06-15T01:15:00+02:00") == (
        task_ids(9, 10))
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate > 2024-06-14T20:00:00-04:00") == (
        task_ids(10))
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate = 2024-06-15T08:00:00.000Z") == (
        task_ids(10))


def test_soql__date_literal_on_date_field(org: MiniOrg) -> None:
    ids = org.ids("SELECT Id FROM Task WHERE ActivityDate = 2024-01-01")

    assert ids == task_ids(1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12)


def test_soql__relative_dates(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate = TODAY") == task_ids(10)
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate = YESTERDAY") == task_ids(9)
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate = LAST_N_DAYS:5") == task_ids(9, 10, 12)
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate < LAST_N_DAYS:5") == task_ids(
        1, 2, 3, 4, 5, 6, 7, 8, 11)
    assert org.ids("SELECT Id FROM Task WHERE CreatedDate > TODAY") == []


def test_soql__date_value_on_datetime_field_is_invalid(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Task WHERE CreatedDate > 2024-01-01")

    assert error.error_code == "INVALID_FIELD"
    assert error.message.endswith(
        "value of filter criterion for field 'CreatedDate' must be of type dateTime "
        "and should not be enclosed in quotes")


# ORDER BY, LIMIT, OFFSET, COUNT()


def test_soql__order_by_nulls_first_by_default(org: MiniOrg) -> None:
    ascending = org.ids("SELECT Id FROM Task WHERE Subject != 'x' ORDER BY Subject, Id")
    descending = org.ids("SELECT Id FROM Task ORDER BY Subject DESC, Id")

    assert ascending[:2] == task_ids(10, 11)
    assert ascending[2] == make_id("00T", 9)
    assert descending[:2] == task_ids(10, 11)
    assert descending[-1] == make_id("00T", 9)


def test_soql__order_by_nulls_last(org: MiniOrg) -> None:
    ascending = org.ids("SELECT Id FROM Task ORDER BY Message_ID__c NULLS LAST")
    descending = org.ids("SELECT Id FROM Task ORDER BY Message_ID__c DESC NULLS LAST")

    assert ascending[-1] == make_id("00T", 9)
    assert descending[-1] == make_id("00T", 9)
    assert descending[0] == make_id("00T", 1)


def test_soql__order_by_several_keys(org: MiniOrg) -> None:
    ids = org.ids("SELECT Id FROM Task WHERE Message_ID__c IN ('<dup@example.com>', "
                  "'<DUP@example.com>') ORDER BY OwnerId DESC, CreatedDate ASC")

    assert ids == task_ids(12, 10, 11)


def test_soql__order_by_relationship_field(org: MiniOrg) -> None:
    names = [record["Name"] for record in org.query(
        "SELECT Name FROM User ORDER BY Profile.Name DESC NULLS LAST, Name").records]

    assert names == ["Ada Admin", "Backstory Integration", "Outreach Sync", "Rita Rep"]


def test_soql__limit_and_offset(org: MiniOrg) -> None:
    assert org.ids("SELECT Id FROM Task ORDER BY Id LIMIT 3") == task_ids(1, 2, 3)
    assert org.ids("SELECT Id FROM Task ORDER BY Id LIMIT 2 OFFSET 10") == task_ids(11, 12)
    assert org.ids("SELECT Id FROM Task ORDER BY Id OFFSET 11") == task_ids(12)
    assert org.ids("SELECT Id FROM Task LIMIT 0") == []


def test_soql__offset_above_2000_is_rejected(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Task LIMIT 5 OFFSET 2001")

    assert error.error_code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert error.message == "Maximum SOQL offset allowed is 2000"


def test_soql__count_returns_total_size_only(org: MiniOrg) -> None:
    everything = org.query("SELECT COUNT() FROM Task")
    keyed = org.query("SELECT COUNT() FROM Task WHERE Message_ID__c != null")
    limited = org.query("SELECT COUNT() FROM Task LIMIT 5")

    assert (everything.total_size, everything.records) == (12, [])
    assert keyed.total_size == 11
    assert limited.total_size == 5
    assert not everything.is_aggregate


# Aggregates


def test_soql__count_field_without_group_by(org: MiniOrg) -> None:
    result = org.query("SELECT COUNT(Id), COUNT(Message_ID__c) keyed FROM Task")

    assert result.records == [{"attributes": {"type": "AggregateResult"}, "expr0": 12,
                               "keyed": 11}]


def test_soql__group_by_relationship_and_order_by_count(org: MiniOrg) -> None:
    result = org.query("SELECT Owner.Name, COUNT(Id) FROM Task GROUP BY Owner.Name "
                       "ORDER BY COUNT(Id) DESC")

    assert [(record["Name"], record["expr0"]) for record in result.records] == [
        ("Rita Rep", 10), ("Ada Admin", 2)]


def test_soql__having_on_grouped_field(org: MiniOrg) -> None:
    result = org.query("SELECT OwnerId, COUNT(Id) n FROM Task GROUP BY OwnerId "
                       f"HAVING COUNT(Id) >= 2 AND OwnerId = '{ADMIN}'")

    assert result.records == [{"attributes": {"type": "AggregateResult"}, "OwnerId": ADMIN,
                               "n": 2}]


def test_soql__ungrouped_field_is_malformed(org: MiniOrg) -> None:
    error = org.error("SELECT Subject, COUNT(Id) FROM Task GROUP BY Message_ID__c")

    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("Field must be grouped or aggregated: Subject")


# Errors


def test_soql__misspelt_keyword(org: MiniOrg) -> None:
    error = org.error("SELECT Id FORM Task")

    assert error.error_code == "MALFORMED_QUERY"
    assert error.message == (
        "\nSELECT Id FORM Task\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'")


@pytest.mark.parametrize(("soql", "reason"), [
    ("SELECT Id FROM", "unexpected token: <EOF>"),
    ("SELECT Id FROM Task WHERE", "unexpected token: <EOF>"),
    ("SELECT Id FROM Task WHERE Subject = 'a' AND Status = 'b' OR Subject = 'c'",
     "unexpected token: 'OR'"),
    ("SELECT Id FROM Task WHERE Subject = \"a\"", "unexpected token: '\"'"),
    ("SELECT Id FROM Task WHERE Id IN :ids", "unexpected token: ':'"),
    ("SELECT Id FROM Task WHERE CreatedDate = THIS_WEEK", "unexpected token: 'THIS_WEEK'"),
    ("SELECT Id, (SELECT Id FROM Tasks) FROM Contact", "unexpected token: '('"),
    ("SELECT Id, id FROM Task", "duplicate field selected: id"),
    ("SELECT COUNT(), Id FROM Task", "COUNT() must be the only element in the SELECT list"),
    ("SELECT Id FROM Task LIMIT 1.5", "unexpected token: '1.5'"),
    ("SELECT MAX(CreatedDate) FROM Task", "unexpected token: '('"),
])
def test_soql__malformed_queries(org: MiniOrg, soql: str, reason: str) -> None:
    error = org.error(soql)

    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("\n" + reason)


def test_soql__unknown_field(org: MiniOrg) -> None:
    error = org.error("SELECT Id, Foo__c FROM Task")

    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Id, Foo__c FROM Task\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo__c' on entity 'Task'. If you are attempting to use a custom field, "
        "be sure to append the '__c' after the custom field name. Please reference your WSDL or "
        "the describe call for the appropriate names.")


def test_soql__field_hidden_by_field_level_security() -> None:
    org = MiniOrg(message_id_visible=False)

    error = org.error(format_soql("SELECT Id FROM Task WHERE Message_ID__c = {}", "<x@y>"))

    assert error.error_code == "INVALID_FIELD"
    assert "No such column 'Message_ID__c' on entity 'Task'." in error.message


def test_soql__unknown_field_on_parent(org: MiniOrg) -> None:
    error = org.error("SELECT Owner.Foo__c FROM Task")

    assert error.error_code == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'User'." in error.message


def test_soql__unknown_relationship(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Task WHERE Boss.Name = 'x'")

    assert error.error_code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Boss' in field path." in error.message


def test_soql__unknown_sobject(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM Foo")

    assert error.error_code == "INVALID_TYPE"
    assert error.message.endswith(
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be "
        "sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.")


def test_soql__unknown_sobject_in_semi_join(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM FieldPermissions WHERE ParentId IN (SELECT Id FROM Foo)")

    assert error.error_code == "INVALID_TYPE"


def test_soql__invalid_id_literal(org: MiniOrg) -> None:
    error = org.error("SELECT Id FROM User WHERE Id = 'not-an-id'")

    assert error.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert error.message.endswith("invalid ID field: not-an-id")


@pytest.mark.parametrize(("soql", "reason"), [
    ("SELECT Id FROM User WHERE IsActive = 'true'",
     "value of filter criterion for field 'IsActive' must be of type boolean and should not be "
     "enclosed in quotes"),
    ("SELECT Id FROM Task WHERE Subject = 5",
     "value of filter criterion for field 'Subject' must be of type string and should be "
     "enclosed in quotes"),
    ("SELECT Id FROM Task WHERE CallDurationInSeconds = '5'",
     "value of filter criterion for field 'CallDurationInSeconds' must be of type integer and "
     "should not be enclosed in quotes"),
    ("SELECT Id FROM Task WHERE ActivityDate = 2024-01-01T00:00:00Z",
     "value of filter criterion for field 'ActivityDate' must be of type date and should not be "
     "enclosed in quotes"),
])
def test_soql__value_of_wrong_type(org: MiniOrg, soql: str, reason: str) -> None:
    error = org.error(soql)

    assert error.error_code == "INVALID_FIELD"
    assert error.message.endswith("\n" + reason)


@pytest.mark.parametrize("soql", [
    "SELECT Id FROM Task WHERE COUNT(Id) > 1",
    "SELECT Id FROM Task ORDER BY COUNT(Id)",
    "SELECT COUNT() FROM Task GROUP BY OwnerId",
    "SELECT Id FROM Task WHERE CreatedDate > null",
    "SELECT Id FROM User WHERE IsActive > false",
    "SELECT Id FROM Task WHERE CallDurationInSeconds LIKE '3%'",
    "SELECT Id FROM FieldPermissions WHERE Field IN (SELECT PermissionSetId FROM "
    "PermissionSetAssignment)",
    "SELECT Id FROM FieldPermissions WHERE ParentId IN (SELECT PermissionSetId FROM "
    "PermissionSetAssignment LIMIT 5)",
])
def test_soql__unsupported_forms_are_malformed(org: MiniOrg, soql: str) -> None:
    assert org.error(soql).error_code == "MALFORMED_QUERY"


def test_soql__nested_semi_join_is_malformed(org: MiniOrg) -> None:
    error = org.error(
        "SELECT Id FROM FieldPermissions WHERE ParentId IN (SELECT PermissionSetId FROM "
        "PermissionSetAssignment WHERE AssigneeId IN (SELECT Id FROM User))")

    assert error.error_code == "MALFORMED_QUERY"


def test_soql__error_position_on_later_line(org: MiniOrg) -> None:
    error = org.error("SELECT Id\nFROM Task\nWHERE Nope = 1")

    assert "\nWHERE Nope = 1\n      ^\nERROR at Row:3:Column:7\n" in error.message


def test_soql__keywords_are_case_insensitive(org: MiniOrg) -> None:
    ids = org.ids("select Id from Task where Message_ID__c like '<a%' and not OwnerId = null "
                  "order by Id desc nulls last limit 2 offset 1")

    assert ids == task_ids(6, 5)
