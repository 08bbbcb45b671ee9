"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a port the kernel picks.

Use :func:`smtp_server` as a context manager (or through a fixture). It records every
message it accepts, can be told to refuse recipients or data with a given reply
(``server.refuse_rcpt = "550 5.1.1 no such user"``), and speaks STARTTLS, implicit TLS
and AUTH when given a certificate (:func:`self_signed`) and credentials.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers import CERT_VALIDITY


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage


@dataclass
class Recorder:
    """The aiosmtpd handler: stores messages, answers with a refusal when told to."""

    messages: list[Received] = field(default_factory=list)
    refuse_rcpt: str | None = None
    refuse_data: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse_data:
            return self.refuse_data
        data = envelope.original_content or b""
        message = message_from_bytes(data, policy=email_policy.default)
        self.messages.append(
            Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data, message)
        )
        return "250 Message accepted"


class _Controller(Controller):
    """Binds port 0 and learns the real port before aiosmtpd's readiness probe uses it."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        Controller._trigger_server(self)  # type: ignore[no-untyped-call]


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    @property
    def refuse_rcpt(self) -> str | None:
        return self.recorder.refuse_rcpt

    @refuse_rcpt.setter
    def refuse_rcpt(self, reply: str | None) -> None:
        self.recorder.refuse_rcpt = reply

    @property
    def refuse_data(self) -> str | None:
        return self.recorder.refuse_data

    @refuse_data.setter
    def refuse_data(self, reply: str | None) -> None:
        self.recorder.refuse_data = reply


@contextmanager
def smtp_server(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[SmtpServer]:
    """A running server; ``starttls`` makes STARTTLS required, ``login`` makes AUTH
    required (and offered only after TLS, as real servers do)."""
    recorder = Recorder()
    kwargs: dict[str, Any] = {}
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    if implicit_tls is not None:
        kwargs.update(ssl_context=implicit_tls)
    if login is not None:
        expected = (login[0].encode(), login[1].encode())

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == expected
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticate, auth_required=True)
    controller = _Controller(recorder, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, recorder)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts this certificate only, with hostname checking on (as in production)."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def self_signed(folder: Path, host: str = "127.0.0.1") -> Certificate:
    """A fresh self-signed certificate valid for ``host`` (an IP address or a name)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    valid_from, valid_to = CERT_VALIDITY
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "smtp-cert.pem"
    key_file = folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)
