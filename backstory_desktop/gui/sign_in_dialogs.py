"""Other ways to sign in, for orgs where the browser sign-in cannot work.

Two ways, each for one session and saving nothing: username, password and
security token through SOAP login(), which Salesforce is retiring, and an access
token pasted with its instance URL. Pages call ``ask_other_sign_in`` and
``show_guide`` through the module, so GUI tests can replace them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from backstory_desktop.bundled import resource_path
from backstory_desktop.gui.widgets import FAILED_COLOR, NEUTRAL_COLOR

PASSWORD_METHOD = "password"
ACCESS_TOKEN_METHOD = "access_token"

PASSWORD_WARNING = (
    "Salesforce is retiring this way of signing in. SOAP login() is not available from API "
    "version 65.0, and the OAuth username-password flow stops working in February 2027. Use it "
    "only where the browser sign-in cannot work. Nothing you type here is saved, so you sign in "
    "again after restarting the app."
)
ACCESS_TOKEN_NOTE = (
    "Paste an access token (for example from 'sf org display') and the instance URL it belongs "
    "to. The session lasts as long as the token: nothing is saved, and the app cannot renew it."
)
GUIDE_PATH = ("guides", "external-client-app.md")


@dataclass(frozen=True)
class OtherSignIn:
    """The values the admin entered for a one-session sign-in, with the secrets kept out of repr."""

    method: str
    username: str = ""
    password: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)
    instance_url: str = ""
    access_token: str = field(default="", repr=False)


def ask_other_sign_in(
    parent: QWidget | None, org_label: str, previous: OtherSignIn | None = None
) -> OtherSignIn | None:
    """Show the dialog and return what to sign in with, or None when the admin cancels.

    ``previous`` opens the tab of that way of signing in, with its username and instance
    URL filled in; its secrets are never filled in.
    """
    dialog = OtherSignInDialog(parent, org_label, previous)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.sign_in


def _secret_edit() -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    return edit


def _paragraph(text: str, color: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {color};")
    return label


class OtherSignInDialog(QDialog):
    """Two tabs: username and password, and a pasted access token."""

    def __init__(
        self, parent: QWidget | None, org_label: str, previous: OtherSignIn | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Other ways to sign in")
        self.setMinimumWidth(600)
        self.sign_in: OtherSignIn | None = None

        self.username_edit = QLineEdit()
        self.password_edit = _secret_edit()
        self.security_token_edit = _secret_edit()
        password_tab = QWidget()
        password_layout = QVBoxLayout(password_tab)
        password_layout.addWidget(_paragraph(PASSWORD_WARNING, FAILED_COLOR.name()))
        password_form = QFormLayout()
        password_form.addRow("Username:", self.username_edit)
        password_form.addRow("Password:", self.password_edit)
        password_form.addRow("Security token:", self.security_token_edit)
        password_layout.addLayout(password_form)
        password_layout.addStretch(1)

        self.instance_url_edit = QLineEdit()
        self.instance_url_edit.setPlaceholderText("https://mycompany.my.salesforce.com")
        self.access_token_edit = _secret_edit()
        token_tab = QWidget()
        token_layout = QVBoxLayout(token_tab)
        token_layout.addWidget(_paragraph(ACCESS_TOKEN_NOTE, NEUTRAL_COLOR.name()))
        token_form = QFormLayout()
        token_form.addRow("Instance URL:", self.instance_url_edit)
        token_form.addRow("Access token:", self.access_token_edit)
        token_layout.addLayout(token_form)
        token_layout.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(password_tab, "Username and password")
        self.tabs.addTab(token_tab, "Access token")
        self.error_label = _paragraph("", FAILED_COLOR.name())
        self.error_label.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_in_button = buttons.addButton("Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Sign in to {org_label} for this session only."))
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        if previous is not None:
            self.username_edit.setText(previous.username)
            self.instance_url_edit.setText(previous.instance_url)
            self.tabs.setCurrentIndex(1 if previous.method == ACCESS_TOKEN_METHOD else 0)

    def accept(self) -> None:
        """Accept only when every field of the chosen way is filled in."""
        if self.tabs.currentIndex() == 0:
            sign_in = OtherSignIn(
                PASSWORD_METHOD,
                username=self.username_edit.text().strip(),
                password=self.password_edit.text(),
                security_token=self.security_token_edit.text().strip(),
            )
            required = (("username", sign_in.username), ("password", sign_in.password))
            missing = [name for name, value in required if not value]
        else:
            sign_in = OtherSignIn(
                ACCESS_TOKEN_METHOD,
                instance_url=self.instance_url_edit.text().strip(),
                # A token copied from a wrapped terminal line carries line breaks or spaces.
                access_token="".join(self.access_token_edit.text().split()),
            )
            required = (("instance URL", sign_in.instance_url), ("access token", sign_in.access_token))
            missing = [name for name, value in required if not value]
        if missing:
            self.error_label.setText(f"Enter the {' and the '.join(missing)}.")
            self.error_label.show()
            return
        self.sign_in = sign_in
        super().accept()


def guide_text() -> str:
    """Return the External Client App setup guide as Markdown."""
    return resource_path(*GUIDE_PATH).read_text(encoding="utf-8")


class GuideDialog(QDialog):
    """The External Client App setup guide, rendered from its Markdown file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("How to set up the External Client App")
        self.resize(760, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(guide_text())
        self.browser.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser, 1)
        layout.addWidget(buttons)


def show_guide(parent: QWidget | None) -> None:
    """Show the setup guide until the admin closes it."""
    GuideDialog(parent).exec()
