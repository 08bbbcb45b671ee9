"""The desk's policy and the booking vocabulary, as frozen values.

Everything the rules decide from is in :class:`Policy`; the daemon builds it from the
configuration file and hands it in together with ``now`` and busy time. Nothing here
reads a file, the network or the clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, order=True, slots=True)
class TimeRange:
    """One opening range of a day in the desk's zone, ``[start, end)``, e.g. 07:30-12:00."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError(f"range {self} must end after it starts")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """Parse ``"07:30-12:00"``; raises ValueError naming the expected form."""
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
        if not match:
            raise ValueError(f'not a time range: {text!r}; write it like "07:30-12:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 < 24 and 0 <= m1 < 60 and 0 <= h2 < 24 and 0 <= m2 < 60):
            raise ValueError(f"time out of range in {text!r}")
        return cls(time(h1, m1), time(h2, m2))


@dataclass(frozen=True, slots=True)
class SessionType:
    name: str
    label: str
    duration: timedelta
    min_notice: timedelta
    description: str = ""


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """A remote-access tool the desk allows (R1) and how its access ID looks."""

    name: str
    id_pattern: str | None = None  # a full-match regex on the ID with spaces removed
    id_example: str = ""

    def id_is_valid(self, remote_id: str) -> bool:
        compact = re.sub(r"[\s-]", "", remote_id)
        if re.fullmatch(r"[0-9.]+", compact):
            compact = compact.replace(".", "")  # "123.456.789", as numbers are written here
        if not compact or len(remote_id) > 128:
            return False
        if self.id_pattern is None:
            return True
        # ASCII: "１２３…" or "١٢٣…" match \d but no remote-access client can dial them.
        return re.fullmatch(self.id_pattern, compact, flags=re.IGNORECASE | re.ASCII) is not None


# Known tools: their public ID formats. An unknown tool name accepts any short ID.
KNOWN_TOOLS: Mapping[str, RemoteTool] = {
    "anydesk": RemoteTool(
        "AnyDesk",
        # 9-10 digits, or an alias such as "loja-centro@ad" / "name@namespace".
        id_pattern=r"\d{9,10}|[a-z0-9][a-z0-9._-]{0,63}@[a-z0-9][a-z0-9_-]{0,31}",
        id_example="123 456 789",
    ),
    "teamviewer": RemoteTool("TeamViewer", id_pattern=r"\d{9,10}", id_example="1 234 567 890"),
    "rustdesk": RemoteTool(
        "RustDesk", id_pattern=r"\d{9,10}|[a-z0-9_-]{6,16}", id_example="123456789"
    ),
    "chrome remote desktop": RemoteTool(
        "Chrome Remote Desktop", id_pattern=r"\d{12}", id_example="123456789012"
    ),
}


def remote_tool(name: str) -> RemoteTool:
    """The known definition for ``name`` (case-insensitive), or a permissive one."""
    known = KNOWN_TOOLS.get(name.strip().lower())
    return (
        RemoteTool(name.strip(), known.id_pattern, known.id_example)
        if known
        else RemoteTool(name.strip())
    )


@dataclass(frozen=True, slots=True)
class Technician:
    id: str
    name: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.id


class HolidayLookup(Protocol):
    """What the rules need from a holiday calendar (the ``holidays`` package fits)."""

    def get(self, key: date, default: None = None) -> str | None: ...


class NoHolidays:
    """A holiday calendar with none, for tests and desks that open on holidays."""

    def get(self, key: date, default: None = None) -> str | None:
        return default


BOOKING_FIELDS = (
    "company",
    "responsible_name",
    "phone",
    "email",
    "remote_tool",
    "remote_id",
    "description",
)
DEFAULT_REQUIRED_FIELDS = frozenset({"company", "responsible_name", "phone"})


@dataclass(frozen=True, slots=True)
class Policy:
    """The desk's rules (R1-R7 of the policy document) in computable form."""

    timezone: ZoneInfo
    weekly: Mapping[int, tuple[TimeRange, ...]]  # 0 = Monday
    session_types: Mapping[str, SessionType]
    technicians: tuple[Technician, ...]
    holidays: HolidayLookup = _field(default_factory=NoHolidays)
    closed_dates: Mapping[date, str] = _field(default_factory=dict)
    overrides: Mapping[date, tuple[TimeRange, ...]] = _field(default_factory=dict)
    slot_step: timedelta = timedelta(minutes=30)
    buffer: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=30)
    grace: timedelta = timedelta(minutes=10)
    checkin_early: timedelta = timedelta(minutes=30)
    remote_tools: tuple[RemoteTool, ...] = (KNOWN_TOOLS["anydesk"],)
    required_fields: frozenset[str] = DEFAULT_REQUIRED_FIELDS
    rules_version: str = "1"
    # The technicians' ids in their order: asked for on every slot listing and booking.
    technician_ids: tuple[str, ...] = _field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.slot_step <= timedelta(0):
            raise ValueError("slot_step must be positive")
        if not self.session_types:
            raise ValueError("at least one session type is needed")
        object.__setattr__(self, "technician_ids", tuple(t.id for t in self.technicians))

    def tool(self, name: str) -> RemoteTool | None:
        wanted = name.strip().lower()
        for tool in self.remote_tools:
            if tool.name.lower() == wanted:
                return tool
        return None

    def technician(self, technician_id: str) -> Technician | None:
        for tech in self.technicians:
            if tech.id == technician_id:
                return tech
        return None


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """What a client submits. ``start`` is aware; text fields are as typed."""

    type: str
    start: datetime
    company: str = ""
    responsible_name: str = ""
    phone: str = ""
    email: str = ""
    remote_tool: str = ""
    remote_id: str = ""
    description: str = ""
    accept_rules: bool = False
    language: str = "pt-BR"


class Code(StrEnum):
    """Violation codes: a stable, machine-readable contract (the table in docs/api.md)."""

    CLOSED_DAY = "closed_day"
    OUTSIDE_HOURS = "outside_hours"
    SPANS_BREAK = "spans_break"
    INSUFFICIENT_NOTICE = "insufficient_notice"
    BEYOND_HORIZON = "beyond_horizon"
    IN_PAST = "in_past"
    UNKNOWN_TYPE = "unknown_type"
    NO_TECHNICIAN_AVAILABLE = "no_technician_available"
    SLOT_TAKEN = "slot_taken"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    RULES_NOT_ACCEPTED = "rules_not_accepted"
    TOOL_NOT_ALLOWED = "tool_not_allowed"
    # The only free technicians have calendar data too old to trust (a calendar server
    # is down): try again later, rather than risk a double booking.
    CALENDAR_STALE = "calendar_stale"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule. ``params`` fill the message template in any language."""

    code: Code
    field: str | None = None
    detail: str = ""  # a sub-reason, e.g. "holiday" or "grid", picks a more precise message
    params: Mapping[str, str] = _field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid booking: the chosen technician and the request's normalised fields."""

    technician_id: str
    start: datetime
    end: datetime
    type: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Rejected:
    violations: tuple[Violation, ...]

    @property
    def codes(self) -> list[str]:
        return [str(v.code) for v in self.violations]


class Status(StrEnum):
    BOOKED = "booked"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = frozenset({Status.BOOKED, Status.IN_PROGRESS})
