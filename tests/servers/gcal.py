"""A local Google Calendar v3 server, written from Google's public API reference.

It serves what the adapter uses, and refuses what Google refuses, with Google's error body
shape (``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}``):

* ``GET /calendar/v3/calendars/{id}/events`` — ``maxResults`` (≤ 2500), ``pageToken``,
  ``showDeleted``, ``singleEvents``, ``iCalUID``, ``timeMin``/``timeMax``, ``orderBy``,
  ``syncToken`` (400 with a filter it cannot carry, or with ``showDeleted=false``; 410
  ``fullSyncRequired`` when expired or unknown), ``nextPageToken``/``nextSyncToken``;
* ``POST .../events`` (insert: a client id must be 5–1024 base32hex characters; a taken id
  or iCalUID is 409), ``GET``/``PUT``/``PATCH``/``DELETE .../events/{eventId}`` with
  ``If-Match`` (412), deleted events answering 410 to a second delete, instance ids
  (``{master}_{YYYYMMDDTHHMMSSZ}``) turning into exceptions when written;
* ``POST /calendar/v3/freeBusy`` (≤ 50 calendars, ≤ 90 days);
* ``POST /token``: the JWT-bearer grant of a service account (RS256 signature checked against
  the registered key, audience, lifetime, scope) and the ``refresh_token`` grant. Every API
  call needs a bearer token from here (401 otherwise, 403 without a fitting scope).

Google's own validation is copied where the reference states it (times, time zones, ids,
reminders, recurrence, paging, sync tokens). Things Google would never store (an event with
no end, an unknown time zone) can still come back from real calendars, so a test places them
with :meth:`GoogleCalendarServer.store_raw`, behind the API's back.

Fault injection: :meth:`GoogleCalendarServer.inject` queues faults for the next API requests
(a status with ``Retry-After``, or a dropped connection before or after the request is
carried out); :meth:`expire_sync_tokens` and :meth:`revoke_tokens` age out what was issued.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "Fault",
    "GoogleCalendarServer",
    "ServiceAccountKey",
    "make_service_account_key",
]

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
EVENT_SCOPES = frozenset({CALENDAR_SCOPE, "https://www.googleapis.com/auth/calendar.events"})
READ_SCOPES = EVENT_SCOPES | {
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
}
FREEBUSY_SCOPES = READ_SCOPES | {
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/calendar.events.freebusy",
}
GOOGLE_TOKEN_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_RESULTS = 2500
DEFAULT_RESULTS = 250
FREEBUSY_MAX_CALENDARS = 50
FREEBUSY_MAX_SPAN = timedelta(days=90)
TOKEN_LIFETIME = 3599
_ID = re.compile(r"[a-v0-9]{5,1024}")
_INSTANCE = re.compile(r"(?P<master>[a-v0-9]{5,1024})_(?P<when>\d{8}(?:T\d{6}Z)?)")
_SYNC_INCOMPATIBLE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_RECURRENCE = re.compile(r"(RRULE|EXRULE|RDATE|EXDATE)[;:].*")


class ApiError(Exception):
    """An answer in Google's error shape."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
                "code": self.code,
                "message": self.message,
            }
        }


def _bad(message: str, reason: str = "invalid") -> ApiError:
    return ApiError(400, reason, message)


@dataclass(frozen=True)
class Fault:
    """One injected fault: a ``status`` (with ``retry_after`` as the header's text), or a
    dropped connection (``drop="before"`` the request is carried out, or ``"after"``).
    ``method`` limits it to requests with that HTTP method."""

    status: int = 503
    retry_after: str | None = None
    drop: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class ServiceAccountKey:
    """A throwaway service account: the JSON key file's content and its private key."""

    email: str
    info: dict[str, Any]
    private_key: rsa.RSAPrivateKey

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.info))
        return path


def make_service_account_key(
    token_uri: str, email: str = "desk@expediente-test.iam.example"
) -> ServiceAccountKey:
    """A fresh 2048-bit RSA key in Google's service-account JSON layout."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "expediente-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": "1" + "".join(str(secrets.randbelow(10)) for _ in range(20)),
        "auth_uri": "http://127.0.0.1/unused",
        "token_uri": token_uri,
    }
    return ServiceAccountKey(email, info, key)


@dataclass
class _Token:
    principal: str
    subject: str | None
    scopes: frozenset[str]
    expires: float


@dataclass
class _Calendar:
    id: str
    time_zone: str = "America/Sao_Paulo"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)  # event id → change number


@dataclass(frozen=True)
class Logged:
    """One request the server answered (or dropped)."""

    method: str
    path: str
    query: dict[str, list[str]]
    principal: str | None
    subject: str | None
    body: Any


class GoogleCalendarServer:
    """The server, started on 127.0.0.1 in a thread; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._calendars: dict[str, _Calendar] = {}
        self._seq = 0
        self._epoch = 0  # sync tokens of older epochs are expired
        self._sync_tokens: dict[str, tuple[str, int, int, str]] = {}
        self._page_tokens: dict[str, tuple[str, list[dict[str, Any]], str | None]] = {}
        self._service_accounts: dict[str, rsa.RSAPublicKey] = {}
        self._refresh_tokens: dict[str, tuple[str, str, frozenset[str]]] = {}
        self._tokens: dict[str, _Token] = {}
        self._faults: list[Fault] = []
        self.log: list[Logged] = []
        self.token_requests: list[dict[str, str]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> GoogleCalendarServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_endpoint(self) -> str:
        return f"{self.url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # ------------------------------------------------------------------ test knobs

    def add_calendar(self, calendar_id: str, time_zone: str = "America/Sao_Paulo") -> None:
        with self._lock:
            self._calendars.setdefault(calendar_id, _Calendar(calendar_id, time_zone))

    def add_service_account(self, key: ServiceAccountKey) -> None:
        with self._lock:
            self._service_accounts[key.email] = key.private_key.public_key()

    def add_refresh_token(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        scopes: frozenset[str] = frozenset({CALENDAR_SCOPE}),
    ) -> None:
        with self._lock:
            self._refresh_tokens[refresh_token] = (client_id, client_secret, scopes)

    def store_raw(self, calendar_id: str, event: dict[str, Any]) -> str:
        """Place ``event`` as it is (no validation): data Google would not accept through
        this API but that real calendars hold. Returns the event id."""
        with self._lock:
            cal = self._calendars[calendar_id]
            stored = copy.deepcopy(event)
            stored.setdefault("id", _new_id())
            stored.setdefault("kind", "calendar#event")
            stored.setdefault("status", "confirmed")
            stored.setdefault("iCalUID", f"{stored['id']}@google.com")
            self._touch(cal, stored)
            return str(stored["id"])

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._calendars[calendar_id].events.get(event_id)
            return copy.deepcopy(found) if found is not None else None

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._calendars[calendar_id].events.values()]

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def expire_sync_tokens(self) -> None:
        with self._lock:
            self._epoch += 1

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def issue_token(self, scopes: frozenset[str] = frozenset({CALENDAR_SCOPE})) -> str:
        """An access token for tests that call the API by hand."""
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token("test", None, scopes, time.time() + TOKEN_LIFETIME)
        return token

    def api_requests(self, method: str | None = None, suffix: str = "") -> list[Logged]:
        with self._lock:
            return [
                r
                for r in self.log
                if r.path.startswith("/calendar/v3/")
                and (method is None or r.method == method)
                and r.path.endswith(suffix)
            ]

    # ------------------------------------------------------------------ dispatch

    def take_fault(self, method: str, path: str) -> Fault | None:
        if not path.startswith("/calendar/v3/"):
            return None
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.method is None or fault.method == method:
                    return self._faults.pop(index)
        return None

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One request → (status, headers, body)."""
        parsed: Any = None
        token: _Token | None = None
        try:
            if path == "/token" and method == "POST":
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                with self._lock:
                    self.token_requests.append(form)
                status, answer = self._token(form)
                return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()
            if not path.startswith("/calendar/v3/"):
                raise ApiError(404, "notFound", "Not Found")
            token = self._authorize(headers.get("Authorization"))
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise _bad("Parse Error", "parseError") from None
            with self._lock:
                status, answer, extra = self._api(method, path, query, headers, parsed, token)
            out = json.dumps(answer).encode() if answer is not None else b""
            return status, {"Content-Type": "application/json; charset=UTF-8", **extra}, out
        except ApiError as exc:
            return (
                exc.code,
                {"Content-Type": "application/json; charset=UTF-8", **exc.headers},
                json.dumps(exc.body()).encode(),
            )
        finally:
            with self._lock:
                self.log.append(
                    Logged(
                        method,
                        urllib.parse.unquote(path),
                        query,
                        token.principal if token else None,
                        token.subject if token else None,
                        parsed,
                    )
                )

    def _authorize(self, value: str | None) -> _Token:
        scheme, _, credential = (value or "").partition(" ")
        with self._lock:
            token = self._tokens.get(credential) if scheme.lower() == "bearer" else None
            if token is None or token.expires < time.time():
                error = ApiError(
                    401,
                    "authError",
                    "Request had invalid authentication credentials.",
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
                )
                raise error
            return token

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: Any,
        token: _Token,
    ) -> tuple[int, Any, dict[str, str]]:
        parts = [urllib.parse.unquote(p) for p in path[len("/calendar/v3/") :].split("/")]
        if parts == ["freeBusy"] and method == "POST":
            _need(token, FREEBUSY_SCOPES)
            return 200, self._free_busy(body), {}
        if len(parts) >= 3 and parts[0] == "calendars" and parts[2] == "events":
            cal = self._calendars.get(parts[1])
            if cal is None:
                raise ApiError(404, "notFound", "Not Found")
            _need(token, READ_SCOPES if method == "GET" else EVENT_SCOPES)
            if len(parts) == 3:
                if method == "GET":
                    return 200, self._list(cal, query), {}
                if method == "POST":
                    return 200, self._insert(cal, body), {}
            elif len(parts) == 4:
                eid = parts[3]
                if_match = headers.get("If-Match")
                if method == "GET":
                    return 200, self._public(self._get(cal, eid)), {}
                if method in ("PUT", "PATCH"):
                    return 200, self._modify(cal, eid, body, if_match, method == "PATCH"), {}
                if method == "DELETE":
                    self._delete(cal, eid, if_match)
                    return 204, None, {}
        raise ApiError(404, "notFound", "Not Found")

    # ------------------------------------------------------------------ OAuth

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            principal, subject, scopes = self._check_jwt(form.get("assertion", ""))
        elif grant == "refresh_token":
            found = self._refresh_tokens.get(form.get("refresh_token", ""))
            if found is None:
                return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
            client_id, secret, scopes = found
            if form.get("client_id") != client_id or form.get("client_secret") != secret:
                return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
            asked = frozenset(form.get("scope", "").split())
            if asked and not asked <= scopes:
                return 400, {"error": "invalid_scope", "error_description": "Bad Request"}
            principal, subject = client_id, None
        else:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type",
            }
        if isinstance(principal, dict):
            return 400, principal
        token = "ya29." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(principal, subject, scopes, time.time() + TOKEN_LIFETIME)
        return 200, {
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        }

    def _check_jwt(self, assertion: str) -> tuple[Any, str | None, frozenset[str]]:
        """(principal, subject, scopes), or ({error body}, None, {}) when refused."""

        def refuse(description: str) -> tuple[Any, None, frozenset[str]]:
            return {"error": "invalid_grant", "error_description": description}, None, frozenset()

        pieces = assertion.split(".")
        if len(pieces) != 3:
            return refuse(
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
            )
        try:
            header = json.loads(_b64decode(pieces[0]))
            claims = json.loads(_b64decode(pieces[1]))
            signature = _b64decode(pieces[2])
        except ValueError:
            return refuse("Invalid JWT Signature.")
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            return refuse("Invalid JWT Signature.")
        if not isinstance(claims, dict):
            return refuse("Invalid JWT Signature.")
        with self._lock:
            public = self._service_accounts.get(str(claims.get("iss")))
        if public is None:
            return refuse("Invalid grant: account not found")
        try:
            public.verify(
                signature,
                f"{pieces[0]}.{pieces[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            return refuse("Invalid JWT: Token must be a short-lived token (60 minutes)")
        if exp < now - 60 or iat > now + 300 or exp - iat > 3600:
            return refuse(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim."
            )
        # google-auth always writes Google's own token endpoint as the audience, whatever
        # token_uri says; Google accepts both of its names for it.
        if claims.get("aud") not in (self.token_uri, *GOOGLE_TOKEN_AUDIENCES):
            return refuse("Invalid JWT: Failed audience check.")
        scopes = frozenset(str(claims.get("scope", "")).split())
        if not scopes:
            return refuse("Invalid JWT: no scope")  # Google: invalid_scope for an empty one
        subject = claims.get("sub")
        return str(claims["iss"]), str(subject) if subject else None, scopes

    # ------------------------------------------------------------------ events: storage

    def _touch(self, cal: _Calendar, event: dict[str, Any]) -> None:
        """Store ``event`` as a new version: new change number, ETag and ``updated``."""
        self._seq += 1
        event["etag"] = f'"{3_400_000_000_000_000 + self._seq}"'
        event["updated"] = _stamp()
        cal.events[event["id"]] = event
        cal.seqs[event["id"]] = self._seq

    def _get(self, cal: _Calendar, eid: str) -> dict[str, Any]:
        found = cal.events.get(eid)
        if found is not None:
            return found
        instance = self._virtual_instance(cal, eid)
        if instance is None:
            raise ApiError(404, "notFound", "Not Found")
        return instance

    def _virtual_instance(self, cal: _Calendar, eid: str) -> dict[str, Any] | None:
        """The unmodified instance ``eid`` of a recurring master, if it is one."""
        match = _INSTANCE.fullmatch(eid)
        if match is None:
            return None
        master = cal.events.get(match["master"])
        if master is None or not master.get("recurrence") or master.get("status") == "cancelled":
            return None
        for start, end in _occurrences(master, None, None, limit=5000):
            if _instance_suffix(start) == match["when"]:
                return _instance_of(master, eid, start, end)
        return None

    def _public(self, event: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(event)

    # ------------------------------------------------------------------ events: writes

    def _insert(self, cal: _Calendar, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("Missing event body.", "required")
        event = copy.deepcopy(body)
        eid = event.get("id")
        if eid is not None:
            if not isinstance(eid, str) or not _ID.fullmatch(eid):
                raise _bad("Invalid resource id value.")
            if eid in cal.events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            eid = _new_id()
        ical_uid = event.get("iCalUID")
        if ical_uid is not None:
            if not isinstance(ical_uid, str) or not ical_uid:
                raise _bad("Invalid iCalUID value.")
            if any(
                e.get("iCalUID") == ical_uid
                and e.get("status") != "cancelled"
                and not e.get("recurringEventId")
                for e in cal.events.values()
            ):
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        event["id"] = eid
        event["iCalUID"] = ical_uid or f"{eid}@google.com"
        event["kind"] = "calendar#event"
        event.setdefault("status", "confirmed")
        event.setdefault("reminders", {"useDefault": True})
        event.setdefault("eventType", "default")
        event["sequence"] = int(event.get("sequence", 0) or 0)
        event["created"] = _stamp()
        event["htmlLink"] = f"https://www.google.com/calendar/event?eid={eid}"
        event["creator"] = {"email": cal.id, "self": True}
        event["organizer"] = {"email": cal.id, "self": True}
        for read_only in ("recurringEventId", "originalStartTime"):
            event.pop(read_only, None)
        _validate(event)
        self._touch(cal, event)
        return self._public(event)

    def _modify(
        self, cal: _Calendar, eid: str, body: Any, if_match: str | None, patch: bool
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("Missing event body.", "required")
        current = self._get(cal, eid)
        if if_match is not None and if_match != "*" and if_match != current.get("etag"):
            raise ApiError(412, "conditionNotMet", "Precondition Failed", domain="global")
        if patch:
            event = _merge(copy.deepcopy(current), copy.deepcopy(body))
        else:
            event = copy.deepcopy(body)
            for kept in (
                "id",
                "iCalUID",
                "created",
                "creator",
                "organizer",
                "htmlLink",
                "kind",
                "recurringEventId",
                "originalStartTime",
                "sequence",
                "eventType",
            ):
                if kept in current:
                    event[kept] = current[kept]
            event.setdefault("status", "confirmed")
            event.setdefault("reminders", {"useDefault": True})
        if body.get("id") not in (None, eid):
            raise _bad("Invalid resource id value.")
        event["id"] = eid
        for read_only in ("iCalUID", "recurringEventId", "originalStartTime"):
            if read_only in current:
                event[read_only] = current[read_only]
        if event.get("start") != current.get("start") or event.get("end") != current.get("end"):
            event["sequence"] = int(current.get("sequence", 0) or 0) + 1
        _validate(event)
        self._touch(cal, event)
        return self._public(event)

    def _delete(self, cal: _Calendar, eid: str, if_match: str | None) -> None:
        current = self._get(cal, eid)
        if current.get("status") == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        if if_match is not None and if_match != "*" and if_match != current.get("etag"):
            raise ApiError(412, "conditionNotMet", "Precondition Failed")
        event = copy.deepcopy(current)
        event["status"] = "cancelled"
        self._touch(cal, event)
        if not event.get("recurringEventId"):
            for other in list(cal.events.values()):
                if other.get("recurringEventId") == eid and other.get("status") != "cancelled":
                    gone = copy.deepcopy(other)
                    gone["status"] = "cancelled"
                    self._touch(cal, gone)

    # ------------------------------------------------------------------ events: list

    def _list(self, cal: _Calendar, query: dict[str, list[str]]) -> dict[str, Any]:
        q = {k: v[-1] for k, v in query.items()}
        max_results = DEFAULT_RESULTS
        if "maxResults" in q:
            try:
                max_results = int(q["maxResults"])
            except ValueError:
                raise _bad("Invalid value for: maxResults") from None
            if max_results < 1:
                raise _bad(f"Invalid value '{q['maxResults']}'. Values must be >= 1")
            max_results = min(max_results, MAX_RESULTS)
        show_deleted = _flag(q, "showDeleted")
        single = _flag(q, "singleEvents")
        sync_token = q.get("syncToken")
        if sync_token is not None:
            clash = [name for name in _SYNC_INCOMPATIBLE if name in q]
            if clash:
                raise _bad(f"Sync token cannot be used together with {clash[0]}.")
            if q.get("showDeleted") == "false":
                raise _bad("Sync token cannot be used with showDeleted=false.")
        order = q.get("orderBy")
        if order not in (None, "startTime", "updated"):
            raise _bad(f"Invalid value for: orderBy: {order}")
        if order == "startTime" and not single:
            raise _bad("The requested ordering is not available for the particular query.")
        time_min = _query_time(q, "timeMin")
        time_max = _query_time(q, "timeMax")
        if time_min and time_max and time_max <= time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        fingerprint = json.dumps(
            {k: v for k, v in sorted(q.items()) if k not in ("pageToken", "maxResults")}
        )
        page_token = q.get("pageToken")
        if page_token is not None:
            found = self._page_tokens.get(page_token)
            if found is None or found[0] != fingerprint:
                raise _bad("Invalid page token value.")
            _, remaining, next_sync = found
        else:
            since: int | None = None
            if sync_token is not None:
                since = self._check_sync_token(cal, sync_token, fingerprint)
            remaining = self._matching(
                cal, since, show_deleted, single, q.get("iCalUID"), time_min, time_max, order
            )
            next_sync = self._new_sync_token(cal, fingerprint)
        page, rest = remaining[:max_results], remaining[max_results:]
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"p{self._seq}{len(page)}"',
            "summary": cal.id,
            "updated": _stamp(),
            "timeZone": cal.time_zone,
            "accessRole": "owner",
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "items": page,
        }
        if rest:
            token = secrets.token_urlsafe(18)
            self._page_tokens[token] = (fingerprint, rest, next_sync)
            answer["nextPageToken"] = token
        elif next_sync is not None:
            answer["nextSyncToken"] = next_sync
        return answer

    def _new_sync_token(self, cal: _Calendar, fingerprint: str) -> str | None:
        q = json.loads(fingerprint)
        if any(name in q for name in _SYNC_INCOMPATIBLE if name != "iCalUID"):
            return None  # Google gives no sync token for a filtered listing
        if "iCalUID" in q:
            return None
        token = "CP" + base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        sync_fingerprint = json.dumps({k: v for k, v in q.items() if k != "syncToken"})
        self._sync_tokens[token] = (cal.id, self._seq, self._epoch, sync_fingerprint)
        return token

    def _check_sync_token(self, cal: _Calendar, token: str, fingerprint: str) -> int:
        found = self._sync_tokens.get(token)
        if found is None or found[0] != cal.id or found[2] != self._epoch:
            raise ApiError(
                410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
            )
        return found[1]

    def _matching(
        self,
        cal: _Calendar,
        since: int | None,
        show_deleted: bool,
        single: bool,
        ical_uid: str | None,
        time_min: datetime | None,
        time_max: datetime | None,
        order: str | None,
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        ordered = sorted(cal.events.values(), key=lambda e: cal.seqs[e["id"]])
        for event in ordered:
            if since is not None and cal.seqs[event["id"]] <= since:
                continue
            if ical_uid is not None and event.get("iCalUID") != ical_uid:
                continue
            cancelled = event.get("status") == "cancelled"
            if single and event.get("recurrence") and not cancelled:
                items.extend(self._instances(cal, event, time_min, time_max, show_deleted))
                continue
            if single and event.get("recurringEventId"):
                continue  # included by _instances in place of the instance it changes
            if cancelled and since is None and not show_deleted:
                exception = bool(event.get("recurringEventId"))
                if single or not exception:
                    continue
            if (
                (time_min or time_max)
                and not cancelled
                and not _overlaps(event, time_min, time_max)
            ):
                continue
            items.append(_deleted_view(event) if cancelled else copy.deepcopy(event))
        if order == "startTime":
            items.sort(key=lambda e: _sort_key(e.get("start")))
        elif order == "updated":
            items.sort(key=lambda e: str(e.get("updated", "")))
        return items

    def _instances(
        self,
        cal: _Calendar,
        master: dict[str, Any],
        time_min: datetime | None,
        time_max: datetime | None,
        show_deleted: bool,
    ) -> list[dict[str, Any]]:
        exceptions = {
            _instance_suffix(_parse_when(e["originalStartTime"])): e
            for e in cal.events.values()
            if e.get("recurringEventId") == master["id"] and e.get("originalStartTime")
        }
        found: list[dict[str, Any]] = []
        for start, end in _occurrences(master, time_min, time_max, limit=2500):
            key = _instance_suffix(start)
            exception = exceptions.get(key)
            if exception is not None:
                if exception.get("status") == "cancelled" and not show_deleted:
                    continue
                found.append(copy.deepcopy(exception))
            else:
                found.append(_instance_of(master, f"{master['id']}_{key}", start, end))
        return found

    # ------------------------------------------------------------------ free/busy

    def _free_busy(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad("Missing body.", "required")
        for name in ("timeMin", "timeMax"):
            if not body.get(name):
                raise ApiError(400, "required", f"Missing {name} parameter.")
        try:
            start = _rfc3339(str(body["timeMin"]))
            end = _rfc3339(str(body["timeMax"]))
        except ValueError:
            raise _bad("Bad Request") from None
        if end <= start:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        if end - start > FREEBUSY_MAX_SPAN:
            raise ApiError(400, "timeRangeTooLong", "The requested time range is too long.")
        zone_name = body.get("timeZone") or "UTC"
        try:
            zone = ZoneInfo(str(zone_name))
        except (ValueError, KeyError, OSError):
            raise _bad("Invalid time zone.") from None
        items = body.get("items") or []
        ids = [str(i.get("id")) for i in items if isinstance(i, dict)]
        calendars: dict[str, Any] = {}
        too_many = len(ids) > FREEBUSY_MAX_CALENDARS
        for cal_id in ids:
            if too_many:
                calendars[cal_id] = {
                    "errors": [{"domain": "usageLimits", "reason": "tooManyCalendarsRequested"}],
                    "busy": [],
                }
                continue
            cal = self._calendars.get(cal_id)
            if cal is None:
                calendars[cal_id] = {
                    "errors": [{"domain": "global", "reason": "notFound"}],
                    "busy": [],
                }
                continue
            periods = sorted(_busy_periods(cal, start, end))
            merged: list[list[datetime]] = []
            for begin, finish in periods:
                if merged and begin <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], finish)
                else:
                    merged.append([begin, finish])
            calendars[cal_id] = {
                "busy": [
                    {"start": _fmt(b.astimezone(zone)), "end": _fmt(f.astimezone(zone))}
                    for b, f in merged
                ]
            }
        return {
            "kind": "calendar#freeBusy",
            "timeMin": _fmt(start.astimezone(UTC)),
            "timeMax": _fmt(end.astimezone(UTC)),
            "calendars": calendars,
        }


# ---------------------------------------------------------------------- the HTTP side


class _Handler(BaseHTTPRequestHandler):
    owner: GoogleCalendarServer
    protocol_version = "HTTP/1.1"
    timeout = 10  # an idle keep-alive connection is closed, so server_close finds no stragglers

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        method = self.command
        override = self.headers.get("X-HTTP-Method-Override")
        if method == "POST" and override:
            method = override.upper()
            if body and method == "GET":
                query.update(urllib.parse.parse_qs(body.decode(), keep_blank_values=True))
                body = b""
        fault = self.owner.take_fault(method, split.path)
        if fault is not None and fault.drop == "before":
            self._drop(method, split.path, query)
            return
        if fault is not None and fault.drop is None:
            error = ApiError(
                fault.status,
                "rateLimitExceeded" if fault.status == 429 else "backendError",
                "Rate Limit Exceeded" if fault.status == 429 else "Backend Error",
                domain="usageLimits" if fault.status == 429 else "global",
            )
            headers = {"Content-Type": "application/json; charset=UTF-8"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            with self.owner._lock:
                self.owner.log.append(
                    Logged(method, urllib.parse.unquote(split.path), query, None, None, None)
                )
            self._answer(fault.status, headers, json.dumps(error.body()).encode())
            return
        status, headers, out = self.owner.handle(method, split.path, query, self.headers, body)
        if fault is not None and fault.drop == "after":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(status, headers, out)

    def _drop(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        with self.owner._lock:
            self.owner.log.append(
                Logged(method, urllib.parse.unquote(path), query, None, None, "dropped")
            )
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


# ---------------------------------------------------------------------- validation


def _need(token: _Token, scopes: frozenset[str]) -> None:
    if not token.scopes & scopes:
        raise ApiError(
            403, "insufficientPermissions", "Request had insufficient authentication scopes."
        )


def _validate(event: dict[str, Any]) -> None:
    """Google's checks on an event being written (400 with its messages)."""
    recurring = bool(event.get("recurrence"))
    start = _check_time(event.get("start"), "start", recurring)
    end = _check_time(event.get("end"), "end", False)
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise _bad("Start and end times must either both be date or both be dateTime.")
    if end <= start:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    if event.get("status") not in ("confirmed", "tentative", "cancelled"):
        raise _bad(f"Invalid value for: status: {event.get('status')}")
    if event.get("transparency", "opaque") not in ("opaque", "transparent"):
        raise _bad("Invalid value for: transparency")
    color = event.get("colorId")
    if color is not None and color not in {str(n) for n in range(1, 12)}:
        raise _bad("Invalid color id.")
    reminders = event.get("reminders")
    if reminders is not None:
        if not isinstance(reminders, dict):
            raise _bad("Invalid reminders.")
        overrides = reminders.get("overrides") or []
        if reminders.get("useDefault") and overrides:
            raise ApiError(
                400,
                "cannotUseDefaultRemindersAndSpecifyOverride",
                "Cannot specify both default reminders and overrides at the same time.",
            )
        if len(overrides) > 5:
            raise _bad("Too many reminders.")
        for override in overrides:
            if not isinstance(override, dict) or override.get("method") not in ("email", "popup"):
                raise _bad("Invalid reminder method.")
            minutes = override.get("minutes")
            if not isinstance(minutes, int) or not 0 <= minutes <= 40320:
                raise _bad("Invalid reminder minutes.")
    for line in event.get("recurrence") or []:
        if not isinstance(line, str) or not _RECURRENCE.fullmatch(line) or "\n" in line:
            raise _bad("Invalid recurrence rule.")
        if line.upper().startswith("RRULE"):
            try:
                icalendar.vRecur.from_ical(line.partition(":")[2])
            except ValueError:
                raise _bad("Invalid recurrence rule.") from None
    private = (event.get("extendedProperties") or {}).get("private") or {}
    for key, value in private.items():
        if len(key) > 44 or not isinstance(value, str) or len(value) > 1024:
            raise _bad("Invalid extended property.")
    source = event.get("source")
    if source is not None:
        url = source.get("url", "") if isinstance(source, dict) else ""
        if not str(url).startswith(("http://", "https://")):
            raise _bad("Invalid source url.")


def _check_time(value: Any, name: str, recurring: bool) -> date | datetime:
    if not isinstance(value, dict) or not (value.get("date") or value.get("dateTime")):
        raise ApiError(400, "required", f"Missing {name} time.")
    if value.get("date") and value.get("dateTime"):
        raise _bad(f"Invalid {name} time: both date and dateTime.")
    zone_name = value.get("timeZone")
    zone: ZoneInfo | None = None
    if zone_name is not None:
        try:
            zone = ZoneInfo(str(zone_name))
        except (ValueError, KeyError, OSError):
            raise ApiError(
                400, "timeZoneInvalid", f"Invalid time zone definition for {name} time."
            ) from None
    if value.get("date"):
        try:
            return date.fromisoformat(str(value["date"]))
        except ValueError:
            raise _bad(f"Invalid {name} time.") from None
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise _bad(f"Invalid {name} time.") from None
    if recurring and zone is None:
        raise ApiError(400, "missingTimeZone", f"Missing time zone definition for {name} time.")
    if moment.tzinfo is None:
        if zone is None:
            raise ApiError(400, "missingTimeZone", f"Missing time zone definition for {name} time.")
        moment = moment.replace(tzinfo=zone)
    return moment


def _query_time(q: dict[str, str], name: str) -> datetime | None:
    if name not in q:
        return None
    try:
        return _rfc3339(q[name])
    except ValueError:
        raise _bad(f"Bad Request: {name} must be an RFC3339 timestamp with offset") from None


def _rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment


def _flag(q: dict[str, str], name: str) -> bool:
    value = q.get(name, "false")
    if value not in ("true", "false"):
        raise _bad(f"Invalid boolean value for: {name}")
    return value == "true"


# ---------------------------------------------------------------------- events: helpers


def _new_id() -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _fmt(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: objects merge field by field, arrays and values replace."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base


def _deleted_view(event: dict[str, Any]) -> dict[str, Any]:
    """What a listing shows of a deleted event: its id, and for an instance its origin."""
    view: dict[str, Any] = {k: event[k] for k in ("kind", "etag", "id", "status") if k in event}
    for key in ("recurringEventId", "originalStartTime"):
        if key in event:
            view[key] = copy.deepcopy(event[key])
    return view


def _parse_when(value: dict[str, Any]) -> date | datetime:
    if value.get("date"):
        return date.fromisoformat(value["date"])
    moment = datetime.fromisoformat(value["dateTime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
    return moment


def _sort_key(value: Any) -> datetime:
    try:
        when = _parse_when(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return datetime.min.replace(tzinfo=UTC)
    if isinstance(when, datetime):
        return when
    return datetime(when.year, when.month, when.day, tzinfo=UTC)


def _instance_suffix(start: date | datetime) -> str:
    if isinstance(start, datetime):
        return start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return start.strftime("%Y%m%d")


def _as_json_time(value: date | datetime, zone: str | None) -> dict[str, Any]:
    if isinstance(value, datetime):
        out: dict[str, Any] = {"dateTime": value.isoformat()}
        if zone:
            out["timeZone"] = zone
        return out
    return {"date": value.isoformat()}


def _instance_of(
    master: dict[str, Any], eid: str, start: date | datetime, end: date | datetime
) -> dict[str, Any]:
    instance = {
        k: copy.deepcopy(v)
        for k, v in master.items()
        if k not in ("recurrence", "id", "start", "end")
    }
    zone = (master.get("start") or {}).get("timeZone")
    instance.update(
        id=eid,
        recurringEventId=master["id"],
        originalStartTime=_as_json_time(start, zone),
        start=_as_json_time(start, zone),
        end=_as_json_time(end, zone),
    )
    return instance


def _occurrences(
    event: dict[str, Any], after: datetime | None, before: datetime | None, *, limit: int
) -> Iterator[tuple[date | datetime, date | datetime]]:
    """(start, end) of each occurrence of a master, in order, overlapping (after, before)."""
    start = _parse_when(event["start"])
    end = _parse_when(event["end"])
    zone_name = (event.get("start") or {}).get("timeZone")
    if isinstance(start, datetime) and isinstance(end, datetime) and zone_name:
        start = start.astimezone(ZoneInfo(zone_name))
        end = end.astimezone(ZoneInfo(zone_name))
    vevent = icalendar.Event()
    vevent.add("UID", "x")
    vevent.add("DTSTART", start)
    vevent.add("DTEND", end)
    text = vevent.to_ical().decode()
    lines = "".join(line + "\r\n" for line in event.get("recurrence") or [])
    text = text.replace("END:VEVENT", lines + "END:VEVENT", 1)
    cal = icalendar.Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + text + "END:VCALENDAR\r\n"
    )
    low = after or datetime(1970, 1, 1, tzinfo=UTC)
    if before is not None:
        high = before
    elif isinstance(start, datetime):
        high = start + timedelta(days=730)
    else:
        high = datetime(start.year + 2, start.month, 1, tzinfo=UTC)
    query = recurring_ical_events.of(cal).between(low - timedelta(days=1), high + timedelta(days=1))
    occurrences = sorted(
        ((o.decoded("DTSTART"), o.decoded("DTEND")) for o in query),
        key=lambda p: _sort_key(_as_json_time(p[0], "UTC")),
    )
    for begin, finish in itertools.islice(occurrences, limit):
        if after is not None and _sort_key(_as_json_time(finish, "UTC")) <= after:
            continue
        if before is not None and _sort_key(_as_json_time(begin, "UTC")) >= before:
            continue
        yield begin, finish


def _overlaps(event: dict[str, Any], after: datetime | None, before: datetime | None) -> bool:
    try:
        if event.get("recurrence"):
            return next(_occurrences(event, after, before, limit=5000), None) is not None
        start = _sort_key(event.get("start"))
        end = _sort_key(event.get("end"))
    except (KeyError, TypeError, ValueError):
        return True
    return (after is None or end > after) and (before is None or start < before)


def _blocks(event: dict[str, Any]) -> bool:
    if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
        return False
    for attendee in event.get("attendees") or []:
        if attendee.get("self") and attendee.get("responseStatus") == "declined":
            return False
    return True


def _busy_periods(
    cal: _Calendar, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    zone = ZoneInfo(cal.time_zone)

    def aware(value: date | datetime) -> datetime:
        if isinstance(value, datetime):
            return value
        return datetime(value.year, value.month, value.day, tzinfo=zone)

    for event in cal.events.values():
        if event.get("recurringEventId"):
            continue
        if event.get("status") == "cancelled":
            continue
        if event.get("recurrence"):
            exceptions = {
                _instance_suffix(_parse_when(e["originalStartTime"])): e
                for e in cal.events.values()
                if e.get("recurringEventId") == event["id"]
            }
            for begin, finish in _occurrences(event, start, end, limit=100_000):
                exception = exceptions.get(_instance_suffix(begin))
                if exception is not None:
                    if _blocks(exception):
                        b, f = (
                            aware(_parse_when(exception["start"])),
                            aware(_parse_when(exception["end"])),
                        )
                        if f > start and b < end:
                            yield max(b, start), min(f, end)
                elif _blocks(event):
                    yield max(aware(begin), start), min(aware(finish), end)
            continue
        if not _blocks(event):
            continue
        try:
            b, f = aware(_parse_when(event["start"])), aware(_parse_when(event["end"]))
        except (KeyError, TypeError, ValueError):
            continue
        if f > start and b < end:
            yield max(b, start), min(f, end)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
