"""Describe metadata of the sObjects the product uses, and the Activity custom fields.

Field properties follow Salesforce's object reference (for example Task.TaskSubtype
is createable but not updateable, Task.Description is a 32,000-character text
area). Activity custom fields appear on both Task and Event. What a session
user gets is filtered by field-level security: a custom field the user cannot read
is absent, exactly as in Salesforce's describe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from backstory_desktop.practice_org.ids import KEY_PREFIXES
from backstory_desktop.practice_org.store import CustomFieldDefinition

ACTIVITY_OBJECTS = ("Task", "Event")


@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject, with the properties describe reports."""

    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    id_lookup: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    default_picklist_value: str | None = None
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    default_value: Any = None

    @property
    def is_text(self) -> bool:
        return self.type in ("string", "textarea", "email", "phone", "url", "picklist", "combobox")


@dataclass(frozen=True)
class SObjectSpec:
    """An sObject's describe metadata: its fields in describe order."""

    name: str
    label: str
    label_plural: str
    fields: tuple[FieldSpec, ...]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    custom_fields_allowed: bool = False
    _by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({spec.name.lower(): spec for spec in self.fields})

    def field(self, name: str) -> FieldSpec | None:
        """Return a field by API name, case-insensitively as SOQL and REST match names."""
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldSpec | None:
        """Return the reference field whose relationship name is ``name`` (``Owner``, ``Who``)."""
        relationship = name.lower()
        for spec in self.fields:
            if spec.relationship_name and spec.relationship_name.lower() == relationship:
                return spec
        return None

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]


def _text(name: str, label: str, length: int = 255, **options: Any) -> FieldSpec:
    return FieldSpec(name, "string", label, length, **options)


def _boolean(name: str, label: str, **options: Any) -> FieldSpec:
    options.setdefault("default_value", False)
    return FieldSpec(name, "boolean", label, nillable=False, **options)


def _reference(
    name: str, label: str, targets: tuple[str, ...], relationship: str, **options: Any
) -> FieldSpec:
    return FieldSpec(
        name, "reference", label, 18, reference_to=targets, relationship_name=relationship,
        **options,
    )


def _picklist(
    name: str, label: str, values: tuple[str, ...], default: str | None = None, **options: Any
) -> FieldSpec:
    return FieldSpec(
        name, "picklist", label, 255, picklist=values, default_picklist_value=default,
        default_value=default, **options,
    )


def _read_only(spec: FieldSpec) -> FieldSpec:
    return replace(spec, createable=False, updateable=False)


def _system_fields() -> tuple[FieldSpec, ...]:
    return (
        _read_only(FieldSpec("IsDeleted", "boolean", "Deleted", nillable=False)),
        _read_only(FieldSpec("CreatedDate", "datetime", "Created Date", nillable=False)),
        _read_only(_reference("CreatedById", "Created By ID", ("User",), "CreatedBy")),
        _read_only(FieldSpec("LastModifiedDate", "datetime", "Last Modified Date")),
        _read_only(_reference("LastModifiedById", "Last Modified By ID", ("User",),
                              "LastModifiedBy")),
        _read_only(FieldSpec("SystemModstamp", "datetime", "System Modstamp")),
    )


def _id_field(label: str = "Record ID") -> FieldSpec:
    return _read_only(FieldSpec("Id", "id", label, 18, nillable=False))


def _owner() -> FieldSpec:
    return _reference("OwnerId", "Assigned To ID", ("User",), "Owner", nillable=False)


_TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")


def _task() -> SObjectSpec:
    fields = (
        _id_field("Activity ID"),
        _reference("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
        _reference("WhatId", "Related To ID", ("Account", "Opportunity"), "What"),
        FieldSpec("Subject", "combobox", "Subject", 255),
        FieldSpec("ActivityDate", "date", "Due Date Only"),
        _picklist("Status", "Status", ("Not Started", "In Progress", "Completed",
                  "Waiting on someone else", "Deferred"), "Not Started", nillable=False),
        _picklist("Priority", "Priority", ("High", "Normal", "Low"), "Normal", nillable=False),
        _owner(),
        FieldSpec("Description", "textarea", "Description", 32000),
        _picklist("Type", "Type", ("Call", "Email", "Meeting", "Other")),
        _read_only(_boolean("IsClosed", "Closed")),
        _read_only(_boolean("IsArchived", "Archived")),
        FieldSpec("CallDurationInSeconds", "int", "Call Duration"),
        _picklist("CallType", "Call Type", ("Internal", "Inbound", "Outbound"),
                  restricted_picklist=True),
        _text("CallDisposition", "Call Result"),
        _text("CallObject", "Call Object Identifier"),
        _picklist("TaskSubtype", "Task Subtype", _TASK_SUBTYPES, updateable=False,
                  restricted_picklist=True),
        _read_only(FieldSpec("CompletedDateTime", "datetime", "Completed Date/Time")),
        *_system_fields(),
    )
    return SObjectSpec("Task", "Task", "Tasks", fields, custom_fields_allowed=True)


def _event() -> SObjectSpec:
    fields = (
        _id_field("Activity ID"),
        _reference("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
        _reference("WhatId", "Related To ID", ("Account", "Opportunity"), "What"),
        FieldSpec("Subject", "combobox", "Subject", 255),
        FieldSpec("ActivityDateTime", "datetime", "Due Date Time"),
        FieldSpec("StartDateTime", "datetime", "Start Date Time"),
        FieldSpec("EndDateTime", "datetime", "End Date Time"),
        FieldSpec("DurationInMinutes", "int", "Duration"),
        _owner(),
        FieldSpec("Description", "textarea", "Description", 32000),
        _read_only(_boolean("IsArchived", "Archived")),
        _picklist("EventSubtype", "Event Subtype", ("Event",), updateable=False),
        *_system_fields(),
    )
    return SObjectSpec("Event", "Event", "Events", fields, custom_fields_allowed=True)


def _user() -> SObjectSpec:
    fields = (
        _id_field("User ID"),
        _text("Username", "Username", 80, unique=True, nillable=False, id_lookup=True),
        _text("LastName", "Last Name", 80, nillable=False),
        _text("FirstName", "First Name", 40),
        _read_only(_text("Name", "Full Name", 121)),
        FieldSpec("Email", "email", "Email", 128, nillable=False),
        _text("Alias", "Alias", 8, nillable=False),
        _boolean("IsActive", "Active", default_value=True),
        _reference("ProfileId", "Profile ID", ("Profile",), "Profile", nillable=False),
        _picklist("UserType", "User Type", ("Standard",), "Standard"),
        _text("TimeZoneSidKey", "Time Zone", 40),
        *_system_fields(),
    )
    return SObjectSpec("User", "User", "Users", fields, deletable=False)


def _profile() -> SObjectSpec:
    fields = (
        _id_field("Profile ID"),
        _text("Name", "Name", nillable=False),
        _text("Description", "Description"),
        *_system_fields(),
    )
    return SObjectSpec("Profile", "Profile", "Profiles", fields)


PERMISSION_FLAGS = (
    ("PermissionsApiEnabled", "API Enabled"),
    ("PermissionsViewAllData", "View All Data"),
    ("PermissionsModifyAllData", "Modify All Data"),
    ("PermissionsEditTask", "Edit Task"),
    ("PermissionsEditEvent", "Edit Event"),
    ("PermissionsViewAllUsers", "View All Users"),
    ("PermissionsViewSetup", "View Setup and Configuration"),
)


# PermissionSet.Type: "Profile" for the set a profile owns, "Group" for the aggregate set of a
# permission set group, "Regular" for an admin's own set (object reference, PermissionSet).
PERMISSION_SET_TYPES = ("Regular", "Group", "Profile", "Session", "Standard")

# PermissionSetGroup.Status: the state of the group's recalculation (object reference,
# PermissionSetGroup). The practice org recalculates at once, so a group is always "Updated".
PERMISSION_SET_GROUP_STATUSES = ("Updated", "Outdated", "Updating", "Failed")


def _permission_set() -> SObjectSpec:
    fields = (
        _id_field("Permission Set ID"),
        _text("Name", "Name", 80, nillable=False),
        _text("Label", "Label", 80, nillable=False),
        _text("Description", "Description"),
        _read_only(_boolean("IsOwnedByProfile", "Is Owned By Profile")),
        _read_only(_reference("ProfileId", "Profile ID", ("Profile",), "Profile")),
        _read_only(_picklist("Type", "Permission Set Type", PERMISSION_SET_TYPES, "Regular")),
        _read_only(_reference("PermissionSetGroupId", "Permission Set Group ID",
                              ("PermissionSetGroup",), "PermissionSetGroup")),
        _text("NamespacePrefix", "Namespace Prefix", 15, createable=False, updateable=False),
        *(_boolean(name, label) for name, label in PERMISSION_FLAGS),
        *_system_fields(),
    )
    return SObjectSpec("PermissionSet", "Permission Set", "Permission Sets", fields)


def _permission_set_group() -> SObjectSpec:
    fields = (
        _id_field("Permission Set Group ID"),
        _text("DeveloperName", "Developer Name", 80, nillable=False, unique=True),
        _text("MasterLabel", "Label", 80, nillable=False),
        FieldSpec("Description", "textarea", "Description", 255),
        _read_only(_picklist("Status", "Status", PERMISSION_SET_GROUP_STATUSES, "Updated",
                             restricted_picklist=True)),
        _text("NamespacePrefix", "Namespace Prefix", 15, createable=False, updateable=False),
        *_system_fields(),
    )
    return SObjectSpec(
        "PermissionSetGroup", "Permission Set Group", "Permission Set Groups", fields
    )


def _permission_set_group_component() -> SObjectSpec:
    fields = (
        _id_field("Permission Set Group Component ID"),
        _reference("PermissionSetGroupId", "Permission Set Group ID", ("PermissionSetGroup",),
                   "PermissionSetGroup", nillable=False, updateable=False),
        _reference("PermissionSetId", "Permission Set ID",
                   ("PermissionSet", "MutingPermissionSet"), "PermissionSet", nillable=False,
                   updateable=False),
        *_system_fields(),
    )
    return SObjectSpec(
        "PermissionSetGroupComponent", "Permission Set Group Component",
        "Permission Set Group Components", fields, updateable=False,
    )


def _muting_permission_set() -> SObjectSpec:
    fields = (
        _id_field("Muting Permission Set ID"),
        _text("DeveloperName", "Developer Name", 80, nillable=False, unique=True),
        _text("MasterLabel", "Label", 80, nillable=False),
        _text("Description", "Description"),
        _text("NamespacePrefix", "Namespace Prefix", 15, createable=False, updateable=False),
        *(_boolean(name, label) for name, label in PERMISSION_FLAGS),
        *_system_fields(),
    )
    return SObjectSpec(
        "MutingPermissionSet", "Muting Permission Set", "Muting Permission Sets", fields
    )


def _permission_set_assignment() -> SObjectSpec:
    fields = (
        _id_field("Permission Set Assignment ID"),
        _reference("AssigneeId", "Assignee ID", ("User",), "Assignee", nillable=False,
                   updateable=False),
        _reference("PermissionSetId", "Permission Set ID", ("PermissionSet",), "PermissionSet",
                   nillable=False, updateable=False),
        # An assignment names either a permission set or a group; for a group, PermissionSetId
        # becomes the id of the group's aggregate permission set.
        _reference("PermissionSetGroupId", "Permission Set Group ID", ("PermissionSetGroup",),
                   "PermissionSetGroup", updateable=False),
        FieldSpec("ExpirationDate", "datetime", "Expiration Date"),
        _read_only(_boolean("IsActive", "Is Active", default_value=True)),
        *_system_fields(),
    )
    return SObjectSpec(
        "PermissionSetAssignment", "Permission Set Assignment", "Permission Set Assignments",
        fields,
    )


def _field_permissions() -> SObjectSpec:
    fields = (
        _id_field("Field Permissions ID"),
        # A row whose parent is a MutingPermissionSet removes the access it names from the
        # muting set's permission set group (object reference, FieldPermissions).
        _reference("ParentId", "Parent ID", ("PermissionSet", "MutingPermissionSet"), "Parent",
                   nillable=False, updateable=False),
        _text("SobjectType", "Sobject Type Name", 40, nillable=False, updateable=False),
        _text("Field", "Field Name", 255, nillable=False, updateable=False),
        _boolean("PermissionsRead", "Read Access"),
        _boolean("PermissionsEdit", "Edit Access"),
        *_system_fields(),
    )
    return SObjectSpec("FieldPermissions", "Field Permissions", "Field Permissions", fields)


def _person(name: str, label: str, plural: str, extra: tuple[FieldSpec, ...]) -> SObjectSpec:
    fields = (
        _id_field(f"{label} ID"),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _read_only(_text("Name", "Full Name", 121)),
        FieldSpec("Email", "email", "Email", 80, id_lookup=True),
        _text("Title", "Title", 128),
        _owner(),
        *extra,
        *_system_fields(),
    )
    return SObjectSpec(name, label, plural, fields)


def _contact() -> SObjectSpec:
    extra = (
        _reference("AccountId", "Account ID", ("Account",), "Account"),
        FieldSpec("Phone", "phone", "Business Phone", 40),
        FieldSpec("Description", "textarea", "Contact Description", 32000),
    )
    return _person("Contact", "Contact", "Contacts", extra)


def _lead() -> SObjectSpec:
    extra = (
        _text("Company", "Company", 255, nillable=False),
        _picklist("Status", "Status", ("Open - Not Contacted", "Working - Contacted",
                  "Closed - Converted", "Closed - Not Converted"), "Open - Not Contacted",
                  nillable=False),
        _read_only(_boolean("IsConverted", "Converted")),
        FieldSpec("Phone", "phone", "Phone", 40),
        FieldSpec("Description", "textarea", "Description", 32000),
    )
    return _person("Lead", "Lead", "Leads", extra)


def _account() -> SObjectSpec:
    fields = (
        _id_field("Account ID"),
        _text("Name", "Account Name", 255, nillable=False, id_lookup=True),
        _picklist("Type", "Account Type", ("Prospect", "Customer - Direct", "Customer - Channel",
                  "Channel Partner / Reseller", "Installation Partner", "Technology Partner",
                  "Other")),
        _reference("ParentId", "Parent Account ID", ("Account",), "Parent"),
        FieldSpec("Phone", "phone", "Account Phone", 40),
        _text("AccountNumber", "Account Number", 40),
        FieldSpec("Website", "url", "Website", 255),
        FieldSpec("Description", "textarea", "Account Description", 32000),
        _owner(),
        *_system_fields(),
    )
    return SObjectSpec("Account", "Account", "Accounts", fields)


def _opportunity() -> SObjectSpec:
    # Field names, types and lengths as a Developer Edition org describes Opportunity.
    # NOTE: Amount and Probability are left out: the practice org has no currency or
    # percent field type.
    fields = (
        _id_field("Opportunity ID"),
        _reference("AccountId", "Account ID", ("Account",), "Account"),
        _boolean("IsPrivate", "Private"),
        _text("Name", "Name", 120, nillable=False),
        FieldSpec("Description", "textarea", "Description", 32000),
        _picklist("StageName", "Stage", ("Prospecting", "Qualification", "Needs Analysis",
                  "Value Proposition", "Id. Decision Makers", "Perception Analysis",
                  "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost"),
                  nillable=False),
        FieldSpec("CloseDate", "date", "Close Date", nillable=False),
        _picklist("Type", "Opportunity Type", ("Existing Customer - Upgrade",
                  "Existing Customer - Replacement", "Existing Customer - Downgrade",
                  "New Customer")),
        _text("NextStep", "Next Step"),
        _picklist("LeadSource", "Lead Source", ("Web", "Phone Inquiry", "Partner Referral",
                  "Purchased List", "Other")),
        _read_only(_boolean("IsClosed", "Closed")),
        _read_only(_boolean("IsWon", "Won")),
        _picklist("ForecastCategoryName", "Forecast Category", ("Omitted", "Pipeline",
                  "Best Case", "Commit", "Closed"), restricted_picklist=True),
        _owner(),
        *_system_fields(),
        # Salesforce describes ContactId with no relationship name and as create-only.
        FieldSpec("ContactId", "reference", "Contact ID", 18, updateable=False,
                  reference_to=("Contact",)),
    )
    return SObjectSpec("Opportunity", "Opportunity", "Opportunities", fields)


STANDARD_OBJECTS: dict[str, SObjectSpec] = {
    spec.name: spec
    for spec in (
        _task(), _event(), _user(), _profile(), _permission_set(),
        _permission_set_assignment(), _field_permissions(),
        _permission_set_group(), _permission_set_group_component(), _muting_permission_set(),
        _contact(), _lead(), _account(), _opportunity(),
    )
}

FieldAccessCheck = Callable[[str, str], bool]
"""Whether the session user may read (or edit) ``field`` of ``sobject``: ``check(sobject, field)``."""


def canonical_sobject_name(name: str) -> str | None:
    """Return the sObject's API name as Salesforce spells it, or None if it is unknown."""
    for known in STANDARD_OBJECTS:
        if known.lower() == name.lower():
            return known
    return None


def custom_field_spec(definition: CustomFieldDefinition) -> FieldSpec:
    """Turn an Activity custom field definition into the field describe reports."""
    common: dict[str, Any] = {"custom": True}
    if definition.type == "Checkbox":
        return _boolean(definition.name, definition.label, **common)
    if definition.type == "Number":
        return FieldSpec(definition.name, "double", definition.label, **common)
    kinds = {"Text": "string", "Email": "email", "LongTextArea": "textarea", "Url": "url"}
    return FieldSpec(
        definition.name,
        kinds.get(definition.type, "string"),
        definition.label,
        definition.length or 255,
        unique=definition.unique,
        external_id=definition.external_id,
        case_sensitive=definition.case_sensitive,
        **common,
    )


def sobject_for_user(
    name: str, custom_fields: Iterable[CustomFieldDefinition], can_read: FieldAccessCheck
) -> SObjectSpec | None:
    """Return an sObject as the session user sees it: custom fields only where FLS allows Read."""
    standard = STANDARD_OBJECTS.get(name)
    if standard is None:
        return None
    if not standard.custom_fields_allowed:
        return standard
    visible = tuple(
        custom_field_spec(definition)
        for definition in custom_fields
        if can_read(name, definition.name)
    )
    return replace(standard, fields=standard.fields + visible, _by_name={})
