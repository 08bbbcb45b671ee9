"""The desk console's door: login, logout, and who is behind each request.

A login is a row in the store (``daemon/store/staff.py``) named by the SHA-256 of a random
token; the browser holds the token in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` and ``__Host-`` when the desk is served over https), so neither a script on
the page nor another site's link or form can use it, and a copy of the database hands
out no working cookie. Every console request checks the login against the service's
clock: it ends after ``[console] idle_timeout`` without a request (the open page polls,
so an open console stays logged in; a closed laptop does not) and, in any case,
``login_lifetime`` after the login (a working day).

Guessing is throttled on rows too, so every daemon instance counts the same attempts:
``[console] failed_logins`` failed logins against one name, or
``failed_logins_per_address`` from one client address, within ``failure_window`` lock
that name or address out until the oldest of them leaves the window. The check comes
before the password is verified, so a locked-out guesser learns nothing, and an unknown
name costs the same Argon2 verification as a known one.

Forms carry the CSRF token of the public pages (``daemon/web/csrf.py``), the login form
included (no one can log a browser into their own account), and the OriginGuard refuses
other sites' POSTs before they get here. Audit entries name the staff member
(``staff:<name>``).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daemon.staff import MAX_PASSWORD, NAME, needs_rehash, verify_password
from daemon.web.http import Request, Response
from daemon.web.pages.base import DESK_CSP, PageBase, Visit, _cookies
from daemon.web.ratelimit import client_key

DESK_COOKIE = "expediente_desk"
_TOKEN_MAX = 64  # token_urlsafe(32) is 43 characters; anything longer is not ours
_TOUCH_EVERY = timedelta(seconds=60)  # the idle clock moves at most once a minute: fewer writes


@dataclass(frozen=True)
class Staff:
    """The staff member behind a request, and the login it came with."""

    name: str
    token_hash: str

    @property
    def actor(self) -> str:
        """How the audit log names them."""
        return f"staff:{self.name}"


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DeskAuthPages(PageBase):
    """Login, logout and the login check every console page makes."""

    # ``[console]``'s keys, read on each use so a reload (SIGHUP) applies them.

    @property
    def desk_idle(self) -> timedelta:
        return self.service.config.console.idle_timeout

    @property
    def desk_lifetime(self) -> timedelta:
        return self.service.config.console.login_lifetime

    @property
    def failure_window(self) -> timedelta:
        return self.service.config.console.failure_window

    @property
    def account_failures(self) -> int:
        return self.service.config.console.failed_logins

    @property
    def address_failures(self) -> int:
        return self.service.config.console.failed_logins_per_address

    @property
    def desk_cookie_name(self) -> str:
        return f"__Host-{DESK_COOKIE}" if self.secure_cookies else DESK_COOKIE

    def _desk_cookie(self, value: str, *, clear: bool = False) -> str:
        parts = [f"{self.desk_cookie_name}={value}", "Path=/", "SameSite=Strict", "HttpOnly"]
        if clear:
            parts.append("Max-Age=0")
        if self.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def _desk_render(self, visit: Visit, template: str, **context: Any) -> Response:
        """A console page: its own script allowed, never cached (it names clients)."""
        headers = {"Cache-Control": "no-store", **context.pop("headers", {})}
        return self._render(visit, template, csp=DESK_CSP, headers=headers, **context)

    # ------------------------------------------------------------ who is it

    def _who(
        self, request: Request, visit: Visit, *, touch: bool = True
    ) -> tuple[Staff | None, bool]:
        """The logged-in staff member, or None; and whether a login just expired (its
        cookie is cleared on the answer)."""
        token = _cookies(request.header("cookie")).get(self.desk_cookie_name)
        if not token or len(token) > _TOKEN_MAX:
            return None, False
        token_hash = _hashed(token)
        store = self.service.store
        login = store.staff_login(token_hash)
        if login is None:
            visit.cookies.append(self._desk_cookie("", clear=True))
            return None, False
        now = self.now()
        if now - login.last_seen_at > self.desk_idle or now - login.created_at > self.desk_lifetime:
            store.end_staff_login(token_hash, now=now, reason="expired")
            visit.cookies.append(self._desk_cookie("", clear=True))
            return None, True
        if touch and now - login.last_seen_at >= _TOUCH_EVERY:
            store.touch_staff_login(token_hash, now)
        return Staff(login.staff_name, token_hash), False

    # ------------------------------------------------------------ login

    def _login_page(
        self, visit: Visit, *, status: int = 200, problem: str = "", notice: str = "",
        name: str = "", headers: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        return self._desk_render(
            visit,
            "desk/login.html",
            status=status,
            headers=headers or {},
            title=visit.gettext("Desk console: log in"),
            problem=problem,
            notice=notice,
            name=name,
        )

    def desk_login(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        self._check_csrf(request, visit, form)
        typed = form.get("name", "")
        name = typed.strip().lower()[:64]
        password = form.get("password", "")
        address = client_key(request.client_address)
        store = self.service.store
        now = self.now()
        since = now - self.failure_window
        by_address, by_name = store.login_failures(address, name, since)
        locked = [
            stamps[-limit] + self.failure_window
            for stamps, limit in ((by_address, self.address_failures),
                                  (by_name, self.account_failures))
            if len(stamps) >= limit
        ]  # fmt: skip
        if locked:
            wait = max(1, math.ceil((max(locked) - now).total_seconds()))
            problem = visit.gettext(
                "Too many failed attempts. Try again in {minutes} minutes."
            ).format(minutes=max(1, math.ceil(wait / 60)))
            return self._login_page(
                visit, status=429, problem=problem, name=typed,
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        account = store.staff_account(name) if NAME.fullmatch(name) else None
        stored = account.password_hash if account else None
        if len(password) > MAX_PASSWORD or not verify_password(stored, password):
            store.record_login_failure(
                address, name, now=now, forget_before=now - self.failure_window
            )
            problem = visit.gettext("Wrong name or password.")
            return self._login_page(visit, status=401, problem=problem, name=typed)
        if stored is not None and needs_rehash(stored):
            from daemon.staff import hash_password

            store.set_staff_hash(name, hash_password(password))
        token = secrets.token_urlsafe(32)
        store.start_staff_login(_hashed(token), name, now=now, address=address)
        visit.cookies.append(self._desk_cookie(token))
        return self._desk_redirect(visit, "/desk/")

    def desk_logout(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        self._check_csrf(request, visit, form)
        staff, _ = self._who(request, visit, touch=False)
        if staff is not None:
            self.service.store.end_staff_login(staff.token_hash, now=self.now())
        visit.cookies.append(self._desk_cookie("", clear=True))
        return self._desk_redirect(visit, "/desk/?bye=1")

    @staticmethod
    def _desk_redirect(visit: Visit, location: str) -> Response:
        headers = [("Location", location), ("Cache-Control", "no-store")]
        headers += [("Set-Cookie", cookie) for cookie in visit.cookies]
        return Response(303, b"", headers)
