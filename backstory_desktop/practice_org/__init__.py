"""A local stand-in for a Salesforce org that speaks the REST API over HTTPS on 127.0.0.1."""

from backstory_desktop.practice_org.database import PracticeOrgDatabaseError
from backstory_desktop.practice_org.database_lock import DESKTOP_WINDOW_HOLDER
from backstory_desktop.practice_org.faults import FaultPlan
from backstory_desktop.practice_org.server import PracticeOrg, serve_forever
from backstory_desktop.practice_org.soap_login import PRACTICE_PASSWORD

__all__ = [
    "DESKTOP_WINDOW_HOLDER", "PRACTICE_PASSWORD", "FaultPlan", "PracticeOrg", "PracticeOrgDatabaseError",
    "serve_forever",
]
