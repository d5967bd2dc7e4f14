"""Connect: pick an org profile and sign in to it.

The built-in practice org signs in with one click. A saved profile signs in
through the browser with the OAuth web-server flow and PKCE; it names a
production, sandbox or My Domain org, or a practice org served on this computer.
A later start resumes that sign-in from the refresh token in the OS keyring.
A locked keyring is reported with Retry and never leads to a new sign-in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from backstory_desktop.core.checklist import STEP_TITLES, Step, StepResult
from backstory_desktop.core.jobs import Cancelled, ProgressCallback, check_cancel
from backstory_desktop.gui import dialogs
from backstory_desktop.gui.pages.base import SIGN_IN_AGAIN, PracticeSettings, StepPage, WizardContext
from backstory_desktop.gui.widgets import FAILED_COLOR, NEUTRAL_COLOR, NO_VALUE, explain_error, note
from backstory_desktop.salesforce.api_version import API_VERSION
from backstory_desktop.store.paths import ensure_private_dir
from backstory_desktop.store.settings import (
    PRACTICE_PROFILE_ALIAS,
    OrgProfile,
    ProfilesFileError,
    load_profiles,
    save_profile,
)

# The enablement steps, org_sessions and the practice org's server load simple-salesforce,
# requests, keyring and werkzeug. The page imports them in the functions that sign in, so the
# window opens without them. The dialogs of saved profiles are imported when first used too.
if TYPE_CHECKING:
    from backstory_desktop.enablement.run import EnablementRun
    from backstory_desktop.gui.sign_in_dialogs import OtherSignIn
    from backstory_desktop.practice_org.server import PracticeOrg
    from backstory_desktop.salesforce.connection import OrgConnection

log = logging.getLogger(__name__)

PRACTICE_KIND = "practice"
PRACTICE_LABEL = "Practice org (built in, on this computer)"
WAITING_FOR_BROWSER = "Waiting for you to sign in through the browser…"
WAITING_AT_CALLBACK = "Waiting for the sign-in at {callback_url}…"
BROWSER_NOT_OPENED = (
    "The browser could not be opened, so press Copy sign-in link and open the link in a browser. "
    "The sign-in returns to {callback_url}."
)
SIGNED_OUT = "Signed out of {alias}: its saved sign-in was revoked at the org and deleted."
STILL_CONNECTED = "{reason} Still connected as {username}: the steps keep using the earlier sign-in."
RESUMING = "Resuming the saved sign-in…"
SIGN_IN_CANCELLED = "Sign-in cancelled, and nothing was saved."
RETRY = "Retry"
LOCKED_MESSAGE = (
    "The keychain is locked, so the saved sign-in to {alias} cannot be read. Unlock your "
    "keychain and press Retry; no new sign-in is needed."
)
# Profile fields that decide which org and app a saved refresh token belongs to.
CONNECTION_FIELDS = ("kind", "login_host", "client_id")


def practice_profile() -> OrgProfile:
    """Return the saved practice org profile, so the admin's earlier choices are kept."""
    try:
        saved = load_profiles().get(PRACTICE_PROFILE_ALIAS)
    except ProfilesFileError as error:
        log.warning("%s", error)
        saved = None
    return saved or OrgProfile(alias=PRACTICE_PROFILE_ALIAS, kind=PRACTICE_KIND)


def saved_profiles() -> dict[str, OrgProfile]:
    """Return the saved profiles of real and served orgs by alias; the built-in practice org is not one."""
    return {alias: profile for alias, profile in load_profiles().items() if profile.kind != PRACTICE_KIND}


def profile_label(profile: OrgProfile) -> str:
    """Return the profile picker's line for a saved profile: alias, kind and host."""
    from backstory_desktop.gui.profile_dialog import KIND_LABELS

    kind = KIND_LABELS.get(profile.kind, profile.kind)
    return f"{profile.alias}: {kind}, {profile.login_host}"


def callback_ports_text(ports: list[int]) -> str:
    """Describe the callback ports for the profile line: "callback ports 7317, 7318, 7319"."""
    from backstory_desktop.gui.profile_dialog import format_callback_ports

    if list(ports) == [0]:
        return "any free callback port"
    noun = "callback port" if len(ports) == 1 else "callback ports"
    return f"{noun} {format_callback_ports(ports)}"


def start_and_connect(
    run: EnablementRun,
    practice: PracticeSettings,
    running_org: PracticeOrg | None,
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
) -> tuple[PracticeOrg, StepResult]:
    """Start the practice org unless it already runs, then sign in to it as its admin."""
    from backstory_desktop import enablement
    from backstory_desktop.practice_org.database_lock import DESKTOP_WINDOW_HOLDER
    from backstory_desktop.practice_org.server import PracticeOrg

    org = running_org
    if org is None:
        progress(0, 0, "Starting the practice org…")
        ensure_private_dir(practice.db_path.parent)
        org = PracticeOrg(practice.db_path, scenario=practice.scenario, holder=DESKTOP_WINDOW_HOLDER)
        org.start()
    check_cancel(cancel)
    progress(0, 0, "Signing in with OAuth (PKCE)…")
    run.profile.kind = PRACTICE_KIND
    run.profile.login_host = org.base_url
    run.profile.client_id = org.client_id
    run.profile.practice_db = str(practice.db_path)
    return org, enablement.connect(run, org)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the default web browser and return whether one started."""
    # webbrowser loads subprocess and shlex, which the window's start does without.
    import webbrowser

    return webbrowser.open(url)


def callback_url_of(authorize_url: str) -> str:
    """Return the redirect_uri an authorize URL carries, or "" when it has none."""
    values = parse_qs(urlsplit(authorize_url).query).get("redirect_uri", [])
    return values[0] if values else ""


def plain_sign_in_reason(reason: str) -> str:
    """Say why a saved sign-in cannot be used in plain words; OAuth error codes become a sentence."""
    if reason.startswith("invalid_grant"):
        return "the org no longer accepts the saved sign-in, because it was revoked, expired or replaced"
    return reason


def browser_sign_in_job(
    run: EnablementRun,
    open_browser: Callable[[str], object],
    on_waiting: Callable[[str], None],
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
) -> StepResult:
    """Sign in through the browser, keep the refresh token in the keyring, and record Connect."""
    from backstory_desktop import enablement, org_sessions

    connection = org_sessions.sign_in_with_browser(
        run.profile, org_sessions.secret_store(), open_browser=open_browser, cancel=cancel,
        on_waiting=on_waiting,
    )
    return enablement.use_connection(run, connection)


def resume_job(run: EnablementRun, *, progress: ProgressCallback, cancel: threading.Event) -> StepResult:
    """Open a connection from the saved refresh token, without a browser, and record Connect."""
    from backstory_desktop import enablement, org_sessions

    connection = org_sessions.resume_session(run.profile, org_sessions.secret_store(), cancel=cancel)
    return enablement.use_connection(run, connection)


def other_sign_in_job(
    run: EnablementRun, sign_in: OtherSignIn, *, progress: ProgressCallback, cancel: threading.Event
) -> StepResult:
    """Sign in for this session only, with a password or a pasted access token; nothing is saved."""
    from backstory_desktop import enablement, org_sessions
    from backstory_desktop.gui.sign_in_dialogs import PASSWORD_METHOD

    connection: OrgConnection
    if sign_in.method == PASSWORD_METHOD:
        connection = org_sessions.sign_in_with_password(
            run.profile, sign_in.username, sign_in.password, sign_in.security_token
        )
    else:
        connection = org_sessions.sign_in_with_access_token(
            run.profile, sign_in.instance_url, sign_in.access_token
        )
    return enablement.use_connection(run, connection)


def remove_profile_job(
    profile: OrgProfile,
    connection: OrgConnection | None,
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
) -> None:
    """Revoke the profile's sign-in (best effort), delete its token and the profile itself.

    ``connection`` is the run's open connection to the profile's org, revoked first.
    """
    from backstory_desktop import org_sessions

    org_sessions.remove_profile(profile, org_sessions.secret_store(), connection=connection)


def sign_out_job(
    profile: OrgProfile,
    connection: OrgConnection | None,
    *,
    progress: ProgressCallback,
    cancel: threading.Event,
) -> None:
    """Revoke the profile's sign-in at its login host (best effort) and delete its saved token.

    ``profile`` is the profile as the token was issued for it, so an edited profile's old
    token is revoked at the old login host and never sent to the new one.
    """
    from backstory_desktop import org_sessions

    org_sessions.sign_out(profile, org_sessions.secret_store(), connection=connection)


class ConnectPage(StepPage):
    """The profile picker, profile actions, sign-in and what the sign-in found."""

    step = Step.CONNECT
    # Carries the authorize URL from the worker thread once the callback listener is up.
    sign_in_link_ready = Signal(str)
    # Emitted from the worker thread when the browser could not be opened.
    browser_not_opened = Signal()

    def __init__(self, context: WizardContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        # Tests replace this to play the browser's part.
        self.open_browser: Callable[[str], object] = open_in_browser
        self.sign_in_link = ""
        # True once the browser could not be opened, so the waiting line keeps saying so.
        self._browser_failed = False
        # The admin's last one-session sign-in without its secrets, to fill in the dialog again.
        self._last_other_sign_in: OtherSignIn | None = None
        self._saved: dict[str, OrgProfile] = {}
        # True until the window's start-up work or a profile switch, so the keyring backend is not
        # chosen before the first paint.
        self._keyring_notice_deferred = True

        self.body.addWidget(note(
            "Choose the org to work on. The practice org is a local stand-in for Salesforce that "
            "runs on this computer, so you can rehearse every step before touching a real org. "
            "Add a profile for each production, sandbox or My Domain org you enable."
        ))
        self.profiles = QComboBox()
        self.profiles.currentIndexChanged.connect(self._profile_picked)
        self.new_button = QPushButton("New…")
        self.new_button.clicked.connect(self.new_profile)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(self.edit_profile)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.remove_profile)
        profile_row = QHBoxLayout()
        profile_row.addWidget(QLabel("Org profile:"))
        profile_row.addWidget(self.profiles, 1)
        profile_row.addWidget(self.new_button)
        profile_row.addWidget(self.edit_button)
        profile_row.addWidget(self.remove_button)
        self.body.addLayout(profile_row)
        self.profile_summary = note("")
        self.profile_summary.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
        self.body.addWidget(self.profile_summary)

        self.practice_row = self._build_practice_row()
        self.body.addWidget(self.practice_row)
        self.sign_in_row = self._build_sign_in_row()
        self.body.addWidget(self.sign_in_row)

        self.instance_url = QLabel(NO_VALUE)
        self.username = QLabel(NO_VALUE)
        self.api_version = QLabel(NO_VALUE)
        form = QFormLayout()
        form.addRow("Instance URL:", self.instance_url)
        form.addRow("User:", self.username)
        form.addRow("API version:", self.api_version)
        for value in (self.instance_url, self.username, self.api_version):
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addLayout(form)
        self.body.addStretch(1)

        self.keyring_notice = note("")
        self.keyring_notice.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
        self.guide_button = QPushButton("How to set up the External Client App")
        self.guide_button.clicked.connect(self.show_guide)
        self.insecure_keyring_button = QPushButton("Use this keyring anyway…")
        self.insecure_keyring_button.clicked.connect(self.allow_insecure_keyring)
        footer = QHBoxLayout()
        footer.addWidget(self.keyring_notice, 1)
        footer.addWidget(self.insecure_keyring_button, 0, Qt.AlignmentFlag.AlignBottom)
        footer.addWidget(self.guide_button, 0, Qt.AlignmentFlag.AlignBottom)
        self.body.addLayout(footer)

        self.sign_in_link_ready.connect(self._show_sign_in_link, Qt.ConnectionType.QueuedConnection)
        self.browser_not_opened.connect(self._show_browser_not_opened, Qt.ConnectionType.QueuedConnection)
        self.reload_profiles()

    def _build_practice_row(self) -> QWidget:
        row = QWidget()
        self.database = QLabel(str(self.context.practice.db_path))
        self.database.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_org)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Practice org database:"))
        layout.addWidget(self.database, 1)
        layout.addWidget(self.connect_button)
        return row

    def _build_sign_in_row(self) -> QWidget:
        row = QWidget()
        self.sign_in_button = QPushButton("Sign in with browser")
        self.sign_in_button.clicked.connect(self.sign_in_with_browser)
        self.copy_link_button = QPushButton("Copy sign-in link")
        self.copy_link_button.setToolTip("Copy the sign-in address, to open it in another browser")
        self.copy_link_button.clicked.connect(self.copy_sign_in_link)
        self.copy_link_button.hide()
        self.other_button = QPushButton("Other ways to sign in…")
        self.other_button.clicked.connect(self.other_sign_in)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.setToolTip("Revoke and delete the saved sign-in; the profile stays")
        self.sign_out_button.clicked.connect(self.sign_out)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.sign_in_button)
        layout.addWidget(self.copy_link_button)
        layout.addStretch(1)
        layout.addWidget(self.other_button)
        layout.addWidget(self.sign_out_button)
        return row

    # -- the profile picker ----------------------------------------------------------------

    @property
    def practice_selected(self) -> bool:
        """Tell whether the run works on the built-in practice org."""
        return self.context.profile.kind == PRACTICE_KIND

    def reload_profiles(self) -> None:
        """List the saved profiles again and select the run's profile."""
        try:
            self._saved = saved_profiles()
        except ProfilesFileError as error:
            self._saved = {}
            self.message.show_message(str(error), FAILED_COLOR)
        self.profiles.blockSignals(True)
        self.profiles.clear()
        self.profiles.addItem(PRACTICE_LABEL, PRACTICE_PROFILE_ALIAS)
        for alias in sorted(self._saved, key=str.casefold):
            self.profiles.addItem(profile_label(self._saved[alias]), alias)
        self.profiles.setCurrentIndex(max(0, self.profiles.findData(self.context.profile.alias)))
        self.profiles.blockSignals(False)
        self.show_profile()

    def profile_for(self, alias: str) -> OrgProfile | None:
        """Return the profile behind a picker entry, read again from the profiles file."""
        if alias == PRACTICE_PROFILE_ALIAS:
            return practice_profile()
        try:
            return saved_profiles().get(alias)
        except ProfilesFileError as error:
            self.message.show_message(str(error), FAILED_COLOR)
            return None

    def _profile_picked(self, _index: int) -> None:
        alias = str(self.profiles.currentData())
        # The picker keeps showing the run's profile until the switch happens, so it matches
        # the line below it while the switch confirmation is open.
        self.profiles.blockSignals(True)
        self.profiles.setCurrentIndex(max(0, self.profiles.findData(self.context.profile.alias)))
        self.profiles.blockSignals(False)
        if alias != self.context.profile.alias:
            # The window confirms with the admin first when this run has results, who may keep it.
            self.context.profile_switch_requested.emit(alias, True)

    def show_profile(self) -> None:
        """Show the run's profile, its sign-in controls and the keyring notice."""
        profile = self.context.profile
        practice = self.practice_selected
        self.practice_row.setVisible(practice)
        self.sign_in_row.setVisible(not practice)
        if practice:
            self.profile_summary.setText("Runs on this computer, so no Salesforce account is needed.")
        else:
            from backstory_desktop.gui.profile_dialog import KIND_LABELS

            kind = KIND_LABELS.get(profile.kind, profile.kind)
            version = profile.api_version or API_VERSION
            ports = callback_ports_text(profile.callback_ports)
            self.profile_summary.setText(
                f"Signs in at {profile.login_host} ({kind}) through {ports}, with API version {version}."
            )
        self._show_connection()
        self._show_keyring_notice()
        self.update_actions()

    def _show_connection(self) -> None:
        connection = self.context.connection
        self.instance_url.setText(connection.instance_url if connection else NO_VALUE)
        self.username.setText(connection.username if connection else NO_VALUE)
        self.api_version.setText(connection.api_version if connection else NO_VALUE)

    def finish_start(self) -> None:
        """Choose the keyring backend and show its notice; the window calls this in its start-up work."""
        self._keyring_notice_deferred = False
        self._show_keyring_notice()

    def _show_keyring_notice(self) -> None:
        if self.practice_selected:
            # The practice org never saves a sign-in, so its notice needs no keyring backend.
            self.insecure_keyring_button.setVisible(False)
            self.keyring_notice.setText(
                "The practice org needs no saved sign-in: Connect signs in again each time."
            )
            return
        if self._keyring_notice_deferred:
            # Choosing the keyring backend imports and probes every backend, about 0.15 s on a
            # 2-CPU Linux VM, so it waits for finish_start().
            self.insecure_keyring_button.setVisible(False)
            self.keyring_notice.setText("")
            return
        from backstory_desktop import org_sessions

        refused = org_sessions.refused_insecure_keyring()
        self.insecure_keyring_button.setVisible(bool(refused))
        notice = org_sessions.secret_store().storage_notice
        token_notice = org_sessions.token_notice(self.run.profile.alias)
        self.keyring_notice.setText(f"{notice} {token_notice}".strip())

    def allow_insecure_keyring(self) -> None:
        """Ask, then let sign-in tokens go to the insecure keyring backend the app did not use."""
        from backstory_desktop import org_sessions

        refused = org_sessions.refused_insecure_keyring()
        if not refused:
            return
        approved = dialogs.confirm(
            self,
            "Use an insecure keyring",
            f"Save sign-in tokens in {refused}?",
            [
                "A refresh token there lets anyone who can read it sign in to the org as you, "
                "until the token is revoked.",
                "Choose this only when the system keyring cannot be set up on this computer.",
                "The choice is saved in the app settings (allow_insecure_keyring in app.toml).",
                "Sign in again afterwards, so the sign-in is saved there.",
            ],
            "Use this keyring",
        )
        if not approved:
            return
        org_sessions.allow_insecure_keyring()
        self._show_keyring_notice()

    def profile_switched(self) -> None:
        """Show the profile of a fresh run, and resume its saved sign-in if it has one."""
        self.message.clear()
        self._last_other_sign_in = None
        self._keyring_notice_deferred = False
        self.reload_profiles()
        if not self.practice_selected:
            self.resume_saved_session()

    def enter(self) -> None:
        """Refresh the keyring notice too, since a later step may have failed to save a rotated token."""
        self._show_keyring_notice()
        super().enter()

    def update_actions(self) -> None:
        busy = self.busy
        saved = not self.practice_selected
        self.profiles.setEnabled(not busy)
        self.new_button.setEnabled(not busy)
        self.edit_button.setEnabled(saved and not busy)
        self.remove_button.setEnabled(saved and not busy)
        self.connect_button.setEnabled(not busy)
        self.sign_in_button.setEnabled(saved and not busy)
        self.other_button.setEnabled(saved and not busy)
        self.sign_out_button.setEnabled(saved and not busy)

    # -- New, Edit and Remove ---------------------------------------------------------------

    def new_profile(self) -> None:
        """Add a profile in the dialog, then switch the run to it."""
        taken_aliases = set(self._saved) | {PRACTICE_PROFILE_ALIAS}
        from backstory_desktop.gui import profile_dialog

        profile = profile_dialog.edit_profile(self, taken_aliases=taken_aliases)
        if profile is None:
            return
        save_profile(profile)
        log.info("org profile %s added (%s)", profile.alias, profile.kind)
        self.reload_profiles()
        self.context.profile_switch_requested.emit(profile.alias, True)

    def edit_profile(self) -> None:
        """Change the run's profile in the dialog; a new org or app needs a new sign-in."""
        current = self.run.profile
        from backstory_desktop.gui import profile_dialog

        edited = profile_dialog.edit_profile(self, taken_aliases=set(self._saved), profile=current)
        if edited is None:
            return
        moved = any(getattr(edited, name) != getattr(current, name) for name in CONNECTION_FIELDS)
        as_signed_in = replace(current, callback_ports=list(current.callback_ports))
        save_profile(edited)
        for name in ("kind", "login_host", "client_id", "api_version", "ca_bundle", "callback_ports"):
            setattr(current, name, getattr(edited, name))
        log.info("org profile %s edited", current.alias)
        self.message.clear()
        self.reload_profiles()
        if moved:
            self._forget_sign_in(as_signed_in)

    def _forget_sign_in(self, old_profile: OrgProfile) -> None:
        """Sign out of a profile that now names another org or app, at its old login host.

        ``old_profile`` is the profile before the edit, so the old refresh token is revoked
        where it was issued and never sent to the new login host.
        """
        connection = self.run.connection
        self.run.connection = None
        self.run.checklist.forget(Step.CONNECT)
        self._show_connection()
        self.record_changed()
        self.start_job("the sign-out", sign_out_job, old_profile, connection,
                       on_finished=lambda _result: self._signed_out_after_edit(old_profile.alias),
                       on_failed=self._sign_out_failed,
                       progress_message=f"Revoking the sign-in at {old_profile.login_host}…")

    def _signed_out_after_edit(self, alias: str) -> None:
        self._show_keyring_notice()
        self.message.show_message(
            f"The profile {alias} now names another org or app, so its old sign-in was revoked "
            "and deleted; sign in again.",
            NEUTRAL_COLOR,
        )

    def sign_out(self) -> None:
        """Revoke and delete the saved sign-in of the run's profile; the profile stays."""
        connection = self.run.connection
        self.run.connection = None
        self.run.checklist.forget(Step.CONNECT)
        self._show_connection()
        self.record_changed()
        alias = self.run.profile.alias
        self.start_job("the sign-out", sign_out_job, self.run.profile, connection,
                       on_finished=lambda _result: self._signed_out(alias),
                       on_failed=self._sign_out_failed,
                       progress_message=f"Signing out of {alias}…")

    def _signed_out(self, alias: str) -> None:
        log.info("signed out of org profile %s", alias)
        self._show_keyring_notice()
        self.message.show_message(SIGNED_OUT.format(alias=alias), NEUTRAL_COLOR)

    def _sign_out_failed(self, error: BaseException) -> None:
        self._show_keyring_notice()
        self.job_failed(error)

    def remove_profile(self) -> None:
        """Ask, then revoke the sign-in, delete the token and the profile, and go to the practice org."""
        from backstory_desktop.gui.profile_dialog import KIND_LABELS

        profile = self.run.profile
        kind = KIND_LABELS.get(profile.kind, profile.kind)
        lines = [
            f"- Org profile {profile.alias} ({kind}, {profile.login_host})",
            "- Its saved sign-in, revoked at Salesforce first",
        ]
        lines += [f"- This run's result of {STEP_TITLES[step]}" for step in self.run.checklist.results]
        question = f"Remove the org profile {profile.alias}?"
        if not dialogs.confirm(self, "Remove org profile", question, lines, "Remove"):
            return
        self.start_job("the profile removal", remove_profile_job, profile, self.run.connection,
                       on_finished=self._profile_removed,
                       progress_message=f"Removing {profile.alias}…")

    def _profile_removed(self, _result: object) -> None:
        log.info("org profile %s removed", self.run.profile.alias)
        # The worker counts as busy until this job has ended, and a busy window switches nothing.
        QTimer.singleShot(
            0, lambda: self.context.profile_switch_requested.emit(PRACTICE_PROFILE_ALIAS, False)
        )

    # -- signing in -----------------------------------------------------------------------

    def sign_in_again(self) -> None:
        """Start the sign-in that fits the run's profile, after an ended session.

        A session that began with a password or a pasted token opens that dialog again.
        """
        if self.practice_selected:
            self.connect_org()
        elif self._last_other_sign_in is not None:
            self.other_sign_in()
        else:
            self.sign_in_with_browser()

    def connect_org(self) -> None:
        """Start the practice org if needed and sign in, on the worker."""
        self.start_job(
            "connect",
            start_and_connect,
            self.run,
            self.context.practice,
            self.context.practice_org,
            on_finished=self._practice_connected,
            progress_message="Connecting…",
        )

    def _practice_connected(self, outcome: tuple[PracticeOrg, StepResult]) -> None:
        org, result = outcome
        self.context.practice_org = org
        self._show_result(result)

    def sign_in_with_browser(self) -> None:
        """Open the org's sign-in page in the browser and wait, cancellable, for its callback."""
        self.sign_in_link = ""
        self._browser_failed = False
        self._last_other_sign_in = None
        self.start_job(
            "sign in with browser",
            browser_sign_in_job,
            self.run,
            self._open_browser_or_report,
            self.sign_in_link_ready.emit,
            on_finished=self._show_result,
            on_failed=self._sign_in_failed,
            progress_message=WAITING_FOR_BROWSER,
            cancellable=True,
        )

    def show_guide(self) -> None:
        """Show the guide to setting up the External Client App."""
        from backstory_desktop.gui import sign_in_dialogs

        sign_in_dialogs.show_guide(self)

    def _open_browser_or_report(self, url: str) -> bool:
        # Runs on the worker thread. webbrowser.open returns False, or raises, when no browser starts.
        try:
            opened = self.open_browser(url) is not False
        except Exception as error:  # every failure to launch a browser means the same here
            log.warning("Could not open the browser: %s", error)
            opened = False
        if not opened:
            self.browser_not_opened.emit()
        return opened

    def _show_sign_in_link(self, url: str) -> None:
        if self.busy:
            self.sign_in_link = url
            self.copy_link_button.show()
            callback_url = callback_url_of(url)
            if callback_url and not self._browser_failed:
                self.progress.message.setText(WAITING_AT_CALLBACK.format(callback_url=callback_url))

    def _show_browser_not_opened(self) -> None:
        if self.busy:
            self._browser_failed = True
            callback_url = callback_url_of(self.sign_in_link) or "this app"
            self.progress.message.setText(BROWSER_NOT_OPENED.format(callback_url=callback_url))

    def copy_sign_in_link(self) -> None:
        """Put the sign-in address on the clipboard, for a browser the app did not open."""
        QGuiApplication.clipboard().setText(self.sign_in_link)
        self.progress.message.setText("Sign-in link copied. Open it in the browser where you sign in.")

    def _sign_in_failed(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            log.info("browser sign-in to %s cancelled", self.run.profile.alias)
            self.message.show_message(SIGN_IN_CANCELLED, NEUTRAL_COLOR)
            return
        self._new_sign_in_failed(error)

    def _new_sign_in_failed(self, error: BaseException) -> None:
        """Show a failed sign-in; an earlier connection of this run is named, since it is still in use."""
        self.job_failed(error)
        connection = self.run.connection
        if connection is None:
            return
        reason, details = explain_error(error)
        self.message.show_message(
            STILL_CONNECTED.format(username=connection.username, reason=reason), FAILED_COLOR, details
        )

    def resume_saved_session(self) -> None:
        """Resume the saved sign-in of the run's profile; a missing one waits for Sign in with browser."""
        # Cancellable, because a slow org would otherwise keep every control of the window disabled.
        self.start_job("the session resume", resume_job, self.run, on_finished=self._show_result,
                       on_failed=self._resume_failed, progress_message=RESUMING, cancellable=True)

    def _resume_failed(self, error: BaseException) -> None:
        from backstory_desktop.salesforce.errors import SignInRequired
        from backstory_desktop.store.secrets import SecretsLocked

        if isinstance(error, SecretsLocked):
            log.info("the keyring is locked; waiting for Retry")
            self.message.show_message(
                LOCKED_MESSAGE.format(alias=self.run.profile.alias), FAILED_COLOR, str(error)
            )
            self.message.offer_action(RETRY, self.resume_saved_session)
        elif isinstance(error, SignInRequired):
            log.info("no usable saved sign-in for %s", self.run.profile.alias)
            # The OAuth error code stays behind Details, for a support request.
            details = error.details or error.reason
            self.message.show_message(
                f"Not signed in: {plain_sign_in_reason(error.reason)}. Press Sign in with browser.",
                NEUTRAL_COLOR,
                details,
            )
        else:
            self.job_failed(error)

    def other_sign_in(self) -> None:
        """Sign in for this session with a password or a pasted access token."""
        from backstory_desktop.gui import sign_in_dialogs
        from backstory_desktop.gui.sign_in_dialogs import OtherSignIn

        prefill = self._other_sign_in_prefill()
        sign_in = sign_in_dialogs.ask_other_sign_in(self, self.run.profile.alias, prefill)
        if sign_in is None:
            return
        # Only what the admin may see again is kept: never the password, token or security token.
        self._last_other_sign_in = OtherSignIn(
            sign_in.method, username=sign_in.username, instance_url=sign_in.instance_url
        )
        self.start_job("the sign-in", other_sign_in_job, self.run, sign_in,
                       on_finished=self._show_result, on_failed=self._other_sign_in_failed,
                       progress_message="Signing in…")

    def _other_sign_in_prefill(self) -> OtherSignIn:
        from backstory_desktop.gui.sign_in_dialogs import PASSWORD_METHOD, OtherSignIn

        last = self._last_other_sign_in
        if last is not None and last.instance_url:
            return last
        profile = self.run.profile
        # A My Domain or served login host is also the instance URL; login.salesforce.com is not.
        instance_url = profile.instance_url
        if not instance_url and profile.kind in ("mydomain", "served"):
            instance_url = profile.login_host
        method = last.method if last is not None else PASSWORD_METHOD
        username = last.username if last is not None else profile.username
        return OtherSignIn(method, username=username, instance_url=instance_url)

    def _other_sign_in_failed(self, error: BaseException) -> None:
        from backstory_desktop.gui.sign_in_dialogs import ACCESS_TOKEN_METHOD
        from backstory_desktop.salesforce.errors import SignInRequired

        last = self._last_other_sign_in
        if last is None or last.method != ACCESS_TOKEN_METHOD or not isinstance(error, SignInRequired):
            self._new_sign_in_failed(error)
            return
        # A pasted token that the org rejects never began a session, so nothing "has ended".
        log.info("%s: the org rejected the pasted access token", self.step.value)
        reason = (
            f"The org at {last.instance_url} rejected the pasted access token ({error.reason}); "
            "paste a current token, for example from 'sf org display'."
        )
        connection = self.run.connection
        if connection is not None:
            reason = STILL_CONNECTED.format(username=connection.username, reason=reason)
        self.message.show_message(reason, FAILED_COLOR, error.details)
        self.message.offer_action(SIGN_IN_AGAIN, self.other_sign_in)
        self.record_changed()

    def _show_result(self, result: StepResult) -> None:
        self._show_connection()
        self._show_keyring_notice()
        self.message.show_result(result)
        self.record_changed()

    def job_ended(self) -> None:
        """Hide the sign-in link once the browser sign-in has ended."""
        self.copy_link_button.hide()
        self.sign_in_link = ""
