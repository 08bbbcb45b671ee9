"""The one small interface every calendar adapter implements.

Terminology
-----------
calendar
    One collection on a server: a CalDAV calendar URL or a Google calendar id. A
    technician has one *session calendar* (sessions are written there and it blocks time)
    and any number of *busy calendars* (they only block time).
object
    One stored resource in a calendar, named by its ``href`` (CalDAV resource path, Google
    event id), holding one UID: a single event, or a recurring master with its overrides.
busy block
    One occurrence of an event that blocks time, reduced to its interval. Titles,
    descriptions and attendees never leave the adapter: only busy/free is published.
sync state
    An opaque string the adapter returns after each sync and gets back next time (a
    CalDAV sync token or ETag map, a Google ``nextSyncToken``). ``None`` means "never
    synced": the adapter then does a full sync.
session event
    An event this daemon writes for a booked session, identified by a stable UID derived
    from the session id, so writes are idempotent and retries never duplicate.

Errors are distinct so callers can act on them: :class:`Unavailable` is transient (retry
with backoff, keep the last good data), :class:`NotFound` and :class:`Conflict` answer
conditional writes, :class:`AuthFailed` and :class:`BadConfiguration` need a person.
A failed request is always an exception, never an empty result: an empty answer would
read as "every event was deleted".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from rules.intervals import Interval, require_aware


class ConnectorError(Exception):
    """Base of every error raised by an adapter; ``calendar`` names the calendar."""

    def __init__(self, message: str, *, calendar: str = "") -> None:
        super().__init__(f"{calendar}: {message}" if calendar else message)
        self.calendar = calendar


class Unavailable(ConnectorError):
    """The server could not be reached or answered 429/5xx; try again later."""

    def __init__(
        self, message: str, *, calendar: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, calendar=calendar)
        self.retry_after = retry_after


class AuthFailed(ConnectorError):
    """Credentials were refused (401/403 not caused by a precondition)."""


class BadConfiguration(ConnectorError):
    """The calendar does not exist or the configuration cannot work with this server."""


class NotFound(ConnectorError):
    """The object to update or delete is not on the server."""


class Conflict(ConnectorError):
    """A conditional write failed: the object exists (create) or changed (ETag mismatch)."""


def brief(exc: BaseException, *, may_quote_data: bool = False) -> str:
    """The gist of ``exc`` for an error message or a :class:`Problem`: its first line.

    With ``may_quote_data`` (a parser's error about a technician's calendar, which may
    quote the offending line: a private title or description) only the part before the
    first colon is kept.
    """
    if may_quote_data:
        text = str(exc).split(":", 1)[0].strip() or type(exc).__name__
        return text[:120]
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


@dataclass(frozen=True, slots=True)
class Problem:
    """Bad data met while reading a calendar; logged, never fatal to a sync."""

    calendar: str
    uid: str | None
    message: str
    severity: Literal["warning", "error"] = "warning"

    def __str__(self) -> str:
        return f"{self.calendar} UID={self.uid or '?'}: {self.message}"


SessionState = Literal["booked", "in_progress", "completed", "rescheduled", "cancelled"]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Everything written into a technician's calendar for one session.

    ``state`` drives the visible marker (summary prefix, STATUS, colour) and whether the
    event blocks time: rescheduled and cancelled sessions are transparent, so the
    technician's time is freed without deleting what happened.
    """

    uid: str  # stable, derived from the session id
    start: datetime
    end: datetime
    summary: str  # e.g. "Empresa X — Atendimento remoto"
    description: str  # responsible person, phone, tool + ID, problem, check-in link
    state: SessionState = "booked"
    url: str = ""  # check-in link
    alarm_minutes: int = 10
    organizer_email: str = ""
    attendee_email: str = ""
    attendee_name: str = ""
    # DTSTAMP: when the daemon made this version, from its clock (adapters read no clock).
    stamp: datetime | None = None

    @property
    def blocks_time(self) -> bool:
        return self.state in ("booked", "in_progress", "completed")


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object created, changed or deleted since the last sync.

    ``blocks`` are the object's busy occurrences inside the sync window (empty when the
    event is transparent, cancelled or declined). For an object that is one of our
    session events, ``start``/``end`` give its current time so the daemon can notice a
    technician moving it, and ``cancelled`` a technician cancelling it.

    ``written``: listed with the very ETag the caller said it wrote there (``known`` of
    :meth:`Calendar.sync`), so not fetched: only ``href`` and ``etag`` are set, and the
    caller fills in the rest from what it wrote.
    """

    href: str
    uid: str | None
    etag: str | None
    deleted: bool = False
    blocks: tuple[Interval, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    cancelled: bool = False
    problems: tuple[Problem, ...] = ()
    written: bool = False


@dataclass(frozen=True, slots=True)
class SyncResult:
    """``full`` means the changes describe the whole calendar: drop anything not listed."""

    changes: Sequence[ObjectChange]
    state: str | None
    full: bool
    problems: Sequence[Problem] = field(default_factory=tuple)
    requests: int = 0  # HTTP requests spent, for benchmarks and metrics


class Calendar(Protocol):
    """A calendar that blocks time."""

    @property
    def name(self) -> str:
        """A short printable name for logs (URL or calendar id, no credentials)."""
        ...

    def sync(
        self, state: str | None, window: Interval, known: Mapping[str, str] | None = None
    ) -> SyncResult:
        """Changes since ``state`` with busy blocks expanded over ``window``.

        An invalid or expired ``state`` makes the adapter resync in full and say so with
        ``full=True``. Raises :class:`ConnectorError` subclasses; never returns a partial
        result as if it were complete. The adapter logs each of ``problems`` (a warning
        naming the calendar and UID) so that callers need not.

        ``known`` maps hrefs to the ETag the server gave the caller's own write there.
        An adapter that must fetch a changed object's body may skip one listed with that
        same ETag and report it ``written`` (see :class:`ObjectChange`): the daemon's
        session events come back on the next sync, and it already knows what they say.
        An adapter that gets bodies with the listing may ignore ``known``.
        """
        ...


class SessionCalendar(Calendar, Protocol):
    """A calendar the daemon writes session events into."""

    def put_session(self, event: SessionEvent, etag: str | None = None) -> str:
        """Create or update ``event`` by its UID; returns the new ETag.

        With ``etag=None`` the write is a create that must not overwrite: if the UID
        already exists the adapter compares and updates it (a retried create is not a
        duplicate). With an ETag the update is conditional and raises :class:`Conflict`
        when the object changed meanwhile.
        """
        ...

    def get_session(self, uid: str) -> tuple[ObjectChange, str] | None:
        """The current state of a session event and its ETag, or None if absent."""
        ...

    def session_href(self, uid: str) -> str:
        """The href the session event with ``uid`` is written under, as :meth:`sync` names
        it. A deletion can arrive as that bare href alone (a CalDAV ``sync-collection``
        404, a Google ``status: cancelled``), so the daemon keeps it for each session it
        writes. Pure: no request."""
        ...

    def delete_session(self, uid: str, etag: str | None = None) -> None:
        """Remove a session event; absent already is success (idempotent)."""
        ...


def sync_problems(
    changes: Sequence[ObjectChange], problems: Sequence[Problem], logger: logging.Logger
) -> tuple[Problem, ...]:
    """Every problem of a sync, its objects' included, each logged once (see
    :meth:`Calendar.sync`)."""
    found = (*problems, *(p for change in changes for p in change.problems))
    for problem in found:
        logger.warning("%s", problem)
    return found


def dump_state(version: int, window: Interval, **fields: Any) -> str:
    """An adapter's sync state as the compact JSON the store keeps."""
    data = {"v": version, "window": [window.start.isoformat(), window.end.isoformat()], **fields}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def load_state(text: str, version: int) -> tuple[dict[str, Any], Interval]:
    """The fields and window of a :func:`dump_state` string; raises ValueError (or
    KeyError/TypeError) when ``text`` is not a state of ``version``."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != version:
        raise ValueError("unknown sync state version")
    start, end = (datetime.fromisoformat(x) for x in data["window"])
    return data, Interval(require_aware(start, "window"), require_aware(end, "window"))


class _WindowedState(Protocol):
    @property
    def window(self) -> Interval: ...


StateT = TypeVar("StateT", bound=_WindowedState)


def resume_state(
    state: str | None,
    window: Interval,
    decode: Callable[[str], StateT],
    *,
    calendar: str,
    problems: list[Problem],
) -> StateT | None:
    """An adapter's saved sync state if an incremental sync can start from it, else None.

    None (a full sync) when there is none, when it cannot be read (said in ``problems``),
    or when ``window`` reaches past the range blocks were expanded over: unchanged
    recurring events were never expanded there. ``decode`` raises ValueError, KeyError or
    TypeError for text that is not a state of its adapter.
    """
    if state is None:
        return None
    try:
        saved = decode(state)
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(Problem(calendar, None, f"sync state unreadable ({exc}); full resync"))
        return None
    if not saved.window.contains(window):
        logging.getLogger("expediente.connectors").info(
            "%s: window moved past the expanded range; full resync", calendar
        )
        return None
    return saved
