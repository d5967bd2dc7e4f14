"""Logging for the app and the CLI: a daily rotating file in the platform log folder.

A filter masks secrets in every record, as a last line of defence behind the
rule that no code logs a secret: Salesforce session ids and access tokens
(``00D...!AQ...``), refresh tokens (``5Aep...``), bearer tokens, named token
fields (``access_token=``, ``"refresh_token": ...``) and the OAuth values of
URLs and forms (``?code=``, ``&token=``, ``sid=``), which request logs of
urllib3 and werkzeug carry.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re

from backstory_desktop.store.paths import ensure_private_dir, log_dir

LOG_FILE_NAME = "backstory-desktop.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_MODE = 0o600
# A pasted token may carry line breaks, real or escaped as in a repr, so the pieces joined by
# them count as one token. The cost: a word that starts the next line may be masked too.
_TOKEN_CONTINUATION = r"(?:(?:\\[rn]|[\r\n])+[0-9A-Z._!\-]+)*"
# Bearer tokens come first, so that a session id after "Bearer" is masked with its continuation.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[0-9A-Z._!\-]+" + _TOKEN_CONTINUATION),
    # Case-insensitive, because a token pasted as a host name reaches the log lowercased.
    re.compile(r"(?i)00D[0-9A-Z]{12,15}![0-9A-Z._\-]+" + _TOKEN_CONTINUATION),
    # Salesforce refresh tokens start with "5Aep"; shorter matches are left alone.
    re.compile(r"\b5Aep[0-9A-Za-z._\-]{16,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|code_verifier|client_secret)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"'&,}]+"
    ),
    # Query strings and form bodies: the authorization code, a token sent for revoking, a session id.
    re.compile(r"(?i)((?:[?&]|\b)(?:code|token|sid)=)[^\s\"'&#;]+"),
)


class SecretScrubber(logging.Filter):
    """Mask session ids and tokens in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_secrets(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class ScrubbingFormatter(logging.Formatter):
    """Mask secrets in the whole formatted record, the traceback of an exception included.

    SecretScrubber gets only the message, while an exception's text reaches the
    output through the formatter, so it is scrubbed here.
    """

    def format(self, record: logging.LogRecord) -> str:
        return scrub_secrets(super().format(record))


def scrub_secrets(text: str) -> str:
    """Return ``text`` with anything shaped like a session id or token masked."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda match: (match.group(1) if match.groups() else "") + "[hidden]", text
        )
    return text


class PrivateTimedRotatingFileHandler(logging.handlers.TimedRotatingFileHandler):
    """A daily rotating log file that only its owner can read (mode 0600 on POSIX).

    Each file is created with mode 0600 before it is opened, and a file that already
    exists is tightened to it, whatever the umask.
    """

    def _open(self):  # type: ignore[no-untyped-def]
        descriptor = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_FILE_MODE)
        os.close(descriptor)
        os.chmod(self.baseFilename, LOG_FILE_MODE)
        return super()._open()


def configure_logging(*, verbose: bool = False) -> None:
    """Send INFO (DEBUG when verbose) to the daily log file and warnings to stderr."""
    folder = ensure_private_dir(log_dir())
    file_handler = PrivateTimedRotatingFileHandler(
        folder / LOG_FILE_NAME, when="midnight", backupCount=14, encoding="utf-8"
    )
    file_handler.setFormatter(ScrubbingFormatter(LOG_FORMAT))
    file_handler.addFilter(SecretScrubber())
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(ScrubbingFormatter())
    console.addFilter(SecretScrubber())

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(console)
