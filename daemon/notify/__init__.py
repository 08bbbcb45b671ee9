"""Notifications: e-mail to clients and the desk, JSON webhooks to other systems.

The outbox calls :meth:`Notifier.plan` once per session event, stores the
:class:`Delivery` items it returns (their payloads are JSON in the outbox table), and
later calls :meth:`Notifier.deliver` for each, retrying on :class:`DeliveryFailed` unless
it is ``permanent``. One delivery is one recipient or one webhook, so a refused address
or a broken receiver never holds up the others.

The parts, one concern each, combined in :class:`Notifier`:

* :mod:`~daemon.notify.plan`: who gets what (below), fixed when the event is planned;
* :mod:`~daemon.notify.compose`: the mails' words and messages, with the invitation;
* :mod:`~daemon.notify.smtp`: handing a message to the mail server;
* :mod:`~daemon.notify.webhooks`: the signed JSON requests (their format is documented
  there);
* :mod:`~daemon.notify.base`: the :class:`Delivery`, :class:`DeliveryFailed` and the
  attributes the parts share.

Who gets what
-------------
* Client (``[notifications] client_email`` and the session has an e-mail): ``booked`` → a
  confirmation with a ``METHOD:REQUEST`` invitation, plus a reminder ``booking.reminder``
  before the start; ``rescheduled`` (no check-in within the tolerance, R5) → a request to
  book again; ``cancelled`` → a ``METHOD:CANCEL`` with the same UID and a higher SEQUENCE;
  ``moved`` (the technician moved the session to another valid time) → a mail saying the
  time changed, from what to what, whose invitation (higher SEQUENCE) moves the client's
  copy. Mails offer to cancel or rebook online only while ``[booking] cancel_cutoff``
  allows it when they are sent; a reminder after it says to call the desk instead.
  ``checked_in`` and ``completed`` send the client nothing: they are on the phone with
  the desk then.
* Technician (``technician_email`` and the technician has an ``email``): a notice for
  ``booked``, ``rescheduled`` and ``cancelled``, with the check-in link.
* Admin (``admin_email``): a notice for ``rescheduled`` and ``cancelled``, the changes a
  person may have to follow up.
* Webhooks: every event the hook lists (``checked_in`` is listed as ``in_progress``).

Where a mail's words, language and invitation come from: :mod:`~daemon.notify.compose`.
"""

from __future__ import annotations

import ssl
from datetime import datetime

from daemon.config import Config
from daemon.notify.base import Delivery, DeliveryFailed, NotifierBase, log
from daemon.notify.compose import MailComposer
from daemon.notify.plan import EVENTS, Kind, Planner
from daemon.notify.smtp import SmtpSender
from daemon.notify.webhooks import (
    USER_AGENT,
    WebhookSender,
    delivery_id,
    session_document,
    signature,
    webhook_opener,
)
from daemon.signing import Signer
from daemon.store import SessionRecord
from rules.model import Status

__all__ = [
    "EVENTS",
    "USER_AGENT",
    "Delivery",
    "DeliveryFailed",
    "Kind",
    "Notifier",
    "delivery_id",
    "session_document",
    "signature",
]


class Notifier(Planner, MailComposer, SmtpSender, WebhookSender, NotifierBase):
    """Plans and sends mail and webhooks for session events (see the module docstring).

    ``tls_context`` verifies the mail server (default: the system's trusted CAs).
    """

    def __init__(
        self, config: Config, signer: Signer, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.signer = signer
        self._tls = tls_context
        self._opener = webhook_opener()

    def deliver(self, delivery: Delivery, session: SessionRecord, now: datetime) -> None:
        """Send one delivery now; raises :class:`DeliveryFailed` (see its ``permanent``).

        A reminder for a session no longer booked, or already started, is dropped; so is a
        confirmation for a session cancelled or missed before it went out (the message
        about that comes next and says what matters).
        """
        payload = delivery.payload
        if delivery.action == "webhook":
            self._post(payload, now)
            return
        if delivery.action != "mail":
            raise DeliveryFailed(f"unknown delivery action {delivery.action!r}", permanent=True)
        kind = payload.get("kind")
        planned_for = payload.get("start")
        moved = planned_for is not None and planned_for != session.start.isoformat()
        if kind == "reminder" and (
            session.status != Status.BOOKED or session.start <= now or moved
        ):
            log.info("reminder for session %s skipped: %s", session.id, session.status)
            return
        announces_booking = kind in ("booked", "moved") or (
            kind == "notice" and payload.get("event") == "booked"
        )
        if announces_booking and session.status in (Status.CANCELLED, Status.RESCHEDULED):
            log.info("confirmation for session %s skipped: %s", session.id, session.status)
            return
        message = self.compose(payload, session, now)
        self._send(message, str(payload["to"]))
