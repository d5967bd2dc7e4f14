"""The sync journal: one SQLite file with every local sync run of every org.

A run's plan rows are written here while it is planned, and the apply marks
each row before and after every API call. SENDING is committed before a call
leaves, so after a kill at any moment the rows record exactly what may have
reached the org. The next apply of the run looks those keys up
instead of guessing. The same file is the run history.

The file lives in ``paths.data_dir()/sync/`` (a folder readable by its owner
only), in WAL mode with ``synchronous=FULL``, so a committed state survives a
power cut. One run per org at a time is enforced with an OS file lock
(filelock), which the OS releases when the holding process dies.

The parts live beside this module: the file and its schema (journal_file),
the records it stores (journal_records), plan rows (journal_plan), apply
states and the backfill queue (journal_apply), and the run history
(journal_history).
"""

from __future__ import annotations

from backstory_desktop.store.journal_apply import JournalApply
from backstory_desktop.store.journal_file import (
    ABANDONED_PLAN_AGE,
    JOURNAL_FILE,
    JournalError,
    default_journal_path,
)
from backstory_desktop.store.journal_history import STOPPED_WHILE_APPLYING, JournalHistory
from backstory_desktop.store.journal_plan import JournalPlans, JournalRows
from backstory_desktop.store.journal_records import (
    OPEN_STATES,
    SETTLED_STATES,
    UNRESOLVED_STATES,
    ItemOutcome,
    ItemState,
    ItemUpdate,
    JournalItem,
    QueuedItem,
    ResultLine,
    RunState,
    RunSummary,
)
from backstory_desktop.store.org_lock import RunInProgress

__all__ = [
    "ABANDONED_PLAN_AGE", "JOURNAL_FILE", "OPEN_STATES", "SETTLED_STATES", "STOPPED_WHILE_APPLYING",
    "UNRESOLVED_STATES", "ItemOutcome", "ItemState", "ItemUpdate", "Journal", "JournalError", "JournalItem",
    "JournalRows", "QueuedItem", "ResultLine", "RunInProgress", "RunState", "RunSummary",
    "default_journal_path",
]


class Journal(JournalPlans, JournalApply, JournalHistory):
    """The sync journal file, safe to share between the GUI thread and one worker thread."""
