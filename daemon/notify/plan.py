"""Planning: which deliveries a session event causes, fixed when the outbox expands it.

A plan is stored, then delivered later, possibly after a restart, so everything a
delivery must say about the moment of the event is decided here and kept in its payload:
the invitation's SEQUENCE, a move's old time, the webhook's id and body. Planned again
after a crash, an event gives the same deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from daemon.invitation import sequence
from daemon.notify.base import Delivery, NotifierBase, _instants, log
from daemon.notify.webhooks import delivery_id, session_document
from daemon.store import SessionRecord

# "moved": the technician moved the session in their calendar to another valid time.
# "resend": the desk sends the client's confirmation again (the desk console); the client
# gets the booked mail and invitation once more, nobody else anything.
EVENTS = ("booked", "checked_in", "rescheduled", "cancelled", "completed", "moved", "resend")
# Webhooks are configured with session statuses; the event named differently is this one.
_HOOK_STATUS = {"checked_in": "in_progress"}

Kind = Literal["booked", "moved", "reminder", "rescheduled", "cancelled", "notice"]
_CLIENT_MAIL: Mapping[str, Kind] = {
    "booked": "booked",
    "resend": "booked",
    # A confirmation that says what changed, with an invitation whose same UID and higher
    # SEQUENCE make the client's calendar app move its copy of the event.
    "moved": "moved",
    "rescheduled": "rescheduled",
    "cancelled": "cancelled",
}


class Planner(NotifierBase):
    """Turns one session event into its deliveries (who gets what: the package docstring)."""

    def plan(
        self,
        session: SessionRecord,
        event: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> list[Delivery]:
        """The deliveries ``event`` causes for ``session``; ``[]`` for an unknown event.

        ``details`` is the outbox item's payload: for ``moved``, ``from_start`` and
        ``from_end`` (ISO 8601) say the time it had, which the mail and webhooks tell.
        """
        if event not in EVENTS:
            log.warning("no notifications for unknown event %r (session %s)", event, session.id)
            return []
        deliveries: list[Delivery] = []
        config = self.config
        notes = config.notifications
        previous = _previous(details) if event == "moved" else {}
        if config.smtp is not None:
            kind = _CLIENT_MAIL.get(event)
            if notes.client_email and session.email and kind is not None:
                mail = self._mail(kind, "client", session.email, event, sequence=sequence(session))
                deliveries.append(Delivery("mail", {**mail.payload, **previous}))
                reminder = config.booking.reminder
                if kind in ("booked", "moved") and event != "resend" and reminder is not None:
                    # (for "moved" too: the reminder planned for the old time is dropped
                    # at delivery, since it names a start the session no longer has)
                    due = session.start - reminder
                    if due > now:
                        deliveries.append(
                            Delivery(
                                "mail",
                                {
                                    **self._mail(
                                        "reminder", "client", session.email, event
                                    ).payload,
                                    "start": session.start.isoformat(),
                                },
                                not_before=due,
                            )
                        )
            technician = config.technician(session.technician_id)
            staff_events = ("booked", "rescheduled", "cancelled")
            if notes.technician_email and technician and technician.email and event in staff_events:
                deliveries.append(self._mail("notice", "technician", technician.email, event))
            if notes.admin_email and event in ("rescheduled", "cancelled"):
                deliveries.append(self._mail("notice", "admin", notes.admin_email, event))
        if event == "resend":
            return deliveries
        status = _HOOK_STATUS.get(event, event)
        # The status change's own time, not the planning time: planned again after a crash,
        # the event keeps its id and body, and receivers can drop the duplicate.
        occurred_at = session.updated_at.astimezone(UTC).isoformat(timespec="seconds")
        document = session_document(session)
        for hook in config.webhooks:
            if status in hook.events or event in hook.events:
                deliveries.append(
                    Delivery(
                        "webhook",
                        {
                            "url": hook.url,
                            "id": delivery_id(session.id, event, occurred_at, hook.url),
                            "event": event,
                            "occurred_at": occurred_at,
                            "session": document,
                            **previous,
                        },
                    )
                )
        return deliveries

    @staticmethod
    def _mail(kind: Kind, role: str, to: str, event: str, *, sequence: int = 0) -> Delivery:
        # The SEQUENCE is fixed when planned: the copy says what the session was then.
        return Delivery(
            "mail", {"kind": kind, "role": role, "to": to, "event": event, "sequence": sequence}
        )


def _previous(details: Mapping[str, Any] | None) -> dict[str, str]:
    """The old time a ``moved`` outbox item carries, to copy into its deliveries."""
    found = _instants((details or {}).get("from_start"), (details or {}).get("from_end"))
    if found is None:
        return {}
    return {"from_start": found[0].isoformat(), "from_end": found[1].isoformat()}
