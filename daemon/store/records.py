"""What the store hands out and takes in, and how rows become them.

Instants are stored as integer UTC epoch seconds (``*_at``, ``start_ts``, ``end_ts``);
the API speaks aware datetimes only. The conversions below cross between the two,
exactly (no float on the way), rounding ends outwards so that a stored block never shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rules.intervals import Interval, require_aware
from rules.model import ACTIVE_STATUSES, Status

if TYPE_CHECKING:
    from daemon.store.base import Connection

# Every session's event UID starts with this (daemon/events.py); a calendar object whose
# UID does not cannot repeat a session, and its busy blocks are read without asking
# (migration 0013, which spells it out too).
SESSION_UID_PREFIX = "expediente-"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

# An outbox item: the action ('put', 'delete', 'email', 'webhook', 'notify', ...) and its
# JSON payload. Written in the same transaction as the change that needs it.
OutboxRequest = tuple[str, dict[str, Any]]


# ------------------------------------------------------------------ time conversion


def ts(value: datetime) -> int:
    """``value`` as epoch seconds, rounded down (exact: no float on the way)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store takes aware datetimes only (got naive {value.isoformat()})")
    return (value - _EPOCH) // _SECOND


def ts_ceil(value: datetime) -> int:
    """``value`` as epoch seconds, rounded up: the end of something that must not shrink."""
    floor = ts(value)
    return floor if _EPOCH + floor * _SECOND == value else floor + 1


def dt(value: int | None) -> datetime | None:
    return None if value is None else instant(value)


def instant(value: int) -> datetime:
    """An epoch-seconds column that is never NULL, as an aware UTC datetime."""
    return _EPOCH + value * _SECOND


def span(window: Interval) -> tuple[int, int]:
    """Integer bounds ``(lo, hi)`` such that, for integer columns, ``start < hi AND end > lo``
    is exactly "overlaps ``window``" even when the window has sub-second ends."""
    return ts(window.start), ts_ceil(window.end)


# ------------------------------------------------------------------ records


@dataclass(frozen=True, kw_only=True)
class _SessionFields:
    """What a client booked and where it was placed: shared by new and stored sessions."""

    id: str
    type: str
    start: datetime
    end: datetime
    technician_id: str
    company: str
    responsible_name: str
    phone: str
    email: str
    remote_tool: str
    remote_id: str
    description: str
    language: str
    rules_version: str
    calendar_uid: str
    rebooked_from: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewSession(_SessionFields):
    """A booking validated by ``rules``, ready to insert (status starts as ``booked``)."""

    def __post_init__(self) -> None:
        require_aware(self.start, "NewSession.start")
        require_aware(self.end, "NewSession.end")
        if self.end <= self.start:
            raise ValueError(f"session {self.id} ends before it starts")


@dataclass(frozen=True, kw_only=True)
class SessionRecord(_SessionFields):
    """A stored session. ``rules_accepted_at`` is when the client accepted the desk rules
    (the booking instant); ``needs_attention`` is a reason the admin must look at it."""

    status: Status
    rules_accepted_at: datetime
    created_at: datetime
    updated_at: datetime
    checked_in_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None
    calendar_etag: str | None
    needs_attention: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


_TIME_FIELDS = ("start", "end", "rules_accepted_at", "created_at", "updated_at")
_OPTIONAL_TIME_FIELDS = ("checked_in_at", "ended_at")
SESSION_SELECT = (
    "SELECT id, type, start_ts AS start, end_ts AS end, technician_id, status, company, "
    "responsible_name, phone, email, remote_tool, remote_id, description, language, "
    "rules_accepted_at, rules_version, created_at, updated_at, checked_in_at, ended_at, "
    "cancel_reason, calendar_uid, calendar_etag, needs_attention, rebooked_from FROM sessions"
)


def as_session(row: Any) -> SessionRecord:
    values: dict[str, Any] = dict(zip(row.keys(), tuple(row), strict=True))
    for name in _TIME_FIELDS:
        values[name] = instant(values[name])
    for name in _OPTIONAL_TIME_FIELDS:
        values[name] = dt(values[name])
    values["status"] = Status(values["status"])
    return SessionRecord(**values)


@dataclass(frozen=True)
class Inserted:
    session: SessionRecord
    # The technician's (calendar, sessions) versions as this insert left them (migration
    # 0004), read in its transaction: the busy cache takes the new session in from here
    # instead of reading the technician's sessions back (daemon/busy.py, ``booked``).
    versions: tuple[int, int] | None = None


@dataclass(frozen=True)
class Replayed:
    """The idempotency key was used before with the same request: the stored session."""

    session: SessionRecord


@dataclass(frozen=True)
class Conflict:
    """The technician's time was taken meanwhile (``reason`` says by what)."""

    reason: str


@dataclass(frozen=True)
class InProgress:
    """The session a rebooking would replace was checked in meanwhile: nothing changed."""

    session_id: str


@dataclass(frozen=True)
class KeyReused:
    """The idempotency key was used before for a different request (an API 422)."""

    session_id: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    session_id: str | None
    action: str
    payload: dict[str, Any]
    attempts: int
    last_error: str | None = None


@dataclass(frozen=True)
class CalendarState:
    id: str
    technician_id: str
    role: str
    kind: str
    address: str
    sync_state: str | None
    last_sync_ok_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int


CALENDAR_SELECT = (
    "SELECT id, technician_id, role, kind, address, sync_state, last_sync_ok_at, "
    "last_attempt_at, last_error, consecutive_failures FROM calendars"
)


def as_calendar(r: Any) -> CalendarState:
    return CalendarState(
        r["id"],
        r["technician_id"],
        r["role"],
        r["kind"],
        r["address"],
        r["sync_state"],
        dt(r["last_sync_ok_at"]),
        dt(r["last_attempt_at"]),
        r["last_error"],
        r["consecutive_failures"],
    )


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    session_id: str | None
    reason: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CalendarWrite:
    """What the calendar holds for a session after a write (see
    :meth:`SessionsPart.set_calendar_write`)."""

    session_id: str
    uid: str
    etag: str | None
    calendar_id: str
    href: str


def record_calendar_write(db: Connection, written: CalendarWrite) -> None:
    db.execute(
        "UPDATE sessions SET calendar_uid = ?, calendar_etag = ?, calendar_id = ?, "
        "calendar_href = ? WHERE id = ?",
        (written.uid, written.etag, written.calendar_id, written.href, written.session_id),
    )
