"""Which daemon instance runs the background work: sync, outbox, sweep, reminders.

Every instance serves HTTP; the work that writes to calendars, sends mail and marks
no-shows runs in one of them at a time. On SQLite there is one instance, so it always
leads (:class:`SoleLeader`). On PostgreSQL the leader is the instance holding a
session-level advisory lock on a connection of its own (:class:`AdvisoryLockLeader`):
the server releases the lock the moment that connection ends, so when the leader dies
(even ``kill -9``) or its server restarts, another instance takes the lock at its next
attempt, a second or so later.

A leader cut off from the database must stop before another can start. The leader
confirms the lock with a query every :data:`HEARTBEAT_S`; it counts as leading only while
its last confirmation is younger than :data:`LEASE_S`, and its connection gives up on
an unanswered query within :data:`TCP_USER_TIMEOUT_MS`. The server lets go of the lock
only once it sees the connection dead, which its TCP keepalives take longer to notice
(deploy/high-availability.md sets them), so a partitioned leader has stopped its work
before anyone else is given the lock. What was in flight then is covered by the outbox
claims (``PostgresStore.claim_outbox``): another instance does not redo a write until the
claim has run out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("expediente")

HEARTBEAT_S = 1.0
LEASE_S = 5.0
TCP_USER_TIMEOUT_MS = 3000


def instance_name() -> str:
    """This process, as /healthz and /metrics name it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    """What the loop, /healthz and /metrics ask about leading."""

    instance: str

    def is_leader(self) -> bool: ...

    def leader(self) -> str | None: ...

    def start(self, on_change: Callable[[bool], None] | None = None) -> None: ...

    def close(self) -> None: ...


def leadership_for(kind: str, dsn: str | None, instance: str | None = None) -> Leadership:
    """The leadership a store of ``kind`` (``[store] kind``) needs."""
    if kind == "postgresql" and dsn is not None:
        return AdvisoryLockLeader(dsn, instance)
    return SoleLeader(instance)


class SoleLeader:
    """One instance on one file: it always leads."""

    def __init__(self, instance: str | None = None) -> None:
        self.instance = instance or instance_name()

    def is_leader(self) -> bool:
        return True

    def leader(self) -> str | None:
        return self.instance

    def start(self, on_change: Callable[[bool], None] | None = None) -> None:
        del on_change

    def close(self) -> None:
        pass


class AdvisoryLockLeader:
    """Leadership through a PostgreSQL advisory lock held on a dedicated connection.

    ``start`` runs the heartbeat in a thread of its own (a hanging connection never stalls
    the loop); ``on_change(leading)`` is called from it when leadership is won or lost.
    """

    def __init__(self, dsn: str, instance: str | None = None, *, key: int | None = None) -> None:
        from daemon.store.postgres import LEADER_LOCK

        self.dsn = dsn
        self.instance = instance or instance_name()
        self.key = LEADER_LOCK if key is None else key
        self._db: Any = None
        self._held = False
        self._confirmed = 0.0  # time.monotonic() of the last confirmation
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_change: Callable[[bool], None] | None = None
        self._lock = threading.Lock()
        self._seen_leader: str | None = None

    def is_leader(self) -> bool:
        with self._lock:
            return self._held and time.monotonic() - self._confirmed < LEASE_S

    def start(self, on_change: Callable[[bool], None] | None = None) -> None:
        self._on_change = on_change
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.refresh()

    def refresh(self) -> bool:
        """Confirm the lock, or try to take it; whether this instance leads now."""
        before = self.is_leader()
        try:
            if self._db is None:
                self._db = self._connect()
            if self._held:
                self._db.execute("SELECT 1")
                held = True
            else:
                row = self._db.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                held = bool(row[0])
                if not held:
                    self._seen_leader = self._holder()
        except Exception as error:  # any failure: not leading, and a new connection next time
            if self._held:
                log.warning("leadership lost (%s): background work stops", error)
            self._drop()
            held = False
        with self._lock:
            self._held = held
            if held:
                self._confirmed = time.monotonic()
        now = self.is_leader()
        if now != before:
            if now:
                log.info("leading: this instance (%s) runs the background work", self.instance)
            if self._on_change is not None:
                self._on_change(now)
        return now

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, int(LEASE_S)),
            application_name=f"expediente {self.instance}"[:63],
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=2,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        )

    def _drop(self) -> None:
        db, self._db = self._db, None
        with self._lock:
            self._held = False
        if db is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close too
                db.close()

    def leader(self) -> str | None:
        """The instance leading, as of the last heartbeat (its connection's name); None
        when none does or the database cannot be asked."""
        if self.is_leader():
            return self.instance
        return self._seen_leader if self._db is not None else None

    def _holder(self) -> str | None:
        high, low = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        row = self._db.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
            "AND l.objsubid = 1 AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            (high, low),
        ).fetchone()
        if row is None or not row[0]:
            return None
        return str(row[0]).removeprefix("expediente ")

    def close(self) -> None:
        """Stop the heartbeat and let go of the lock (another instance takes it at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LEASE_S + 5)
        self._drop()
