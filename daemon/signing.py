"""Signed, expiring links: check-in links in the technician's event, manage links for clients.

A token is ``<purpose>.<session id>.<expiry epoch>.<HMAC-SHA256>``, URL-safe base64 for
the MAC. The purpose is part of what is signed, so a client's manage link can never be
replayed as a check-in link. Verification is constant-time, and compares bytes: a link
is whatever a client typed, and ``hmac.compare_digest`` raises on non-ASCII text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime


class BadToken(ValueError):
    """The link is malformed, forged, for another purpose, or expired (message says which)."""


class ExpiredToken(BadToken):
    """A genuine link past its expiry (pages answer 410 Gone rather than 404)."""


@dataclass(frozen=True)
class Signer:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the signing key must be at least 16 bytes")

    def _mac(self, message: str) -> str:
        return self._mac_of(message.encode())

    def _mac_of(self, message: bytes) -> str:
        digest = hmac.new(self.key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, purpose: str, session_id: str, expires: datetime) -> str:
        if "." in purpose or "." in session_id:
            raise ValueError("purpose and session id must not contain '.'")
        message = f"{purpose}.{session_id}.{int(expires.timestamp())}"
        return f"{message}.{self._mac(message)}"

    def verify(self, token: str, purpose: str, now: datetime) -> str:
        """The session id the token was made for; raises :class:`BadToken`."""
        parts = token.split(".")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if len(parts) != 4 or not (parts[2].isascii() and parts[2].isdigit()):
            raise BadToken("malformed link")
        token_purpose, session_id, expiry, mac = parts
        try:
            message = f"{token_purpose}.{session_id}.{expiry}".encode()
            given = mac.encode()
        except UnicodeEncodeError:  # a lone surrogate: no link of ours holds one
            raise BadToken("malformed link") from None
        expected = self._mac_of(message).encode()
        if not hmac.compare_digest(expected, given):
            raise BadToken("invalid signature")
        if token_purpose != purpose:
            raise BadToken("link made for another purpose")
        try:
            expires = datetime.fromtimestamp(int(expiry), UTC)
        except (OverflowError, OSError, ValueError):  # signed, but past what a date holds
            raise BadToken("malformed link") from None
        if now >= expires:
            raise ExpiredToken("expired link")
        return session_id
