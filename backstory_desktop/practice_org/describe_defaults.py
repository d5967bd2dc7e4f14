"""Describe keys that Salesforce sends and the practice org has no rule for.

A DescribeSObjectResult from Salesforce carries keys about features the practice org
does not model (interfaces, masks, encryption, layouts). Clients that map the whole
result into a typed object, as some API libraries do, fail when a key is missing, so
the practice org sends every key with the value a standard object without those
features has. The key sets and values follow describes recorded from Developer Edition
orgs at API versions 52.0 to 62.0.
"""

from __future__ import annotations

from typing import Any

from backstory_desktop.practice_org.schema import FieldSpec, SObjectSpec

# The Master record type every object has when it defines no record types of its own.
MASTER_RECORD_TYPE_ID = "012000000000000AAA"

_NOT_AGGREGATABLE = frozenset({"boolean", "textarea", "multipicklist", "base64", "address"})

_FIELD_DEFAULTS: dict[str, Any] = {
    "aiPredictionField": False,
    "cascadeDelete": False,
    "compoundFieldName": None,
    "displayLocationInDecimal": False,
    "encrypted": False,
    "filteredLookupInfo": None,
    "formulaTreatNullNumberAsZero": False,
    "highScaleNumber": False,
    "mask": None,
    "maskType": None,
    "queryByDistance": False,
    "referenceTargetField": None,
    "restrictedDelete": False,
    "searchPrefilterable": False,
}

_OBJECT_DEFAULTS: dict[str, Any] = {
    "actionOverrides": [],
    "associateEntityType": None,
    "associateParentEntity": None,
    "compactLayoutable": True,
    "deepCloneable": False,
    "defaultImplementation": None,
    "extendedBy": None,
    "extendsInterfaces": None,
    "hasSubtypes": False,
    "implementedBy": None,
    "implementsInterfaces": None,
    "isInterface": False,
    "isSubtype": False,
    "mruEnabled": True,
    "namedLayoutInfos": [],
    "networkScopeFieldName": None,
    "sobjectDescribeOption": "FULL",
}

# The keys of an entry in the global describe (GET sobjects) that the object describe
# has as well. The global entry leaves out listviewable, lookupLayoutable and
# searchLayoutable.
GLOBAL_ENTRY_KEYS = (
    "activateable", "associateEntityType", "associateParentEntity", "createable", "custom",
    "customSetting", "deepCloneable", "deletable", "deprecatedAndHidden", "feedEnabled",
    "hasSubtypes", "isInterface", "isSubtype", "keyPrefix", "label", "labelPlural",
    "layoutable", "mergeable", "mruEnabled", "name", "queryable", "replicateable",
    "retrieveable", "searchable", "triggerable", "undeletable", "updateable", "urls",
)


def field_defaults(spec: FieldSpec) -> dict[str, Any]:
    """Return the describe keys of one field that carry no practice org rule."""
    required = not spec.nillable or spec.name in ("Id", "OwnerId")
    return {
        **_FIELD_DEFAULTS,
        "aggregatable": spec.type not in _NOT_AGGREGATABLE,
        "extraTypeInfo": "plaintextarea" if spec.type == "textarea" else None,
        # NOTE: Salesforce decides per field whether FLS applies; here every optional
        # writable field and every custom field is permissionable.
        "permissionable": spec.custom or (not required and (spec.createable or spec.updateable)),
    }


def complete_describe(
    body: dict[str, Any], spec: SObjectSpec, version_path: str
) -> dict[str, Any]:
    """Return a describe result with every key Salesforce sends, existing values kept."""
    completed = {**_OBJECT_DEFAULTS, **body}
    completed["supportedScopes"] = supported_scopes(spec)
    if not completed.get("recordTypeInfos"):
        completed["recordTypeInfos"] = [master_record_type(spec, version_path)]
    by_name = {field.name: field for field in spec.fields}
    completed["fields"] = [
        {**field_defaults(by_name[entry["name"]]), **entry} if entry["name"] in by_name
        else entry
        for entry in body.get("fields", [])
    ]
    return completed


def global_entry(summary: dict[str, Any]) -> dict[str, Any]:
    """Return an object's entry in the global describe from its describe summary."""
    completed = {**_OBJECT_DEFAULTS, **summary}
    return {key: completed[key] for key in GLOBAL_ENTRY_KEYS}


def supported_scopes(spec: SObjectSpec) -> list[dict[str, str]]:
    """Return the list view scopes: every object has "everything", owned ones "mine"."""
    plural = spec.label_plural.lower()
    scopes = [{"label": f"All {plural}", "name": "everything"}]
    if spec.field("OwnerId") is not None:
        scopes.append({"label": f"My {plural}", "name": "mine"})
    return scopes


def master_record_type(spec: SObjectSpec, version_path: str) -> dict[str, Any]:
    layout = f"{version_path}/sobjects/{spec.name}/describe/layouts/{MASTER_RECORD_TYPE_ID}"
    return {
        "active": True,
        "available": True,
        "defaultRecordTypeMapping": True,
        "developerName": "Master",
        "master": True,
        "name": "Master",
        "recordTypeId": MASTER_RECORD_TYPE_ID,
        "urls": {"layout": layout},
    }
