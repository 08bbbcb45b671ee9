"""Desk staff: accounts, their logins (server-side sessions) and failed login attempts.

The store keeps only what it is given: a password *hash* (made and checked by
``daemon/staff.py``), the SHA-256 of a login cookie's token, and instants passed in by the
caller. Which login is still valid (idle and absolute expiry) and how many failures
throttle a login are decided by the caller from these rows and its clock; the store
answers with the instants and counts.

Logins and failures are rows, not process memory, so every daemon instance on one
database agrees on who is logged in and how many guesses an address has made, and a
restart logs nobody out.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from daemon.store.audit import record_audit
from daemon.store.base import StoreBase
from daemon.store.records import dt, instant, ts


@dataclass(frozen=True)
class StaffAccount:
    name: str
    password_hash: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class StaffLogin:
    """A logged-in browser: whose, since when, and when it was last used."""

    staff_name: str
    created_at: datetime
    last_seen_at: datetime


class StaffPart(StoreBase):
    """Accounts, logins and login failures of the desk console."""

    # ---------------------------------------------------------------- accounts

    def add_staff(
        self, name: str, password_hash: str, *, now: datetime, actor: str, replace: bool = False
    ) -> bool:
        """Create the account, or with ``replace`` set a new password on an existing one
        (which ends its logins). False when the name exists and ``replace`` is not set."""
        with self._write() as db:
            exists = db.execute("SELECT 1 FROM staff WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                return False
            if exists:
                db.execute(
                    "UPDATE staff SET password_hash = ?, updated_at = ? WHERE name = ?",
                    (password_hash, ts(now), name),
                )
                db.execute("DELETE FROM staff_logins WHERE staff_name = ?", (name,))
                action = "staff_password_set"
            else:
                db.execute(
                    "INSERT INTO staff (name, password_hash, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, password_hash, ts(now), ts(now)),
                )
                action = "staff_added"
            record_audit(db, now, actor, action, None, "", {"staff": name})
        return True

    def remove_staff(self, name: str, *, now: datetime, actor: str) -> bool:
        """Delete the account and end its logins; False when there is no such account."""
        with self._write() as db:
            removed = db.execute("DELETE FROM staff WHERE name = ?", (name,)).rowcount
            if removed:
                record_audit(db, now, actor, "staff_removed", None, "", {"staff": name})
        return bool(removed)

    def staff_account(self, name: str) -> StaffAccount | None:
        rows = self._read(
            "SELECT name, password_hash, created_at, last_login_at FROM staff WHERE name = ?",
            (name,),
        )
        return _account(rows[0]) if rows else None

    def staff_accounts(self) -> list[StaffAccount]:
        rows = self._read(
            "SELECT name, password_hash, created_at, last_login_at FROM staff ORDER BY name"
        )
        return [_account(row) for row in rows]

    def set_staff_hash(self, name: str, password_hash: str) -> None:
        """Store a re-hash of the same password (stronger parameters): no audit, no logout."""
        with self._write() as db:
            db.execute("UPDATE staff SET password_hash = ? WHERE name = ?", (password_hash, name))

    # ---------------------------------------------------------------- logins

    def start_staff_login(self, token_hash: str, name: str, *, now: datetime, address: str) -> None:
        """Record a successful login (and its audit entry, and the account's last login);
        the failures counted against the account are forgotten."""
        with self._write() as db:
            db.execute(
                "INSERT INTO staff_logins (token_hash, staff_name, created_at, last_seen_at, "
                "address) VALUES (?, ?, ?, ?, ?)",
                (token_hash, name, ts(now), ts(now), address),
            )
            db.execute("UPDATE staff SET last_login_at = ? WHERE name = ?", (ts(now), name))
            db.execute("DELETE FROM staff_login_failures WHERE staff_name = ?", (name,))
            record_audit(db, now, f"staff:{name}", "staff_login", None, "", {"address": address})

    def staff_login(self, token_hash: str) -> StaffLogin | None:
        rows = self._read(
            "SELECT staff_name, created_at, last_seen_at FROM staff_logins WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        return StaffLogin(rows[0][0], instant(rows[0][1]), instant(rows[0][2]))

    def touch_staff_login(self, token_hash: str, now: datetime) -> None:
        """Move the idle expiry on: the attendant did something."""
        with self._write() as db:
            db.execute(
                "UPDATE staff_logins SET last_seen_at = :now WHERE token_hash = :token "
                "AND last_seen_at < :now",
                {"now": ts(now), "token": token_hash},
            )

    def end_staff_login(
        self, token_hash: str, *, now: datetime, reason: str = "logout"
    ) -> str | None:
        """Forget a login; the name it belonged to, or None when there was none."""
        with self._write() as db:
            row = db.execute(
                "SELECT staff_name FROM staff_logins WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM staff_logins WHERE token_hash = ?", (token_hash,))
            record_audit(db, now, f"staff:{row[0]}", "staff_logout", None, reason, {})
        return str(row[0])

    def prune_staff_logins(self, *, idle_before: datetime, created_before: datetime) -> int:
        """Delete the logins past either expiry; how many."""
        with self._write() as db:
            return db.execute(
                "DELETE FROM staff_logins WHERE last_seen_at < ? OR created_at < ?",
                (ts(idle_before), ts(created_before)),
            ).rowcount

    # ---------------------------------------------------------------- failures

    def record_login_failure(
        self, address: str, name: str, *, now: datetime, forget_before: datetime
    ) -> None:
        """Count a failed login against the address and the name tried, audited; failures
        older than ``forget_before`` are dropped on the way, which bounds the table."""
        with self._write() as db:
            db.execute("DELETE FROM staff_login_failures WHERE at < ?", (ts(forget_before),))
            db.execute(
                "INSERT INTO staff_login_failures (at, address, staff_name) VALUES (?, ?, ?)",
                (ts(now), address, name),
            )
            record_audit(
                db, now, "anonymous", "staff_login_failed", None, "", {"address": address,
                "staff": name},
            )  # fmt: skip

    def login_failures(self, address: str, name: str, since: datetime) -> tuple[
        list[datetime], list[datetime]
    ]:  # fmt: skip
        """The failures since ``since`` from ``address`` and against ``name``, oldest first."""
        by_address = self._read(
            "SELECT at FROM staff_login_failures WHERE address = ? AND at >= ? ORDER BY at",
            (address, ts(since)),
        )
        by_name = self._read(
            "SELECT at FROM staff_login_failures WHERE staff_name = ? AND at >= ? ORDER BY at",
            (name, ts(since)),
        )
        return [instant(r[0]) for r in by_address], [instant(r[0]) for r in by_name]


def _account(row: sqlite3.Row) -> StaffAccount:
    return StaffAccount(row[0], row[1], instant(row[2]), dt(row[3]))
