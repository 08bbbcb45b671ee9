"""The outbox table: work that must reach the outside after a commit, queued with it.

Items are added inside the transaction of the change that needs them
(``enqueue_item`` takes the caller's connection), so a crash loses neither the change
nor its delivery. The worker that takes items from here and delivers them is
``daemon/outbox.py``; this module only keeps the queue: what is due, done, failed (with
the next attempt the worker chose) or given up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from daemon.store.audit import record_audit
from daemon.store.base import Connection, StoreBase
from daemon.store.records import (
    CalendarWrite,
    OutboxItem,
    OutboxRequest,
    record_calendar_write,
    ts,
    ts_ceil,
)


def enqueue_item(
    db: Connection,
    now: datetime,
    session_id: str | None,
    action: str,
    payload: dict[str, Any],
    *,
    new_session: bool = False,
) -> None:
    """Queue ``action`` inside the caller's transaction, due at once. ``new_session``:
    the session was inserted in this very transaction, so nothing of it is pending."""
    if action == "put" and session_id is not None and not new_session:
        # A calendar write sends the session as it is when the write runs, so a newer
        # one makes older pending ones moot.
        db.execute(
            "UPDATE outbox SET superseded = 1 WHERE session_id = ? AND action = 'put' "
            "AND done_at IS NULL AND superseded = 0",
            (session_id,),
        )
    db.execute(
        "INSERT INTO outbox (session_id, action, payload, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (session_id, action, json.dumps(payload, ensure_ascii=False), ts(now), ts(now)),
    )


class OutboxPart(StoreBase):
    """Queueing, taking and settling outbox items."""

    def enqueue(
        self, session_id: str | None, action: str, payload: dict[str, Any], *, now: datetime
    ) -> None:
        """Queue work that goes with no state change (a state change passes ``outbox=``)."""
        with self._write(calendars=False) as db:
            enqueue_item(db, now, session_id, action, payload)

    def enqueue_audited(
        self,
        session_id: str,
        items: Sequence[OutboxRequest],
        *,
        now: datetime,
        actor: str,
        action: str,
        reason: str = "",
    ) -> None:
        """Queue work a person asked for (resend a confirmation) with its audit entry, in
        one transaction."""
        with self._write(calendars=False) as db:
            for item_action, payload in items:
                enqueue_item(db, now, session_id, item_action, payload)
            record_audit(db, now, actor, action, session_id, reason, {})

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Pending, not superseded items whose next attempt is due, oldest first."""
        rows = self._read(
            "SELECT id, session_id, action, payload, attempts, last_error FROM outbox "
            "WHERE done_at IS NULL AND superseded = 0 AND next_attempt_at <= ? "
            "ORDER BY id LIMIT ?",
            (ts(now), limit),
        )
        return [
            OutboxItem(
                r["id"],
                r["session_id"],
                r["action"],
                json.loads(r["payload"]),
                r["attempts"],
                r["last_error"],
            )
            for r in rows
        ]

    def claim_outbox(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[OutboxItem]:
        """The due items for the worker of ``owner`` to deliver. One file has one daemon
        delivering, so here that is :meth:`due_outbox`; the PostgreSQL store claims them
        for ``lease`` so that two instances never deliver one item."""
        del owner, lease
        return self.due_outbox(now, limit)

    def outbox_expand(
        self,
        item_id: int,
        items: Sequence[tuple[str, dict[str, Any], datetime | None]],
        *,
        session_id: str | None,
        now: datetime,
    ) -> None:
        """Replace one item by several (a notification fanned out to mail and webhooks) in
        one transaction, so a crash neither loses them nor sends any twice. Each new item
        waits until its own ``not_before`` (a reminder an hour before the start)."""
        with self._write(calendars=False) as db:
            for action, payload, not_before in items:
                enqueue_item(db, now, session_id, action, payload)
                if not_before is not None and not_before > now:
                    db.execute(
                        "UPDATE outbox SET next_attempt_at = ? WHERE id = last_insert_rowid()",
                        (ts(not_before),),
                    )
            db.execute(
                "UPDATE outbox SET done_at = ? WHERE id = ? AND done_at IS NULL",
                (ts(now), item_id),
            )

    def outbox_give_up(self, item_id: int, error: str, now: datetime) -> None:
        """Stop retrying an item that cannot succeed (a permanent refusal); the error stays
        on the row and in the audit log."""
        with self._write(calendars=False) as db:
            row = db.execute(
                "SELECT session_id, action FROM outbox WHERE id = ?", (item_id,)
            ).fetchone()
            db.execute(
                "UPDATE outbox SET done_at = ?, attempts = attempts + 1, last_error = ? "
                "WHERE id = ? AND done_at IS NULL",
                (ts(now), error[:2000], item_id),
            )
            if row is not None:
                record_audit(
                    db, now, "system", "delivery_failed", row["session_id"], error,
                    {"action": row["action"], "outbox_id": item_id},
                )  # fmt: skip

    def outbox_done(
        self, item_id: int, now: datetime, *, written: CalendarWrite | None = None
    ) -> None:
        """Mark an item delivered and, for a calendar write, record what the calendar
        holds now in the same transaction (one commit, and no crash can leave the write
        recorded without the item done or the other way round)."""
        with self._write(calendars=False) as db:
            if written is not None:
                record_calendar_write(db, written)
            db.execute(
                "UPDATE outbox SET done_at = ? WHERE id = ? AND done_at IS NULL",
                (ts(now), item_id),
            )

    def outbox_failed(self, item_id: int, error: str, next_attempt_at: datetime) -> None:
        """Count a failed attempt and schedule the next (the caller chooses the backoff)."""
        with self._write(calendars=False) as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (error[:2000], ts_ceil(next_attempt_at), item_id),
            )

    def outbox_depth(self) -> int:
        """Items still to deliver (superseded ones excluded)."""
        row = self._read("SELECT count(*) FROM outbox WHERE done_at IS NULL AND superseded = 0")
        return int(row[0][0])
