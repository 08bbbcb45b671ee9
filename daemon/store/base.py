"""What every part of the store stands on: connections, transactions, the schema.

One file, WAL journal (readers never block the writer), foreign keys on, a busy timeout
so concurrent writers queue instead of failing, ``synchronous=FULL`` so a booking that was
answered "accepted" survives a power cut. Every write that decides something (a booking,
a status change, a move) runs in one transaction taken up front with ``BEGIN IMMEDIATE``:
the check and the write see the same data, so two requests can never both book the same
technician's time, whether they come from two threads or two processes.

Each thread gets its own connection (thread-local), so the web server's worker threads
read in parallel; other processes (the CLI) open their own ``Store`` on the same file.
The writers of one process queue on a Python lock before ``BEGIN IMMEDIATE``: waiting in
SQLite's busy handler means sleeping and retrying (1, 2, 5, 10... ms), and under load the
web server's threads spent more time asleep there than writing. The busy timeout still
covers a writer in another process.

:class:`StoreBase` is what every part of ``Store`` stands on: ``_write`` for a
transaction, ``_read`` for a query, ``path``. The schema is the numbered SQL files in
``migrations/``, applied in order when a handle opens.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, Self

from daemon.errors import ExpedienteError

BUSY_TIMEOUT_MS = 10_000
# How long a writer waits for the other writers of this process, like the busy timeout.
WRITE_QUEUE_TIMEOUT_S = BUSY_TIMEOUT_MS / 1000
# Writers in one group commit at most (bounds how long the first waits for the last).
GROUP_MAX = 32
# How often a writer waiting for its group's commit checks that someone will commit it.
GROUP_CHECK_S = 0.05
# Each connection's page cache, in KiB (SQLite's default is 2,000). Every thread that
# touches the store keeps a connection, and its cache fills up to the limit and stays:
# some twenty-five of them in a running daemon (web workers, syncs, the outbox and its
# lanes, the loop), 14 MB more at 1 MiB each after a few thousand bookings. Most only
# read and write a few rows; the threads that read a technician's busy time in bulk get
# BULK_CACHE_KIB (see _read_bulk): reading 5,000 busy rows takes as long with 1 MiB as
# with 2 MiB (16-18 ms at 50 technicians x 5,000, bench/memory.py --reads), and with
# 512 KiB 30 % longer.
CACHE_KIB = 256
BULK_CACHE_KIB = 1024


class StoreError(ExpedienteError):
    """The database cannot be used (unreadable, from a newer version, corrupt, locked)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (a server restarting, a network cut); the
    same request may succeed in a moment. Only a database server raises it: the web layer
    answers 503 with ``Retry-After``."""


class Cursor(Protocol):
    """What the parts read from a statement: ``sqlite3.Cursor`` and psycopg's both fit."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The transaction the parts write in. Statements are written in SQLite's dialect
    (``?`` and ``:name`` parameters, ``json_each``); the PostgreSQL store translates them
    (``daemon/store/postgres.py``), so each query is written once for both backends."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...


# ------------------------------------------------------------------ migrations


def packaged_migrations() -> list[tuple[int, str]]:
    """The migrations shipped in ``daemon/store/migrations`` as ``(version, sql)``, in order.

    Files are named ``NNNN_what.sql``; versions must run 1, 2, 3... without gaps, since
    a gap would mean a file is missing from the package.
    """
    folder = resources.files("daemon.store") / "migrations"
    found = sorted(
        (int(entry.name[:4]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql") and entry.name[:4].isdigit() and entry.name[4] == "_"
    )
    versions = [version for version, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(
            f"the packaged migrations are numbered {versions}, expected 1..{len(found)}: "
            "the installation is incomplete; reinstall expediente"
        )
    return found


def _statements(sql: str) -> list[str]:
    """Split a migration into complete statements, as SQLite itself would read them
    (semicolons inside literals or trigger bodies do not end a statement)."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if not _only_comments(pending):
                statements.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise StoreError(f"a migration ends in an incomplete statement: {pending.strip()[:80]}")
    return statements


def _only_comments(text: str) -> bool:
    return all(
        not line.strip() or line.strip().startswith("--") or line.strip() == ";"
        for line in text.splitlines()
    )


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error)
    return "locked" in text or "busy" in text


class _Group:
    """One write transaction shared by the writers of a burst (group commit).

    A commit in WAL mode with ``synchronous=FULL`` waits for the disk (0.5-0.7 ms here),
    and every writer of the file waits behind it. Writers that queued while one was
    inside run in the same transaction, each in a savepoint of its own, and one COMMIT
    makes them all durable: a burst of bookings pays for one disk flush, not one each.
    """

    def __init__(self, db: sqlite3.Connection, *, alone: bool = False) -> None:
        self.db = db
        self.alone = alone  # one writer's, committed as soon as it is done (StoreBase._write)
        self.members = 0
        self.loud = False  # a member changed more than sync times (see StoreBase._write)
        self.calendars = False  # a member may have changed the calendars (StoreBase._write)
        self.over = threading.Event()
        self.error: StoreError | None = None


class _File:
    """What every handle on one database file shares in this process: the writers' queue,
    the transaction a burst of them shares, and counts of the commits made: those of
    quiet writes alone (see :meth:`StoreBase._write`) apart from the others, and those
    that may have changed the calendars."""

    def __init__(self) -> None:
        self.write_lock = threading.Lock()
        self.commits = 0  # moved under write_lock, read without it (an int is atomic)
        self.quiet_commits = 0  # the same, for commits of quiet writes only
        self.calendar_commits = 0  # the same, for commits that may have changed the calendars
        self.group: _Group | None = None  # the open transaction, under write_lock
        self.queued = 0  # writers waiting for write_lock
        self.queued_lock = threading.Lock()


# One entry per database file, shared by every handle on it in this process (a reload
# opens a second one); the entry goes when no handle holds it any more.
_files: weakref.WeakValueDictionary[str, _File] = weakref.WeakValueDictionary()
_files_guard = threading.Lock()


def _file(path: Path) -> _File:
    key = os.path.realpath(path)
    with _files_guard:
        found = _files.get(key)
        if found is None:
            found = _files[key] = _File()
        return found


class StoreBase:
    """A handle's connections and schema; the parts of ``Store`` add the queries."""

    # Reads are of a file on this machine (SQLite in WAL mode: a reader never waits for a
    # writer), not of a server that may be slow or gone: the HTTP loop's own thread may
    # answer a slot listing (``daemon/web/server.py``), which reads a version or two.
    local = True

    def __init__(
        self, path: str | Path, *, migrations: Sequence[tuple[int, str]] | None = None
    ) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            # Each thread has its own connection: an in-memory database would be one per thread.
            raise StoreError("the store needs a file path (in-memory databases are per thread)")
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None
        self._outside: tuple[float, int] | None = None  # (when read, PRAGMA data_version)
        self._file = _file(self.path)
        self._write_lock = self._file.write_lock
        try:
            self._migrate(packaged_migrations() if migrations is None else list(migrations))
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------- connections

    def _open(self) -> sqlite3.Connection:
        try:
            # check_same_thread=False only so close() may run in another thread; each
            # connection is otherwise used by the thread that opened it.
            db = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the store {self.path}: {error}") from None
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA foreign_keys = ON")
            self._use_wal(db)
            db.execute("PRAGMA synchronous = FULL")
            db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        except (sqlite3.Error, StoreError) as error:
            db.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"cannot open the store {self.path}: {error}") from None
        db.row_factory = sqlite3.Row
        return db

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """Switch a fresh file to WAL, retrying while another opener holds it.

        WAL is persistent in the file, so only the first opener switches. Openers of a
        fresh file race for the switch, which needs the exclusive lock; SQLite answers
        "database is locked" at once rather than calling the busy handler (waiting could
        deadlock two openers that both hold a shared lock), so the wait is done here.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
                continue
            if mode != "wal":
                raise StoreError(
                    f"the store {self.path} cannot use a WAL journal (got {mode!r}); "
                    "put it on a local file system"
                )
            return

    def _connection(self) -> sqlite3.Connection:
        writing: sqlite3.Connection | None = getattr(self._local, "writing", None)
        if writing is not None:
            return writing  # inside a write: its transaction, which may be another thread's
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    # How long a reading of the other processes' commits is trusted (see data_version).
    OUTSIDE_POLL_S = 0.05

    def data_version(self) -> int:
        """A number that moves whenever a connection commits: at once for a commit made in
        this process (through any handle on the file), within :attr:`OUTSIDE_POLL_S` for
        one made by another process (the CLI).

        Caches compare it, on every availability request, to know when to reload. Asking
        SQLite each time (``PRAGMA data_version`` on a connection of its own, since it only
        moves for commits made through *other* connections) released and retook the GIL
        twice per request, and under load the request threads queued on that hand-over.
        Commits in this process are counted here instead; the other processes' are polled.
        """
        return self._outside_version() * 1_000_003 + self._file.commits

    def calendars_version(self) -> int:
        """:meth:`data_version` for the calendars alone (their sync times and states): it
        moves with a commit in this process unless every write in it said it leaves them
        as they were (``calendars=False`` of :meth:`_write`), and with any commit by
        another process, as :meth:`data_version` does.

        What is decided by when calendars last synced (which technicians are stale) is
        kept on this: every booking is a commit, and reading every calendar's last sync
        again after each one was near a tenth of a booking's time in a sampled profile.
        """
        return self._outside_version() * 1_000_003 + self._file.calendar_commits

    def _outside_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` for this file, read at most every
        :attr:`OUTSIDE_POLL_S`: it moves with every commit made through another connection,
        another process's included."""
        outside = self._outside
        now = time.monotonic()
        if outside is None or not 0 <= now - outside[0] < self.OUTSIDE_POLL_S:
            with self._lock:
                fresher = self._outside
                if fresher is not None and fresher is not outside:
                    return fresher[1]  # another thread read it
                if self._watch is None:
                    self._watch = sqlite3.connect(
                        self.path, isolation_level=None, check_same_thread=False
                    )
                    self._watch.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                    self._connections.append(self._watch)
                outside = (now, int(self._watch.execute("PRAGMA data_version").fetchone()[0]))
                self._outside = outside
        return outside[1]

    def quiet_version(self) -> int:
        """A number that moves with each commit of quiet writes alone (see :meth:`_write`):
        for what depends on when calendars last synced, which :meth:`data_version` does
        not follow for a sync that found nothing new."""
        return self._file.quiet_commits

    def close(self) -> None:
        """Close every connection of this handle (from any thread); it reopens on next use."""
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            self._watch = None
            self._outside = None
            self._local = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(
        self, *, quiet: bool = False, calendars: bool = True, alone: bool = False
    ) -> Iterator[Connection]:
        """One write, in a transaction locked up front so the checks inside it stay true,
        durable when this returns.

        A deferred transaction would read first and upgrade to a write lock later; two of
        them could both read "free" and then one fails (or, worse, both had checked stale
        data). ``BEGIN IMMEDIATE`` takes the write lock before the first read; this
        process's other writers wait their turn before it, on the file's ``write_lock``.

        A writer that finishes while others are queued leaves the transaction open for
        them (see :class:`_Group`) and waits for the one that commits; its changes sit in
        a savepoint, so a writer that fails takes back only its own. Reads inside the block
        (:meth:`_read`) go to the transaction's connection and see what it wrote.

        ``quiet``: the write only records when calendars last synced with nothing new
        (:meth:`~daemon.store.calendars.CalendarsPart.record_sync_unchanged`). A commit of
        quiet writes alone does not move :meth:`data_version`, only :meth:`quiet_version`:
        with 50 calendars syncing every 2 s, every other request found the data version
        moved and re-read what it had cached, though nothing it serves had changed.

        ``calendars=False``: the write leaves the calendars table (sync times, states,
        which calendars there are) as it was, and its commit need not move
        :meth:`calendars_version`. Any other write moves it: one that forgets to say so
        costs a re-read, never an answer kept past a change. A quiet write never moves
        it: what it records only makes a calendar fresher, which :meth:`quiet_version`
        tells.

        ``alone``: the write is long (a sync's changes), and shares no transaction. The
        writers of an open one are done and only wait for its commit, which comes first;
        they would otherwise wait for this one's statements too. Then it commits at once,
        so the writers queued behind it do not join a transaction that flushes its pages.
        With eight clients booking, a sync bringing in their sessions joined their group
        and kept them 20-30 ms past the end of their own writes.
        """
        if getattr(self._local, "writing", None) is not None:
            # The lock is not reentrant: a write inside a write would wait for itself.
            raise StoreError(f"a write to {self.path} began inside another one")
        file = self._file
        with file.queued_lock:
            file.queued += 1
        try:
            acquired = file.write_lock.acquire(timeout=WRITE_QUEUE_TIMEOUT_S)
        finally:
            with file.queued_lock:
                file.queued -= 1
        if not acquired:
            raise StoreError(
                f"the store {self.path} is busy: other writers of this process held it "
                f"for {WRITE_QUEUE_TIMEOUT_S:.0f} s"
            )
        try:
            group = file.group
            if group is not None and alone:
                self._commit(group)
                group = None
            group = group or self._begin(alone=alone)
            db = group.db
            db.execute("SAVEPOINT member")
        except BaseException:
            file.write_lock.release()
            raise
        failure: BaseException | None = None
        self._local.writing = db
        try:
            yield db
        except BaseException as error:
            failure = error
        finally:
            self._local.writing = None
        self._end_member(group, failed=failure is not None, quiet=quiet, calendars=calendars)
        if failure is not None:
            raise failure
        if group.error is not None:
            raise group.error

    def _begin(self, *, alone: bool = False) -> _Group:
        """Open the transaction a burst of writers shares (under the write lock)."""
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"the store {self.path} is busy: {error}") from None
        group = self._file.group = _Group(db, alone=alone)
        return group

    def _end_member(self, group: _Group, *, failed: bool, quiet: bool, calendars: bool) -> None:
        """Close this writer's savepoint, then commit the group or leave it to the next
        queued writer; return once the group's transaction is over (called holding the
        write lock, which it releases)."""
        file = self._file
        db = group.db
        try:
            if failed and db.in_transaction:
                db.execute("ROLLBACK TO member")
            if db.in_transaction:
                db.execute("RELEASE member")
                group.members += 1
                group.loud = group.loud or not (quiet or failed)
                group.calendars = group.calendars or (calendars and not (quiet or failed))
            else:  # an error ended the whole transaction: nobody's changes are kept
                self._finish(group, StoreError(f"a write to {self.path} was rolled back"))
        except sqlite3.Error as error:
            self._finish(group, StoreError(f"a write to {self.path} failed: {error}"))
        if not group.over.is_set() and (
            file.queued == 0 or group.members >= GROUP_MAX or group.alone
        ):
            self._commit(group)
        file.write_lock.release()
        # Wait for the writer that commits. Should it give up queueing (a timeout) just
        # as the lock was left to it, this writer commits the group itself.
        while not group.over.wait(GROUP_CHECK_S):
            if file.write_lock.acquire(blocking=False):
                try:
                    if not group.over.is_set():
                        self._commit(group)
                finally:
                    file.write_lock.release()

    def _commit(self, group: _Group) -> None:
        try:
            group.db.execute("COMMIT")
        except sqlite3.Error as error:
            if group.db.in_transaction:
                group.db.execute("ROLLBACK")
            self._finish(group, StoreError(f"a write to {self.path} failed: {error}"))
            return
        if group.loud:
            self._file.commits += 1
        else:
            self._file.quiet_commits += 1
        if group.calendars:
            self._file.calendar_commits += 1
        self._finish(group, None)

    def _finish(self, group: _Group, error: StoreError | None) -> None:
        if error is not None and group.db.in_transaction:
            group.db.execute("ROLLBACK")
        group.error = error
        if self._file.group is group:
            self._file.group = None
        group.over.set()

    def _read(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        return self._connection().execute(sql, args).fetchall()

    def _read_tuples(
        self, sql: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """:meth:`_read` as plain tuples: for the thousands of rows of a busy timeline,
        where making a ``sqlite3.Row`` per row is a fifth of the read."""
        cursor = self._connection().cursor()
        cursor.row_factory = None
        rows: list[tuple[Any, ...]] = cursor.execute(sql, args).fetchall()
        return rows

    def _read_bulk(
        self, sql: str, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """:meth:`_read_tuples` for the thousands of rows of a busy timeline, on a
        connection whose page cache is raised to ``BULK_CACHE_KIB`` the first time (only
        the threads that rebuild timelines keep the larger cache)."""
        if getattr(self._local, "writing", None) is None and not getattr(
            self._local, "bulk", False
        ):
            self._connection().execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            self._local.bulk = True
        return self._read_tuples(sql, args)

    def _read_packed(
        self, sql: str, width: int, args: Sequence[Any] | dict[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """:meth:`_read_tuples` of a query of ``width`` columns of numbers, text or NULL,
        handed over by SQLite as one row.

        Python's sqlite3 lets go of the GIL for every row it steps through and must take
        it back before the next. Under load another thread holds it then, and the reader
        waits up to a switch interval per row: the few dozen rows of the per-technician
        versions, read by every request after a commit, took tens of milliseconds while
        syncs ran. Packed into one JSON row, the read is one step.
        """
        names = ", ".join(f"c{n}" for n in range(width))
        # The query is the caller's constant text; only column names are added.
        packed = f"WITH t({names}) AS ({sql}) SELECT json_group_array(json_array({names})) FROM t"  # noqa: S608
        row = self._connection().execute(packed, args).fetchone()
        return [tuple(values) for values in json.loads(row[0])]

    def _migrate(self, known: list[tuple[int, str]]) -> None:
        """Apply the migrations newer than the file, each in its own transaction.

        The version is re-read inside each transaction, so processes opening a fresh file
        at the same moment apply every migration exactly once between them.
        """
        latest = known[-1][0] if known else 0
        self._refuse_newer(int(self._read("PRAGMA user_version")[0][0]), latest)
        for version, sql in known:
            with self._write() as db:
                current = int(db.execute("PRAGMA user_version").fetchone()[0])
                self._refuse_newer(current, latest)
                if current >= version:
                    continue  # applied before, or by another process just now
                for statement in _statements(sql):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {int(version)}")

    def _refuse_newer(self, current: int, latest: int) -> None:
        if current > latest:
            raise StoreError(
                f"the store {self.path} has schema version {current}, newer than this "
                f"expediente knows ({latest}); run the newer version or restore a backup"
            )

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])
