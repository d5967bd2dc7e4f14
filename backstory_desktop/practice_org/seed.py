"""Seeded scenarios of the practice org, built from the bundled sample mailbox.

``default``: the Message-ID field exists (Text(255), Unique, External ID,
case-sensitive). The org contains what a real org accumulates before the
integration is switched on:

- Tasks the cadence tool logged with keys, some with angle brackets, some without;
- older Tasks for the same e-mails, logged by hand without a key;
- a duplicate in the recycle bin and an archived one, whose keys equal a live
  Task's once brackets are ignored;
- two keys that differ only in case;
- calls logged without ``TaskSubtype = Call``.

Every scenario also has a permission set group for the drills on effective
access: the user ``salesops@practice.backstory.example`` is assigned the group
"Sales Operations", whose permission set "Activity Reporting" grants Read and
Edit on the Activity fields and Modify All Data, and whose muting permission set
takes Modify All Data and Edit on Message_ID__c away again. The same user has an
expired assignment of "Quarter End Cleanup" (Modify All Data), which grants
nothing. No other user is in the group, so the other users' access is unchanged.

Every scenario also has a second cadence tool's user,
``salesloft@practice.backstory.example``: its permission set "SalesLoft
Integration" grants API Enabled and Edit Tasks but no field-level security on
Message_ID__c, so its upserts by Message-ID fail until it is granted the field.
It is made after every other record, so the ids of those stay as they were.

``fresh``: the same users and people, but no Message-ID field and no keyed Tasks.

``empty``: the users and permissions only: no Message-ID field, no contacts,
leads or Tasks.

``non-unique``: the field is External ID but not Unique, and two live Tasks
share one key exactly, so an upsert on that key matches both. Two more keys
are each held by a live Task and by an exact copy, one in the recycle bin and
one archived, which only queryAll shows.

``ready``: an org already set up as the integration needs it, so that a
rehearsal passes every step. The users, people, permission model and
Message-ID field are ``default``'s, and then:

- the integration user's permission set "Backstory Integration" grants Read and
  Edit on Message_ID__c;
- the cadence tool logged an e-mail Task for one in every three of the
  mailbox's messages, each with its canonical key (angle brackets included),
  created three days apart from 1 day ago on, so that several fall inside a
  30-day window and a few before it;
- no Task was logged by hand without a key, and no key has a second spelling,
  whether archived, in the recycle bin or differing in case;
- every call has ``TaskSubtype = Call``.

``large``: the users and people of ``default`` and only generated Tasks, of a chosen
number, with duplicate keys (see ``seed_large``).

``duplicates``: the users and people of ``default``, a Message-ID field that is
neither Unique nor case-sensitive, and only curated Tasks: one duplicate group of
each kind (exact, normalised, probable, clones), a group with a member in the
recycle bin, and Tasks that must not group (see ``seed_duplicates``).

The same mailbox and the same ``now`` give the same records and ids.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.core.message_id import key_spellings
from backstory_desktop.practice_org.permissions import (
    aggregate_permission_set,
    recalculate_groups,
)
from backstory_desktop.practice_org.schema import ACTIVITY_OBJECTS, PERMISSION_FLAGS
from backstory_desktop.practice_org.seed_duplicates import (
    DUPLICATES_SCENARIO,
    DuplicateSeed,
    seed_duplicate_tasks,
)
from backstory_desktop.practice_org.store import (
    CustomFieldDefinition,
    Store,
    format_datetime,
    now_utc,
)
from backstory_desktop.sources.mbox import read_mbox

logger = logging.getLogger(__name__)

# "large" is seeded by seed_large.seed_large_org: this module seeds its users and people.
READY_SCENARIO = "ready"
SCENARIOS = ("default", "fresh", "non-unique", "empty", "large", DUPLICATES_SCENARIO, READY_SCENARIO)
# Scenarios seeded without the Message-ID field.
_WITHOUT_KEY_FIELD = ("fresh", "empty")
# Scenarios whose Message-ID field is Unique and case-sensitive.
_UNIQUE_KEY_FIELD = ("default", READY_SCENARIO)
DOMAIN = "practice.backstory.example"
ADMIN_USERNAME = f"admin@{DOMAIN}"
INTEGRATION_USERNAME = f"integration@{DOMAIN}"
OUTREACH_USERNAME = f"outreach@{DOMAIN}"
SALES_OPS_USERNAME = f"salesops@{DOMAIN}"
SALESLOFT_USERNAME = f"salesloft@{DOMAIN}"
SALES_OPS_GROUP = "Sales_Operations"
MESSAGE_ID_FIELD = "Message_ID__c"
FLAG_FIELD = "peopleai__Created_by_PeopleAI__c"

_ADMIN_FLAGS = {name for name, _label in PERMISSION_FLAGS}
_API_ONLY_FLAGS = {"PermissionsApiEnabled"}
_STANDARD_FLAGS = {"PermissionsApiEnabled", "PermissionsEditTask", "PermissionsEditEvent"}
_BACKSTORY_FLAGS = {"PermissionsApiEnabled", "PermissionsEditTask", "PermissionsEditEvent",
                    "PermissionsViewAllData", "PermissionsViewAllUsers"}
_OUTREACH_FLAGS = {"PermissionsApiEnabled", "PermissionsEditTask", "PermissionsEditEvent"}
_REPORTING_FLAGS = {"PermissionsApiEnabled", "PermissionsEditTask", "PermissionsEditEvent",
                    "PermissionsViewAllData", "PermissionsModifyAllData"}
_MUTED_FLAGS = {"PermissionsModifyAllData"}
_CLEANUP_FLAGS = {"PermissionsViewAllData", "PermissionsModifyAllData"}


def read_sample_activities(mailbox: Path) -> list[MailActivity]:
    """Read the mailbox's messages; messages that could not be read are left out."""
    return [item for item in read_mbox(mailbox) if isinstance(item, MailActivity)]


@dataclass
class _SeedContext:
    """Ids made so far, handed from one seeding step to the next."""

    store: Store
    now: datetime.datetime
    profiles: dict[str, str] = field(default_factory=dict)
    profile_sets: dict[str, str] = field(default_factory=dict)
    permission_sets: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    reps_by_email: dict[str, str] = field(default_factory=dict)
    people_by_email: dict[str, str] = field(default_factory=dict)

    @property
    def admin_id(self) -> str:
        return self.users[ADMIN_USERNAME]

    def stamp(self, days_ago: float) -> str:
        return format_datetime(self.now - datetime.timedelta(days=days_ago))

    def insert(self, sobject: str, fields: dict[str, Any], *, created_by: str | None = None,
               days_ago: float = 30, is_deleted: bool = False, is_archived: bool = False) -> str:
        """Insert a record created ``days_ago``; one in the recycle bin was deleted at seeding time."""
        record = self.store.insert_record(
            sobject, fields, created_by_id=created_by or self.users.get(ADMIN_USERNAME),
            created_date=self.stamp(days_ago), is_deleted=is_deleted, is_archived=is_archived,
            deleted_date=self.stamp(0) if is_deleted else None,
        )
        return record.id


def seed_org(
    store: Store, scenario: str, mailbox: Path, *, now: datetime.datetime | None = None
) -> None:
    """Fill an empty store with a scenario's records."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown practice org scenario {scenario!r}: use one of "
                         f"{', '.join(SCENARIOS)}")
    activities = read_sample_activities(mailbox)
    context = _SeedContext(store, now or now_utc())
    with store.transaction():
        store.set_meta("scenario", scenario)
        store.set_meta("signing_key", secrets.token_hex(32))
        store.draw_org_id()
        _seed_permission_model(context)
        _seed_users(context, activities)
        _seed_custom_fields(context, scenario)
        _seed_permission_set_group(context, scenario)
        if scenario != "empty":
            _seed_people(context, activities)
        # The large scenario's Tasks are all generated, so it contains exactly the number requested.
        if scenario not in ("empty", "large"):
            _seed_tasks(context, scenario, activities)
        if SALESLOFT_USERNAME not in context.users:
            _seed_salesloft_user(context)
    logger.info("Seeded the %s scenario from %d messages", scenario, len(activities))


# -- profiles, permission sets, users ----------------------------------------


def _seed_permission_model(context: _SeedContext) -> None:
    profiles = {
        "System Administrator": _ADMIN_FLAGS,
        "Minimum Access - API Only Integrations": _API_ONLY_FLAGS,
        "Standard User": _STANDARD_FLAGS,
    }
    for index, (name, flags) in enumerate(profiles.items()):
        profile_id = context.insert("Profile", {"Name": name, "Description": None})
        context.profiles[name] = profile_id
        context.profile_sets[name] = context.insert("PermissionSet", {
            "Name": f"X00ex00000018ozh_{index}", "Label": name, "Description": None,
            "IsOwnedByProfile": True, "ProfileId": profile_id, "NamespacePrefix": None,
            "Type": "Profile", "PermissionSetGroupId": None, **_flags(flags),
        })

    for label, flags in (("Backstory Integration", _BACKSTORY_FLAGS),
                         ("Outreach Integration", _OUTREACH_FLAGS)):
        context.permission_sets[label] = context.insert("PermissionSet", {
            "Name": label.replace(" ", "_"), "Label": label,
            "Description": f"Access for the {label.split()[0]} integration user",
            "IsOwnedByProfile": False, "ProfileId": None, "NamespacePrefix": None,
            "Type": "Regular", "PermissionSetGroupId": None, **_flags(flags),
        })


def _flags(granted: set[str]) -> dict[str, bool]:
    return {name: name in granted for name, _label in PERMISSION_FLAGS}


def _seed_users(context: _SeedContext, activities: list[MailActivity]) -> None:
    service_users = (
        (ADMIN_USERNAME, "Practice", "Admin", "System Administrator", None),
        (INTEGRATION_USERNAME, "Backstory", "Integration",
         "Minimum Access - API Only Integrations", "Backstory Integration"),
        (OUTREACH_USERNAME, "Outreach", "Integration", "Standard User", "Outreach Integration"),
    )
    for username, first, last, profile, permission_set in service_users:
        user_id = _insert_user(context, username, username, first, last, profile, active=True)
        if permission_set:
            _assign(context, user_id, context.permission_sets[permission_set])

    for index, (email, name) in enumerate(_senders(activities)):
        first, _, last = name.rpartition(" ")
        username = f"{email}.practice"
        # One sales rep has left the company: Tasks they own need a new active owner.
        active = index != 2
        user_id = _insert_user(context, username, email, first or None, last or email,
                               "Standard User", active=active)
        context.reps_by_email[email] = user_id


def _insert_user(context: _SeedContext, username: str, email: str, first: str | None,
                 last: str, profile: str, *, active: bool) -> str:
    name = " ".join(part for part in (first, last) if part)
    user_id = context.insert("User", {
        "Username": username, "Email": email, "FirstName": first, "LastName": last,
        "Name": name, "Alias": (last or "user")[:8], "IsActive": active,
        "ProfileId": context.profiles[profile], "UserType": "Standard",
        "TimeZoneSidKey": "Europe/London",
    }, days_ago=400)
    context.users[username] = user_id
    _assign(context, user_id, context.profile_sets[profile])
    return user_id


def _assign(context: _SeedContext, user_id: str, permission_set_id: str, *,
            group_id: str | None = None, expires: str | None = None) -> None:
    context.insert("PermissionSetAssignment", {
        "AssigneeId": user_id, "PermissionSetId": permission_set_id,
        "PermissionSetGroupId": group_id, "ExpirationDate": expires, "IsActive": True,
    })


def _senders(activities: Iterable[MailActivity]) -> list[tuple[str, str]]:
    """Return each sender's address and display name, in order of first appearance."""
    seen: dict[str, str] = {}
    for activity in activities:
        if activity.sender and activity.sender.email and activity.sender.email not in seen:
            seen[activity.sender.email] = activity.sender.name or activity.sender.email
    return list(seen.items())


# -- custom fields and field-level security ------------------------------------


def _seed_custom_fields(context: _SeedContext, scenario: str) -> None:
    store = context.store
    flag = CustomFieldDefinition(
        id=store.new_id("CustomField"), name=FLAG_FIELD, type="Checkbox",
        label="Created by People.ai", description="Set on activities Backstory created or "
        "enriched.", created_date=context.stamp(500),
    )
    store.save_custom_field(flag)
    _grant(context, FLAG_FIELD, context.profile_sets["System Administrator"])
    _grant(context, FLAG_FIELD, context.permission_sets["Backstory Integration"])
    if scenario in _WITHOUT_KEY_FIELD:
        return

    # Case sensitivity is an option of a Unique field only, so a field that is not Unique
    # reports caseSensitive false, as one made in Setup does.
    unique = scenario in _UNIQUE_KEY_FIELD
    key_field = CustomFieldDefinition(
        id=store.new_id("CustomField"), name=MESSAGE_ID_FIELD, type="Text", label="Message ID",
        length=255, unique=unique, external_id=True, case_sensitive=unique,
        description="RFC 5322 Message-ID of the logged e-mail", created_date=context.stamp(450),
    )
    store.save_custom_field(key_field)
    _grant(context, MESSAGE_ID_FIELD, context.profile_sets["System Administrator"])
    _grant(context, MESSAGE_ID_FIELD, context.permission_sets["Outreach Integration"])
    if scenario == READY_SCENARIO:
        _grant(context, MESSAGE_ID_FIELD, context.permission_sets["Backstory Integration"])


def _grant(context: _SeedContext, field_name: str, permission_set_id: str, *,
           read: bool = True, edit: bool = True) -> None:
    for sobject in ACTIVITY_OBJECTS:
        context.insert("FieldPermissions", {
            "ParentId": permission_set_id, "SobjectType": sobject,
            "Field": f"{sobject}.{field_name}", "PermissionsRead": read, "PermissionsEdit": edit,
        })


def _seed_permission_set_group(context: _SeedContext, scenario: str) -> None:
    """Add the Sales Operations group, its muting set, and the one user assigned to it.

    The records are made after every other user, permission set and field permission,
    so the ids of those stay as they were before the group existed.
    """
    user_id = _insert_user(context, SALES_OPS_USERNAME, SALES_OPS_USERNAME, "Sales",
                           "Operations", "Standard User", active=True)
    reporting = _insert_permission_set(context, "Activity Reporting", _REPORTING_FLAGS,
                                       "Reports on every activity and fixes its fields")
    cleanup = _insert_permission_set(context, "Quarter End Cleanup", _CLEANUP_FLAGS,
                                     "Granted for the quarter-end data cleanup only")
    muting = context.insert("MutingPermissionSet", {
        "DeveloperName": "Sales_Operations_Muted", "MasterLabel": "Sales Operations Muted",
        "Description": "Keeps the group from changing setup and the Message-ID field",
        "NamespacePrefix": None, **_flags(_MUTED_FLAGS),
    })
    group = context.insert("PermissionSetGroup", {
        "DeveloperName": SALES_OPS_GROUP, "MasterLabel": "Sales Operations",
        "Description": "Sales operations analysts", "Status": "Updated",
        "NamespacePrefix": None,
    })
    for member in (reporting, muting):
        context.insert("PermissionSetGroupComponent", {
            "PermissionSetGroupId": group, "PermissionSetId": member,
        })

    _grant(context, FLAG_FIELD, reporting)
    if scenario not in _WITHOUT_KEY_FIELD:
        _grant(context, MESSAGE_ID_FIELD, reporting)
        # A muting row with Edit set mutes Edit and leaves Read.
        _grant(context, MESSAGE_ID_FIELD, muting, read=False, edit=True)

    recalculate_groups(context.store, context.admin_id, [group], created_date=context.stamp(30))
    aggregate = aggregate_permission_set(context.store, group)
    assert aggregate is not None
    _assign(context, user_id, aggregate.id, group_id=group)
    _assign(context, user_id, cleanup, expires=context.stamp(30))


def _seed_salesloft_user(context: _SeedContext) -> None:
    """Add SalesLoft's integration user, whose permission set has no FLS on the key field."""
    permission_set = _insert_permission_set(context, "SalesLoft Integration", _OUTREACH_FLAGS,
                                            "Access for the SalesLoft integration user")
    user_id = _insert_user(context, SALESLOFT_USERNAME, SALESLOFT_USERNAME, "SalesLoft",
                           "Integration", "Standard User", active=True)
    _assign(context, user_id, permission_set)


def _insert_permission_set(context: _SeedContext, label: str, flags: set[str],
                           description: str) -> str:
    permission_set_id = context.insert("PermissionSet", {
        "Name": label.replace(" ", "_"), "Label": label, "Description": description,
        "IsOwnedByProfile": False, "ProfileId": None, "NamespacePrefix": None,
        "Type": "Regular", "PermissionSetGroupId": None, **_flags(flags),
    })
    context.permission_sets[label] = permission_set_id
    return permission_set_id


# -- contacts, leads, accounts ------------------------------------------------


def _seed_people(context: _SeedContext, activities: list[MailActivity]) -> None:
    """Make Contacts for most recipients and Leads for some; every seventh stays unknown."""
    recipients: dict[str, str] = {}
    for activity in activities:
        for person in activity.recipients:
            if person.email and person.email not in recipients:
                recipients[person.email] = person.name
    accounts: dict[str, str] = {}
    for index, (email, name) in enumerate(recipients.items()):
        if index % 7 == 6:
            continue
        first, _, last = (name or "").rpartition(" ")
        last = last or email.split("@")[0]
        domain = email.rpartition("@")[2]
        fields: dict[str, Any] = {
            "FirstName": first or None, "LastName": last, "Email": email, "Title": None,
            "OwnerId": context.admin_id, "Name": " ".join(p for p in (first, last) if p),
        }
        if index % 4 == 3:
            fields.update({"Company": domain, "Status": "Working - Contacted",
                           "IsConverted": False})
            context.people_by_email[email] = context.insert("Lead", fields, days_ago=200)
            continue
        if domain not in accounts:
            accounts[domain] = context.insert("Account", {
                "Name": domain, "Website": f"https://{domain}", "OwnerId": context.admin_id,
            }, days_ago=300)
        fields["AccountId"] = accounts[domain]
        context.people_by_email[email] = context.insert("Contact", fields, days_ago=250)


# -- Tasks ----------------------------------------------------------------------


def _seed_tasks(context: _SeedContext, scenario: str, activities: list[MailActivity]) -> None:
    if scenario == DUPLICATES_SCENARIO:
        _seed_duplicates(context, activities)
        return
    if scenario == READY_SCENARIO:
        _seed_ready_tasks(context, activities)
        return
    keyed = _unique_keyed(activities)
    outreach = context.users[OUTREACH_USERNAME]
    logged: list[tuple[str, MailActivity]] = []
    for index, activity in enumerate(keyed):
        days_ago = 1 + index
        if index % 2 == 0:
            _insert_email_task(context, activity, None, created_by=_rep_for(context, activity),
                               days_ago=days_ago + 0.5)
        if scenario != "fresh" and index % 3 == 0:
            key = _spelling(activity, bracketed=(index // 3) % 2 == 0)
            _insert_email_task(context, activity, key, created_by=outreach, days_ago=days_ago)
            logged.append((key, activity))

    if scenario != "fresh":
        _seed_key_variants(context, scenario, logged)
    _seed_calls(context, keyed)


def _seed_ready_tasks(context: _SeedContext, activities: list[MailActivity]) -> None:
    """Log e-mail Tasks with canonical keys and calls with TaskSubtype Call, as a well-mapped tool does."""
    keyed = _unique_keyed(activities)
    outreach = context.users[OUTREACH_USERNAME]
    # The messages Outreach did not log are left to the local sync, which then creates Tasks too.
    for index, activity in enumerate(keyed):
        if index % 3 == 0:
            _insert_email_task(context, activity, activity.message_id.key, created_by=outreach,
                               days_ago=1 + index)
    _seed_calls(context, keyed, every_call_marked=True)


def _seed_duplicates(context: _SeedContext, activities: list[MailActivity]) -> None:
    # The other scenarios make the SalesLoft user last, so that the ids of their other
    # records stay as they were. This scenario needs it before its Tasks.
    if SALESLOFT_USERNAME not in context.users:
        _seed_salesloft_user(context)
    seed = DuplicateSeed(
        store=context.store, now=context.now.replace(microsecond=0), admin_id=context.admin_id,
        outreach_id=context.users[OUTREACH_USERNAME],
        salesloft_id=context.users[SALESLOFT_USERNAME],
        integration_id=context.users[INTEGRATION_USERNAME],
        owner_for=lambda activity: _rep_for(context, activity),
        person_for=lambda activity: _first_known_person(context, activity),
        people=list(context.people_by_email.values()),
        account_ids=[record.id for record in context.store.records_of("Account")],
        flag_field=FLAG_FIELD, key_field=MESSAGE_ID_FIELD,
    )
    count = seed_duplicate_tasks(seed, activities)
    logger.info("Seeded %d Tasks of the %s scenario", count, DUPLICATES_SCENARIO)


def _unique_keyed(activities: Iterable[MailActivity]) -> list[MailActivity]:
    """Return the first message of each Message-ID, in mailbox order."""
    seen: set[str] = set()
    result = []
    for activity in activities:
        key = activity.message_id.key
        if key and key not in seen:
            seen.add(key)
            result.append(activity)
    return result


def _spelling(activity: MailActivity, *, bracketed: bool) -> str:
    assert activity.message_id.key is not None
    with_brackets, bare = key_spellings(activity.message_id.key)
    return with_brackets if bracketed else bare


def _other_spelling(key: str) -> str:
    with_brackets, bare = key_spellings(key)
    return bare if key == with_brackets else with_brackets


def _rep_for(context: _SeedContext, activity: MailActivity) -> str:
    email = activity.sender.email if activity.sender else ""
    return context.reps_by_email.get(email, context.admin_id)


def _first_known_person(context: _SeedContext, activity: MailActivity) -> str | None:
    """Return the Contact or Lead id of the message's first known recipient."""
    for person in activity.recipients:
        if person.email in context.people_by_email:
            return context.people_by_email[person.email]
    return None


def _insert_email_task(context: _SeedContext, activity: MailActivity, key: str | None, *,
                       created_by: str, days_ago: float, **flags: bool) -> str:
    who_id = _first_known_person(context, activity)
    fields: dict[str, Any] = {
        "Subject": f"Email: {activity.subject}"[:255],
        "Description": activity.body_text[:32000],
        "WhoId": who_id,
        "OwnerId": _rep_for(context, activity),
        "Status": "Completed",
        "IsClosed": True,
        "Priority": "Normal",
        "ActivityDate": (context.now - datetime.timedelta(days=days_ago)).date().isoformat(),
        "TaskSubtype": "Email",
        FLAG_FIELD: False,
    }
    if key is not None:
        fields[MESSAGE_ID_FIELD] = key
    return context.insert("Task", fields, created_by=created_by, days_ago=days_ago, **flags)


def _seed_key_variants(context: _SeedContext, scenario: str,
                       logged: list[tuple[str, MailActivity]]) -> None:
    """Add the duplicates a key scan must find: archived, recycled, case-only, exact."""
    outreach = context.users[OUTREACH_USERNAME]
    variants: list[tuple[str, dict[str, bool], float]] = []
    if len(logged) > 0:
        variants.append((_other_spelling(logged[0][0]), {"is_archived": True}, 420))
    if len(logged) > 1:
        variants.append((_other_spelling(logged[1][0]), {"is_deleted": True}, 40))
    if len(logged) > 2:
        key = logged[2][0]
        variants.append((key.upper() if key.upper() != key else key.lower(), {}, 35))
    if scenario == "non-unique" and len(logged) > 3:
        variants.append((logged[3][0], {}, 33))
    # Exact copies only a scan with queryAll finds: they keep the field from becoming Unique.
    if scenario == "non-unique" and len(logged) > 5:
        variants.append((logged[4][0], {"is_deleted": True}, 31))
        variants.append((logged[5][0], {"is_archived": True}, 400))

    for index, (key, flags, days_ago) in enumerate(variants):
        activity = logged[index][1]
        _insert_email_task(context, activity, key, created_by=outreach, days_ago=days_ago,
                           **flags)


def _seed_calls(context: _SeedContext, keyed: list[MailActivity], *,
                every_call_marked: bool = False) -> None:
    """Log three calls, the last one with TaskSubtype Call.

    The first two lack it, as cadence tools often log calls, unless ``every_call_marked`` is set.
    """
    outreach = context.users[OUTREACH_USERNAME]
    for index, activity in enumerate(keyed[:3]):
        rep = _rep_for(context, activity)
        fields: dict[str, Any] = {
            "Subject": f"Call: {activity.subject}"[:255],
            "WhoId": _first_known_person(context, activity), "OwnerId": rep,
            "Status": "Completed", "IsClosed": True, "Priority": "Normal",
            "CallType": "Outbound", "CallDurationInSeconds": 120 + 60 * index,
            "CallDisposition": "Connected", FLAG_FIELD: False,
            "TaskSubtype": "Call" if index == 2 or every_call_marked else "Task",
        }
        creator = outreach if index == 0 else rep
        context.insert("Task", fields, created_by=creator, days_ago=3 + index)
