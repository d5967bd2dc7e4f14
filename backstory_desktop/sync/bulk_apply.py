"""Send a sync's Task upserts through Bulk API 2.0 jobs, with the outcomes of a Collections upsert.

TaskSubtype can be set when a Task is created but not changed afterwards
(describe: createable true, updateable false). A row that carries TaskSubtype
fails when its key already has a Task, and a Bulk API job has one set of columns
for all its rows. So records that carry TaskSubtype (creates) go in one job and
the others (updates) in another. A key that repeats starts a further job, because Salesforce fails every
copy of an external ID repeated within one job ("upsert()", SOAP API Developer Guide:
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_upsert.htm).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from backstory_desktop.core.fields import validate_field_api_name
from backstory_desktop.core.jobs import ProgressCallback
from backstory_desktop.core.plan import CREATE_ONLY_FIELD
from backstory_desktop.salesforce.bulk import (
    NOT_PROCESSED,
    BulkCancelled,
    BulkJobError,
    BulkRecordResult,
    Requester,
    bulk_upsert,
)
from backstory_desktop.salesforce.errors import SalesforceProblem
from backstory_desktop.salesforce.tasks import UpsertCancelled, UpsertInterrupted, UpsertOutcome

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_JOB_BYTES", "MAX_JOB_RECORDS", "NOT_PROCESSED", "BulkUpsertCancelled", "BulkUpsertInterrupted",
    "split_jobs", "upsert_outcome", "upsert_with_bulk",
]

# Salesforce processes a job in batches of 10,000 records ("Understanding Bulk API 2.0
# Ingest"), and its CSV data should stay below 100 MB before base64 encoding ("Prepare
# CSV Files", Bulk API 2.0 Developer Guide). Jobs here stay within both.
MAX_JOB_RECORDS = 10_000
MAX_JOB_BYTES = 80_000_000


class BulkUpsertCancelled(UpsertCancelled):
    """The admin cancelled a Bulk API upsert; ``outcomes_by_index`` has every known outcome by record index.

    Jobs do not run in record order (creates go first), so the records with a
    known outcome need not be a prefix. ``outcomes`` keeps only the leading run of
    them, as UpsertCancelled promises.
    """

    def __init__(self, outcomes_by_index: dict[int, UpsertOutcome]) -> None:
        super().__init__(_known_prefix(outcomes_by_index))
        self.outcomes_by_index = outcomes_by_index


class BulkUpsertInterrupted(UpsertInterrupted):
    """A Bulk API job could not be run or read; ``outcomes_by_index`` has every known outcome by record index.

    Records without a known outcome were not written, except those whose keys
    ``in_doubt`` lists (a job that may have written some of its records).
    """

    def __init__(
        self, problem: SalesforceProblem, outcomes_by_index: dict[int, UpsertOutcome], in_doubt: list[str]
    ) -> None:
        super().__init__(problem, _known_prefix(outcomes_by_index), in_doubt)
        self.outcomes_by_index = outcomes_by_index


def split_jobs(records: Sequence[dict[str, Any]], field: str) -> list[list[int]]:
    """Group record indexes into jobs: creates apart from updates, no key twice, size-capped.

    Jobs keep the given order within each group; the creates' jobs come first.
    """
    groups: dict[bool, list[list[int]]] = {True: [], False: []}
    state: dict[bool, tuple[set[str], int]] = {}
    for index, record in enumerate(records):
        # A plan puts TaskSubtype in its creates only, so a record that carries it is a create.
        creates = CREATE_ONLY_FIELD in record
        jobs = groups[creates]
        key = str(record.get(field))
        size = _estimated_bytes(record)
        keys, used = state.get(creates, (set(), 0))
        if (not jobs or key in keys or len(jobs[-1]) >= MAX_JOB_RECORDS
                or used + size > MAX_JOB_BYTES):
            jobs.append([])
            keys, used = set(), 0
        jobs[-1].append(index)
        keys.add(key)
        state[creates] = (keys, used + size)
    return groups[True] + groups[False]


def _estimated_bytes(record: dict[str, Any]) -> int:
    # UTF-8 can take up to 4 bytes a character, and quoting doubles quotes.
    return sum(4 * len(str(value)) + 3 for value in record.values())


def upsert_with_bulk(
    conn: Requester,
    field: str,
    records: Sequence[dict[str, Any]],
    *,
    on_job_created: Callable[[str], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[UpsertOutcome]:
    """Upsert Tasks by ``field`` through Bulk API 2.0; one outcome per record, in the given order.

    Outcomes read as those of ``tasks.upsert_tasks``. A record the job never
    reached (the job failed as a whole) fails with error code NOT_PROCESSED: it
    was not written and can be sent again. ``on_job_created`` gets each job's id
    before its data is uploaded, so that a journal can read its results later
    (``salesforce.bulk.job_results``).

    The creates' jobs run before the updates' jobs, so the records with a known
    outcome when a job stops are not a prefix of ``records``. The exceptions
    therefore carry ``outcomes_by_index``, every known outcome by record index. The
    records without one were not written, except those listed as in doubt. BulkUpsertCancelled
    is raised when ``cancel`` is set (the running job is aborted first);
    BulkUpsertInterrupted when a job cannot be run or read, with ``in_doubt``
    naming the keys of a job that may have written some of its records.
    """
    field = validate_field_api_name(field)
    total = len(records)
    answers: dict[int, UpsertOutcome] = {}
    done = 0

    def job_progress(offset: int) -> ProgressCallback:
        def report(job_done: int, _job_total: int, message: str) -> None:
            if progress is not None:
                progress(offset + job_done, total, message)
        return report

    for indexes in split_jobs(records, field):
        job_records = [records[index] for index in indexes]
        keys = [str(record.get(field, "")) for record in job_records]
        try:
            results = bulk_upsert(conn, field, job_records, on_job_created=on_job_created,
                                  progress=job_progress(done), cancel=cancel)
        except BulkCancelled as stop:
            _record(answers, indexes, keys, [result for result in stop.results if result.processed])
            raise BulkUpsertCancelled(answers) from stop
        except BulkJobError as error:
            in_doubt = keys if error.maybe_written else []
            raise BulkUpsertInterrupted(error.problem, answers, in_doubt) from error
        _record(answers, indexes, keys, results)
        done += len(indexes)

    if progress is not None:
        progress(total, total, f"Sent {total} Tasks through Bulk API 2.0")
    return [answers[index] for index in range(total)]


def _record(
    answers: dict[int, UpsertOutcome], indexes: list[int], keys: list[str], results: list[BulkRecordResult]
) -> None:
    """Store the outcomes of one job's records, matched to their indexes by key."""
    by_key = {result.key: result for result in results}
    for index, key in zip(indexes, keys, strict=True):
        result = by_key.get(key)
        if result is not None:
            answers[index] = upsert_outcome(result)


def upsert_outcome(result: BulkRecordResult) -> UpsertOutcome:
    """Return a Bulk API record result as the outcome of a Collections upsert."""
    return UpsertOutcome(
        key=result.key,
        success=result.success,
        created=result.created,
        record_id=result.record_id,
        error_code=result.error_code,
        message=result.message,
        fields=result.fields,
    )


def _known_prefix(answers: dict[int, UpsertOutcome]) -> list[UpsertOutcome]:
    prefix = []
    index = 0
    while index in answers:
        prefix.append(answers[index])
        index += 1
    return prefix
