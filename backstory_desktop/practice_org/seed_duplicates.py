"""The ``duplicates`` scenario's Tasks: one group of each kind the duplicate scan reports.

The Message-ID field is External ID but neither Unique nor case-sensitive, so
duplicates can exist. Every Task is an e-mail of the bundled sample mailbox
(its Message-ID and body); ``Re: pricing`` is the subject the probable group
is given. All Tasks of one e-mail have the same owner (the sender's practice
user) and the same WhoId, except where a group below names another. Times are UTC on
days counted back from the seeding time.

Groups (``EXPECTED_DUPLICATE_GROUPS``):

1. exact, archived member: ``<1234@local.machine.example>`` twice, written by the
   Outreach user; the older copy is archived (only queryAll returns it).
2. exact, recycle-bin member: ``<1044662313.5121.17.camel@snow.lsd.ro>`` twice;
   one copy is in the recycle bin (deleted at seeding time).
3. normalised, brackets: ``<3456@example.net>`` and ``3456@example.net``.
4. normalised, case only: ``<20000519215502.A24482@quist.on.ca>`` and
   ``<20000519215502.a24482@QUIST.ON.CA>``; the field is case-insensitive, so
   it counts them as one value.
5. normalised, whitespace: ``<33D89532.29EA@atl.mindspring.com>`` and the same
   key with a space before and after it.
6. probable, three members: Task A by the Outreach user, Subject ``Re: pricing``,
   created at 10:00:01, no key. Task B by the SalesLoft user, with the same subject,
   body, owner and Contact, created at 10:00:03, no key. Task C, the keyed Task of
   the same e-mail (``<8fc5086d0912020139y1564ad32jb4f4209fa464f4a6@test.com>``),
   written by the Backstory integration user at 10:00:05 with the "Created by
   People.ai" flag set. The two keyless Tasks join the keyed Task's family.
7. clones, keyed: ``<1211726293.5772.10.camel@localhost>`` logged three times,
   once per Opportunity (three different WhatIds, same Contact).
8. clones, keyless: the e-mail "Request for Leave" (which has no Message-ID)
   logged once per recipient: three Tasks, no WhatId, three different WhoIds.

Tasks that must not group (``UNGROUPED_TASKS``) are two keyless Tasks on the probable
group's Contact, owner and day, and five e-mails logged once each with their own keys.
The keyless Tasks are ``Re: shipping dates`` at 10:00:02 (other subject and body) and
``Re: pricing`` at 13:00:01 (three hours later, another body).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backstory_desktop.core.activity import MailActivity
from backstory_desktop.practice_org.store import Store, format_datetime

DUPLICATES_SCENARIO = "duplicates"


@dataclass(frozen=True)
class ExpectedGroup:
    """A group the duplicate scan must report in the ``duplicates`` scenario.

    ``keys`` are the stored key values of the members, one per member ("" for a
    member without a key), in the order the members were created.
    """

    kind: str
    subject: str
    keys: tuple[str, ...]
    deleted: int = 0
    archived: int = 0
    note: str = ""

    @property
    def size(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class ExpectedSingle:
    """A Task of the ``duplicates`` scenario that belongs to no group."""

    subject: str
    key: str
    note: str


SAYING_HELLO_KEY = "<1234@local.machine.example>"
LSTP_KEY = "<1044662313.5121.17.camel@snow.lsd.ro>"
REPLY_KEY = "<3456@example.net>"
QUIST_KEY = "<20000519215502.A24482@quist.on.ca>"
QUIST_CASE_VARIANT = "<20000519215502.a24482@QUIST.ON.CA>"
MINDSPRING_KEY = "<33D89532.29EA@atl.mindspring.com>"
PRICING_KEY = "<8fc5086d0912020139y1564ad32jb4f4209fa464f4a6@test.com>"
PRICING_SUBJECT = "Re: pricing"
CLONES_KEY = "<1211726293.5772.10.camel@localhost>"
LEAVE_SUBJECT = "Request for Leave"
SHIPPING_SUBJECT = "Re: shipping dates"
SINGLE_KEYS = (
    "<rhsvp@docomo.ne.jp>",
    "<uzy8@xxxx.com>",
    "<2CCE0408-10C7-4045-9B16-A1C11C31469B@37signals.com>",
    "<199509200019.12345@example.com>",
    "<325993.29502.qm@web28416.mail.ukl.yahoo.com>",
)

EXPECTED_DUPLICATE_GROUPS: tuple[ExpectedGroup, ...] = (
    ExpectedGroup("exact", "Email: Saying Hello", (SAYING_HELLO_KEY, SAYING_HELLO_KEY),
                  archived=1, note="same key twice, the older copy archived"),
    ExpectedGroup("exact", "Email: LSTP problem - solved", (LSTP_KEY, LSTP_KEY), deleted=1,
                  note="same key twice, one copy in the recycle bin"),
    ExpectedGroup("normalised", "Email: Re: Saying Hello", (REPLY_KEY, REPLY_KEY.strip("<>")),
                  note="with and without angle brackets"),
    ExpectedGroup("normalised", "Email: test message 1", (QUIST_KEY, QUIST_CASE_VARIANT),
                  note="differ in case only"),
    ExpectedGroup("normalised", "Email: Test Mail Again", (MINDSPRING_KEY, f" {MINDSPRING_KEY} "),
                  note="differ in surrounding whitespace only"),
    ExpectedGroup("probable", PRICING_SUBJECT, ("", "", PRICING_KEY),
                  note="two keyless Tasks of the keyed Task's e-mail, by Outreach and SalesLoft"),
    ExpectedGroup("clones", "Email: This is an example of a multipart mixed email with image content",
                  (CLONES_KEY, CLONES_KEY, CLONES_KEY), note="one per Opportunity"),
    ExpectedGroup("clones", f"Email: {LEAVE_SUBJECT}", ("", "", ""), note="one per Contact, no key"),
)

UNGROUPED_TASKS: tuple[ExpectedSingle, ...] = (
    ExpectedSingle(SHIPPING_SUBJECT, "", "same Contact and owner as the probable group, other subject"),
    ExpectedSingle(PRICING_SUBJECT, "", "same subject as the probable group, three hours later"),
    *(ExpectedSingle("", key, "logged once") for key in SINGLE_KEYS),
)

# The probable group's e-mail was logged three days before seeding, from 10:00:01 UTC.
_PROBABLE_DAYS_AGO = 3
_SHIPPING_BODY = ("Hello, the shipping dates for the second batch are not fixed yet. "
                  "I will write again once the warehouse confirms them.")
_LATER_PRICING_BODY = ("Thanks for the call this afternoon. As agreed, the revised quote "
                       "follows next week with the volume discount included.")
_LEAVE_FALLBACK_BODY = "I would like to request leave for the last week of the month."


@dataclass
class DuplicateSeed:
    """The store, clock and ids that the scenario seeder hands to this module.

    ``owner_for`` returns the owner of an e-mail's Tasks (its sender's practice
    user, or the admin), and ``people`` lists Contact and Lead ids in a fixed order.
    """

    store: Store
    now: datetime.datetime
    admin_id: str
    outreach_id: str
    salesloft_id: str
    integration_id: str
    owner_for: Callable[[MailActivity], str]
    person_for: Callable[[MailActivity], str | None]
    people: Sequence[str]
    account_ids: Sequence[str]
    flag_field: str
    key_field: str


def seed_duplicate_tasks(seed: DuplicateSeed, activities: Sequence[MailActivity]) -> int:
    """Insert the scenario's Tasks and Opportunities, and return the number of Tasks inserted."""
    by_key = _first_by_key(activities)
    inserted = 0

    def email(key: str) -> MailActivity:
        if key not in by_key:
            raise ValueError(f"the {DUPLICATES_SCENARIO} scenario needs the e-mail {key} of the "
                             "bundled sample mailbox: seed it from that mailbox")
        return by_key[key]

    def task(activity: MailActivity | None, *, subject: str, body: str, key: str | None,
             created_by: str, created: datetime.datetime, owner: str, who_id: str | None,
             what_id: str | None = None, flagged: bool = False, is_deleted: bool = False,
             is_archived: bool = False) -> None:
        nonlocal inserted
        fields: dict[str, Any] = {
            "Subject": subject[:255], "Description": body[:32000], "WhoId": who_id,
            "WhatId": what_id, "OwnerId": owner, "Status": "Completed", "IsClosed": True,
            "Priority": "Normal", "ActivityDate": created.date().isoformat(),
            "TaskSubtype": "Email", seed.flag_field: flagged,
        }
        if key is not None:
            fields[seed.key_field] = key
        seed.store.insert_record("Task", fields, created_by_id=created_by,
                                 created_date=format_datetime(created), is_deleted=is_deleted,
                                 is_archived=is_archived,
                                 deleted_date=format_datetime(seed.now) if is_deleted else None)
        inserted += 1

    def keyed_copies(key: str, stored_keys: Sequence[str], days_ago: Sequence[float], *,
                     deleted_index: int | None = None, archived_index: int | None = None) -> None:
        activity = email(key)
        for index, (stored, days) in enumerate(zip(stored_keys, days_ago, strict=True)):
            task(activity, subject=f"Email: {activity.subject}", body=activity.body_text,
                 key=stored, created_by=seed.outreach_id, created=_at(seed.now, days),
                 owner=seed.owner_for(activity), who_id=seed.person_for(activity),
                 is_deleted=index == deleted_index, is_archived=index == archived_index)

    keyed_copies(SAYING_HELLO_KEY, (SAYING_HELLO_KEY, SAYING_HELLO_KEY), (420, 10),
                 archived_index=0)
    keyed_copies(LSTP_KEY, (LSTP_KEY, LSTP_KEY), (12, 11), deleted_index=1)
    keyed_copies(REPLY_KEY, (REPLY_KEY, REPLY_KEY.strip("<>")), (9, 8.5))
    keyed_copies(QUIST_KEY, (QUIST_KEY, QUIST_CASE_VARIANT), (8, 7.5))
    keyed_copies(MINDSPRING_KEY, (MINDSPRING_KEY, f" {MINDSPRING_KEY} "), (7, 6.5))

    # The probable group and the Tasks beside it that must stay out of it.
    pricing = email(PRICING_KEY)
    day = (seed.now - datetime.timedelta(days=_PROBABLE_DAYS_AGO)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    owner = seed.owner_for(pricing)
    contact = seed.person_for(pricing) or seed.people[0]
    for created_by, seconds, key, flagged in ((seed.outreach_id, 1, None, False),
                                              (seed.salesloft_id, 3, None, False),
                                              (seed.integration_id, 5, PRICING_KEY, True)):
        task(pricing, subject=PRICING_SUBJECT, body=pricing.body_text, key=key,
             created_by=created_by, created=day + datetime.timedelta(seconds=seconds),
             owner=owner, who_id=contact, flagged=flagged)
    task(None, subject=SHIPPING_SUBJECT, body=_SHIPPING_BODY, key=None,
         created_by=seed.outreach_id, created=day + datetime.timedelta(seconds=2), owner=owner,
         who_id=contact)
    task(None, subject=PRICING_SUBJECT, body=_LATER_PRICING_BODY, key=None,
         created_by=seed.outreach_id, created=day + datetime.timedelta(hours=3, seconds=1),
         owner=owner, who_id=contact)

    # Clones: one e-mail logged once per Opportunity, and one once per recipient.
    clones = email(CLONES_KEY)
    created = _at(seed.now, 5)
    for opportunity_id in _insert_opportunities(seed, created):
        task(clones, subject=f"Email: {clones.subject}", body=clones.body_text, key=CLONES_KEY,
             created_by=seed.outreach_id, created=created, owner=seed.owner_for(clones),
             who_id=seed.person_for(clones), what_id=opportunity_id)
    leave = next((item for item in activities if item.subject == LEAVE_SUBJECT), None)
    leave_owner = seed.owner_for(leave) if leave is not None else seed.admin_id
    created = _at(seed.now, 4)
    for person_id in seed.people[-3:]:
        task(leave, subject=f"Email: {LEAVE_SUBJECT}",
             body=leave.body_text if leave is not None else _LEAVE_FALLBACK_BODY, key=None,
             created_by=seed.outreach_id, created=created, owner=leave_owner, who_id=person_id)

    for index, key in enumerate(SINGLE_KEYS):
        activity = email(key)
        task(activity, subject=f"Email: {activity.subject}", body=activity.body_text, key=key,
             created_by=seed.outreach_id, created=_at(seed.now, 20 + index),
             owner=seed.owner_for(activity), who_id=seed.person_for(activity))
    return inserted


def _insert_opportunities(seed: DuplicateSeed, created: datetime.datetime) -> list[str]:
    ids = []
    for index, name in enumerate(("Renewal 2027", "Upsell: analytics", "New office rollout")):
        record = seed.store.insert_record("Opportunity", {
            "Name": name, "StageName": "Proposal/Price Quote",
            "CloseDate": (seed.now + datetime.timedelta(days=30 * (index + 1))).date().isoformat(),
            "AccountId": seed.account_ids[index % len(seed.account_ids)] if seed.account_ids else None,
            "IsPrivate": False, "IsClosed": False, "IsWon": False, "OwnerId": seed.admin_id,
        }, created_by_id=seed.admin_id, created_date=format_datetime(created - datetime.timedelta(days=60)))
        ids.append(record.id)
    return ids


def _first_by_key(activities: Sequence[MailActivity]) -> dict[str, MailActivity]:
    found: dict[str, MailActivity] = {}
    for activity in activities:
        key = activity.message_id.key
        if key and key not in found:
            found[key] = activity
    return found


def _at(now: datetime.datetime, days_ago: float) -> datetime.datetime:
    """Return the moment ``days_ago`` before now, on whole seconds."""
    return (now - datetime.timedelta(days=days_ago)).replace(microsecond=0)
