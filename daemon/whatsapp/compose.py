"""What a WhatsApp message says: a template's parameters, or free-form text in the window.

Business-initiated messages are templates the desk had approved (their wording lives at
Meta; deploy/whatsapp.md lists them). Every template takes the same five body parameters,
in this order: the date, the time, the technician, the remote-access tool and the link
(the client's manage link: see, cancel, rebook, or book again). None of them is text the
client typed: a template never echoes a client's words back, so nobody can make the
desk's number send their text. Parameters are one line each (Meta refuses new lines,
tabs and runs of spaces).

Inside the 24-hour window after the client's last message a notification can be
free-form text instead: the same facts, and for the reminder the whole preparation
checklist the mail has. Answers to a client's message are always free-form (they just
wrote, so the window is open).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from daemon.config import Config
from daemon.events import manage_url
from daemon.i18n import day_label, gettext, language_of
from daemon.invitation import checklist, one_line
from daemon.signing import Signer
from daemon.store import SessionRecord
from rules.contact import whatsapp_id
from rules.lifecycle import checkin_opens
from rules.messages import N_

# The free-form text of each notification, by event (msgids).
TEXTS: Mapping[str, str] = {
    "booked": N_(
        "Hello, {name}! Your remote session with {technician} is booked for {date} at "
        "{time}. See, cancel or rebook it here: {link}"
    ),
    "moved": N_(
        "Hello, {name}! Your remote session has a new time: {date} at {time}, with "
        "{technician}. See, cancel or rebook it here: {link}"
    ),
    "reminder": N_("Reminder: your remote session with {technician} is on {date} at {time}."),
    "rescheduled": N_(
        "The remote session booked for {date} at {time} did not start within the tolerance "
        "and must be rescheduled. Choose a new time here: {link}"
    ),
    "cancelled": N_(
        "The remote session booked for {date} at {time} was cancelled. To book another time: {link}"
    ),
}
# Answers to a client's message (msgids).
REPLIES: Mapping[str, str] = {
    "checked_in": N_(
        "Thank you, {name}! {technician} is starting your session now: keep {tool} open "
        "and the access details at hand."
    ),
    "next": N_(
        "Hello! Your next remote session is on {date} at {time}, with {technician}. Write "
        "here from {opens} to start it."
    ),
    "book": N_(
        "Hello! There is no session booked for this number now. Book a remote session here: {link}"
    ),
}
# The events sent as templates, and the template an event uses ("moved" re-sends the
# confirmation with the new time; the answer about the next session says what it says).
TEMPLATE_OF: Mapping[str, str] = {
    "booked": "booked",
    "moved": "booked",
    "reminder": "reminder",
    "rescheduled": "rescheduled",
    "cancelled": "cancelled",
    "next": "booked",
}


def parameter(text: str) -> str:
    """A template parameter as Meta takes it: one line, no run of more than one space."""
    return re.sub(r"\s+", " ", one_line(text)).strip() or "-"


class Composer:
    def __init__(self, config: Config, signer: Signer) -> None:
        self.config = config
        self.signer = signer

    def _values(self, session: SessionRecord, language: str) -> dict[str, str]:
        zone = self.config.policy.timezone
        start = session.start.astimezone(zone)
        technician = self.config.technician(session.technician_id)
        return {
            "date": day_label(start.date(), language),
            "time": f"{start:%H:%M}",
            "technician": technician.name if technician else session.technician_id,
            "tool": session.remote_tool,
            "link": manage_url(
                self.config.server.public_url, self.signer, session, self.config.policy
            ),
            "name": session.responsible_name,
            "opens": f"{checkin_opens(self.config.policy, session.start).astimezone(zone):%H:%M}",
        }

    def template(self, event: str, session: SessionRecord) -> dict[str, Any]:
        """The template message of ``event`` (a key of :data:`TEMPLATE_OF`), in the
        desk's language. Raises KeyError for an event without a template."""
        whatsapp = self.config.whatsapp
        assert whatsapp is not None, "WhatsApp is configured"  # noqa: S101 - wiring
        name = whatsapp.templates.for_event(TEMPLATE_OF[event])
        assert name is not None  # noqa: S101 - TEMPLATE_OF names template events only
        language = self.config.desk.language
        values = self._values(session, language)
        texts = [values[key] for key in ("date", "time", "technician", "tool", "link")]
        return {
            "recipient_type": "individual",
            "to": whatsapp_id(session.phone),
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": whatsapp.template_language(language)},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": parameter(t)} for t in texts],
                    }
                ],
            },
        }

    def notification_text(self, event: str, session: SessionRecord) -> str:
        """The free-form text of a notification, in the session's language."""
        language = language_of(session.language)
        _ = gettext(language)
        values = self._values(session, language)
        text = _(TEXTS[event]).format(**values)
        if event == "reminder":
            lines = [text, "", _("How to prepare") + ":"]
            lines += checklist(self.config, session, language)
            lines += ["", _("See, cancel or rebook the session:"), values["link"]]
            text = "\n".join(lines)
        return text

    def reply_text(self, reply: str, session: SessionRecord | None, language: str) -> str:
        """An answer to a client's message; ``session`` is ``None`` for ``book``."""
        _ = gettext(language)
        if session is None:
            return _(REPLIES[reply]).format(link=f"{self.config.server.public_url}/")
        return _(REPLIES[reply]).format(**self._values(session, language_of(session.language)))


def text_message(to: str, body: str) -> dict[str, Any]:
    """A free-form text message (links in it are not previewed: they are capabilities)."""
    return {
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": False, "body": body[:4096]},
    }
