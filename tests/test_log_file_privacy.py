"""The log file and the app's folders are private, and pasted tokens are masked whole.

A token copied from a wrapped terminal line carries a line break, and requests quotes
the whole header value, line break included, in its InvalidHeader error.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backstory_desktop.logging_setup import LOG_FILE_NAME, configure_logging, scrub_secrets
from backstory_desktop.store.paths import data_dir, ensure_private_dir, log_dir

TOKEN_START = "00D000000000001!AQ4AQFirstHalfOfThePastedToken"
TOKEN_END = "SecondHalfAfterTheLineBreak0123"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers_before, level_before = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers_before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level_before)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_log_file__created_owner_only(restore_logging: None, open_umask: None) -> None:
    configure_logging()

    assert _mode(log_dir() / LOG_FILE_NAME) == 0o600
    assert _mode(log_dir()) == 0o700


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_log_file__existing_one_tightened(restore_logging: None) -> None:
    folder = log_dir()
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    path = folder / LOG_FILE_NAME
    path.write_text("an older line\n", encoding="utf-8")
    os.chmod(path, 0o644)

    configure_logging()
    logging.getLogger("backstory_desktop.tests").warning("a new line")

    assert _mode(path) == 0o600
    assert _mode(folder) == 0o700
    assert "an older line" in path.read_text(encoding="utf-8")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_ensure_private_dir__tightens_existing_app_folder() -> None:
    folder = data_dir() / "sync"
    folder.mkdir(parents=True)
    os.chmod(folder, 0o777)

    ensure_private_dir(folder)

    assert _mode(folder) == 0o700


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_ensure_private_dir__leaves_admins_own_folder(tmp_path: Path) -> None:
    # A --db or export path in a shared folder such as /tmp must not make that folder private.
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o1777)

    ensure_private_dir(folder)
    ensure_private_dir(folder / "new")

    assert _mode(folder) == 0o1777
    assert _mode(folder / "new") == 0o700


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\\n", "\\r\\n"])
def test_scrub_secrets__bearer_token_split_by_line_break(line_break: str) -> None:
    text = f"header value: 'Bearer {TOKEN_START}{line_break}{TOKEN_END}' in a request"

    scrubbed = scrub_secrets(text)

    assert TOKEN_START not in scrubbed
    assert TOKEN_END not in scrubbed
    assert "in a request" in scrubbed


def test_scrub_secrets__session_id_split_without_bearer() -> None:
    scrubbed = scrub_secrets(f"token {TOKEN_START}\n{TOKEN_END}")

    assert TOKEN_END not in scrubbed


def test_scrub_secrets__lowercase_session_id() -> None:
    scrubbed = scrub_secrets("CONNECT 00d000000000001!fkjdlowercasedtoken:443 HTTP/1.1")

    assert "fkjdlowercasedtoken" not in scrubbed
    assert "CONNECT" in scrubbed


def test_log_file__invalid_header_error_is_scrubbed(restore_logging: None) -> None:
    configure_logging()
    request = requests.Request(
        "GET", "https://127.0.0.1:9/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {TOKEN_START}\n{TOKEN_END}"},
    )

    with pytest.raises(requests.exceptions.InvalidHeader) as raised:
        request.prepare()
    logging.getLogger("backstory_desktop.tests").error("the request failed", exc_info=raised.value)

    text = (log_dir() / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "InvalidHeader" in text
    assert TOKEN_START not in text
    assert TOKEN_END not in text
