"""CSRF protection: a cookie only this server issues, form tokens bound to it, and no
POSTs from other sites.

Three locks, because each alone has a known gap:

- The cookie is ``<nonce>.<HMAC(key, nonce)>``. A value the client invents, or one a
  sibling subdomain or another port of the same host plants (cookies ignore ports), fails
  its MAC: it is replaced, and no form token is ever made for it. Under https the cookie
  is ``__Host-`` prefixed, so no other host can set or overwrite it at all.
- Each form carries ``HMAC(key', cookie)``: a POST must bring the cookie and the token made
  for it. Someone who fetched a genuine pair for themselves can still plant it, which is
  why the third lock exists.
- :class:`OriginGuard` refuses (403) any state-changing request whose ``Origin`` is not
  this site (``[server] public_url``, or the ``Host`` the request was sent to) or whose
  ``Sec-Fetch-Site`` says another site sent it, ``same-site`` included: a sibling
  subdomain is "same site" to SameSite cookies, not to us. It covers the JSON API too.

A request with neither header passes the third lock: scripts and servers (JSON API clients,
webhook senders) send none and hold no cookies, so there is no ambient authority to abuse,
and every current browser sends at least one of them on a POST. The forms still need the
cookie and token.

No server-side state: any worker, or any daemon instance sharing the key, checks any form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from daemon.web.http import HTTPError, Request

COOKIE = "expediente_csrf"
FIELD = "csrf_token"
CROSS_SITE = "cross_site_request"  # the error code of a refused cross-site request

_MAC = r"[A-Za-z0-9_-]{43}"  # unpadded URL-safe base64 of a SHA-256 digest
_COOKIE_VALUE = re.compile(rf"(?P<nonce>{_MAC})\.(?P<mac>{_MAC})")
_TOKEN_VALUE = re.compile(_MAC)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# "none": the person started it (typed address, bookmark); nothing else vouches for a POST.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class CsrfGuard:
    """Issues the cookie and the form tokens bound to it; checks what a POST brings back.

    ``secure`` (the site is served over https) names the cookie ``__Host-…``.
    """

    def __init__(self, key: bytes, *, secure: bool = False) -> None:
        # Keys of their own, so neither value can double as any other signature.
        self._cookie_key = hmac.new(key, b"expediente csrf cookie v2", hashlib.sha256).digest()
        self._token_key = hmac.new(key, b"expediente csrf token v2", hashlib.sha256).digest()
        self.cookie_name = f"__Host-{COOKIE}" if secure else COOKIE

    def new_cookie(self) -> str:
        nonce = secrets.token_urlsafe(32)
        return f"{nonce}.{_mac(self._cookie_key, nonce)}"

    def issued(self, cookie: str | None) -> bool:
        """Whether this server issued ``cookie`` (a planted or invented one is not)."""
        match = _COOKIE_VALUE.fullmatch(cookie or "")
        if match is None:
            return False
        expected = _mac(self._cookie_key, match["nonce"])
        return hmac.compare_digest(expected.encode(), match["mac"].encode())

    def token(self, cookie: str) -> str:
        """The form token for a cookie this server issued."""
        return _mac(self._token_key, cookie)

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if cookie is None or not self.issued(cookie) or not token:
            return False
        if _TOKEN_VALUE.fullmatch(token) is None:  # also keeps compare_digest to ASCII
            return False
        return hmac.compare_digest(self.token(cookie).encode(), token.encode())


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; ``None`` for anything else (``null``)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


class OriginGuard:
    """Refuses state-changing requests another site sent (see the module docstring).

    ``public_url`` is ``[server] public_url``; a request may also come from the origin it
    was addressed to (``Host``), e.g. the desk reached by its LAN address.
    """

    def __init__(self, public_url: str) -> None:
        self._public = _origin(public_url)

    def _own(self, origin: str, request: Request) -> bool:
        found = _origin(origin)
        if found is None:
            return False
        if found == self._public:
            return True
        host = request.header("host")
        scheme = str(request.environ.get("wsgi.url_scheme") or "http")
        return host is not None and found == _origin(f"{scheme}://{host}")

    def __call__(self, request: Request) -> None:
        """Raise a 403 :class:`HTTPError` (code :data:`CROSS_SITE`) for another site's request."""
        if request.method in _SAFE_METHODS:
            return
        fetch_site = request.header("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
            raise HTTPError(
                403, CROSS_SITE, f"refused: sent by another site (Sec-Fetch-Site: {fetch_site})"
            )
        origin = request.header("origin")
        if origin is not None and not self._own(origin, request):
            raise HTTPError(403, CROSS_SITE, f"refused: sent from another origin ({origin})")
