"""DescribeSObjectResult bodies, shaped like Salesforce's REST describe.

A custom field the session user can read but not edit (field-level security
Read without Edit) is described with createable and updateable false, as
Salesforce describes it for that user.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from backstory_desktop.practice_org.schema import FieldAccessCheck, FieldSpec, SObjectSpec

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
}


def describe_field(spec: FieldSpec) -> dict[str, Any]:
    """Return one ``fields[]`` entry of a describe result."""
    is_text = spec.is_text or spec.type in ("id", "reference")
    return {
        "name": spec.name,
        "label": spec.label,
        "type": spec.type,
        "length": spec.length if is_text else 0,
        "byteLength": spec.length * 3 if is_text else 0,
        "custom": spec.custom,
        "createable": spec.createable,
        "updateable": spec.updateable,
        "nillable": spec.nillable,
        "unique": spec.unique,
        "externalId": spec.external_id,
        "idLookup": spec.name == "Id" or spec.external_id or spec.unique or spec.id_lookup,
        "caseSensitive": spec.case_sensitive,
        "filterable": spec.type != "textarea",
        "groupable": spec.type not in ("textarea", "double", "datetime"),
        "sortable": spec.type != "textarea",
        "calculated": False,
        "calculatedFormula": None,
        "controllerName": None,
        "defaultValueFormula": None,
        "dependentPicklist": False,
        "namePointing": False,
        "relationshipOrder": None,
        "writeRequiresMasterRead": False,
        "autoNumber": False,
        "defaultedOnCreate": spec.default_value is not None or spec.name == "Id",
        "defaultValue": spec.default_value if spec.type == "boolean" else None,
        "inlineHelpText": None,
        "deprecatedAndHidden": False,
        "htmlFormatted": False,
        "nameField": spec.name == "Name",
        "picklistValues": [_picklist_entry(spec, value) for value in spec.picklist],
        "restrictedPicklist": spec.restricted_picklist,
        "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name,
        "polymorphicForeignKey": len(spec.reference_to) > 1,
        "soapType": _SOAP_TYPES.get(spec.type, "xsd:string"),
        "precision": 18 if spec.type == "double" else 0,
        "scale": 0,
        "digits": 9 if spec.type == "int" else 0,
    }


def _as_user_may_write(
    sobject: str, spec: FieldSpec, can_edit: FieldAccessCheck | None
) -> FieldSpec:
    """Return a custom field as read-only when the user has Read but not Edit access to it."""
    if can_edit is None or not spec.custom or can_edit(sobject, spec.name):
        return spec
    return replace(spec, createable=False, updateable=False)


def _picklist_entry(spec: FieldSpec, value: str) -> dict[str, Any]:
    return {
        "active": True,
        "defaultValue": value == spec.default_picklist_value,
        "label": value,
        "validFor": None,
        "value": value,
    }


def describe_sobject(
    spec: SObjectSpec, version_path: str, can_edit: FieldAccessCheck | None = None
) -> dict[str, Any]:
    """Return the DescribeSObjectResult of an sObject; ``version_path`` is ``/services/data/vXX.X``.

    ``can_edit(sobject, field)`` is the session user's Edit field-level security.
    Without it every field is described as the schema defines it.
    """
    base = f"{version_path}/sobjects/{spec.name}"
    fields = [_as_user_may_write(spec.name, field, can_edit) for field in spec.fields]
    return {
        **sobject_summary(spec, version_path),
        "fields": [describe_field(field) for field in fields],
        "childRelationships": [],
        "recordTypeInfos": [],
        "urls": {**_urls(base), "describe": f"{base}/describe"},
    }


def sobject_summary(spec: SObjectSpec, version_path: str) -> dict[str, Any]:
    """Return the object entry used by describe and the global ``sobjects`` list."""
    base = f"{version_path}/sobjects/{spec.name}"
    return {
        "name": spec.name,
        "label": spec.label,
        "labelPlural": spec.label_plural,
        "keyPrefix": spec.key_prefix,
        "custom": False,
        "customSetting": False,
        "createable": spec.createable,
        "updateable": spec.updateable,
        "deletable": spec.deletable,
        "undeletable": spec.deletable,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "layoutable": True,
        "listviewable": None,
        "lookupLayoutable": None,
        "searchLayoutable": True,
        "triggerable": True,
        "replicateable": True,
        "mergeable": False,
        "activateable": False,
        "feedEnabled": False,
        "deprecatedAndHidden": False,
        "urls": _urls(base),
    }


def _urls(base: str) -> dict[str, str]:
    return {"sobject": base, "rowTemplate": f"{base}/{{ID}}"}
