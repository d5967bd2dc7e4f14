"""The context of an API request: the org's state and the session user's access."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from werkzeug.wrappers import Response

from backstory_desktop.practice_org.bulk_jobs import BulkJobs
from backstory_desktop.practice_org.errors import ApiError, not_found
from backstory_desktop.practice_org.faults import FaultInjector
from backstory_desktop.practice_org.permissions import ActivityAccess, SessionAccess
from backstory_desktop.practice_org.query_cursors import QueryCursors
from backstory_desktop.practice_org.schema import (
    SObjectSpec,
    canonical_sobject_name,
    sobject_for_user,
)
from backstory_desktop.practice_org.store import CustomFieldDefinition, Store

ApiRouter = Callable[[dict[str, Any]], tuple[Callable[..., Response], dict[str, Any]] | None]
"""Find the REST handler and its path arguments for a WSGI environ, or None for no API route."""

CLIENT_ID = "BackstoryDesktopPractice"
DAILY_API_REQUEST_LIMIT = 15000
# Upper bound of a daily API request allocation set on a running practice org or by
# --daily-api-limit. Real allocations are far smaller (Developer Edition: 15,000).
MAX_DAILY_API_LIMIT = 10**9

# Reading these needs View Setup and Configuration ("Special Access Rules" of each object in
# the object reference, for example
# https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm).
# Salesforce also accepts narrower permissions such as Assign Permission Sets, which the
# practice org does not model.
SETUP_READ_OBJECTS = frozenset({
    "Profile", "PermissionSet", "PermissionSetAssignment", "PermissionSetGroup",
    "PermissionSetGroupComponent", "MutingPermissionSet", "FieldPermissions",
})


class ServedRequests:
    """Count of the requests being served, and the switch that turns new ones away once the org stops.

    The server's request threads outlive its shutdown, and one may be in the middle of a call:
    an injected latency can last minutes. Stopping wakes those waiting out a latency, waits for
    the calls being served and turns later ones away, so that none reaches the database after
    it is closed.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def begin(self) -> bool:
        """Count one more request being served and return True.

        Once the org stops, count nothing and return False.
        """
        with self._changed:
            if self._stopping.is_set():
                return False
            self._count += 1
            return True

    def end(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_latency(self, seconds: float) -> bool:
        """Wait an injected latency and return True, or False at once if the org starts stopping."""
        return not self._stopping.wait(seconds)

    def stop(self, timeout: float) -> int:
        """Turn new requests away, wait for those being served, and return how many still run."""
        with self._changed:
            self._stopping.set()
            self._changed.wait_for(lambda: self._count == 0, timeout)
            return self._count


@dataclass
class OrgState:
    """State shared by every request: the store and the addresses the org is served on."""

    store: Store
    base_url: str
    client_id: str = CLIENT_ID
    daily_api_limit: int = DAILY_API_REQUEST_LIMIT
    requests_since_start: int = 0
    faults: FaultInjector = field(default_factory=FaultInjector)
    bulk_jobs: BulkJobs = field(init=False)
    query_cursors: QueryCursors = field(default_factory=QueryCursors)
    route_api_call: ApiRouter | None = None
    """Set by the application, so that Composite can run its subrequests' handlers."""
    soap_login_enabled: bool = True
    """False makes SOAP login() fail as in an org with "Enable SOAP API login()" turned off."""
    callback_urls: tuple[str, ...] | None = None
    """The app's registered callback URLs, or None to accept any loopback redirect URI."""
    served: ServedRequests = field(default_factory=ServedRequests)

    def __post_init__(self) -> None:
        self.bulk_jobs = BulkJobs(self.store)


@dataclass
class ApiSession:
    """One authenticated API request: org, user access and the API version in its path."""

    org: OrgState
    access: SessionAccess
    version: str

    @property
    def store(self) -> Store:
        return self.org.store

    @property
    def user_id(self) -> str:
        return self.access.user_id

    @property
    def version_path(self) -> str:
        return f"/services/data/v{self.version}"

    def record_url(self, sobject: str, record_id: str) -> str:
        return f"{self.version_path}/sobjects/{sobject}/{record_id}"

    def custom_field(self, name: str) -> CustomFieldDefinition | None:
        """Return an Activity custom field by name, whether or not the user can see it."""
        for definition in self.store.custom_fields():
            if definition.name.lower() == name.lower():
                return definition
        return None

    def sobject(self, name: str) -> SObjectSpec:
        """Return an sObject as this user sees it, or raise NOT_FOUND for an unknown name."""
        spec = self.find_sobject(name)
        if spec is None:
            raise not_found()
        return spec

    def readable_sobject(self, name: str) -> SObjectSpec:
        """Return an sObject the user may read, or raise NOT_FOUND.

        A permission object is NOT_FOUND without View Setup and Configuration, as it is
        unknown to SOQL for that user and left out of the global describe.
        """
        spec = self.sobject(name)
        if not self.can_read_object(spec.name):
            raise not_found()
        return spec

    @cached_property
    def activities(self) -> ActivityAccess:
        """Which Tasks and Events this user may read, edit and delete."""
        return ActivityAccess(self.store, self.access)

    def find_sobject(self, name: str) -> SObjectSpec | None:
        canonical = canonical_sobject_name(name)
        if canonical is None:
            return None
        return sobject_for_user(
            canonical, self.store.custom_fields(), self.access.can_read_field
        )

    def can_read_object(self, name: str) -> bool:
        """Return False for a permission object when the user lacks View Setup and Configuration."""
        canonical = canonical_sobject_name(name)
        if canonical not in SETUP_READ_OBJECTS:
            return True
        return self.can_view_setup()

    def can_view_setup(self) -> bool:
        """Return True if the user has View Setup and Configuration.

        Modify All Data counts as well, because Salesforce enables View Setup and
        Configuration with it (Help, "Modify All Data" permission, article 000321298).
        """
        return self.access.has("PermissionsViewSetup") or self.access.has(
            "PermissionsModifyAllData")

    def require_view_setup(self, resource: str) -> None:
        """Raise HTTP 403 INSUFFICIENT_ACCESS unless the user has View Setup and Configuration."""
        # NOTE: Salesforce documents that the Limits and Record Count resources need View
        # Setup and Configuration, but not the error it returns without it. 403 follows the
        # REST status code table ("the request has been refused"); the errorCode is a guess.
        if not self.can_view_setup():
            raise ApiError(403, "INSUFFICIENT_ACCESS",
                           f"The {resource} resource needs the View Setup and Configuration "
                           "permission, which this user does not have.")

    def require(self, flag: str, message: str) -> None:
        """Raise INSUFFICIENT_ACCESS_OR_READONLY unless the user has a permission."""
        if not self.access.has(flag) and not self.access.has("PermissionsModifyAllData"):
            raise ApiError(400, "INSUFFICIENT_ACCESS_OR_READONLY", message)
