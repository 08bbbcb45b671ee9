"""Real CalDAV servers (Radicale, Xandikos) started as subprocesses for integration tests.

Each server binds 127.0.0.1 on a free port with its storage in a temporary folder, and
hands out fresh calendars (one MKCALENDAR each) so tests never share data. A
:class:`CalendarHandle` also plays the technician's calendar app: it writes and deletes raw
iCalendar objects straight on the server, outside the adapter under test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from caldav.davclient import DAVClient

__all__ = [
    "CalDAVServer",
    "CalendarHandle",
    "ServerStartError",
    "TLSFiles",
    "close_app_clients",
    "free_port",
    "make_tls_files",
    "wait_for_port",
]

_START_TIMEOUT = 30.0  # seconds; a cold import of either server takes ~1 s, CI may be slower


class ServerStartError(RuntimeError):
    """A test server did not start; the message carries its log."""


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (the OS picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something accepts connections on ``port``; raise if the process dies.

    Polling a socket is waiting for an event, not sleeping to control time: the loop ends
    as soon as the server listens, or at the deadline with the server's log in the error.
    """
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"server exited with {process.returncode}:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerStartError(
        f"server did not listen on {port} within {_START_TIMEOUT}s:\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class TLSFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


# Test certificates are valid from 2000 to 2100 rather than around "now": OpenSSL checks
# validity against the real clock, and the suite also runs with Python's clock moved to
# other dates (tests/meta/test_dates.py), where a window built from Python's now would fail.
CERT_VALIDITY = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


def make_tls_files(folder: Path) -> TLSFiles:
    """Create a CA and a certificate for IP 127.0.0.1 in ``folder`` (``CERT_VALIDITY``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    valid_from, valid_to = CERT_VALIDITY
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expediente test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class CalendarHandle:
    """One fresh calendar on a running server, and a technician's app to edit it directly."""

    server: str  # "radicale" | "xandikos"
    url: str  # ends with "/"
    username: str
    password: str
    client: DAVClient = field(repr=False)
    disk_folder: Path | None = None  # where the server keeps this calendar's files, if plain

    def href(self, name: str) -> str:
        """The path of object ``name`` (e.g. ``"a.ics"``) as the server names it."""
        return urlsplit(self.url).path + name

    def put_raw(self, name: str, data: str | bytes, *, create_only: bool = False) -> str:
        """Store ``data`` as object ``name`` like a calendar app; returns the new ETag.

        Raises :class:`RuntimeError` when the server refuses the object (some servers
        validate what they store; see ``connectors.compat``).
        """
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if create_only:
            headers["If-None-Match"] = "*"
        body = data.decode() if isinstance(data, bytes) else data
        response = self.client.put(self.url + name, body, headers)
        if response.status not in (200, 201, 204):
            raise RuntimeError(f"{self.server} refused PUT {name}: {response.status}")
        return str(response.headers.get("ETag", ""))

    def get_raw(self, name: str) -> bytes | None:
        """The object's stored text, or None if absent."""
        response = self.client.request(self.url + name, "GET")
        if response.status == 404:
            return None
        if response.status != 200:
            raise RuntimeError(f"{self.server} GET {name}: {response.status}")
        raw = response._raw  # the body as received: the text a calendar app would read
        return raw if isinstance(raw, bytes) else str(raw).encode()

    def delete_raw(self, name: str) -> None:
        response = self.client.delete(self.url + name)
        if response.status not in (200, 204, 404):
            raise RuntimeError(f"{self.server} DELETE {name}: {response.status}")

    def write_on_disk(self, name: str, data: bytes) -> None:
        """Place a file in the server's storage behind its back (bypassing its validation)."""
        if self.disk_folder is None:
            raise NotImplementedError(f"{self.server} does not keep plain files on disk")
        (self.disk_folder / name).write_bytes(data)


_open_clients: list[DAVClient] = []


def close_app_clients() -> None:
    """Close every app client handed out so far."""
    while _open_clients:
        _open_clients.pop().close()


class CalDAVServer:
    """A server subprocess with one user; subclasses build the command line."""

    kind = "server"

    def __init__(self, workdir: Path, *, username: str = "ana", password: str = "s3cret") -> None:  # noqa: S107 - a test server's
        self.workdir = workdir
        self.username = username
        self.password = password
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.kind}.log"
        self.scheme = "http"
        self.ca_file: Path | None = None

    # -- subclass hooks
    def command(self) -> list[str]:
        raise NotImplementedError

    def calendar_home(self) -> str:
        """Path under which this user's calendars are created, with slashes at both ends."""
        raise NotImplementedError

    def calendar_disk_folder(self, name: str) -> Path | None:
        return None

    def environment(self) -> Mapping[str, str]:
        return {}

    # -- life cycle
    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, same_port: bool = False) -> None:
        """Start on a free port (or, restarting, the one it had) and return when it accepts
        connections."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (same_port and self.port):
            self.port = free_port()
        env = {**os.environ, **self.environment()}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        try:
            wait_for_port(self.port, self.process, self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the process (and wait for it), if running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> CalDAVServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- calendars
    def app_client(self) -> DAVClient:
        """A client standing for the technician's calendar app (not the adapter under test).

        Closed by :func:`close_app_clients` (the connector tests' conftest calls it after each
        test), so no socket outlives its test.
        """
        verify: bool | str = str(self.ca_file) if self.ca_file else True
        client = DAVClient(
            url=self.base_url + "/",
            username=self.username,
            password=self.password,
            auth_type="basic",
            timeout=30,
            ssl_verify_cert=verify,
        )
        _open_clients.append(client)
        return client

    def new_calendar(self, name: str | None = None) -> CalendarHandle:
        """MKCALENDAR a fresh collection and return its handle."""
        name = name or f"cal-{uuid.uuid4().hex[:12]}"
        client = self.app_client()
        url = f"{self.base_url}{self.calendar_home()}{name}/"
        response = client.mkcalendar(url, _MKCALENDAR_BODY)
        if response.status != 201:
            raise ServerStartError(f"{self.kind}: MKCALENDAR {url} answered {response.status}")
        return CalendarHandle(
            server=self.kind,
            url=url,
            username=self.username,
            password=self.password,
            client=client,
            disk_folder=self.calendar_disk_folder(name),
        )


_MKCALENDAR_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>test</D:displayname>"
    "<C:supported-calendar-component-set>"
    '<C:comp name="VEVENT"/>'
    "</C:supported-calendar-component-set>"
    "</D:prop></D:set></C:mkcalendar>"
)
