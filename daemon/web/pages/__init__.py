"""The pages people see: booking, confirmation, the client's manage link, the check-in.

Everything is decided where the JSON API decides it: slots by ``Service.slots``, a
booking by ``Service.book`` (through the API's own ``parse_booking``), a check-in by
``Service.check_in``. These pages only translate between forms and those calls, in the
visitor's language, and work without JavaScript (a small inline script, allowed by its
hash in the Content-Security-Policy, only adds the visitor's own time zone).

Safety: templates autoescape everything typed; every form carries a CSRF token bound to
a server-issued SameSite=Lax cookie, and other sites' POSTs are refused before they get
here (``daemon.web.csrf``); booking POSTs are rate limited per client address on the
service's clock; a GET never changes a session (mail scanners and calendar previews
follow links). Signed links (``MANAGE_PURPOSE``, ``CHECKIN_PURPOSE``) are the only
credential: a bad one is a 404, an expired one a 410.

The pages are mixins, one per concern, combined in :class:`Pages`: ``base.py`` (the
visit, rendering, error pages, static files, the signed link), ``booking.py`` (the
booking form and its slots), ``manage.py`` (the client's link: cancel, rebook, ``.ics``)
``checkin.py`` (the technician's link) and the desk console for staff (``desk_auth.py``:
login; ``desk.py``: the day; ``desk_actions.py``: what staff do to a session;
``desk_booking.py``: booking by phone; combined in ``desk_console.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

from daemon.service import Service
from daemon.signing import Signer
from daemon.web.csrf import CsrfGuard
from daemon.web.http import Router
from daemon.web.pages.base import (
    CSP,
    LANG_COOKIE,
    TZ_SCRIPT,
    PageBase,
    PageError,
    PageHandler,
    Visit,
)
from daemon.web.pages.booking import WINDOW_DAYS, BookingPages, FormState
from daemon.web.pages.checkin import CheckinPages
from daemon.web.pages.desk_console import DeskConsole
from daemon.web.pages.manage import NEXT_SLOTS, ManagePages
from daemon.web.ratelimit import RateLimiter

__all__ = [
    "CSP",
    "LANG_COOKIE",
    "NEXT_SLOTS",
    "TZ_SCRIPT",
    "WINDOW_DAYS",
    "FormState",
    "PageError",
    "PageHandler",
    "Pages",
    "Visit",
]

WEB = Path(__file__).parent.parent  # daemon/web: templates/ and static/
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".js": "text/javascript; charset=utf-8",
}


class Pages(DeskConsole, ManagePages, CheckinPages, BookingPages, PageBase):
    """The HTML side of the web app; ``routes`` mounts it next to the JSON API.

    ``limiter`` defaults to one built from ``[booking] rate_limit``/``refusal_limit``;
    pass the same instance to anything else that books (the JSON API) so an address
    has one budget, not one per door.
    """

    def __init__(
        self, service: Service, signer: Signer, *, limiter: RateLimiter | None = None
    ) -> None:
        self.service = service
        self.signer = signer
        config = service.config
        booking = config.booking
        self.limiter = limiter or RateLimiter(
            booking.rate_limit, booking.rate_window, booking.refusal_limit
        )
        self.secure_cookies = config.server.public_url.startswith("https://")
        self.csrf = CsrfGuard(signer.key, secure=self.secure_cookies)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(WEB / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.static: dict[str, tuple[bytes, str]] = {}
        for path in sorted((WEB / "static").iterdir()):
            if path.suffix in _STATIC_TYPES:
                self.static[path.name] = (path.read_bytes(), _STATIC_TYPES[path.suffix])
        css = self.static.get("style.css", (b"", ""))[0]
        self.css_url = f"/static/style.css?v={hashlib.sha256(css).hexdigest()[:10]}"

    def routes(self, router: Router) -> None:
        pages: list[tuple[str, str, PageHandler]] = [
            ("GET", "/", self.index),
            ("GET", "/book/{type}", self.book_form),
            ("POST", "/book/{type}", self.book_submit),
            ("GET", "/booked/{token}", self.booked),
            ("GET", "/manage/{token}", self.manage),
            ("POST", "/manage/{token}/cancel", self.cancel),
            ("GET", "/manage/{token}/rebook", self.rebook_form),
            ("POST", "/manage/{token}/rebook", self.rebook_submit),
            ("GET", "/manage/{token}/session.ics", self.ics),
            ("GET", "/checkin/{token}", self.checkin),
            ("POST", "/checkin/{token}", self.checkin_submit),
        ]
        pages += self.desk_routes()
        for method, pattern, handler in pages:
            router.add(method, pattern, self._page(pattern, handler))
        router.add("GET", "/desk/live", self.desk_live)
        router.add("GET", "/static/{name}", self.serve_static)
