"""Fixtures for the mail sources: real messages from public mail-parser test suites.

The corpus (CPython's email tests, Apache James mime4j, MimeKit, the Ruby mail
gem, stalwart mail-parser and a public mailing-list sample) is looked up in
BACKSTORY_MAIL_CORPUS, else beside the checkout. Tests that need it skip when
it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MAIL_CORPUS = Path(
    os.environ.get(
        "BACKSTORY_MAIL_CORPUS",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "mail",
    )
)


@pytest.fixture
def mail_corpus() -> Path:
    """Return the folder of real test mail, or skip the test when it is not there."""
    if not MAIL_CORPUS.is_dir():
        pytest.skip(f"the real mail corpus is not available at {MAIL_CORPUS}: set "
                    "BACKSTORY_MAIL_CORPUS to its folder")
    return MAIL_CORPUS

