"""The desk console, combined: its pages (each concern a mixin) and its routes.

``desk_auth.py`` (login, logout, who is asking), ``desk.py`` (the day's list and its live
update), ``desk_actions.py`` (check in, cancel, complete, resend), ``desk_booking.py``
(booking by phone, rebooking). Every route but the login form's answers only a
logged-in staff member.
"""

from __future__ import annotations

from daemon.web.http import Request, Response
from daemon.web.pages.base import PageHandler, Visit
from daemon.web.pages.desk_booking import DeskBookingPages


class DeskConsole(DeskBookingPages):
    """``/desk/…``: mounted by ``Pages.routes`` through :meth:`desk_routes`."""

    def desk_routes(self) -> list[tuple[str, str, PageHandler]]:
        return [
            ("GET", "/desk", self.desk_slash),
            ("GET", "/desk/", self.desk_home),
            ("POST", "/desk/login", self.desk_login),
            ("POST", "/desk/logout", self.desk_logout),
            ("POST", "/desk/sessions/{id}/check-in", self.desk_check_in),
            ("POST", "/desk/sessions/{id}/cancel", self.desk_cancel),
            ("POST", "/desk/sessions/{id}/complete", self.desk_complete),
            ("POST", "/desk/sessions/{id}/resend", self.desk_resend),
            ("GET", "/desk/sessions/{id}/rebook", self.desk_rebook_form),
            ("POST", "/desk/sessions/{id}/rebook", self.desk_rebook_submit),
            ("GET", "/desk/book/{type}", self.desk_book_form),
            ("POST", "/desk/book/{type}", self.desk_book_submit),
        ]

    def desk_slash(self, request: Request, visit: Visit) -> Response:
        return self._redirect("/desk/")
