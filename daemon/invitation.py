"""The client's copy of a session as iCalendar, built once for every place that offers it.

The confirmation mail attaches it as an iTIP ``REQUEST`` (RFC 5546), the cancellation mail
as a ``CANCEL``, and the manage page's download as a ``PUBLISH`` file; all three come from
:func:`client_calendar`, so they share the UID, the SEQUENCE and the words. A client who
adds the download and later opens the mail ends up with one event, which the next change
(a higher SEQUENCE) updates and a ``CANCEL`` removes.

The UID is ``<calendar_uid>-client``, deliberately not the technician's event's: that one
lives in another calendar and carries the check-in link. Nothing about the technician goes
in beyond the desk's name.

A cancelled session's calendar is always a ``CANCEL`` with ``STATUS:CANCELLED`` and no
alarm, whoever asks for it: a late download must not bring back an event, nor ring for one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from icalendar import Alarm, Calendar, Event, vCalAddress

from daemon.config import Config
from daemon.i18n import gettext
from daemon.store import SessionRecord
from rules.lifecycle import client_may_change, noshow_deadline
from rules.model import Status

PRODID = "-//expediente//client copy//EN"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
ALARM_BEFORE = timedelta(minutes=30)

Method = Literal["REQUEST", "CANCEL", "PUBLISH"]


def client_uid(session: SessionRecord) -> str:
    """The UID of the client's copy of the event (mail and download alike)."""
    return f"{session.calendar_uid}-client"


def sequence(session: SessionRecord) -> int:
    """The copy's revision: it grows with every change to the session (whole seconds
    from booking to the last update), and is at least 1 once cancelled, so the
    ``CANCEL`` outranks a first ``REQUEST`` sent in the same second."""
    revision = max(0, int((session.updated_at - session.created_at).total_seconds()))
    return max(revision, 1) if session.status == Status.CANCELLED else revision


def access_text(session: SessionRecord, language: str) -> str:
    """What the client reads out when calling: the tool and its ID when known."""
    _ = gettext(language)
    if session.remote_id:
        return _("{tool}, ID {id}").format(tool=session.remote_tool, id=session.remote_id)
    return _("the ID {tool} shows").format(tool=session.remote_tool)


def checklist(config: Config, session: SessionRecord, language: str) -> list[str]:
    """The preparation the desk's policy asks of the client (R2, R5, R6, R7), as the
    lines of a list (the desk's contacts indented under the call)."""
    _ = gettext(language)
    desk = config.desk
    zone = config.policy.timezone
    start = session.start.astimezone(zone)
    deadline = noshow_deadline(config.policy, session.start).astimezone(zone)
    lines = [
        _("Install {tool} on the computer before {time}.").format(
            tool=session.remote_tool, time=f"{start:%H:%M}"
        ),
        _(
            "At the booked time, call the desk by WhatsApp or phone with the access details "
            "({access})."
        ).format(access=access_text(session, language)),
    ]
    if desk.whatsapp:
        lines.append("  " + _("WhatsApp") + f": {desk.whatsapp}")
    if desk.phone:
        lines.append("  " + _("Phone") + f": {desk.phone}")
    lines += [
        _(
            "{name} (or another person responsible at the company) must be present for the "
            "whole session."
        ).format(name=session.responsible_name),
        _(
            "Up to {minutes} minutes of delay are tolerated: with no call by {deadline}, the "
            "session is rescheduled and you get a link to book again."
        ).format(
            minutes=int(config.policy.grace.total_seconds() // 60),
            deadline=f"{deadline:%H:%M}",
        ),
        _("During the session, only touch the keyboard or mouse when the technician asks."),
    ]
    return [line if line.startswith("  ") else f"- {line}" for line in lines]


def one_line(text: str) -> str:
    """User text flattened to one line: a header, a parameter or a subject never breaks."""
    return _CONTROL.sub(" ", text).strip()


def method_of(session: SessionRecord, *, invitation: bool) -> Method:
    """The copy's METHOD: see :func:`client_calendar`."""
    if session.status == Status.CANCELLED:
        return "CANCEL"
    return "REQUEST" if invitation else "PUBLISH"


def client_calendar(
    config: Config,
    session: SessionRecord,
    *,
    manage: str,
    language: str,
    stamp: datetime,
    now: datetime,
    invitation: bool,
    revision: int | None = None,
) -> bytes:
    """The client's copy of ``session`` as a VCALENDAR.

    ``invitation``: for a mail (iTIP ``REQUEST``, with the client as attendee) rather
    than a download (``PUBLISH``); a cancelled session is a ``CANCEL`` either way.
    ``manage`` is the client's link, ``stamp`` the DTSTAMP, ``now`` decides whether the
    copy still offers to cancel or rebook online (the cut-off), ``revision`` the
    SEQUENCE to use instead of the session's own (the one a mail was planned with).
    """
    _ = gettext(language)
    cancelled = session.status == Status.CANCELLED
    method = method_of(session, invitation=invitation)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", client_uid(session))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", session.start.astimezone(UTC))
    event.add("dtend", session.end.astimezone(UTC))
    event.add("sequence", sequence(session) if revision is None else revision)
    summary = _("Remote session — {desk}").format(desk=config.desk.name)
    event.add("summary", summary)
    may_change = client_may_change(session.status, session.start, config.booking.cancel_cutoff, now)
    link = (
        _("See, cancel or rebook: {url}") if may_change else _("See the session: {url}")
    ).format(url=manage)
    event.add("description", "\n".join([*checklist(config, session, language), "", link]))
    event.add("location", session.remote_tool)
    event.add("url", manage)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    sender = config.smtp.from_address if config.smtp is not None else config.desk.email
    if sender:
        organizer = vCalAddress(f"mailto:{sender}")
        name = config.smtp.from_name if config.smtp is not None else config.desk.name
        organizer.params["CN"] = one_line(name)
        event.add("organizer", organizer)
    if method != "PUBLISH" and session.email:
        attendee = vCalAddress(f"mailto:{one_line(session.email)}")
        attendee.params["CN"] = one_line(session.responsible_name)
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "FALSE"
        event.add("attendee", attendee)
    if not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", -ALARM_BEFORE)
        event.add_component(alarm)
    calendar.add_component(event)
    return bytes(calendar.to_ical())
