"""Xandikos (PyPI ``xandikos``) as a test server.

Xandikos only does HTTP Basic auth over its own self-signed TLS (``--htpasswd`` requires
``--autocert``), so the test server runs without authentication: the adapter still sends
its credentials and Xandikos ignores them. Its storage is a Git repository per collection,
so objects cannot be placed on disk behind its back; it does accept many invalid objects
over PUT instead (see ``connectors.compat``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.servers import CalDAVServer


class XandikosServer(CalDAVServer):
    """``python -m xandikos serve --defaults`` with its principal at ``/user/``."""

    kind = "xandikos"

    def __init__(self, workdir: Path, *, username: str = "user", password: str = "unused") -> None:  # noqa: S107 - a test server's
        super().__init__(workdir, username=username, password=password)
        self.storage = workdir / "storage"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "xandikos",
            "serve",
            "--port",
            str(self.port),
            "--listen-address",
            "127.0.0.1",
            "--directory",
            str(self.storage),
            "--state-dir",
            str(self.workdir / "state"),
            "--current-user-principal",
            "/user/",
            "--defaults",
            "--no-detect-systemd",
        ]

    def calendar_home(self) -> str:
        return "/user/calendars/"
