"""Inbound: Meta's webhook read and checked, then each client message acted on once.

The webhook (``daemon/web/whatsapp.py``) only checks the signature, reads the payload
(:func:`read_webhook`) and records it; :class:`Inbound` acts afterwards, from the outbox
worker, so Meta gets its 200 at once and never retries a slow answer. A message id is
recorded once, so whatever Meta retries or replays is acted on once.

A message from a booked number checks the session in when the check-in is open, both when
the client wrote (the message's own timestamp: a message Meta delivers late still counts
only if it was written in time) and now (``rules.lifecycle.check_in``, the same rule and
the same transition as the technician's link; the audit says ``client`` by
``whatsapp``). The client is answered that the technician is starting, and the technician
is told: their calendar event shows the session in progress, and when technician e-mail
is on, a mail. A message at any other time changes nothing and gets a helpful answer, at
most once per ``[whatsapp] auto_reply_every``: the next session's time, or the booking
link. During a session nothing is answered: the client is talking to the technician.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.service import Service
from daemon.store import InboundMessage, SessionRecord, StatusUpdate, StoreError
from rules.contact import whatsapp_number
from rules.lifecycle import IllegalTransition, check_in, noshow_deadline
from rules.model import Status

log = logging.getLogger("expediente.whatsapp")

_STATUSES = ("sent", "delivered", "read", "failed")
# What arrives as a message but is no one writing: a reaction to an old message, the
# number's change, a type WhatsApp cannot show. Anything else the client sends (text, a
# voice note, a photo of the screen) says they are there.
NOT_WRITTEN = frozenset({"reaction", "system", "unsupported", "request_welcome", "ephemeral"})
MAX_ID = 256  # characters of a message id kept (Meta's are ~60)


class BadWebhook(ValueError):
    """A signed payload that is not a WhatsApp Business Account notification."""


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-Hub-Signature-256``) is ``sha256=`` + the HMAC-SHA256 of the
    raw ``body`` with the app secret; compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").strip().encode())


@dataclass(frozen=True)
class Webhook:
    messages: tuple[InboundMessage, ...]
    statuses: tuple[StatusUpdate, ...]


def _instant(value: Any, default: datetime) -> datetime:
    """Meta's timestamps are Unix seconds as text; an unreadable one is the arrival."""
    try:
        seconds = int(str(value))
        return datetime.fromtimestamp(seconds, UTC) if 0 < seconds < 2**33 else default
    except ValueError:
        return default


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def read_webhook(body: bytes, phone_number_id: str, now: datetime) -> Webhook:
    """The messages and statuses for the desk's number in a notification; changes for
    another number of the same account are left out. Raises :class:`BadWebhook`."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadWebhook("the body is not JSON") from None
    if not isinstance(document, dict) or document.get("object") != "whatsapp_business_account":
        raise BadWebhook('expected "object": "whatsapp_business_account"')
    messages: list[InboundMessage] = []
    statuses: list[StatusUpdate] = []
    for entry in _dicts(document.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            if not isinstance(metadata, dict) or metadata.get("phone_number_id") != phone_number_id:
                continue
            for message in _dicts(value.get("messages")):
                ident, sender = message.get("id"), message.get("from")
                if not isinstance(ident, str) or not isinstance(sender, str) or not ident:
                    continue
                kind = message.get("type")
                messages.append(
                    InboundMessage(
                        ident[:MAX_ID],
                        sender[:32],
                        whatsapp_number(sender),
                        kind[:32] if isinstance(kind, str) else "unknown",
                        _instant(message.get("timestamp"), now),
                        now,
                    )
                )
            for status in _dicts(value.get("statuses")):
                ident, state = status.get("id"), status.get("status")
                if not isinstance(ident, str) or state not in _STATUSES:
                    continue
                [error] = _dicts(status.get("errors"))[:1] or [{}]
                code = error.get("code")
                statuses.append(
                    StatusUpdate(
                        ident[:MAX_ID],
                        str(state),
                        _instant(status.get("timestamp"), now),
                        code if isinstance(code, int) else None,
                        str(error.get("title") or error.get("message") or "")[:300],
                    )
                )
    return Webhook(tuple(messages), tuple(statuses))


class Inbound:
    """Acts on recorded messages (module docstring); run by the outbox worker."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def process(self, limit: int = 100) -> int:
        """Act on the messages waiting; returns how many were settled."""
        settled = 0
        for message in self.service.store.pending_inbound(limit):
            try:
                settled += self._one(message)
            except StoreError:
                # Busy or unreadable for now: the message stays pending for the next round.
                log.exception("WhatsApp message %s waits for the store", message.message_id)
                break
            except Exception:
                log.exception("WhatsApp message %s could not be processed", message.message_id)
                self.service.store.settle_inbound(
                    message.message_id, "error", now=self.service.clock.now()
                )
        return settled

    def _one(self, message: InboundMessage) -> int:
        store = self.service.store
        now = self.service.clock.now()
        if message.phone is None:
            return int(store.settle_inbound(message.message_id, "not_a_number", now=now))
        if message.kind in NOT_WRITTEN:
            return int(store.settle_inbound(message.message_id, "ignored", now=now))
        sessions = store.sessions_for_phone(message.phone, (Status.BOOKED, Status.IN_PROGRESS))
        if any(s.status == Status.IN_PROGRESS for s in sessions):
            return int(store.settle_inbound(message.message_id, "in_session", now=now))
        for session in sessions:
            if self._may_check_in(session, message.sent_at) and self._may_check_in(session, now):
                return self._check_in(message, session, now)
        return self._answer(message, sessions, now)

    def _may_check_in(self, session: SessionRecord, at: datetime) -> bool:
        try:
            check_in(self.service.policy, session.status, session.start, at)
        except IllegalTransition:
            return False
        return True

    def _check_in(self, message: InboundMessage, session: SessionRecord, now: datetime) -> int:
        store = self.service.store
        try:
            self.service.check_in(session.id, actor="client", source="whatsapp")
        except IllegalTransition:  # the sweep or the technician got there first
            return int(store.settle_inbound(message.message_id, "too_late", now=now))
        reply = {"event": "checked_in", "reply": True, "to": message.wa_id}
        outbox: list[tuple[str | None, dict[str, Any]]] = [(session.id, reply)]
        settled = store.settle_inbound(
            message.message_id, "checked_in", now=now, session_id=session.id, outbox=outbox
        )
        self._tell_technician(session, now)
        log.info("session %s checked in by WhatsApp", session.id)
        return int(settled)

    def _tell_technician(self, session: SessionRecord, now: datetime) -> None:
        config = self.service.config
        technician = config.technician(session.technician_id)
        mailed = config.smtp is not None and config.notifications.technician_email
        if mailed and technician is not None and technician.email:
            payload = {
                "kind": "notice",
                "role": "technician",
                "to": technician.email,
                "event": "checked_in",
                "sequence": 0,
            }
            self.service.store.enqueue(session.id, "mail", payload, now=now)

    def _answer(self, message: InboundMessage, sessions: list[SessionRecord], now: datetime) -> int:
        store = self.service.store
        config = self.service.config
        assert message.phone is not None and config.whatsapp is not None  # noqa: S101
        policy = self.service.policy
        upcoming = [s for s in sessions if noshow_deadline(policy, s.start) >= now]
        if not store.claim_auto_reply(message.phone, now, config.whatsapp.auto_reply_every):
            return int(store.settle_inbound(message.message_id, "ignored", now=now))
        if upcoming:
            session = upcoming[0]
            reply = {"event": "next", "reply": True, "template": True, "to": message.wa_id}
            outbox: list[tuple[str | None, dict[str, Any]]] = [(session.id, reply)]
            settled = store.settle_inbound(
                message.message_id, "answered", now=now, session_id=session.id, outbox=outbox
            )
            return int(settled)
        reply = {"event": "book", "reply": True, "to": message.wa_id}
        return int(
            store.settle_inbound(message.message_id, "answered", now=now, outbox=[(None, reply)])
        )
