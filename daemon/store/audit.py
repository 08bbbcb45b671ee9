"""The audit log: who did what to which session, when and why.

Entries are written inside the transaction of the change they record (``record_audit``
takes the caller's connection), so a change never commits without its entry or the other
way round. Every text in an entry is cut to :data:`AUDIT_TEXT_MAX` characters there, for
every writer. Old entries are pruned in batches (see :meth:`AuditPart.prune_audit`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from daemon.store.base import Connection, StoreBase
from daemon.store.records import AuditEntry, instant, ts

AUDIT_TEXT_MAX = 500  # characters kept of each text in an audit entry (an error message fits)
AUDIT_PRUNE_BATCH = 5000


def _bounded(value: Any) -> Any:
    """``value`` with every text in it cut to :data:`AUDIT_TEXT_MAX` characters."""
    if isinstance(value, str):
        return value if len(value) <= AUDIT_TEXT_MAX else value[: AUDIT_TEXT_MAX - 1] + "…"
    if isinstance(value, dict):
        return {_bounded(str(key)): _bounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_bounded(item) for item in value]
    return value


def record_audit(
    db: Connection,
    now: datetime,
    actor: str,
    action: str,
    session_id: str | None,
    reason: str,
    details: dict[str, Any],
) -> None:
    """Add an entry inside the caller's transaction, so it commits or rolls back with the
    change it records."""
    # Bounded here, for every writer: a refused booking's text is the client's.
    document = json.dumps(_bounded(details), ensure_ascii=False)
    db.execute(
        "INSERT INTO audit (at, actor, action, session_id, reason, details) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (ts(now), actor, action, session_id, _bounded(reason), document),
    )


class AuditPart(StoreBase):
    """Writing, reading and pruning the audit log."""

    def audit(
        self,
        actor: str,
        action: str,
        *,
        now: datetime,
        session_id: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an event that changes no session (e.g. a rejected booking).

        ``actor`` is ``client``, ``admin``, ``system``, ``sync`` or ``technician:<id>``.
        """
        with self._write(calendars=False) as db:
            record_audit(db, now, actor, action, session_id, reason, details or {})

    def prune_audit(self, before: datetime) -> int:
        """Delete audit entries from before ``before``; how many were deleted.

        In batches, each its own transaction, so a first pruning of years of entries
        never holds the write lock long enough to make a booking wait.
        """
        cutoff = ts(before)
        removed = 0
        while True:
            with self._write(calendars=False) as db:
                count = db.execute(
                    "DELETE FROM audit WHERE id IN "
                    "(SELECT id FROM audit WHERE at < ? ORDER BY id LIMIT ?)",
                    (cutoff, AUDIT_PRUNE_BATCH),
                ).rowcount
            removed += count
            if count < AUDIT_PRUNE_BATCH:
                return removed

    def audit_log(self, session_id: str | None = None, limit: int = 500) -> list[AuditEntry]:
        """A session's history, oldest first; or, without ``session_id``, the latest
        entries of the whole desk, newest first."""
        if session_id is None:
            rows = self._read(
                "SELECT at, actor, action, session_id, reason, details FROM audit "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        else:
            rows = self._read(
                "SELECT at, actor, action, session_id, reason, details FROM audit "
                "WHERE session_id = ? ORDER BY id LIMIT ?",
                (session_id, limit),
            )
        return [AuditEntry(instant(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
