"""Radicale (PyPI ``radicale``) as a test server: htpasswd auth, plain files on disk.

Its storage is plain files (``collection-root/<user>/<calendar>/<name>.ics``), so a test can
place a broken object behind its back; Radicale validates every PUT and refuses bad data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.servers import CalDAVServer, TLSFiles


class RadicaleServer(CalDAVServer):
    """``python -m radicale`` with one htpasswd user and quiet logs."""

    kind = "radicale"

    def __init__(
        self,
        workdir: Path,
        *,
        username: str = "ana",
        password: str = "s3cret",  # noqa: S107 - a test server's
        tls: TLSFiles | None = None,
    ) -> None:
        super().__init__(workdir, username=username, password=password)
        self.storage = workdir / "storage"
        self.tls = tls
        if tls is not None:
            self.scheme = "https"
            self.ca_file = tls.ca_cert

    def command(self) -> list[str]:
        users = self.workdir / "users"
        users.write_text(f"{self.username}:{self.password}\n")
        config = self.workdir / "config"
        # An empty config file stops Radicale from reading /etc/radicale/config or ~/.config.
        config.write_text("")
        command = [
            sys.executable,
            "-m",
            "radicale",
            "--config",
            str(config),
            "--server-hosts",
            f"127.0.0.1:{self.port}",
            "--storage-filesystem-folder",
            str(self.storage),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(users),
            "--auth-htpasswd-encryption",
            "plain",
            # Radicale sleeps after a failed login and after each 5xx (1 s by default): tests
            # provoke both on purpose and must stay fast.
            "--auth-delay",
            "0",
            "--server-delay-on-error",
            "0",
            "--logging-level",
            "warning",
            "--no-logging-bad-put-request-content",
        ]
        if self.tls is not None:
            command += [
                "--server-ssl",
                "--server-certificate",
                str(self.tls.server_cert),
                "--server-key",
                str(self.tls.server_key),
            ]
        return command

    def calendar_home(self) -> str:
        return f"/{self.username}/"

    def calendar_disk_folder(self, name: str) -> Path | None:
        return self.storage / "collection-root" / self.username / name
