"""Outbound: which WhatsApp messages a session event causes, and sending one.

Planned like mail and webhooks (``daemon/notify/``): the outbox expands a session event
into ``whatsapp`` items, each retried on its own with the outbox's backoff, so the Cloud
API being slow or down never blocks a booking and a crash never sends one twice
(an item is done once the API accepted it). The client gets the confirmation (and again
when the technician moves the session), the reminder, the rescheduled notice and the
cancellation.

Meta's refusals, as its error codes reference documents them:

* ``190`` (token invalid or expired), HTTP 401: a person must renew the token. The
  message is given up (retrying cannot help), and ``/healthz`` says the token is refused
  until a message goes through again.
* ``130429``, ``131056``, ``80007`` and HTTP 429 (throughput), 5xx and unreachable:
  retried later, no sooner than a ``Retry-After``.
* ``131047`` (re-engagement: free-form text outside the 24-hour window): sent again at
  once as the template that says the same, when there is one. Meta usually reports it
  later in a status webhook instead; the store reacts to that the same way.
* ``131026`` (undeliverable: no WhatsApp on the number): the session is flagged for the
  desk (``needs_attention``), who must call the client.
* Anything else (a template not approved, wrong parameters): given up and shown in
  ``/healthz``; it is the desk's configuration to fix.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from daemon.config import Config
from daemon.notify import Delivery, DeliveryFailed
from daemon.signing import Signer
from daemon.store import SessionRecord, Store
from daemon.store.whatsapp import RE_ENGAGEMENT, UNDELIVERABLE
from daemon.whatsapp.cloud import CloudClient, CloudError
from daemon.whatsapp.compose import TEMPLATE_OF, Composer, text_message
from rules.contact import whatsapp_id
from rules.model import Status

log = logging.getLogger("expediente.whatsapp")

TOKEN_REFUSED = 190
THROUGHPUT = (4, 80007, 130429, 131056)
# The session events that message the client.
EVENTS = ("booked", "moved", "rescheduled", "cancelled")


class Outbound:
    def __init__(self, config: Config, store: Store, signer: Signer, client: CloudClient) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.composer = Composer(config, signer)

    def plan(self, session: SessionRecord, event: str, now: datetime) -> list[Delivery]:
        """The messages ``event`` sends the client (and the reminder a booking schedules)."""
        if event not in EVENTS or not whatsapp_id(session.phone):
            return []
        deliveries = [Delivery("whatsapp", {"event": event, "template": True})]
        reminder = self.config.booking.reminder
        if event in ("booked", "moved") and reminder is not None:
            due = session.start - reminder
            if due > now:
                payload = {
                    "event": "reminder",
                    "template": True,
                    "start": session.start.isoformat(),
                }
                deliveries.append(Delivery("whatsapp", payload, not_before=due))
        return deliveries

    def deliver(
        self, payload: dict[str, Any], session: SessionRecord | None, now: datetime
    ) -> None:
        """Send one planned message; raises :class:`DeliveryFailed` (module docstring)."""
        event = str(payload.get("event", ""))
        if session is not None and self._moot(event, payload, session, now):
            log.info("WhatsApp %s for session %s skipped: %s", event, session.id, session.status)
            return
        message, form = self._message(event, payload, session, now)
        try:
            accepted = self.client.send(message, now)
        except CloudError as error:
            if error.code == RE_ENGAGEMENT and form == "text" and payload.get("template"):
                self.deliver({**payload, "form": "template"}, session, now)
                return
            raise self._failure(error, session, now) from None
        self.store.record_sent(
            accepted.wamid,
            session_id=session.id if session else None,
            event=event,
            form=form,
            payload=payload,
            now=now,
        )

    @staticmethod
    def _moot(event: str, payload: dict[str, Any], session: SessionRecord, now: datetime) -> bool:
        """A reminder for a session no longer booked, started or moved; a confirmation of
        one cancelled or missed before it went out (the next message says what matters)."""
        if event == "reminder":
            planned_for = payload.get("start")
            moved = planned_for is not None and planned_for != session.start.isoformat()
            return session.status != Status.BOOKED or session.start <= now or moved
        if event in ("booked", "moved"):
            return session.status in (Status.CANCELLED, Status.RESCHEDULED)
        return False

    def _message(
        self, event: str, payload: dict[str, Any], session: SessionRecord | None, now: datetime
    ) -> tuple[dict[str, Any], str]:
        if session is None:
            to = str(payload.get("to", ""))
            language = str(payload.get("language") or self.config.desk.language)
            return text_message(to, self.composer.reply_text(event, None, language)), "text"
        to = whatsapp_id(session.phone)
        if payload.get("form") == "template" and event in TEMPLATE_OF:
            return self.composer.template(event, session), "template"
        if payload.get("reply"):
            language = str(payload.get("language") or session.language)
            text = self.composer.reply_text(event, session, language)
            return text_message(str(payload.get("to") or to), text), "text"
        if event not in TEMPLATE_OF:
            raise DeliveryFailed(f"unknown WhatsApp message {event!r}", permanent=True)
        if self.store.window_open(session.phone, now):
            return text_message(to, self.composer.notification_text(event, session)), "text"
        return self.composer.template(event, session), "template"

    def _failure(
        self, error: CloudError, session: SessionRecord | None, now: datetime
    ) -> DeliveryFailed:
        text = f"WhatsApp: {error}"
        if error.code == TOKEN_REFUSED or error.status == 401:
            self.store.whatsapp_problem(text, now=now, token_refused=True)
            log.error("the WhatsApp access token was refused: renew it (%s)", error)
            return DeliveryFailed(text, permanent=True)
        if error.code in THROUGHPUT or error.status in (0, 408, 429) or error.status >= 500:
            return DeliveryFailed(text, retry_after=error.retry_after)
        if error.code == UNDELIVERABLE and session is not None:
            reason = f"WhatsApp message not delivered ({error.code}): call the client"
            self.store.flag_session(session.id, reason, now=now)
            return DeliveryFailed(text, permanent=True)
        self.store.whatsapp_problem(text, now=now)
        return DeliveryFailed(text, permanent=True)
