"""What a session looks like in the technician's calendar.

Everything needed to start the session is in the event (R1, R2, R7): company, responsible
person, phone/WhatsApp with a click-to-chat link, remote tool and access ID, the problem,
and the signed check-in link. Client text goes in as values; the iCalendar and JSON
libraries escape it.

The client's free text (the problem) comes last, labelled and quoted line by line
(:func:`client_text`): it could otherwise hold a line reading exactly like the daemon's
check-in link or phone line. Single-line fields follow their labels on one line; intake
already removed anything invisible from all of them (``rules.booking.clean_text``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connectors.base import SessionEvent, SessionState
from daemon.i18n import DEFAULT_LANGUAGE, gettext
from daemon.signing import Signer
from daemon.store import SessionRecord
from daemon.store.records import SESSION_UID_PREFIX
from rules.contact import format_phone
from rules.model import Policy

CHECKIN_PURPOSE = "checkin"
MANAGE_PURPOSE = "manage"

QUOTE = "> "  # begins every line of client text; no line of the daemon's does


def client_text(text: str, language: str) -> list[str]:
    """The client's description as the last lines of a message for the desk: a label,
    then each line quoted. Empty when there is none."""
    if not text:
        return []
    quoted = [(QUOTE + line).rstrip() for line in text.split("\n")]
    _ = gettext(language)
    return [_("Problem, in the client's words (not verified):"), *quoted]


def calendar_uid(session_id: str) -> str:
    """The stable UID of a session's event: letters, digits and a dash (safe everywhere)."""
    return f"{SESSION_UID_PREFIX}{session_id}"


def is_session_uid(uid: str) -> bool:
    """Whether ``uid`` could be one of our session events (a sync looks up only these)."""
    return uid.startswith(SESSION_UID_PREFIX)


def checkin_url(public_url: str, signer: Signer, session: SessionRecord, policy: Policy) -> str:
    token = signer.sign(CHECKIN_PURPOSE, session.id, session.end + policy.grace + timedelta(days=1))
    return f"{public_url}/checkin/{token}"


def manage_url(public_url: str, signer: Signer, session: SessionRecord, policy: Policy) -> str:
    """The client's link to see, cancel or rebook a session.

    It stays valid a horizon past the session, so a client who missed a session can still
    use it to book again (R5).
    """
    token = signer.sign(MANAGE_PURPOSE, session.id, session.end + policy.horizon)
    return f"{public_url}/manage/{token}"


def session_event(
    session: SessionRecord,
    policy: Policy,
    *,
    public_url: str,
    signer: Signer,
    language: str = DEFAULT_LANGUAGE,
    alarm_minutes: int = 10,
    now: datetime,
) -> SessionEvent:
    _ = gettext(language)
    session_type = policy.session_types.get(session.type)
    type_label = session_type.label if session_type else session.type
    url = checkin_url(public_url, signer, session, policy)
    digits = session.phone.lstrip("+")
    access = session.remote_id or _("(the client gives it when calling)")
    lines = [
        _("Responsible person") + f": {session.responsible_name}",
        _("Phone/WhatsApp") + f": {format_phone(session.phone)} (https://wa.me/{digits})",
        _("Remote access") + f": {session.remote_tool} — " + _("ID") + f": {access}",
    ]
    minutes = int(policy.grace.total_seconds() // 60)
    lines += [
        "",
        _(
            "Tolerance: {minutes} min; without a check-in by then the session is rescheduled."
        ).format(minutes=minutes),
        _("Check-in (open when the client calls)") + f": {url}",
        _("Session") + f": {session.id}",
    ]
    if session.description:
        lines += ["", *client_text(session.description, language)]
    state: SessionState = session.status.value
    return SessionEvent(
        uid=session.calendar_uid,
        start=session.start,
        end=session.end,
        summary=f"{session.company} — {type_label}",
        description="\n".join(lines),
        state=state,
        url=url,
        alarm_minutes=alarm_minutes,
        stamp=now,
    )
