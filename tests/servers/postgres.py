"""A real PostgreSQL server (Debian's ``postgresql`` package) for the store's tests.

The server refuses to run as root, so when the tests run as root (CI does) ``initdb`` and
``pg_ctl`` run as the ``postgres`` user, in a temporary folder of its own under ``/tmp``
(pytest's own temporary folders are private to root). It listens on 127.0.0.1 on a free
port and on a unix socket in that folder, trusts local connections (nothing else can
reach it), and is stopped and removed when the session ends. ``fsync`` is off: a test
server has no power cut to survive, and its restart (a fast shutdown) still writes out
everything committed.

Each test gets a database of its own (:meth:`PostgresServer.create_database`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.servers import ServerStartError, free_port

_BINARIES = Path("/usr/lib/postgresql")
_START_TIMEOUT = 60.0


def postgres_bin(name: str) -> str:
    """The newest installed PostgreSQL's ``name`` (``initdb``, ``pg_ctl``...)."""
    if _BINARIES.is_dir():
        versions = sorted(
            (p for p in _BINARIES.iterdir() if (p / "bin" / name).exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if versions:
            return str(versions[-1] / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(
            f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (.ci/run does)"
        )
    return found


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; :meth:`start`, :meth:`stop`,
    :meth:`restart` and :meth:`kill` drive it like an operator (or a crash) would."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="expediente-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)  # noqa: S103 - the tests (root) read the log
        self._run([postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])  # fmt: skip

    def _run(self, command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.socket_dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
        )
        done = self._run(
            [postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
             "-w", "-t", str(int(_START_TIMEOUT)), "start"],
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise ServerStartError(f"PostgreSQL did not start: {done.stderr}\n{self._tail()}")

    def stop(self, mode: str = "fast") -> None:
        self._run([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                  check=False)  # fmt: skip

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """The server dies at once (SIGKILL to the postmaster, then its children exit)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, 9)
            deadline = time.monotonic() + _START_TIMEOUT
            while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
                if self._run([postgres_bin("pg_ctl"), "-D", str(self.data), "status"],
                             check=False).returncode == 3:  # fmt: skip
                    break
                time.sleep(0.05)

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user=postgres"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its libpq connection string."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"
