"""The SQLite store: the single source of truth for sessions, and the busy cache.

One class, :class:`Store`, built from one part per concern, the way Radicale builds its
storage (``radicale/storage/multifilesystem/``): each part is a mixin on
:class:`~daemon.store.base.StoreBase`, which holds the connections, so a part only adds
queries and a reader finds each concern in the file named after it.

- ``base.py``: connections, transactions (``BEGIN IMMEDIATE``), the migration runner;
  how the file is opened and why is its design note. The schema is ``migrations/*.sql``.
- ``records.py``: what the store hands out and takes in (``SessionRecord``,
  ``OutboxItem``...), epoch-second conversions, row mapping.
- ``calendars.py``: technicians and calendars from the configuration, sync states,
  calendar health.
- ``busy.py``: the busy cache, per-technician versions and the re-check a booking makes.
- ``sessions.py``: booking, transitions, rebooking, moves, flags, listing and paging.
- ``queue.py``: the outbox table (its worker is ``daemon/outbox.py``).
- ``audit.py``: audit entries, their per-text cap, pruning.
- ``whatsapp.py``: inbound messages once each, 24-hour windows, sent messages' statuses.
- ``staff.py``: the desk console's accounts, logins and failed logins.
- ``postgres.py``: the same ``Store`` on PostgreSQL, for several daemon instances
  (``pg_migrations/``); ``leader.py`` chooses the one that runs the background work.

A write that needs an audit entry or outbox items writes them in its own transaction,
through ``record_audit`` and ``enqueue_item``, which take the caller's connection.
The store never reads the clock: callers pass ``now``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.store.audit import AUDIT_TEXT_MAX, AuditPart
from daemon.store.base import (
    BUSY_TIMEOUT_MS,
    StoreBase,
    StoreError,
    StoreUnavailable,
    packaged_migrations,
)
from daemon.store.busy import BusyPart
from daemon.store.calendars import CalendarsPart
from daemon.store.queue import OutboxPart
from daemon.store.records import (
    AuditEntry,
    CalendarState,
    CalendarWrite,
    Conflict,
    InProgress,
    Inserted,
    KeyReused,
    NewSession,
    OutboxItem,
    OutboxRequest,
    Replayed,
    SessionRecord,
    dt,
    ts,
    ts_ceil,
)
from daemon.store.sessions import SessionsPart
from daemon.store.staff import StaffAccount, StaffLogin, StaffPart
from daemon.store.whatsapp import (
    InboundMessage,
    SentMessage,
    StatusUpdate,
    WhatsAppHealth,
    WhatsAppPart,
)

if TYPE_CHECKING:
    from daemon.config import StoreConfig

__all__ = [
    "AUDIT_TEXT_MAX",
    "BUSY_TIMEOUT_MS",
    "AuditEntry",
    "CalendarState",
    "CalendarWrite",
    "Conflict",
    "InProgress",
    "InboundMessage",
    "Inserted",
    "KeyReused",
    "NewSession",
    "OutboxItem",
    "OutboxRequest",
    "Replayed",
    "SentMessage",
    "SessionRecord",
    "StaffAccount",
    "StaffLogin",
    "StatusUpdate",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "WhatsAppHealth",
    "dt",
    "open_store",
    "packaged_migrations",
    "ts",
    "ts_ceil",
]


class Store(
    SessionsPart,
    StaffPart,
    CalendarsPart,
    BusyPart,
    OutboxPart,
    AuditPart,
    WhatsAppPart,
    StoreBase,
):
    """A handle on the database; share one between threads (each gets its own connection).

    Raises :class:`StoreError` when the file cannot be opened, is from a newer version of
    expediente, or stays locked by another writer past the busy timeout.
    """


def open_store(config: StoreConfig) -> Store:
    """The store ``[store]`` names: the SQLite file, or the PostgreSQL database of
    ``dsn_file`` (psycopg is imported only then)."""
    if config.kind == "postgresql" and config.dsn is not None:
        from daemon.store.postgres import PostgresStore

        return PostgresStore(config.dsn.reveal().strip())
    return Store(config.path)
