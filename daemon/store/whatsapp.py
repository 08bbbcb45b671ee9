"""WhatsApp: inbound messages once each, the 24-hour windows, sent messages and their
statuses, and the Cloud API's health (schema: ``migrations/0006_whatsapp.sql``).

The webhook records what Meta sent in one transaction and answers; the outbox worker
processes the messages afterwards (``daemon/whatsapp/inbound.py``). A message id is its
primary key, so a retried or replayed webhook changes nothing. What a client wrote is
never stored: who wrote and when is all a check-in needs.

A status webhook can say a message failed after the API accepted it; what follows is
decided here, in the transaction that records the failure, so it happens once: a
re-engagement refusal (131047) of free-form text queues the same notification as its
template, an undeliverable number (131026) flags the session for the desk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from daemon.store.audit import record_audit
from daemon.store.base import Connection, StoreBase
from daemon.store.queue import enqueue_item
from daemon.store.records import SESSION_SELECT, SessionRecord, as_session, dt, instant, ts
from rules.model import Status

WINDOW = timedelta(hours=24)  # Meta's customer service window
RE_ENGAGEMENT = 131047
UNDELIVERABLE = 131026
# How far a status has got; a late "delivered" never overwrites "read".
_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class InboundMessage:
    """A client's message as recorded: who (``phone`` is ``None`` for an id that is no
    number), its type and when, never its text."""

    message_id: str
    wa_id: str
    phone: str | None
    kind: str
    sent_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class StatusUpdate:
    """A status webhook: ``status`` of message ``wamid`` at ``at``, with Meta's error."""

    wamid: str
    status: str
    at: datetime
    error_code: int | None = None
    error: str = ""


@dataclass(frozen=True)
class SentMessage:
    wamid: str
    session_id: str | None
    event: str
    form: str
    status: str
    status_at: datetime
    error_code: int | None
    error: str | None


@dataclass(frozen=True)
class WhatsAppHealth:
    token_refused_at: datetime | None
    last_error: str | None
    last_ok_at: datetime | None


class WhatsAppPart(StoreBase):
    """Recording and reading the WhatsApp conversation's facts."""

    def record_webhook(
        self,
        messages: Sequence[InboundMessage],
        statuses: Sequence[StatusUpdate],
        *,
        now: datetime,
    ) -> int:
        """Record one webhook delivery whole; returns how many messages were new."""
        new = 0
        with self._write() as db:
            for message in messages:
                new += self._record_message(db, message)
            for update in statuses:
                self._record_status(db, update, now)
        return new

    def _record_message(self, db: Connection, message: InboundMessage) -> int:
        inserted = db.execute(
            "INSERT INTO whatsapp_inbound (message_id, wa_id, phone, kind, sent_at, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                message.message_id, message.wa_id, message.phone, message.kind,
                ts(message.sent_at), ts(message.received_at),
            ),
        ).rowcount  # fmt: skip
        if inserted and message.phone is not None:
            db.execute(
                "INSERT INTO whatsapp_contacts (phone, wa_id, last_inbound_at) VALUES (?, ?, ?) "
                "ON CONFLICT (phone) DO UPDATE SET wa_id = excluded.wa_id, "
                "last_inbound_at = CASE WHEN excluded.last_inbound_at > "
                "whatsapp_contacts.last_inbound_at THEN excluded.last_inbound_at "
                "ELSE whatsapp_contacts.last_inbound_at END",
                (message.phone, message.wa_id, ts(message.sent_at)),
            )
        return int(inserted)

    def _record_status(self, db: Connection, update: StatusUpdate, now: datetime) -> None:
        row = db.execute(
            "SELECT session_id, event, form, payload, status FROM whatsapp_messages "
            "WHERE wamid = ?",
            (update.wamid,),
        ).fetchone()
        if row is None or update.status not in _RANK:
            return  # not ours (another system on the number), or a status Meta added since
        if _RANK[update.status] <= _RANK.get(row["status"], 0):
            return  # a retried or late webhook: what it says is already known
        db.execute(
            "UPDATE whatsapp_messages SET status = ?, status_at = ?, error_code = ?, error = ? "
            "WHERE wamid = ?",
            (update.status, ts(update.at), update.error_code, update.error or None, update.wamid),
        )
        if update.status != "failed":
            return
        session_id = row["session_id"]
        payload = json.loads(row["payload"])
        if update.error_code == RE_ENGAGEMENT and row["form"] == "text" and payload.get("template"):
            enqueue_item(db, now, session_id, "whatsapp", {**payload, "form": "template"})
            return
        reason = f"WhatsApp message not delivered ({update.error_code}): {update.error}"
        if update.error_code == UNDELIVERABLE and session_id is not None:
            db.execute(
                "UPDATE sessions SET needs_attention = ?, updated_at = ? WHERE id = ?",
                (reason, ts(now), session_id),
            )
            record_audit(db, now, "system", "flagged", session_id, reason, {"wamid": update.wamid})
        else:
            record_audit(
                db, now, "system", "delivery_failed", session_id, reason,
                {"action": "whatsapp", "wamid": update.wamid},
            )  # fmt: skip

    def pending_inbound(self, limit: int = 100) -> list[InboundMessage]:
        """Messages recorded and not processed yet, oldest first."""
        rows = self._read(
            "SELECT message_id, wa_id, phone, kind, sent_at, received_at FROM whatsapp_inbound "
            "WHERE processed_at IS NULL ORDER BY received_at, rowid LIMIT ?",
            (limit,),
        )
        return [
            InboundMessage(
                r["message_id"], r["wa_id"], r["phone"], r["kind"],
                instant(r["sent_at"]), instant(r["received_at"]),
            )
            for r in rows
        ]  # fmt: skip

    def settle_inbound(
        self,
        message_id: str,
        outcome: str,
        *,
        now: datetime,
        session_id: str | None = None,
        outbox: Sequence[tuple[str | None, dict[str, Any]]] = (),
    ) -> bool:
        """Mark a message processed, with the answers it causes (``(session id, payload)``
        of ``whatsapp`` outbox items) in the same transaction; False when it already was."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE whatsapp_inbound SET processed_at = ?, outcome = ?, session_id = ? "
                "WHERE message_id = ? AND processed_at IS NULL",
                (ts(now), outcome, session_id, message_id),
            ).rowcount
            if changed:
                for owner, payload in outbox:
                    enqueue_item(db, now, owner, "whatsapp", payload)
        return bool(changed)

    def inbound_outcomes(self) -> dict[str, str | None]:
        """Each recorded message's outcome (``None`` while pending), for tests and support."""
        rows = self._read("SELECT message_id, outcome FROM whatsapp_inbound")
        return {r["message_id"]: r["outcome"] for r in rows}

    def window_open(self, phone: str, now: datetime) -> bool:
        """Whether ``phone`` wrote within the last 24 hours (free-form text allowed)."""
        rows = self._read("SELECT last_inbound_at FROM whatsapp_contacts WHERE phone = ?", (phone,))
        return bool(rows) and instant(rows[0][0]) > now - WINDOW

    def claim_auto_reply(self, phone: str, now: datetime, every: timedelta) -> bool:
        """Whether ``phone`` may get an automatic answer now (none within ``every``); the
        answer is counted as given."""
        with self._write() as db:
            return bool(
                db.execute(
                    "UPDATE whatsapp_contacts SET last_reply_at = ? WHERE phone = ? AND "
                    "(last_reply_at IS NULL OR last_reply_at <= ?)",
                    (ts(now), phone, ts(now - every) if every else ts(now)),
                ).rowcount
            )

    def sessions_for_phone(self, phone: str, statuses: Sequence[Status]) -> list[SessionRecord]:
        """The sessions booked with ``phone`` in one of ``statuses``, by start."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._read(
            f"{SESSION_SELECT} WHERE phone = ? AND status IN ({marks}) ORDER BY start_ts",
            (phone, *(str(s) for s in statuses)),
        )
        return [as_session(r) for r in rows]

    def record_sent(
        self,
        wamid: str,
        *,
        session_id: str | None,
        event: str,
        form: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """A message the API accepted, and that the Cloud API works (health)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO whatsapp_messages (wamid, session_id, event, form, payload, "
                "status_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (wamid, session_id, event, form, json.dumps(payload), ts(now), ts(now)),
            )
            db.execute(
                "UPDATE whatsapp_health SET token_refused_at = NULL, last_error = NULL, "
                "last_ok_at = ? WHERE id = 1",
                (ts(now),),
            )

    def whatsapp_messages(self, session_id: str) -> list[SentMessage]:
        rows = self._read(
            "SELECT wamid, session_id, event, form, status, status_at, error_code, error "
            "FROM whatsapp_messages WHERE session_id = ? ORDER BY created_at, rowid",
            (session_id,),
        )
        return [
            SentMessage(
                r["wamid"], r["session_id"], r["event"], r["form"], r["status"],
                instant(r["status_at"]), r["error_code"], r["error"],
            )
            for r in rows
        ]  # fmt: skip

    def whatsapp_problem(self, error: str, *, now: datetime, token_refused: bool = False) -> None:
        """The Cloud API refused a request for a reason a person must see in /healthz."""
        with self._write() as db:
            db.execute(
                "UPDATE whatsapp_health SET last_error = ?, token_refused_at = "
                "CASE WHEN ? THEN coalesce(token_refused_at, ?) ELSE token_refused_at END "
                "WHERE id = 1",
                (error[:500], token_refused, ts(now)),
            )

    def whatsapp_health(self) -> WhatsAppHealth:
        [row] = self._read(
            "SELECT token_refused_at, last_error, last_ok_at FROM whatsapp_health WHERE id = 1"
        )
        return WhatsAppHealth(dt(row[0]), row[1], dt(row[2]))
