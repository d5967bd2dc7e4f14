"""The practice org's SQLite file: records, Activity custom fields, OAuth grants, counters.

Every sObject shares one ``records`` table. The fields of a record are a JSON
object, and the system fields (Id, IsDeleted, IsArchived, CreatedDate,
CreatedById, LastModifiedDate) have columns of their own. OAuth codes and
tokens are stored as SHA-256 hashes, never as issued.

One connection serves every thread: werkzeug serves each request on its own
thread, and the re-entrant lock taken by ``transaction()`` serialises them.
The file carries ``PRAGMA application_id`` = ``APPLICATION_ID``, SQLite's own
mark of the program a database belongs to.

A record in the recycle bin keeps its deletion time in ``deleted_date``. Purging
it (``purge_recycle_bin``, ``empty_recycle_bin``) removes the row for good and
leaves its id in ``purged_records``, so that undelete can tell a purged id from
one that never existed.

NOTE: Salesforce's emptyRecycleBin() documentation says emptied records stay
visible to queryAll for some time (typically 24 hours). The practice org drops
a purged record from queryAll at once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backstory_desktop.practice_org.ids import KEY_PREFIXES, UNRECORDED_ORG_ID, make_id, random_org_id

# The meta key of the database's organization Id.
ORG_ID_META = "org_id"

# "BDPO" in ASCII: the application_id stored in the header of every practice org database.
APPLICATION_ID = 0x4244504F

# How long a statement waits for another connection's lock before failing with
# "database is locked".
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (prefix TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    sobject TEXT NOT NULL,
    fields TEXT NOT NULL,
    is_deleted INTEGER NOT NULL DEFAULT 0,
    is_archived INTEGER NOT NULL DEFAULT 0,
    created_date TEXT NOT NULL,
    last_modified_date TEXT NOT NULL,
    created_by_id TEXT,
    last_modified_by_id TEXT,
    deleted_date TEXT
);
CREATE INDEX IF NOT EXISTS records_by_sobject ON records (sobject, id);
CREATE TABLE IF NOT EXISTS purged_records (
    id TEXT PRIMARY KEY,
    sobject TEXT NOT NULL,
    purged_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custom_fields (
    id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    length INTEGER,
    is_unique INTEGER NOT NULL,
    external_id INTEGER NOT NULL,
    case_sensitive INTEGER NOT NULL,
    description TEXT NOT NULL,
    label TEXT NOT NULL,
    created_date TEXT NOT NULL,
    UNIQUE (object, name)
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    family TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS api_usage (day TEXT PRIMARY KEY, requests INTEGER NOT NULL);
"""

# The tables of a practice org database, which a file without APPLICATION_ID (one made
# before the mark was set) must all have to be taken for a practice org.
PRACTICE_ORG_TABLES = frozenset({
    "meta", "sequences", "records", "custom_fields", "oauth_codes", "oauth_tokens", "api_usage",
})

# Salesforce keeps deleted records in the recycle bin for 15 days, after which they are
# permanently deleted (Apex Developer Guide, "Restoring Deleted Records",
# https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/apexcode/langCon_apex_dml_examples_undelete.htm).
RECYCLE_BIN_RETENTION = datetime.timedelta(days=15)


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def parse_datetime(text: str) -> datetime.datetime:
    """Parse a date or dateTime as Salesforce writes it (``2026-01-31T09:30:00.000+0000``), in UTC.

    A value without an offset, a plain date included, is taken as UTC.
    """
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def format_datetime(moment: datetime.datetime) -> str:
    """Format a moment as Salesforce writes dateTime values: ``2026-01-31T09:30:00.000+0000``."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class Record:
    """One sObject record as stored."""

    id: str
    sobject: str
    fields: dict[str, Any]
    is_deleted: bool = False
    is_archived: bool = False
    created_date: str = ""
    last_modified_date: str = ""
    created_by_id: str | None = None
    last_modified_by_id: str | None = None
    deleted_date: str | None = None
    """When the record went to the recycle bin; None for a live record."""

    def as_row(self) -> dict[str, Any]:
        """Return the record as API fields, system fields included."""
        row: dict[str, Any] = {"Id": self.id, **self.fields}
        row["IsDeleted"] = self.is_deleted
        if self.sobject in ("Task", "Event"):
            row["IsArchived"] = self.is_archived
        row["CreatedDate"] = self.created_date
        row["CreatedById"] = self.created_by_id
        row["LastModifiedDate"] = self.last_modified_date
        row["LastModifiedById"] = self.last_modified_by_id
        row["SystemModstamp"] = self.last_modified_date
        return row


@dataclass
class CustomFieldDefinition:
    """An Activity custom field, as its Tooling CustomField metadata describes it."""

    id: str
    name: str
    type: str
    label: str
    length: int | None = None
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    description: str = ""
    object: str = "Activity"
    created_date: str = field(default_factory=lambda: format_datetime(now_utc()))

    @property
    def full_name(self) -> str:
        return f"{self.object}.{self.name}"

    @property
    def namespace_prefix(self) -> str | None:
        """The managed package's namespace (``peopleai`` in ``peopleai__X__c``), if any."""
        stem = self.name.removesuffix("__c")
        return stem.split("__", 1)[0] if "__" in stem else None

    @property
    def developer_name(self) -> str:
        stem = self.name.removesuffix("__c")
        return stem.split("__", 1)[1] if "__" in stem else stem


@dataclass(frozen=True)
class TokenGrant:
    """The user and client an OAuth token or code was issued to."""

    user_id: str
    client_id: str
    family: str = ""
    """The authorization a token came from: its refresh tokens and their access tokens."""


class Store:
    """Access to the practice org's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        if not path.exists():
            # The file holds org data, so it is created readable by its owner only.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, isolation_level=None
        )
        self._connection.row_factory = sqlite3.Row
        self._connection.executescript(_SCHEMA)
        self._add_token_family_column()
        self._add_deleted_date_column()
        self._connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _add_token_family_column(self) -> None:
        """Give a database made before token families its ``family`` column."""
        columns = {row["name"] for row in self._connection.execute("PRAGMA table_info(oauth_tokens)")}
        if "family" not in columns:
            self._connection.execute(
                "ALTER TABLE oauth_tokens ADD COLUMN family TEXT NOT NULL DEFAULT ''")

    def _add_deleted_date_column(self) -> None:
        """Give a database made before deletion times its ``deleted_date`` column.

        Records already in its recycle bin count as deleted when the column is added.
        """
        columns = {row["name"] for row in self._connection.execute("PRAGMA table_info(records)")}
        if "deleted_date" not in columns:
            self._connection.execute("ALTER TABLE records ADD COLUMN deleted_date TEXT")
            self._connection.execute(
                "UPDATE records SET deleted_date = ? WHERE is_deleted = 1",
                (format_datetime(now_utc()),))
        # A partial index keeps the purge check of every API call from scanning live records.
        self._connection.execute(
            "CREATE INDEX IF NOT EXISTS records_in_recycle_bin ON records (deleted_date)"
            " WHERE is_deleted = 1")

    def close(self) -> None:
        with self.lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a block atomically; nested blocks become savepoints that roll back alone.

        The outermost block takes SQLite's write lock up front (BEGIN IMMEDIATE).
        A deferred transaction that reads first and then writes fails at once with
        "database is locked" when another connection writes meanwhile, whereas
        BEGIN IMMEDIATE waits for up to BUSY_TIMEOUT_SECONDS.
        """
        with self.lock:
            outermost = self._depth == 0
            savepoint = f"level{self._depth}"
            self._connection.execute("BEGIN IMMEDIATE" if outermost else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if not outermost:
                    self._connection.execute(f"ROLLBACK TO {savepoint}")
                    self._connection.execute(f"RELEASE {savepoint}")
                elif self._connection.in_transaction:
                    self._connection.execute("ROLLBACK")
                raise
            else:
                if not outermost:
                    self._connection.execute(f"RELEASE {savepoint}")
                else:
                    self._commit()
            finally:
                self._depth -= 1

    def _commit(self) -> None:
        """Commit, or roll back if COMMIT fails, so that the next BEGIN finds no open transaction."""
        try:
            self._connection.execute("COMMIT")
        except sqlite3.Error:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise

    def _execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self._connection.execute(sql, parameters)

    # -- meta and ids ------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def org_id(self) -> str:
        """The database's 18-character organization Id, or ``UNRECORDED_ORG_ID`` if it has none stored."""
        return self.get_meta(ORG_ID_META) or UNRECORDED_ORG_ID

    def draw_org_id(self) -> str:
        """Store a newly drawn organization Id, for a database being seeded, and return it."""
        org_id = random_org_id()
        self.set_meta(ORG_ID_META, org_id)
        return org_id

    def reserve_ids(self, sobject: str, count: int) -> Iterator[str]:
        """Reserve ``count`` consecutive ids for an sObject now, and return them in order."""
        prefix = KEY_PREFIXES[sobject]
        with self.transaction():
            row = self._execute("SELECT last FROM sequences WHERE prefix = ?", (prefix,)).fetchone()
            last = 0 if row is None else int(row["last"])
            self._execute(
                "INSERT OR REPLACE INTO sequences (prefix, last) VALUES (?, ?)", (prefix, last + count)
            )
        return (make_id(prefix, sequence) for sequence in range(last + 1, last + count + 1))

    def new_id(self, sobject: str) -> str:
        """Return the next unused id for an sObject, with its key prefix."""
        prefix = KEY_PREFIXES[sobject]
        return make_id(prefix, self.next_sequence(prefix))

    def next_sequence(self, prefix: str) -> int:
        """Draw the next sequence number of an id prefix, kept in the file so it never repeats."""
        with self.transaction():
            row = self._execute("SELECT last FROM sequences WHERE prefix = ?", (prefix,)).fetchone()
            sequence = 1 if row is None else int(row["last"]) + 1
            self._execute(
                "INSERT OR REPLACE INTO sequences (prefix, last) VALUES (?, ?)", (prefix, sequence)
            )
        return sequence

    # -- records -----------------------------------------------------------

    def insert_record(
        self,
        sobject: str,
        fields: dict[str, Any],
        *,
        created_by_id: str | None,
        created_date: str | None = None,
        is_deleted: bool = False,
        is_archived: bool = False,
        deleted_date: str | None = None,
    ) -> Record:
        """Insert a record and return it with its new id.

        A record inserted into the recycle bin is deleted at ``deleted_date``, or now.
        """
        stamp = created_date or format_datetime(now_utc())
        if is_deleted and deleted_date is None:
            deleted_date = format_datetime(now_utc())
        record = Record(
            id=self.new_id(sobject),
            sobject=sobject,
            fields=dict(fields),
            is_deleted=is_deleted,
            is_archived=is_archived,
            created_date=stamp,
            last_modified_date=stamp,
            created_by_id=created_by_id,
            last_modified_by_id=created_by_id,
            deleted_date=deleted_date if is_deleted else None,
        )
        self._execute(
            "INSERT INTO records (id, sobject, fields, is_deleted, is_archived, created_date,"
            " last_modified_date, created_by_id, last_modified_by_id, deleted_date)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id, sobject, json.dumps(record.fields), int(is_deleted), int(is_archived),
                stamp, stamp, created_by_id, created_by_id, record.deleted_date,
            ),
        )
        return record

    def insert_many(self, records: Iterable[Record]) -> None:
        """Insert records whose ids come from ``reserve_ids``, in one transaction.

        A record in the recycle bin without a ``deleted_date`` is deleted now.
        """
        now = format_datetime(now_utc())
        rows = (
            (record.id, record.sobject, json.dumps(record.fields), int(record.is_deleted),
             int(record.is_archived), record.created_date, record.last_modified_date,
             record.created_by_id, record.last_modified_by_id,
             (record.deleted_date or now) if record.is_deleted else None)
            for record in records
        )
        with self.transaction():
            self._connection.executemany(
                "INSERT INTO records (id, sobject, fields, is_deleted, is_archived, created_date,"
                " last_modified_date, created_by_id, last_modified_by_id, deleted_date)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def iter_records(
        self, sobject: str, *, include_hidden: bool, chunk_size: int = 5000
    ) -> Iterator[Record]:
        """Yield an sObject's records in id order, reading ``chunk_size`` rows per statement.

        Deleted and archived records are left out unless ``include_hidden``. Each
        chunk is read under the store's lock, so other requests run between chunks.
        """
        hidden_filter = "" if include_hidden else " AND is_deleted = 0 AND is_archived = 0"
        sql = ("SELECT id, fields, is_deleted, is_archived, created_date, last_modified_date,"
               " created_by_id, last_modified_by_id FROM records"
               f" WHERE sobject = ? AND id > ?{hidden_filter} ORDER BY id LIMIT ?")
        last_id = ""
        while True:
            with self.lock:
                cursor = self._connection.cursor()
                # Plain tuples: sqlite3.Row costs more than the rest of reading a row.
                cursor.row_factory = None
                chunk = cursor.execute(sql, (sobject, last_id, chunk_size)).fetchall()
            for (record_id, fields, is_deleted, is_archived, created, modified, created_by,
                 modified_by) in chunk:
                yield Record(
                    id=record_id, sobject=sobject, fields=json.loads(fields),
                    is_deleted=bool(is_deleted), is_archived=bool(is_archived),
                    created_date=created, last_modified_date=modified,
                    created_by_id=created_by, last_modified_by_id=modified_by,
                )
            if len(chunk) < chunk_size:
                return
            last_id = chunk[-1][0]

    def get_record(self, record_id: str) -> Record | None:
        row = self._execute("SELECT * FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else _record_from_row(row)

    def update_record(self, record_id: str, changes: dict[str, Any], *, modified_by_id: str) -> None:
        """Merge changed fields into a record and stamp LastModifiedDate."""
        record = self.get_record(record_id)
        if record is None:
            raise KeyError(record_id)
        record.fields.update(changes)
        self._execute(
            "UPDATE records SET fields = ?, last_modified_date = ?, last_modified_by_id = ?"
            " WHERE id = ?",
            (json.dumps(record.fields), format_datetime(now_utc()), modified_by_id, record_id),
        )

    def set_deleted(self, record_id: str, deleted: bool, *,
                    at: datetime.datetime | None = None) -> None:
        """Move a record to the recycle bin at ``at`` (default now), or restore it from there."""
        deleted_date = format_datetime(at or now_utc()) if deleted else None
        self._execute("UPDATE records SET is_deleted = ?, deleted_date = ? WHERE id = ?",
                      (int(deleted), deleted_date, record_id))

    # -- recycle bin -----------------------------------------------------------

    def purge_recycle_bin(self, now: datetime.datetime | None = None) -> list[str]:
        """Purge the records deleted more than RECYCLE_BIN_RETENTION before ``now``; return their ids.

        Runs a write transaction only when there is something to purge, so that
        checking before every API call stays cheap.
        """
        cutoff = format_datetime((now or now_utc()) - RECYCLE_BIN_RETENTION)
        with self.lock:
            rows = self._execute(
                "SELECT id FROM records WHERE is_deleted = 1 AND deleted_date < ?", (cutoff,)
            ).fetchall()
        expired = [row["id"] for row in rows]
        if expired:
            self._purge(expired)
        return expired

    def empty_recycle_bin(self, ids: Iterable[str] | None = None) -> int:
        """Purge the given records from the recycle bin, or all of it; return how many were purged.

        Ids of records that are not in the recycle bin are skipped.
        """
        with self.transaction():
            if ids is None:
                rows = self._execute("SELECT id FROM records WHERE is_deleted = 1").fetchall()
                in_bin = [row["id"] for row in rows]
            else:
                in_bin = []
                for record_id in dict.fromkeys(ids):
                    row = self._execute("SELECT id FROM records WHERE id = ? AND is_deleted = 1",
                                        (record_id,)).fetchone()
                    if row is not None:
                        in_bin.append(row["id"])
            self._purge(in_bin)
        return len(in_bin)

    def _purge(self, ids: list[str]) -> None:
        purged_date = format_datetime(now_utc())
        with self.transaction():
            for record_id in ids:
                self._execute(
                    "INSERT OR REPLACE INTO purged_records (id, sobject, purged_date)"
                    " SELECT id, sobject, ? FROM records WHERE id = ?", (purged_date, record_id))
                self._execute("DELETE FROM records WHERE id = ?", (record_id,))

    def is_purged(self, record_id: str) -> bool:
        """Return True if the record was purged from the recycle bin."""
        row = self._execute("SELECT 1 FROM purged_records WHERE id = ?", (record_id,)).fetchone()
        return row is not None

    def set_archived(self, record_id: str, archived: bool) -> None:
        """Mark a Task or Event archived (hidden from ``query``) or live again."""
        self._execute("UPDATE records SET is_archived = ? WHERE id = ?", (int(archived), record_id))

    def delete_permanently(self, record_id: str) -> None:
        self._execute("DELETE FROM records WHERE id = ?", (record_id,))

    def records_of(self, sobject: str) -> list[Record]:
        """Return every record of an sObject, deleted and archived ones included, by id."""
        rows = self._execute(
            "SELECT * FROM records WHERE sobject = ? ORDER BY id", (sobject,)
        ).fetchall()
        return [_record_from_row(row) for row in rows]

    def find_by_field(
        self, sobject: str, field_name: str, value: str, *, case_sensitive: bool
    ) -> list[Record]:
        """Return records (deleted and archived included) whose text field equals a value."""
        # The JSON path is written into the SQL, not bound, and the rows are sorted here,
        # so that SQLite picks the expression indexes made by _index_field.
        extract = _json_extract_sql(field_name)
        if case_sensitive:
            sql = f"SELECT * FROM records WHERE sobject = ? AND {extract} = ?"
        else:
            # NOTE: SQLite's lower() folds ASCII letters only, so two keys that differ only
            # in the case of a non-ASCII letter are not matched here.
            sql = f"SELECT * FROM records WHERE sobject = ? AND lower({extract}) = lower(?)"
        rows = self._execute(sql, (sobject, value)).fetchall()
        return sorted((_record_from_row(row) for row in rows), key=lambda record: record.id)

    def count_records(self, sobject: str) -> int:
        row = self._execute("SELECT COUNT(*) AS n FROM records WHERE sobject = ?", (sobject,))
        return int(row.fetchone()["n"])

    # -- Activity custom fields ----------------------------------------------

    def custom_fields(self) -> list[CustomFieldDefinition]:
        rows = self._execute("SELECT * FROM custom_fields ORDER BY created_date, name").fetchall()
        return [_custom_field_from_row(row) for row in rows]

    def save_custom_field(self, definition: CustomFieldDefinition) -> None:
        """Insert or replace a custom field definition."""
        self._execute(
            "INSERT OR REPLACE INTO custom_fields (id, object, name, type, length, is_unique,"
            " external_id, case_sensitive, description, label, created_date)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                definition.id, definition.object, definition.name, definition.type,
                definition.length, int(definition.unique), int(definition.external_id),
                int(definition.case_sensitive), definition.description, definition.label,
                definition.created_date,
            ),
        )
        if definition.external_id or definition.unique:
            self._index_field(definition.name)

    def _index_field(self, field_name: str) -> None:
        """Index a key field's JSON value, as stored and lower-cased, for upsert matching."""
        stem = "".join(c if c.isalnum() else "_" for c in field_name)
        extract = _json_extract_sql(field_name)
        self._execute(
            f"CREATE INDEX IF NOT EXISTS records_by_{stem} ON records (sobject, {extract})"
        )
        self._execute(
            f"CREATE INDEX IF NOT EXISTS records_by_{stem}_folded"
            f" ON records (sobject, lower({extract}))"
        )

    # -- OAuth -------------------------------------------------------------

    def save_code(
        self, code: str, grant: TokenGrant, redirect_uri: str, challenge: str,
        expires_at: datetime.datetime,
    ) -> None:
        self._execute(
            "INSERT INTO oauth_codes VALUES (?, ?, ?, ?, ?, ?)",
            (hash_secret(code), grant.user_id, grant.client_id, redirect_uri, challenge,
             expires_at.isoformat()),
        )

    def take_code(self, code: str) -> tuple[TokenGrant, str, str] | None:
        """Remove an unexpired authorization code; return its grant, redirect uri and challenge."""
        with self.transaction():
            row = self._execute(
                "SELECT * FROM oauth_codes WHERE code_hash = ?", (hash_secret(code),)
            ).fetchone()
            self._execute("DELETE FROM oauth_codes WHERE code_hash = ?", (hash_secret(code),))
        if row is None or datetime.datetime.fromisoformat(row["expires_at"]) < now_utc():
            return None
        grant = TokenGrant(row["user_id"], row["client_id"])
        return grant, str(row["redirect_uri"]), str(row["code_challenge"])

    def save_token(
        self, token: str, kind: str, grant: TokenGrant, expires_at: datetime.datetime | None
    ) -> None:
        self._execute(
            "INSERT INTO oauth_tokens (token_hash, kind, user_id, client_id, expires_at, family)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (hash_secret(token), kind, grant.user_id, grant.client_id,
             None if expires_at is None else expires_at.isoformat(), grant.family),
        )

    def find_token(self, token: str, kind: str) -> TokenGrant | None:
        """Return the grant of a live token of the given kind ("access" or "refresh")."""
        row = self._execute(
            "SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = ? AND revoked = 0",
            (hash_secret(token), kind),
        ).fetchone()
        if row is None:
            return None
        if row["expires_at"] and datetime.datetime.fromisoformat(row["expires_at"]) < now_utc():
            return None
        return TokenGrant(row["user_id"], row["client_id"], row["family"])

    def revoke_token(self, token: str) -> None:
        self._execute("UPDATE oauth_tokens SET revoked = 1 WHERE token_hash = ?",
                      (hash_secret(token),))

    def revoke_family(self, family: str) -> None:
        """Revoke every token of one authorization, refresh and access tokens alike."""
        self._execute("UPDATE oauth_tokens SET revoked = 1 WHERE family = ?", (family,))

    def revoke_access_tokens(self) -> None:
        self._execute("UPDATE oauth_tokens SET revoked = 1 WHERE kind = 'access'")

    # -- API usage ---------------------------------------------------------

    def count_api_request(self) -> int:
        """Count one API request against today's (UTC) allocation; return today's total."""
        day = now_utc().date().isoformat()
        with self.transaction():
            self._execute(
                "INSERT INTO api_usage (day, requests) VALUES (?, 1)"
                " ON CONFLICT (day) DO UPDATE SET requests = requests + 1",
                (day,),
            )
            row = self._execute("SELECT requests FROM api_usage WHERE day = ?", (day,)).fetchone()
        return int(row["requests"])

    def api_requests_today(self) -> int:
        day = now_utc().date().isoformat()
        row = self._execute("SELECT requests FROM api_usage WHERE day = ?", (day,)).fetchone()
        return 0 if row is None else int(row["requests"])


def _json_extract_sql(field_name: str) -> str:
    """Return the SQL expression for a field's value inside the ``fields`` JSON."""
    if not all(c.isalnum() or c == "_" for c in field_name):
        raise ValueError(f"invalid field API name: {field_name!r}")
    return f"json_extract(fields, '$.\"{field_name}\"')"


def _record_from_row(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"],
        sobject=row["sobject"],
        fields=json.loads(row["fields"]),
        is_deleted=bool(row["is_deleted"]),
        is_archived=bool(row["is_archived"]),
        created_date=row["created_date"],
        last_modified_date=row["last_modified_date"],
        created_by_id=row["created_by_id"],
        last_modified_by_id=row["last_modified_by_id"],
        deleted_date=row["deleted_date"],
    )


def _custom_field_from_row(row: sqlite3.Row) -> CustomFieldDefinition:
    return CustomFieldDefinition(
        id=row["id"],
        object=row["object"],
        name=row["name"],
        type=row["type"],
        length=row["length"],
        unique=bool(row["is_unique"]),
        external_id=bool(row["external_id"]),
        case_sensitive=bool(row["case_sensitive"]),
        description=row["description"],
        label=row["label"],
        created_date=row["created_date"],
    )
