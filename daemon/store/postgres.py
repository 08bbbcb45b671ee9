"""The PostgreSQL store: the same :class:`~daemon.store.Store`, on a database that several
daemon instances share.

Every query of the store's parts is written once, in SQLite's dialect; a connection here
translates it (:func:`translate`: ``?`` and ``:name`` parameters, ``json_each`` and
``json_extract`` of its rows, ``IS`` between a column and a parameter,
``last_insert_rowid()``) and hands back rows that read like ``sqlite3.Row`` (by name and
by position). So the SQLite store stays exactly as it
was, and a query fixed for one backend is fixed for both.

What SQLite's ``BEGIN IMMEDIATE`` gives, every write transaction here gets from a
transaction-level advisory lock taken before its first statement: writers of every
instance take turns, so the re-checks inside a booking or a move see everything committed
before them, exactly as on SQLite. The database does not rely on that: an exclusion
constraint (``pg_migrations/0001_initial.sql``) refuses two overlapping active sessions
of one technician whoever writes them, and a booking or move that runs into it gets the
same :class:`~daemon.store.records.Conflict` as a re-check that finds the time taken.

Connections come from a psycopg pool, checked before each use, so a server restart costs
the requests in flight at that moment (:class:`~daemon.store.base.StoreUnavailable`, a
503 with ``Retry-After``), not the ones after it. The schema is ``pg_migrations/*.sql``,
applied on start under an advisory lock (instances starting together apply each once);
a database of a newer schema is refused.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from daemon.store import Store
from daemon.store.base import Connection, Cursor, StoreBase, StoreError, StoreUnavailable
from daemon.store.records import (
    Conflict,
    InProgress,
    Inserted,
    KeyReused,
    NewSession,
    OutboxItem,
    OutboxRequest,
    Replayed,
    SessionRecord,
    ts,
)

# Advisory lock keys (one 64-bit space per database): arbitrary, fixed, documented.
WRITE_LOCK = 0x6578_7065_0001  # every deciding write, like SQLite's BEGIN IMMEDIATE
MIGRATE_LOCK = 0x6578_7065_0002  # applying migrations
LEADER_LOCK = 0x6578_7065_0003  # held by the instance that runs the background work
# What a desk writes, checked empty before ``store copy``; the tables a migration fills with
# a row of their own, which a copy replaces; those whose ids an identity column hands out.
_DESK_TABLES = (
    "technicians", "calendars", "sessions", "outbox", "audit", "whatsapp_inbound",
    "whatsapp_contacts", "whatsapp_messages", "staff", "staff_login_failures",
)  # fmt: skip
_SEEDED = ("whatsapp_health",)
_NUMBERED = ("outbox", "audit", "staff_login_failures")
POOL_TIMEOUT_S = 5.0  # waiting for a connection before answering "unavailable"
CONNECT_TIMEOUT_S = 5
ROLLBACK_ATTEMPTS = 3  # a booking or move the database rolled back (a deadlock) is run again
_ROLLED_BACK = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.TransactionRollback,
)
_T = TypeVar("_T")


def packaged_pg_migrations() -> list[tuple[int, str]]:
    """The migrations in ``daemon/store/pg_migrations`` as ``(version, sql)``, in order."""
    folder = resources.files("daemon.store") / "pg_migrations"
    found = sorted(
        (int(entry.name[:4]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql") and entry.name[:4].isdigit()
    )
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise StoreError("the packaged PostgreSQL migrations are incomplete; reinstall expediente")
    return found


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """A statement of the store's parts (SQLite's dialect) in PostgreSQL's, for psycopg."""
    sql = sql.replace("%", "%%")
    sql = sql.replace("json_each(?)", "json_array_elements_text(?::json)")
    sql = re.sub(r"json_each\(:(\w+)\)", r"json_array_elements_text(:\1::json)", sql)
    # A row of a JSON array of rows (json_each gives each one as text here).
    sql = re.sub(r"json_extract\(value, '\$\[(\d+)\]'\)", r"(value::json ->> \1)", sql)
    sql = re.sub(r"\bIS NOT :(\w+)", r"IS DISTINCT FROM :\1", sql)
    sql = re.sub(r"\bIS :(\w+)", r"IS NOT DISTINCT FROM :\1", sql)
    sql = sql.replace("last_insert_rowid()", "lastval()")
    sql = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)
    return sql.replace("?", "%s")


class Row:
    """A result row read by column name or position, like ``sqlite3.Row``."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = tuple(values)
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor: Any) -> Any:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class _Translating:
    """A psycopg connection inside a transaction, taking the parts' statements."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self.db = db

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        # Always with parameters (perhaps none): psycopg then reads the "%%" translate()
        # wrote for a literal "%" back as one.
        cursor: Cursor = self.db.cursor(row_factory=_rows).execute(translate(sql), parameters)
        return cursor

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        cursor = self.db.cursor(row_factory=_rows)
        rows = list(parameters)
        if rows:
            cursor.executemany(translate(sql), rows)
        result: Cursor = cursor
        return result


class PostgresBase(StoreBase):
    """Connections, transactions and the schema on PostgreSQL; overrides :class:`StoreBase`."""

    local = False  # every read is a round trip to a server, which may not answer

    def __init__(
        self,
        dsn: str,
        *,
        migrations: Sequence[tuple[int, str]] | None = None,
        pool_size: int = 10,
        timeout: float = POOL_TIMEOUT_S,
        serialize_writes: bool = True,
    ) -> None:
        self.dsn = dsn
        self.path = _describe(dsn)  # type: ignore[assignment]  # for messages only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._serialize = serialize_writes
        self._versions = itertools.count(1)
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: ConnectionPool[Any] | None = None
        try:
            self._migrate(packaged_pg_migrations() if migrations is None else list(migrations))
        except StoreUnavailable as error:
            self.close()
            raise StoreError(
                f"{error}: check dsn_file and that the server runs (waited {self._timeout:g} s)"
            ) from None
        except BaseException:
            self.close()
            raise

    def _opened_pool(self) -> ConnectionPool[Any]:
        """The pool, opened on first use and again after :meth:`close`."""
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                    # A failed connection is retried with a doubling delay until this, then
                    # dropped; the next request that finds none starts a new attempt at
                    # once. Kept short, so a server back after a long outage is used by the
                    # first request after it, not after the last (long) delay ran out.
                    reconnect_timeout=self._timeout,
                    # A connection broken by a server restart is replaced before use, so
                    # only the requests in flight at the moment of the restart fail.
                    check=ConnectionPool.check_connection,
                    timeout=self._timeout,
                    name="expediente",
                    open=False,
                )
                self._pool.open(wait=False)
            return self._pool

    # ------------------------------------------------------------- connections

    @contextmanager
    def _connected(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; a server that cannot be reached is StoreUnavailable."""
        try:
            with self._opened_pool().connection() as db:
                yield db
        except PoolTimeout:
            raise StoreUnavailable(f"the database {self.path} cannot be reached") from None
        except psycopg.OperationalError as error:
            if not _unreachable(error):
                raise  # a deadlock, a cancelled query: this request's problem, not an outage
            raise StoreUnavailable(f"the database {self.path} is unavailable: {error}") from None

    @contextmanager
    def _write(
        self, *, quiet: bool = False, calendars: bool = True, alone: bool = False
    ) -> Iterator[Connection]:
        """One transaction, after every earlier writer of every instance (see the module).
        ``quiet`` and ``calendars`` change nothing here: the versions move on every call;
        nor does ``alone``: every write is a transaction of its own."""
        if getattr(self._local, "write", None) is not None:
            raise StoreError(f"a write to {self.path} began inside another one")
        with self._connected() as db, db.transaction():
            if self._serialize:
                db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            if getattr(self._local, "defer_overlaps", False):
                db.execute("SET CONSTRAINTS sessions_no_overlap DEFERRED")
            self._local.write = _Translating(db)
            try:
                yield self._local.write
            finally:
                self._local.write = None

    def _read(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        within: _Translating | None = getattr(self._local, "write", None)
        if within is not None:
            return within.execute(sql, args).fetchall()
        with self._connected() as db:
            return _Translating(db).execute(sql, args).fetchall()

    def _read_tuples(
        self, sql: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        with self._connected() as db:
            rows: list[tuple[Any, ...]] = (
                db.cursor(row_factory=tuple_row).execute(translate(sql), args).fetchall()
            )
            return rows

    def _read_packed(
        self, sql: str, width: int, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """:meth:`_read_tuples`: psycopg fetches a result whole, with no hand-over per row
        to avoid."""
        return self._read_tuples(sql, args)

    def _read_bulk(
        self, sql: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """:meth:`_read_tuples`: the server keeps the pages, not the connection."""
        return self._read_tuples(sql, args)

    def data_version(self) -> int:
        """Always a new number: PostgreSQL has no cheap "anything committed?" counter that
        every instance sees, so caches re-read the (small) per-technician versions."""
        return next(self._versions)

    def quiet_version(self) -> int:
        """As :meth:`data_version`, always new."""
        return next(self._versions)

    def calendars_version(self) -> int:
        """As :meth:`data_version`, always new."""
        return next(self._versions)

    def close(self) -> None:
        """Close the pool's connections; the next use opens a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _migrate(self, known: list[tuple[int, str]]) -> None:
        latest = known[-1][0] if known else 0
        with self._connected() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            self._refuse_newer(current, latest)
            for version, sql in known:
                if version <= current:
                    continue
                db.execute(sql.encode())  # several statements: no parameters, simple protocol
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _refuse_newer(self, current: int, latest: int) -> None:
        if current > latest:
            raise StoreError(
                f"the database {self.path} has schema version {current}, newer than this "
                f"expediente knows ({latest}); run the newer version or restore a backup"
            )

    @property
    def schema_version(self) -> int:
        rows = self._read("SELECT max(version) FROM schema_version")
        return int(rows[0][0] or 0)

    def is_empty(self) -> bool:
        """No row in any table a desk fills (the one-row ``whatsapp_health`` aside): a
        target ``store copy`` takes."""
        # Fixed table names, nothing from outside.
        counts = " + ".join(f"(SELECT count(*) FROM {table})" for table in _DESK_TABLES)  # noqa: S608
        rows = self._read(f"SELECT {counts}")
        return int(rows[0][0]) == 0

    def load_tables(
        self, tables: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]
    ) -> dict[str, int]:
        """Load whole tables, ``(name, columns, rows)``, in one transaction with the
        foreign keys checked at its end (``expediente store copy``); rows per table. The
        identity counters then continue after the highest id copied."""
        counts: dict[str, int] = {}
        with self._write() as within:
            db: psycopg.Connection[Any] = within.db  # type: ignore[attr-defined]
            db.execute("SET CONSTRAINTS ALL DEFERRED")
            for name, columns, rows in tables:
                if name in _SEEDED:
                    db.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(name)))
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                count = 0
                with db.cursor().copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
                counts[name] = count
            for name in _NUMBERED:
                db.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({table}, 'id'), "
                        "coalesce((SELECT max(id) FROM {name}), 0) + 1, false)"
                    ).format(table=sql.Literal(name), name=sql.Identifier(name))
                )
        return counts

    # ------------------------------------------------------------- rate limit

    def rate_acquire(
        self,
        client: str,
        now: datetime,
        window: timedelta,
        limit: int | None,
        refusal_limit: int | None,
    ) -> float | None:
        """:meth:`daemon.web.ratelimit.RateLimiter.acquire` for every instance at once:
        ``None`` when a booking is granted (and reserved), else the seconds to wait. One
        client's attempts take turns (a lock per client), other clients' do not wait."""
        cutoff = _micros(now - window)
        with self._connected() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (client,))
            db.execute(
                "DELETE FROM rate_limit_events WHERE id IN (SELECT id FROM rate_limit_events "
                "WHERE at_us <= %s LIMIT 100 FOR UPDATE SKIP LOCKED)",
                (cutoff,),
            )  # everyone's expired rows, a few at a time, so the table stays small
            rows = db.execute(
                "SELECT kind, count(*), min(at_us) FROM rate_limit_events "
                "WHERE client = %s AND at_us > %s GROUP BY kind",
                (client, cutoff),
            ).fetchall()
            found = {kind: (int(count), int(oldest)) for kind, count, oldest in rows}
            waits = [
                _rate_wait(found.get("granted"), limit, now, window),
                _rate_wait(found.get("refused"), refusal_limit, now, window),
            ]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is None and limit is not None:
                db.execute(
                    "INSERT INTO rate_limit_events (client, kind, at_us) "
                    "VALUES (%s, 'granted', %s)",
                    (client, _micros(now)),
                )
            return wait

    def rate_release(self, client: str, now: datetime, *, refused: bool) -> None:
        """:meth:`daemon.web.ratelimit.RateLimiter.release`: give back the booking reserved
        at ``now``; ``refused`` counts a refusal against the client's refusal budget."""
        with self._connected() as db, db.transaction():
            db.execute(
                "DELETE FROM rate_limit_events WHERE id = (SELECT id FROM rate_limit_events "
                "WHERE client = %s AND kind = 'granted' AND at_us = %s LIMIT 1)",
                (client, _micros(now)),
            )
            if refused:
                db.execute(
                    "INSERT INTO rate_limit_events (client, kind, at_us) "
                    "VALUES (%s, 'refused', %s)",
                    (client, _micros(now)),
                )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The server going away: shutting down (57P01-03), or the connection itself (class 08).
_GONE = ("08", "57P01", "57P02", "57P03")


def _unreachable(error: psycopg.OperationalError) -> bool:
    """The database cannot be reached (a lost connection has no SQLSTATE from the server)."""
    return error.sqlstate is None or error.sqlstate.startswith(_GONE)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _rate_wait(
    found: tuple[int, int] | None, limit: int | None, now: datetime, window: timedelta
) -> float | None:
    """Seconds until the oldest of ``found`` (count, oldest instant) leaves the window, when
    ``limit`` is reached; as the in-memory limiter counts it."""
    if limit is None or found is None or found[0] < limit:
        return None
    oldest = _EPOCH + timedelta(microseconds=found[1])
    return float(max(1, math.ceil((oldest + window - now).total_seconds())))


def _describe(dsn: str) -> str:
    """The database named for messages, without a password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an unreadable connection string)"
    where = info.get("host") or "the local socket"
    return f"{info.get('dbname') or '(default)'} on {where}"


class PostgresStore(PostgresBase, Store):
    """The store on PostgreSQL: :class:`~daemon.store.Store`'s parts on
    :class:`PostgresBase`, with the database's own refusal of overlaps mapped to
    :class:`Conflict` and outbox items claimed by the instance that delivers them."""

    def insert_booking(
        self,
        session: NewSession,
        *,
        buffer: timedelta,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        actor: str = "client",
        outbox: Sequence[OutboxRequest] = (("put", {}),),
        replaced_outbox: Sequence[OutboxRequest] = (("put", {}),),
        audit: dict[str, Any] | None = None,
    ) -> Inserted | Replayed | Conflict | KeyReused | InProgress:
        # A rebooking inserts the new session before it cancels the one it replaces.
        self._local.defer_overlaps = session.rebooked_from is not None
        try:
            return _rerun_if_rolled_back(
                lambda: super(PostgresStore, self).insert_booking(
                    session, buffer=buffer, now=now, idempotency_key=idempotency_key,
                    request_hash=request_hash, actor=actor, outbox=outbox,
                    replaced_outbox=replaced_outbox, audit=audit,
                )
            )  # fmt: skip
        except psycopg.errors.ExclusionViolation:
            return Conflict("an overlapping active session (refused by the database)")
        except psycopg.errors.UniqueViolation as error:
            if error.diag.constraint_name != "sessions_by_idempotency_key":
                raise
            # The same key committed by another writer meanwhile (only without the
            # write lock): answer as the first request's replay would.
            found = self.session_by_idempotency_key(idempotency_key or "")
            if found is None:
                raise
            first, first_hash = found
            return Replayed(first) if first_hash == request_hash else KeyReused(first.id)
        finally:
            self._local.defer_overlaps = False

    def move_session(
        self,
        session_id: str,
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        actor: str,
        buffer: timedelta | None = None,
        outbox: Sequence[OutboxRequest] = (),
    ) -> SessionRecord | Conflict | None:
        try:
            return _rerun_if_rolled_back(
                lambda: super(PostgresStore, self).move_session(
                    session_id, start, end, now=now, actor=actor, buffer=buffer, outbox=outbox
                )
            )
        except psycopg.errors.ExclusionViolation:
            return Conflict("an overlapping active session (refused by the database)")

    def claim_outbox(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxItem]:
        """Take the due items no other instance holds, for ``lease``: the outbox worker's
        :meth:`due_outbox`. Another instance takes an item only once its claim ran out."""
        with self._write() as db:
            rows = db.execute(
                "UPDATE outbox SET claimed_by = :owner, claimed_until = :until WHERE id IN ("
                "SELECT id FROM outbox WHERE done_at IS NULL AND superseded = 0 "
                "AND next_attempt_at <= :now AND (claimed_until IS NULL OR claimed_until <= :now "
                "OR claimed_by = :owner) ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) "
                "RETURNING id, session_id, action, payload, attempts, last_error",
                {"owner": owner, "until": ts(now + lease), "now": ts(now), "limit": limit},
            ).fetchall()
        return sorted(
            (OutboxItem(r[0], r[1], r[2], _json(r[3]), r[4], r[5]) for r in rows),
            key=lambda item: item.id,
        )


def _rerun_if_rolled_back(work: Callable[[], _T]) -> _T:
    """``work()``, run again when the database rolled its transaction back to break a
    deadlock or a serialization failure: nothing of it was written, so running it again is
    safe, and the second run sees what the other transaction committed (a booking under the
    same idempotency key becomes its replay). Writers that all take the write lock never
    deadlock each other; one that does not (an instance without it, a hand-run statement)
    can, and its client should get the answer, not a 500."""
    for _ in range(ROLLBACK_ATTEMPTS - 1):
        try:
            return work()
        except _ROLLED_BACK:
            continue
    return work()


def _json(text: str) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(text)
    return value
