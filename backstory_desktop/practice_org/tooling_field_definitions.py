"""Tooling API FieldDefinition: one row per field of every sObject the practice org serves.

FieldDefinition is metadata, so it lists custom fields whether or not the
session user has field-level security on them. Salesforce requires the View
Setup and Configuration permission to query it.

NOTE: the practice org does not check View Setup and Configuration, so every user
with API access can query FieldDefinition.

Field names and ``DataType`` wording
follow Salesforce's Tooling API reference for FieldDefinition and its field
reference (``DataType`` as the Setup UI shows it, for example ``Text(255)``).

``EntityDefinition`` is reachable as a parent relationship with ``QualifiedApiName``,
so that ``WHERE EntityDefinition.QualifiedApiName = 'Task'`` works as on Salesforce.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

from backstory_desktop.practice_org.errors import ApiError
from backstory_desktop.practice_org.http import json_response
from backstory_desktop.practice_org.schema import STANDARD_OBJECTS, FieldSpec, sobject_for_user
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.soql import (
    FieldSchema,
    SObjectSchema,
    SoqlError,
    SoqlQuery,
    run_query,
)

_FIELD_DEFINITION_SCHEMA = SObjectSchema(
    "FieldDefinition",
    (
        # The Id is "Object.Field", not a record id, so it compares as text.
        FieldSchema("Id"),
        FieldSchema("DurableId"),
        FieldSchema("QualifiedApiName"),
        FieldSchema("DeveloperName"),
        FieldSchema("NamespacePrefix"),
        FieldSchema("Label"),
        FieldSchema("DataType"),
        FieldSchema("Length", "int"),
        # A string in Salesforce's field reference, yet the parent of EntityDefinition.
        FieldSchema("EntityDefinitionId", "string", ("EntityDefinition",), "EntityDefinition"),
        FieldSchema("IsApiFilterable", "boolean"),
        FieldSchema("IsApiGroupable", "boolean"),
        FieldSchema("IsApiSortable", "boolean"),
        FieldSchema("IsIndexed", "boolean"),
        FieldSchema("IsFlsEnabled", "boolean"),
        FieldSchema("IsNillable", "boolean"),
        FieldSchema("IsCalculated", "boolean"),
    ),
)
_ENTITY_DEFINITION_SCHEMA = SObjectSchema(
    "EntityDefinition",
    (FieldSchema("Id"), FieldSchema("DurableId"), FieldSchema("QualifiedApiName"),
     FieldSchema("Label")),
)
_SCHEMAS = {"fielddefinition": _FIELD_DEFINITION_SCHEMA,
            "entitydefinition": _ENTITY_DEFINITION_SCHEMA}

# Describe types that GROUP BY cannot use (SOQL and SOSL Reference, "Considerations When
# Using GROUP BY": long text areas, and number and dateTime fields are not groupable).
_NOT_GROUPABLE = frozenset({"textarea", "double", "currency", "percent", "datetime"})
# Standard fields Salesforce indexes on every object, besides Id and lookups.
_INDEXED_STANDARD = frozenset({"CreatedDate", "SystemModstamp", "Name", "OwnerId"})


def field_definition_query(session: ApiSession, parsed: SoqlQuery) -> Response:
    """Run a Tooling SOQL query on FieldDefinition and return Tooling's query result body."""
    entities = {name: _entity_row(name) for name in STANDARD_OBJECTS}
    rows = [row for name in STANDARD_OBJECTS for row in _field_rows(session, name)]

    def lookup(sobject: str, record_id: str) -> Mapping[str, object] | None:
        return entities.get(record_id) if sobject == "EntityDefinition" else None

    try:
        result = run_query(parsed, rows, lookup, lambda name: _SCHEMAS.get(name.lower()),
                           api_version=session.version, defer_records=True)
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None

    records = result.records
    if result.record_ids is not None and result.shape_record is not None:
        by_id = {row["Id"]: row for row in rows}
        records = []
        for record_id in result.record_ids:
            record = result.shape_record(by_id[record_id])
            record["attributes"] = {
                "type": "FieldDefinition",
                "url": f"{session.version_path}/tooling/sobjects/FieldDefinition/{record_id}",
            }
            records.append(record)
    return json_response({
        "size": result.total_size, "totalSize": result.total_size, "done": True,
        "queryLocator": None, "entityTypeName": "FieldDefinition", "records": records,
    })


def _entity_row(name: str) -> dict[str, Any]:
    return {"Id": name, "DurableId": name, "QualifiedApiName": name,
            "Label": STANDARD_OBJECTS[name].label}


def _field_rows(session: ApiSession, sobject: str) -> list[dict[str, Any]]:
    spec = sobject_for_user(sobject, session.store.custom_fields(), lambda _object, _field: True)
    if spec is None:
        return []
    return [_field_row(sobject, field) for field in spec.fields]


def _field_row(sobject: str, field: FieldSpec) -> dict[str, Any]:
    stem = field.name.removesuffix("__c")
    namespace, _, developer_name = stem.rpartition("__") if field.custom else ("", "", stem)
    return {
        # NOTE: Salesforce's FieldDefinition Id and DurableId of a custom field embed the
        # CustomField id; the practice org uses "Object.Field" for both, as for standard fields.
        "Id": f"{sobject}.{field.name}",
        "DurableId": f"{sobject}.{field.name}",
        "QualifiedApiName": field.name,
        "DeveloperName": developer_name,
        "NamespacePrefix": namespace or None,
        "Label": field.label,
        "DataType": _data_type(field),
        "Length": field.length if field.is_text else 0,
        "EntityDefinitionId": sobject,
        "IsApiFilterable": field.type != "textarea",
        "IsApiGroupable": field.type not in _NOT_GROUPABLE,
        "IsApiSortable": field.type != "textarea",
        "IsIndexed": (field.type in ("id", "reference") or field.unique or field.external_id
                      or field.name in _INDEXED_STANDARD),
        # NOTE: only custom fields are marked as having field-level security; on Salesforce
        # some standard fields have it too.
        "IsFlsEnabled": field.custom,
        "IsNillable": field.nillable,
        "IsCalculated": False,
    }


def _data_type(field: FieldSpec) -> str:
    """Return the field's type as Setup shows it, the form FieldDefinition.DataType uses."""
    if field.type == "reference":
        return f"Lookup({','.join(field.reference_to)})"
    if field.type == "string":
        return f"Text({field.length})"
    if field.type == "textarea":
        return f"Long Text Area({field.length})"
    names = {"id": "Lookup()", "boolean": "Checkbox", "picklist": "Picklist", "date": "Date",
             "datetime": "Date/Time", "email": "Email", "phone": "Phone", "url": "URL",
             "int": "Number(9, 0)", "double": "Number(18, 0)", "combobox": "Picklist"}
    return names.get(field.type, field.type)
