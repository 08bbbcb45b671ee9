"""CSRF protection for the pages' forms: a random cookie and a form token signed from it.

The cookie is SameSite=Lax and HttpOnly; each form carries ``HMAC(key, cookie)``. A
forged cross-site POST either arrives without the cookie (Lax) or cannot compute the
token (it needs the key), and a cookie planted by a sibling subdomain is useless without
its matching token. No server-side state: any worker can check any form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

COOKIE = "expediente_csrf"
FIELD = "csrf_token"

_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{32,64}")


class CsrfGuard:
    def __init__(self, key: bytes) -> None:
        # Its own key, so a CSRF token can never double as any other signature.
        self._key = hmac.new(key, b"expediente csrf v1", hashlib.sha256).digest()

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def usable(cookie: str | None) -> bool:
        """Whether a cookie sent back is one this guard could have made."""
        return cookie is not None and _COOKIE_VALUE.fullmatch(cookie) is not None

    def token(self, cookie: str) -> str:
        digest = hmac.new(self._key, cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if cookie is None or not self.usable(cookie) or not token:
            return False
        given = token.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(self.token(cookie).encode(), given)
