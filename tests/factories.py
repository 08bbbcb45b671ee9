"""The suite's sample booking, written once: as a client sends it, and as the store keeps it.

A test that needs "a booking" starts from here and overrides only the fields it is about,
so its arguments say what it tests. There are two samples because the desk meets two kinds
of client:

- :data:`SAMPLE`, every field filled in (Maria Lima of Relojoaria Central, whose time clock
  does not sync): the booking page's own example, and what mails, events and pages show;
- :data:`REQUIRED`, only what the default desk requires (company, person, phone, the rules
  accepted), as a client in a hurry gives it: the optional fields are allowed to be empty.

Each sample comes in the shapes the layers take: a JSON body (:func:`booking`), a
``BookingRequest`` (:func:`booking_request`), the booking page's form (:func:`booking_form`).
The stored forms (:func:`new_session`, :func:`session_record`) are :data:`SAMPLE` as the
store keeps it after validation, which writes the phone in E.164. :func:`private_event` is
the other side of a booking: a technician's own busy time, as their calendar app writes it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.store import NewSession, SessionRecord
from rules.model import BookingRequest, Status
from tests.rules.factories import SAO_PAULO

SAMPLE: dict[str, Any] = {
    "company": "Relojoaria Central",
    "responsible_name": "Maria Lima",
    "phone": "(11) 98765-4321",
    "email": "maria@example.com",
    "remote_tool": "AnyDesk",
    "remote_id": "123 456 789",
    "description": "Relógio de ponto não sincroniza",
    "accept_rules": True,
}

REQUIRED: dict[str, Any] = {
    "company": "Ótica Sol",
    "responsible_name": "João",
    "phone": "11 3456-7890",
    "accept_rules": True,
}


def _fields(start: Any, type: str, only_required: bool, changes: dict[str, Any]) -> dict[str, Any]:
    return {"type": type, "start": start, **(REQUIRED if only_required else SAMPLE), **changes}


def booking(
    start: str | datetime, type: str = "standard", *, only_required: bool = False, **changes: Any
) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/bookings``; a datetime ``start`` is sent in ISO 8601."""
    when = start.isoformat() if isinstance(start, datetime) else start
    return _fields(when, type, only_required, changes)


def booking_request(
    start: datetime, type: str = "standard", *, only_required: bool = False, **changes: Any
) -> BookingRequest:
    """What the service and ``rules.booking.validate`` take."""
    return BookingRequest(**_fields(start, type, only_required, changes))


def booking_form(start: str, **changes: str) -> dict[str, str]:
    """:data:`SAMPLE` as the booking page's form sends it (the type is in the URL); a
    change to ``None`` leaves the field out."""
    form = {k: str(v) for k, v in booking(start).items() if k != "type"}
    form["accept_rules"] = "yes"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


# As the store keeps SAMPLE: the phone normalised by rules.contact, the remote id as
# AnyDesk shows it.
STORED: dict[str, Any] = {
    **{k: v for k, v in SAMPLE.items() if k != "accept_rules"},
    "phone": "+5511987654321",
    "remote_id": "123456789",
}

# The store tests' start: Tuesday 2026-12-01, 09:00 at the desk.
SESSION_START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def new_session(
    start: datetime = SESSION_START, minutes: int = 30, tech: str = "ana", **changes: object
) -> NewSession:
    """A validated booking, ready for ``Store.insert_booking``, with a fresh id."""
    session_id = uuid.uuid4().hex
    values: dict[str, object] = {
        "id": session_id,
        "type": "standard",
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "technician_id": tech,
        **STORED,
        "language": "pt-BR",
        "rules_version": "v1",
        "calendar_uid": f"expediente-{session_id}",
    }
    values.update(changes)
    return NewSession(**values)  # type: ignore[arg-type]


# Booked on Monday 2026-11-30 at 07:00 for 10:00, desk time (the notification tests' day).
RECORD_BOOKED = datetime(2026, 11, 30, 7, 0, tzinfo=SAO_PAULO)
RECORD_START = datetime(2026, 11, 30, 10, 0, tzinfo=SAO_PAULO)


def session_record(**changes: Any) -> SessionRecord:
    """A stored, booked session ``s1`` of Ana's, as the store returns it."""
    values: dict[str, Any] = {
        "id": "s1",
        "type": "standard",
        "start": RECORD_START,
        "end": RECORD_START + timedelta(minutes=30),
        "technician_id": "ana",
        "status": Status.BOOKED,
        **STORED,
        "language": "pt-BR",
        "rules_accepted_at": RECORD_BOOKED,
        "rules_version": "v1",
        "created_at": RECORD_BOOKED,
        "updated_at": RECORD_BOOKED,
        "checked_in_at": None,
        "ended_at": None,
        "cancel_reason": None,
        "calendar_uid": "expediente-s1",
        "calendar_etag": None,
        "needs_attention": None,
        "rebooked_from": None,
    }
    values.update(changes)
    return SessionRecord(**values)


# ---------------------------------------------------------------------- calendars


def private_event(uid: str, start: str, end: str, *extra: str) -> str:
    """A technician's own event as their calendar app writes it: busy from ``start`` to
    ``end`` (UTC, ``YYYYMMDDTHHMMSSZ``), plus ``extra`` content lines."""
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//technician app//EN", "BEGIN:VEVENT",
        f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"DTSTART:{start}", f"DTEND:{end}",
        "SUMMARY:private", *extra, "END:VEVENT", "END:VCALENDAR",
    ]  # fmt: skip
    return "\r\n".join(lines) + "\r\n"
