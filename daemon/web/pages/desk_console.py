"""The desk console, combined: its pages (each concern a mixin) and its routes.

``desk_auth.py`` (login, logout, who is asking), ``desk.py`` (the day's list and its live
update). Every route but the login form's answers only a logged-in staff member.
"""

from __future__ import annotations

from daemon.web.http import Request, Response
from daemon.web.pages.base import PageHandler, Visit
from daemon.web.pages.desk import DeskPages


class DeskConsole(DeskPages):
    """``/desk/…``: mounted by ``Pages.routes`` through :meth:`desk_routes`."""

    def desk_routes(self) -> list[tuple[str, str, PageHandler]]:
        return [
            ("GET", "/desk", self.desk_slash),
            ("GET", "/desk/", self.desk_home),
            ("POST", "/desk/login", self.desk_login),
            ("POST", "/desk/logout", self.desk_logout),
        ]

    def desk_slash(self, request: Request, visit: Visit) -> Response:
        return self._redirect("/desk/")
