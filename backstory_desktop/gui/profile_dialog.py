"""The New and Edit org profile dialog: alias, kind of org, login host, consumer key and connection options.

The login host is normalised as the admin types, so the dialog shows the host the
sign-in will use and any correction before anything is saved. Pages call
``edit_profile`` through the module, so GUI tests can fill in the dialog by
replacing that one function.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.gui.widgets import FAILED_COLOR, NEUTRAL_COLOR
from backstory_desktop.salesforce.api_version import API_VERSION
from backstory_desktop.store.settings import (
    DEFAULT_CALLBACK_PORTS,
    PRACTICE_PROFILE_ALIAS,
    OrgProfile,
    check_alias_free,
    validate_alias,
)

SERVED_KIND = "served"

# (profile kind, label) in the order the kind picker lists them.
PROFILE_KINDS = (
    ("production", "Production"),
    ("sandbox", "Sandbox"),
    ("mydomain", "My Domain"),
    (SERVED_KIND, "Served practice org"),
)
KIND_LABELS = dict(PROFILE_KINDS)

# The login host a new profile of each kind starts with, and the example shown in an empty field.
DEFAULT_LOGIN_HOSTS = {"production": "login.salesforce.com", "sandbox": "test.salesforce.com"}
LOGIN_HOST_EXAMPLES = {
    "production": "login.salesforce.com or mycompany.my.salesforce.com",
    "sandbox": "test.salesforce.com or mycompany--uat.sandbox.my.salesforce.com",
    "mydomain": "mycompany.my.salesforce.com",
    SERVED_KIND: "https://127.0.0.1:8443",
}
LOGIN_HOST_HINTS = {
    "production": "Type login.salesforce.com or the org's My Domain.",
    "sandbox": "Type test.salesforce.com or the sandbox's My Domain.",
    "mydomain": "Type the My Domain shown in Setup under My Domain.",
    SERVED_KIND: "Type the address that 'backstory-desktop practice-org serve' printed.",
}

# The purpose of the CA bundle file, by kind. requests uses the file in place of the public CA list.
CA_BUNDLE_HINTS = {
    SERVED_KIND: "Required: the ca.pem in the <database>.tls folder that 'practice-org serve' uses.",
}
REAL_ORG_CA_BUNDLE_HINT = (
    "Only behind a proxy that re-signs HTTPS. The file replaces the public CA list, so it must "
    "contain the proxy's CA."
)
CA_BUNDLE_PLACEHOLDERS = {SERVED_KIND: "required: <database>.tls/ca.pem"}
REAL_ORG_CA_BUNDLE_PLACEHOLDER = "usually empty: a PEM file used instead of the public CAs"

MAX_PORT = 65535
DIALOG_WIDTH = 660
HOST_STATUS_LINES = 4


def parse_callback_ports(text: str, *, allow_any_port: bool = False) -> list[int]:
    """Read a comma-separated list of callback ports, in the order the sign-in tries them.

    Port 0 (any free port) is accepted only with ``allow_any_port``, because a real org
    accepts only the callback URLs registered in its External Client App.
    """
    pieces = [piece.strip() for piece in text.replace(";", ",").split(",") if piece.strip()]
    if not pieces:
        raise ValueError(
            "Enter at least one callback port, such as "
            f"{', '.join(str(port) for port in DEFAULT_CALLBACK_PORTS)}."
        )
    lowest = 0 if allow_any_port else 1
    ports: list[int] = []
    for piece in pieces:
        if not piece.isdigit() or not lowest <= int(piece) <= MAX_PORT:
            raise ValueError(
                f"The callback port '{piece}' is not a number from {lowest} to {MAX_PORT}; "
                "separate several ports with commas."
            )
        if int(piece) in ports:
            raise ValueError(f"The callback port {piece} is listed twice.")
        ports.append(int(piece))
    return ports


def format_callback_ports(ports: Collection[int]) -> str:
    """Return the ports as the dialog shows them: "7317, 7318, 7319"."""
    return ", ".join(str(port) for port in ports)


def edit_profile(
    parent: QWidget | None, *, taken_aliases: Collection[str], profile: OrgProfile | None = None
) -> OrgProfile | None:
    """Show the dialog and return the profile to save, or None when the admin cancels."""
    dialog = ProfileDialog(parent, taken_aliases=taken_aliases, profile=profile)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.result_profile


def _hint(text: str) -> QLabel:
    # One line each: wrapped labels in a QFormLayout get more height than they fill.
    label = QLabel(text)
    label.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
    return label


class ProfileDialog(QDialog):
    """Fields of one org profile; Save checks them all and names the first problem."""

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        taken_aliases: Collection[str] = (),
        profile: OrgProfile | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit org profile" if profile else "New org profile")
        self.setMinimumWidth(DIALOG_WIDTH)
        self._original = profile
        self._taken_aliases = set(taken_aliases)
        self.result_profile: OrgProfile | None = None

        self.alias_edit = QLineEdit(profile.alias if profile else "")
        self.alias_edit.setPlaceholderText("acme-sandbox")
        self.alias_edit.setReadOnly(profile is not None)
        self.kind_combo = QComboBox()
        for kind, label in PROFILE_KINDS:
            self.kind_combo.addItem(label, kind)
        self.host_edit = QLineEdit()
        self.host_status = QLabel()
        self.host_status.setWordWrap(True)
        self.host_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.host_status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.client_id_edit = QLineEdit(profile.client_id if profile else "")
        self.client_id_edit.setPlaceholderText("the Consumer Key of the External Client App")
        self.ports_edit = QLineEdit(
            format_callback_ports(profile.callback_ports if profile else DEFAULT_CALLBACK_PORTS)
        )
        self.api_version_edit = QLineEdit(profile.api_version if profile else "")
        self.api_version_edit.setPlaceholderText(f"{API_VERSION} (the version this app is built for)")
        self.ca_bundle_edit = QLineEdit(profile.ca_bundle if profile else "")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_ca_bundle)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_bundle_edit, 1)
        ca_row.addWidget(browse)

        form = QFormLayout()
        form.addRow("Alias:", self.alias_edit)
        form.addRow("", _hint("Up to 40 ASCII letters, digits, dots, underscores or hyphens."))
        form.addRow("Kind of org:", self.kind_combo)
        form.addRow("Login host:", self.host_edit)
        form.addRow("", self.host_status)
        form.addRow("Consumer key:", self.client_id_edit)
        form.addRow("Callback ports:", self.ports_edit)
        form.addRow("", _hint("Tried in order; each needs http://localhost:PORT/callback in the app."))
        form.addRow("API version:", self.api_version_edit)
        form.addRow("CA bundle file:", ca_row)
        self.ca_bundle_hint = QLabel()
        self.ca_bundle_hint.setWordWrap(True)
        self.ca_bundle_hint.setStyleSheet(f"color: {NEUTRAL_COLOR.name()};")
        form.addRow("", self.ca_bundle_hint)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {FAILED_COLOR.name()};")
        self.error_label.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        assert save_button is not None
        self.save_button = save_button

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

        if profile is not None:
            self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(profile.kind)))
            self.host_edit.setText(profile.login_host)
        else:
            self.host_edit.setText(DEFAULT_LOGIN_HOSTS["production"])
        self._kind_shown = self.kind
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        self.host_edit.textChanged.connect(self._update_host_status)
        # An error from the last Save no longer applies once the admin changes a field.
        for edit in (self.alias_edit, self.host_edit, self.client_id_edit, self.ports_edit,
                     self.api_version_edit, self.ca_bundle_edit):
            edit.textChanged.connect(self.error_label.hide)
        self.kind_combo.currentIndexChanged.connect(self.error_label.hide)
        self._kind_changed()

    @property
    def kind(self) -> str:
        """The kind of org picked: production, sandbox, mydomain or served."""
        return str(self.kind_combo.currentData())

    def _kind_changed(self) -> None:
        # A host that is still the previous kind's default follows the new kind.
        previous_default = DEFAULT_LOGIN_HOSTS.get(self._kind_shown, "")
        if self.host_edit.text().strip() in ("", previous_default):
            self.host_edit.setText(DEFAULT_LOGIN_HOSTS.get(self.kind, ""))
        self._kind_shown = self.kind
        self.host_edit.setPlaceholderText(LOGIN_HOST_EXAMPLES[self.kind])
        self.ca_bundle_hint.setText(CA_BUNDLE_HINTS.get(self.kind, REAL_ORG_CA_BUNDLE_HINT))
        self.ca_bundle_edit.setPlaceholderText(
            CA_BUNDLE_PLACEHOLDERS.get(self.kind, REAL_ORG_CA_BUNDLE_PLACEHOLDER)
        )
        self._update_host_status()

    def _update_host_status(self) -> None:
        text = self.host_edit.text()
        if not text.strip():
            self._show_host_status(LOGIN_HOST_HINTS[self.kind], failed=False)
            return
        try:
            # The same check as Save, so this line never approves what Save rejects.
            from backstory_desktop import org_sessions

            login_host = org_sessions.checked_login_host(self.kind, text)
        except ValueError as error:
            self._show_host_status(str(error), failed=True)
            return
        self._show_host_status(f"Signs in at {login_host.url}. {login_host.note}".strip(), failed=False)

    def _show_host_status(self, text: str, *, failed: bool) -> None:
        self.host_status.setText(text)
        self._fit_host_status()
        color = FAILED_COLOR if failed else NEUTRAL_COLOR
        self.host_status.setStyleSheet(f"color: {color.name()};")

    def _fit_host_status(self) -> None:
        # Room for a usual correction note, so the fields below rarely move while the admin
        # types. QFormLayout does not grow a wrapped label by itself, so a longer note sets
        # the height it needs at the label's current width.
        label = self.host_status
        usual = label.fontMetrics().lineSpacing() * HOST_STATUS_LINES
        label.setMinimumHeight(max(usual, label.heightForWidth(label.width())))

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Fit the host note to the new width, so a narrower dialog never cuts it off."""
        super().resizeEvent(event)
        self._fit_host_status()

    def _choose_ca_bundle(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "Choose a CA bundle", self.ca_bundle_edit.text(), "PEM files (*.pem *.crt);;All files (*)"
        )
        if path:
            self.ca_bundle_edit.setText(path)

    def accept(self) -> None:
        """Save only a profile whose every field is valid; otherwise name the first problem."""
        try:
            self.result_profile = self.build_profile()
        except ValueError as error:
            self.error_label.setText(str(error))
            self.error_label.show()
            return
        self.error_label.hide()
        super().accept()

    def build_profile(self) -> OrgProfile:
        """Check the fields and return the profile; ValueError names the first problem found."""
        alias = self._checked_alias()
        kind = self.kind
        ports = parse_callback_ports(self.ports_edit.text(), allow_any_port=kind == SERVED_KIND)
        # new_profile checks the rest: the login host against the kind, the consumer key,
        # the API version and the CA bundle file.
        from backstory_desktop import org_sessions

        profile = org_sessions.new_profile(
            alias,
            kind,
            self.host_edit.text(),
            self.client_id_edit.text(),
            api_version=self.api_version_edit.text(),
            ca_bundle=self.ca_bundle_edit.text(),
            callback_ports=ports,
        )
        if self._original is None:
            return profile
        # Editing keeps what the enablement steps recorded for the org.
        return replace(
            self._original,
            kind=profile.kind,
            login_host=profile.login_host,
            client_id=profile.client_id,
            api_version=profile.api_version,
            ca_bundle=profile.ca_bundle,
            callback_ports=list(profile.callback_ports),
        )

    def _checked_alias(self) -> str:
        alias = self.alias_edit.text().strip()
        if self._original is not None:
            return self._original.alias
        alias = validate_alias(alias)
        if alias == PRACTICE_PROFILE_ALIAS:
            raise ValueError(
                f"The alias {alias} belongs to the built-in practice org, so choose another alias."
            )
        if alias in self._taken_aliases:
            raise ValueError(f"An org profile named {alias} exists already, so choose another alias.")
        check_alias_free(alias, self._taken_aliases)
        return alias
