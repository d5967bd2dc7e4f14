"""The practice org: a local stand-in for a Salesforce org, served over HTTPS on 127.0.0.1.

Usage::

    with PracticeOrg(db_path) as org:
        org.base_url, org.ca_bundle, org.admin_username, org.client_id

The database is created and seeded on first use; later starts keep its
records. The path is checked before anything is written (see ``database``),
and an OS lock beside the file keeps a second practice org off it until
``stop()``. Both raise ``PracticeOrgDatabaseError``. The server listens on a
free port unless one is given.

``scenario="large"`` takes ``tasks=N`` and ``duplicate_share=F``, or a whole
``large=LargeScenario(...)`` with the shares of exact, normalised and probable
duplicates (see ``seed_large``); they size a new database only, and other
scenarios reject them.

``faults=FaultPlan(...)`` and ``daily_api_limit=N`` inject failures and lower
the daily API request allocation from the start. Assigning ``org.faults`` or
``org.daily_api_limit`` changes them while the org runs (see ``faults``).

Deleted records stay in the recycle bin for 15 days; ``empty_recycle_bin()``
purges them at once, and SOAP ``undelete()`` restores them (see ``soap_undelete``).

SOAP ``login()`` takes ``PRACTICE_PASSWORD`` followed by
``org.security_token(username)``; ``soap_login_enabled=False`` turns it off as
an org created in Winter '26 or later has it (see ``soap_login``).
``callback_urls=[...]`` registers the OAuth app's callback URLs, which the
authorize request's redirect URI must then match exactly.

``holder=DESKTOP_WINDOW_HOLDER`` (or another short name) says who runs the org, so
that a second program refused the same database names it instead of "another
practice org".
"""

from __future__ import annotations

import datetime
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from backstory_desktop.bundled import sample_mailbox_path
from backstory_desktop.practice_org.app import PracticeOrgApp
from backstory_desktop.practice_org.database import check_database_path
from backstory_desktop.practice_org.database_lock import DatabaseLock
from backstory_desktop.practice_org.faults import FaultInjector, FaultPlan
from backstory_desktop.practice_org.ids import to_id18
from backstory_desktop.practice_org.seed import (
    ADMIN_USERNAME,
    INTEGRATION_USERNAME,
    SCENARIOS,
    seed_org,
)
from backstory_desktop.practice_org.seed_large import (
    DEFAULT_DUPLICATE_SHARE,
    DEFAULT_TASKS,
    LARGE_SCENARIO,
    LargeScenario,
    seed_large_org,
)
from backstory_desktop.practice_org.session import CLIENT_ID, OrgState
from backstory_desktop.practice_org.soap_login import PRACTICE_PASSWORD, security_token
from backstory_desktop.practice_org.store import Store
from backstory_desktop.practice_org.tls import ensure_tls_files
from backstory_desktop.practice_org.writes import archive_activities, undelete_records

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
# How long stop() lets the requests being served finish before it closes the database.
STOP_GRACE_SECONDS = 10


class _QuietRequestHandler(WSGIRequestHandler):
    """Log each request at DEBUG through our logger instead of werkzeug's INFO lines."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug(message, *args)


class PracticeOrg:
    """A practice org backed by one SQLite file, served over HTTPS in a daemon thread."""

    def __init__(self, db_path: Path | str, *, port: int = 0, scenario: str = "default",
                 mailbox: Path | None = None, tasks: int | None = None,
                 duplicate_share: float | None = None, faults: FaultPlan | None = None,
                 daily_api_limit: int | None = None, soap_login_enabled: bool = True,
                 callback_urls: Sequence[str] | None = None, holder: str = "",
                 large: LargeScenario | None = None) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown practice org scenario {scenario!r}: use one of "
                             f"{', '.join(SCENARIOS)}")
        self.large_scenario = _large_scenario_options(scenario, tasks, duplicate_share, large)
        registered_callbacks = _checked_callback_urls(callback_urls)
        check_database_path(db_path)
        self.db_path = Path(db_path)
        self.scenario = scenario
        self.admin_username = ADMIN_USERNAME
        self.integration_username = INTEGRATION_USERNAME
        self.client_id = CLIENT_ID
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

        self._lock = DatabaseLock(self.db_path, holder)
        self._lock.acquire()
        try:
            self._open_database(mailbox or sample_mailbox_path())
        except BaseException:
            self._lock.release()
            raise
        self._state = OrgState(self.store, base_url="", soap_login_enabled=soap_login_enabled,
                               callback_urls=registered_callbacks)
        if faults is not None:
            self.faults = faults
        if daily_api_limit is not None:
            self.daily_api_limit = daily_api_limit

    def _open_database(self, mailbox: Path) -> None:
        """Make the TLS files, open the store and seed it if new, under the database lock."""
        tls = ensure_tls_files(self.db_path)
        self.ca_bundle = tls.ca_cert
        self._tls = tls
        self.store = Store(self.db_path)
        try:
            # Seeding stores its scenario in the same transaction as the records,
            # so a database without one was never seeded, or its seed was cut short.
            if self.store.get_meta("scenario") is None and self.large_scenario is not None:
                seed_large_org(self.store, mailbox, self.large_scenario)
            elif self.store.get_meta("scenario") is None:
                seed_org(self.store, self.scenario, mailbox)
            self._keep_stored_scenario()
        except BaseException:
            self.store.close()
            raise

    def _keep_stored_scenario(self) -> None:
        """Report the scenario an existing database was seeded with, which stays in force."""
        stored = self.store.get_meta("scenario")
        if stored and stored != self.scenario:
            logger.warning("%s was seeded with the %s scenario, not %s: delete the file to "
                           "seed it again", self.db_path, stored, self.scenario)
            self.scenario = stored

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``: the login host and the instance URL at once."""
        if self._server is None:
            raise RuntimeError("the practice org is not started: call start() first")
        return f"https://{HOST}:{self._server.server_port}"

    @property
    def org_id(self) -> str:
        """The database's organization Id, drawn when it was seeded and kept in its file."""
        return self.store.org_id

    @property
    def request_count(self) -> int:
        """API requests served since start (OAuth and identity calls not included)."""
        return self._state.requests_since_start

    def start(self) -> None:
        """Serve HTTPS on 127.0.0.1 in a daemon thread."""
        if self._server is not None:
            return
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._tls.server_cert, self._tls.server_key)
        app = PracticeOrgApp(self._state)
        _check_port_free(self._requested_port)
        self._server = make_server(HOST, self._requested_port, app, threaded=True,
                                   ssl_context=context, request_handler=_QuietRequestHandler)
        self._state.base_url = self.base_url
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="practice-org", daemon=True)
        self._thread.start()
        logger.info("Practice org (%s) serving on %s", self.scenario, self.base_url)

    def stop(self) -> None:
        """Stop serving, close the database and release its lock.

        Requests being served may finish first, for up to STOP_GRACE_SECONDS. Those waiting out
        an injected latency, and any that arrive meanwhile, get 503 SERVER_UNAVAILABLE.
        """
        still_served = self._state.served.stop(STOP_GRACE_SECONDS)
        if still_served:
            logger.warning("Timed out after %d seconds waiting for %d requests being served, so the "
                           "database is closed under them", STOP_GRACE_SECONDS, still_served)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.store.close()
        self._lock.release()
        logger.info("Practice org stopped")

    @property
    def faults(self) -> FaultPlan:
        """The failures injected into API calls; assign a FaultPlan to change them."""
        return self._state.faults.plan

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        self._state.faults = FaultInjector(plan)

    @property
    def daily_api_limit(self) -> int:
        """The daily API request allocation; lower it to drill REQUEST_LIMIT_EXCEEDED."""
        return self._state.daily_api_limit

    @daily_api_limit.setter
    def daily_api_limit(self, limit: int) -> None:
        self._state.daily_api_limit = limit

    @property
    def bulk_batch_size(self) -> int:
        """Rows of a Bulk API ingest job that each read of its state processes (10,000, as on Salesforce)."""
        return self._state.bulk_jobs.batch_size

    @bulk_batch_size.setter
    def bulk_batch_size(self, size: int) -> None:
        self._state.bulk_jobs.batch_size = size

    @property
    def requests_in_flight(self) -> int:
        """API calls being served at this moment, as the concurrency limit counts them."""
        return self._state.faults.requests_in_flight

    @property
    def soap_login_enabled(self) -> bool:
        """Whether SOAP login() is on; assign False to get the fault of an org that turned it off."""
        return self._state.soap_login_enabled

    @soap_login_enabled.setter
    def soap_login_enabled(self, enabled: bool) -> None:
        self._state.soap_login_enabled = enabled

    @property
    def callback_urls(self) -> tuple[str, ...] | None:
        """The registered callback URLs, or None when any loopback redirect URI is accepted."""
        return self._state.callback_urls

    def security_token(self, username: str) -> str:
        """Return a user's security token, which SOAP login() takes after ``PRACTICE_PASSWORD``.

        The token depends on the username and a key stored in the database, so it
        stays the same across restarts. Raises ValueError for a username no user has.
        """
        with self.store.transaction():
            users = self.store.find_by_field("User", "Username", username, case_sensitive=False)
            if not users:
                raise ValueError(f"the practice org has no user with the username {username!r}")
            return security_token(self.store, str(users[0].fields["Username"]))

    def expire_sessions(self) -> None:
        """Revoke every access token, so the next API call returns 401 INVALID_SESSION_ID."""
        self.store.revoke_access_tokens()

    def archive_activities(self) -> list[str]:
        """Run Salesforce's activity archival now; return the ids of the Tasks and Events archived."""
        return archive_activities(self.store)

    def undelete(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Restore records from the recycle bin, as Salesforce's SOAP ``undelete()`` does.

        Returns each id's error as ``"ERROR_CODE: message"``, or None once restored.
        The REST API has no undelete resource, so drills call this instead.
        """
        outcomes = undelete_records(self.store, ids)
        return {
            record_id: None if error is None else f"{error.error_code}: {error.message}"
            for record_id, error in outcomes.items()
        }

    def empty_recycle_bin(self, ids: Iterable[str] | None = None) -> int:
        """Purge the given records from the recycle bin, or all of it; return how many were purged.

        A purged record is gone from queryAll, and undelete() of it fails with
        UNDELETE_FAILED. ``POST /services/practice/recycle-bin/empty`` does the same over HTTP.
        """
        return self.store.empty_recycle_bin(None if ids is None else [to_id18(item) for item in ids])

    def purge_recycle_bin(self, now: datetime.datetime | None = None) -> list[str]:
        """Purge what the recycle bin no longer keeps at ``now`` (15 days after deletion); return the ids.

        Every API call does this first, with the current time.
        """
        return self.store.purge_recycle_bin(now)

    def __enter__(self) -> PracticeOrg:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _large_scenario_options(scenario: str, tasks: int | None, duplicate_share: float | None,
                            large: LargeScenario | None = None) -> LargeScenario | None:
    """Return the large scenario's size, or None for another scenario (which takes no size)."""
    if scenario != LARGE_SCENARIO:
        if tasks is not None or duplicate_share is not None or large is not None:
            raise ValueError(f"tasks, duplicate_share and large apply to the {LARGE_SCENARIO} "
                             f"scenario only, not to {scenario}")
        return None
    if large is not None:
        if tasks is not None or duplicate_share is not None:
            raise ValueError("give either large or tasks and duplicate_share, not both")
        return large
    return LargeScenario(
        tasks=DEFAULT_TASKS if tasks is None else tasks,
        duplicate_share=DEFAULT_DUPLICATE_SHARE if duplicate_share is None else duplicate_share,
    )


def _checked_callback_urls(callback_urls: Sequence[str] | None) -> tuple[str, ...] | None:
    """Return the callback URLs as a tuple, or raise ValueError for an empty list or an invalid URL."""
    if callback_urls is None:
        return None
    if isinstance(callback_urls, str):
        raise ValueError("callback_urls must be a list of URLs, not one string")
    urls = tuple(callback_urls)
    if not urls:
        raise ValueError("callback_urls is empty, so no authorize request could succeed: "
                         "pass None to accept any loopback redirect URI")
    for url in urls:
        check_callback_url(url)
    return urls


def check_callback_url(url: str) -> str:
    """Return the URL if it can be a registered callback URL, else raise ValueError naming the fault."""
    parts = urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise ValueError(f"callback URL {url!r} is not an absolute URL such as "
                         "http://localhost:7317/callback")
    if "#" in url:
        # RFC 6749, section 3.1.2: a redirection endpoint must not include a fragment.
        raise ValueError(f"callback URL {url!r} contains a fragment (#), which a redirect URI "
                         "must not have")
    return url


def _check_port_free(port: int) -> None:
    """Raise OSError(EADDRINUSE) if another program listens on the port.

    werkzeug's server prints its own message and exits the process when it cannot
    bind, so the port is tried first and the caller gets an exception instead.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As werkzeug's server does, so a port left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))


def _raise_interrupt(signal_number: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal_number}")


def _stop_on_signals() -> None:
    """Make Ctrl+C and SIGTERM stop the server through its cleanup.

    A process started in the background of a non-interactive shell inherits an
    ignored SIGINT, and SIGTERM would end it without cleanup, so both handlers are
    set here. Only the main thread may set signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def serve_forever(db_path: Path, port: int, scenario: str, *, tasks: int | None = None,
                  duplicate_share: float | None = None, faults: FaultPlan | None = None,
                  daily_api_limit: int | None = None,
                  callback_urls: Sequence[str] | None = None,
                  large: LargeScenario | None = None) -> None:
    """Serve a practice org in the foreground until Ctrl+C or SIGTERM, printing how to connect."""
    _stop_on_signals()
    org = PracticeOrg(db_path, port=port, scenario=scenario, tasks=tasks,
                      duplicate_share=duplicate_share, faults=faults,
                      daily_api_limit=daily_api_limit, callback_urls=callback_urls, large=large)
    try:
        org.start()
        print(f"Practice org:   {org.base_url}")
        print(f"CA bundle:      {org.ca_bundle}")
        print(f"Admin username: {org.admin_username}")
        print(f"OAuth client:   {org.client_id}")
        callbacks = ", ".join(org.callback_urls) if org.callback_urls else "any loopback URI"
        print(f"Callback URLs:  {callbacks}")
        # A practice org's credentials are printed for the developer who runs it; they
        # open nothing but this local stand-in.
        print(f"SOAP login():   password {PRACTICE_PASSWORD} followed by the security token, "
              f"{org.security_token(org.admin_username)} for the admin")
        print(f"Faults:         {org.faults.summary()}")
        print(f"API calls/day:  {org.daily_api_limit}")
        print(f"Change faults:  POST {org.base_url}/services/practice/faults")
        print("Press Ctrl+C to stop.")
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Stopping the practice org.")
    finally:
        org.stop()
