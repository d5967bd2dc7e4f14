"""Logging for the app and the CLI: a daily rotating file in the platform log folder.

Salesforce session ids look like ``00D...!AQ...``; a filter masks them and
bearer tokens in every record, as a last line of defence behind the rule that
no code logs a secret.
"""

from __future__ import annotations

import logging
import logging.handlers
import re

from backstory_desktop.store.paths import ensure_private_dir, log_dir

LOG_FILE_NAME = "backstory-desktop.log"
_SECRET_PATTERNS = (
    re.compile(r"00D[0-9A-Za-z]{12,15}![0-9A-Za-z._]+"),
    re.compile(r"(?i)(bearer\s+)[0-9A-Za-z._!\-]+"),
    re.compile(r"(?i)((?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,]+"),
)


class SecretScrubber(logging.Filter):
    """Mask session ids and tokens in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_secrets(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def scrub_secrets(text: str) -> str:
    """Return ``text`` with anything shaped like a session id or token masked."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(
            lambda match: (match.group(1) if match.groups() else "") + "[hidden]", text
        )
    return text


def configure_logging(*, verbose: bool = False) -> None:
    """Send INFO (DEBUG when verbose) to the daily log file and warnings to stderr."""
    folder = ensure_private_dir(log_dir())
    file_handler = logging.handlers.TimedRotatingFileHandler(
        folder / LOG_FILE_NAME, when="midnight", backupCount=14, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    file_handler.addFilter(SecretScrubber())
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.addFilter(SecretScrubber())

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(file_handler)
    root.addHandler(console)
