"""Tooling API: query and create Activity custom fields (the CustomField object).

Custom fields for Task and Event live on Activity, so ``FullName`` must be
``Activity.X__c``; Salesforce rejects ``Task.X__c`` and ``Event.X__c`` as a
field target. A field created here has no field-level security for anyone,
not even System Administrator, until FieldPermissions grant it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from backstory_desktop.practice_org.errors import ApiError, not_found
from backstory_desktop.practice_org.http import json_object, json_response
from backstory_desktop.practice_org.query_routes import run_parsed
from backstory_desktop.practice_org.schema import ACTIVITY_OBJECTS
from backstory_desktop.practice_org.session import ApiSession
from backstory_desktop.practice_org.soql import (
    FieldRef,
    FieldSchema,
    SObjectSchema,
    SoqlError,
    parse_soql,
)
from backstory_desktop.practice_org.store import CustomFieldDefinition
from backstory_desktop.practice_org.tooling_field_definitions import field_definition_query

logger = logging.getLogger(__name__)

_CUSTOM_FIELD_SCHEMA = SObjectSchema(
    "CustomField",
    (
        FieldSchema("Id", "id"),
        FieldSchema("DeveloperName"),
        FieldSchema("TableEnumOrId"),
        FieldSchema("NamespacePrefix"),
        FieldSchema("Description"),
        FieldSchema("Length", "int"),
        FieldSchema("FullName"),
        FieldSchema("Metadata", "anyType"),
        FieldSchema("CreatedDate", "datetime"),
    ),
    "00N",
)
_ONE_ROW_FIELDS = ("metadata", "fullname")
_API_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)__c$")
_FIELD_TYPES = ("Text", "Checkbox", "Email", "Number", "LongTextArea", "Url")
EXTERNAL_ID_LIMIT = 25


def tooling_query(session: ApiSession, request: Request) -> Response:
    """Run a Tooling SOQL query on CustomField or FieldDefinition."""
    text = request.args.get("q") or ""
    try:
        parsed = parse_soql(text)
    except SoqlError as error:
        raise ApiError(400, error.error_code, error.message) from None
    # NOTE: users report 400 INVALID_TYPE from Salesforce for Tooling objects such as
    # EntityParticle and CustomField without View Setup and Configuration. No Salesforce
    # document states it (https://github.com/tprouvot/Salesforce-Inspector-reloaded/issues/1310,
    # https://github.com/afawcett/apex-toolingapi/issues/19).
    if not session.can_view_setup():
        raise ApiError(400, "INVALID_TYPE", f"sObject type '{parsed.sobject}' is not supported.")
    if parsed.sobject.lower() == "fielddefinition":
        return field_definition_query(session, parsed)
    if parsed.sobject.lower() != "customfield":
        raise ApiError(400, "INVALID_TYPE", f"sObject type '{parsed.sobject}' is not supported.")

    rows = [_tooling_row(definition) for definition in session.store.custom_fields()]
    schema = {"customfield": _CUSTOM_FIELD_SCHEMA}
    result = run_parsed(parsed, rows, lambda name: schema.get(name.lower()), session.version)
    selected = {item.text.lower() for item in parsed.fields if isinstance(item, FieldRef)}
    if selected & set(_ONE_ROW_FIELDS) and result.total_size > 1:
        raise ApiError(400, "MALFORMED_QUERY",
                       "When retrieving results with Metadata or FullName fields, the query "
                       "qualifications must specify no more than one row for retrieval. "
                       f"Result size: {result.total_size}")
    for record in result.records:
        record["attributes"] = {"type": "CustomField", "url": _field_url(session, record["Id"])}
    return json_response({
        "size": result.total_size, "totalSize": result.total_size, "done": True,
        "queryLocator": None, "entityTypeName": "CustomField", "records": result.records,
    })


def get_custom_field(session: ApiSession, request: Request, record_id: str) -> Response:
    definition = _find_definition(session, record_id)
    row = _tooling_row(definition)
    return json_response({"attributes": {"type": "CustomField",
                                         "url": _field_url(session, definition.id)}, **row})


def create_custom_field(session: ApiSession, request: Request) -> Response:
    """Create an Activity custom field from ``{FullName, Metadata}``; it starts without FLS."""
    # NOTE: the practice org lets only Modify All Data create fields. Which narrower
    # permission Salesforce accepts (Customize Application is likely) and the error it
    # returns without one are unconfirmed.
    session.require("PermissionsModifyAllData", "insufficient access rights on object id")
    body = json_object(request)
    object_name, field_name = _split_full_name(str(body.get("FullName") or ""))
    metadata = body.get("Metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Metadata must be a JSON object")
    if session.custom_field(field_name) is not None:
        raise ApiError(400, "DUPLICATE_DEVELOPER_NAME",
                       f"There is already a field named {field_name.removesuffix('__c')} on "
                       f"{object_name}.")

    definition = CustomFieldDefinition(id=session.store.new_id("CustomField"), name=field_name,
                                       type="Text", label="")
    _apply_metadata(session, definition, metadata, creating=True)
    session.store.save_custom_field(definition)
    logger.info("Created custom field %s", definition.full_name)
    return json_response({"id": definition.id, "success": True, "errors": [], "warnings": [],
                          "infos": []}, 201)


def update_custom_field(session: ApiSession, request: Request, record_id: str) -> Response:
    """Change a field's attributes; making it Unique fails while duplicate values exist.

    A change to Text fails while a value is longer than the new length, and External ID
    fails on the 26th External ID field of Activity.

    NOTE: attributes left out of Metadata keep their values here. Whether Salesforce
    resets them instead is not confirmed, so the product sends the whole Metadata.
    """
    session.require("PermissionsModifyAllData", "insufficient access rights on object id")
    definition = _find_definition(session, record_id)
    metadata = json_object(request).get("Metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Metadata must be a JSON object")
    _apply_metadata(session, definition, metadata, creating=False)
    session.store.save_custom_field(definition)
    return Response(status=204)


def _apply_metadata(
    session: ApiSession, definition: CustomFieldDefinition, metadata: dict[str, Any],
    *, creating: bool,
) -> None:
    field_type = str(metadata.get("type") or (definition.type if not creating else ""))
    if field_type not in _FIELD_TYPES:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"Field type {field_type or '(none)'} is not supported; use one of "
                       f"{', '.join(_FIELD_TYPES)}")
    label = str(metadata.get("label") or definition.label)
    if not label:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [label]",
                       ["label"])
    length = _length(field_type, metadata.get("length", definition.length))
    if not creating and length is not None and field_type == "Text":
        _check_values_fit(session, definition.name, length)
    external_id = bool(metadata.get("externalId", definition.external_id))
    if external_id and (creating or not definition.external_id):
        _check_external_id_room(session)
    if not creating and definition.type != field_type:
        _convert_values(session, definition.name, definition.type, field_type)
    definition.type = field_type
    definition.label = label
    definition.description = str(metadata.get("description") or definition.description)
    definition.length = length
    unique = bool(metadata.get("unique", definition.unique))
    case_sensitive = bool(metadata.get("caseSensitive", definition.case_sensitive))
    if unique and not (definition.unique and definition.case_sensitive == case_sensitive):
        _check_no_duplicates(session, definition.name, case_sensitive)
    definition.unique = unique
    definition.case_sensitive = case_sensitive
    definition.external_id = external_id


def _check_values_fit(session: ApiSession, field_name: str, length: int) -> None:
    """Refuse a Text length shorter than a stored value, recycle bin and archive included.

    NOTE: unconfirmed. Salesforce may reject such a change, cut the values or keep them,
    and its error code is unknown. The practice org rejects it, so the product must find
    the long values first.
    """
    for sobject in ACTIVITY_OBJECTS:
        for record in session.store.records_of(sobject):
            value = record.fields.get(field_name)
            if value is not None and len(str(value)) > length:
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                               f"Length: {field_name} holds a value longer than {length} characters "
                               f"on record with id: {record.id}", ["length"])


def _check_external_id_room(session: ApiSession) -> None:
    """Refuse an External ID field beyond the default limit of 25 per object.

    Salesforce Help KB 000385134 gives the limit of 25; Support can raise it.
    NOTE: the error code and message Salesforce returns at the limit are unconfirmed.
    """
    external_id_fields = sum(1 for definition in session.store.custom_fields()
                if definition.external_id and definition.object == "Activity")
    if external_id_fields >= EXTERNAL_ID_LIMIT:
        raise ApiError(400, "LIMIT_EXCEEDED",
                       f"Activity already has {external_id_fields} External ID fields, the maximum of "
                       f"{EXTERNAL_ID_LIMIT}.", ["externalId"])


def _convert_values(session: ApiSession, field_name: str, old_type: str, new_type: str) -> None:
    """Rewrite stored values for a field's new type, as Salesforce converts Number to Text.

    NOTE: only Number to Text is converted; other changes keep the stored values as they are.
    """
    if (old_type, new_type) != ("Number", "Text"):
        return
    for sobject in ACTIVITY_OBJECTS:
        for record in session.store.records_of(sobject):
            value = record.fields.get(field_name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                text = str(int(value)) if float(value).is_integer() else str(value)
                session.store.update_record(record.id, {field_name: text},
                                            modified_by_id=session.user_id)


def _length(field_type: str, value: Any) -> int | None:
    if field_type != "Text":
        return 32768 if field_type == "LongTextArea" else None
    try:
        length = int(value)
    except (TypeError, ValueError):
        length = 0
    if not 1 <= length <= 255:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       "Length: a Text field's length must be between 1 and 255", ["length"])
    return length


def _check_no_duplicates(session: ApiSession, field_name: str, case_sensitive: bool) -> None:
    """Reject a unique index while two Tasks or Events share a value, recycle bin included.

    Salesforce requires every record, the recycle bin's too, to hold a distinct value
    or none before a field becomes Unique (Help article 000385434).
    """
    for sobject in ACTIVITY_OBJECTS:
        seen: dict[str, str] = {}
        for record in session.store.records_of(sobject):
            value = record.fields.get(field_name)
            if value in (None, ""):
                continue
            key = str(value) if case_sensitive else str(value).casefold()
            if key in seen:
                raise ApiError(400, "DUPLICATE_VALUE",
                               "Duplicate value found when building unique index: "
                               f"{field_name} duplicates value on record with id: {seen[key]}")
            seen[key] = record.id


def _split_full_name(full_name: str) -> tuple[str, str]:
    object_name, _, field_name = full_name.partition(".")
    if object_name in ACTIVITY_OBJECTS:
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"bad value for restricted picklist field: {object_name}",
                       ["TableEnumOrId"])
    if object_name != "Activity":
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"The practice org creates custom fields on Activity only, not on "
                       f"'{object_name}'", ["FullName"])
    if not _API_NAME.match(field_name) or len(field_name) > 43:
        raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"The field name '{field_name}' is invalid: it must begin with a letter, "
                       "end with __c, contain only letters, digits and single underscores, and "
                       "be at most 40 characters before __c", ["FullName"])
    return object_name, field_name


def _find_definition(session: ApiSession, record_id: str) -> CustomFieldDefinition:
    for definition in session.store.custom_fields():
        if definition.id[:15] == record_id[:15]:
            return definition
    raise not_found()


def _field_url(session: ApiSession, record_id: object) -> str:
    return f"{session.version_path}/tooling/sobjects/CustomField/{record_id}"


def _tooling_row(definition: CustomFieldDefinition) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "label": definition.label,
        "type": definition.type,
        "length": definition.length,
        "unique": definition.unique,
        "externalId": definition.external_id,
        "caseSensitive": definition.case_sensitive,
        "description": definition.description or None,
        "required": False,
    }
    return {
        "Id": definition.id,
        "DeveloperName": definition.developer_name,
        "TableEnumOrId": definition.object,
        "NamespacePrefix": definition.namespace_prefix,
        "Description": definition.description or None,
        "Length": definition.length,
        "FullName": definition.full_name,
        "Metadata": metadata,
        "CreatedDate": definition.created_date,
    }
