"""A small WSGI toolkit: request, response, router. Enough for a JSON API and a few pages.

No framework: the surface is tiny, and owning it keeps the hot path (slot listing) short
and every failure mode explicit. Bad input becomes a 4xx with a JSON error body; a
database that cannot be reached a 503 with ``Retry-After``; only a bug is a 500, and it is
logged with its traceback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote

from daemon.store.base import StoreUnavailable

log = logging.getLogger("expediente.web")

MAX_BODY = 64 * 1024  # a booking is a few hundred bytes; anything near this is abuse

_PARAM = re.compile(r"\{(\w+)\}")  # ``{name}`` in a route pattern

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class HTTPError(Exception):
    """An error answer with a machine-readable code (and optional violations)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        violations: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.violations = violations
        self.headers = dict(headers or {})

    def document(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.violations is not None:
            error["violations"] = self.violations
        return {"error": error}


@dataclass
class Request:
    environ: Mapping[str, Any]
    method: str
    path: str
    query: dict[str, list[str]]
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Request:
        raw_path = environ.get("PATH_INFO", "") or "/"
        # WSGI hands PATH_INFO over as latin-1 decoded bytes; recover UTF-8 text.
        try:
            path = raw_path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            path = raw_path
        return cls(
            environ=environ,
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=path,
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        )

    def header(self, name: str) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        elif name.lower() == "content-length":
            key = "CONTENT_LENGTH"
        value = self.environ.get(key)
        return None if value is None else str(value)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def client_address(self) -> str:
        return str(self.environ.get("REMOTE_ADDR", ""))

    def body(self) -> bytes:
        """The body, at most :data:`MAX_BODY` bytes; 413 past that, before it is all read.

        A ``Content-Length`` over the limit is refused before a byte is read. A body with
        no length (chunked, which a server that de-chunks marks ``wsgi.input_terminated``)
        is read in pieces and refused as soon as it passes the limit.
        """
        stream = self.environ.get("wsgi.input")
        length_text = (self.header("content-length") or "").strip()
        if not length_text:
            if stream is None or not self.environ.get("wsgi.input_terminated"):
                return b""  # PEP 3333: without a length, reading could wait forever
            return _read_capped(stream)
        # ASCII digits only: int() would also take "-1", "+5" and "1_0".
        if not (length_text.isascii() and length_text.isdigit()):
            raise HTTPError(400, "bad_request", "invalid Content-Length")
        digits = length_text.lstrip("0") or "0"
        if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:  # no int() of 5000 digits
            raise _too_large()
        length = int(digits)
        return stream.read(length) if stream is not None and length > 0 else b""

    def json(self) -> dict[str, Any]:
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type not in ("application/json", ""):
            raise HTTPError(415, "unsupported_media_type", "send the body as application/json")
        raw = self.body()
        try:
            value = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HTTPError(400, "bad_json", f"the body is not valid JSON: {error}") from None
        except RecursionError:
            raise HTTPError(400, "bad_json", "the body is nested too deeply") from None
        except ValueError:  # an integer past Python's digit limit (int_max_str_digits)
            raise HTTPError(400, "bad_json", "a number in the body has too many digits") from None
        if not isinstance(value, dict):
            raise HTTPError(400, "bad_json", "the body must be a JSON object")
        return value

    def form(self) -> dict[str, str]:
        raw = self.body()
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(400, "bad_request", "the form is not UTF-8") from None
        return {key: values[-1] for key, values in parsed.items()}


def _too_large() -> HTTPError:
    return HTTPError(413, "payload_too_large", f"request body over {MAX_BODY} bytes")


def _read_capped(stream: Any) -> bytes:
    """Read a body of unknown length, stopping one byte past :data:`MAX_BODY`."""
    pieces: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        piece = stream.read(min(16 * 1024, MAX_BODY + 1 - size))
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        size += len(piece)
    raise _too_large()


def json_body(document: Any) -> bytes:
    """How every JSON answer is encoded: compact, UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(
        cls, document: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return cls.encoded_json(json_body(document), status, headers)

    @classmethod
    def encoded_json(
        cls, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON answer already encoded by :func:`json_body`."""
        return cls(
            status,
            body,
            [("Content-Type", "application/json; charset=utf-8"), *(headers or {}).items()],
        )

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), [("Content-Type", f"{content_type}; charset=utf-8")])


Handler = Callable[[Request], Response]


class Router:
    """Routes ``METHOD /path/{name}`` patterns to handlers; 404 and 405 answered in JSON."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._patterns: list[tuple[str, str]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = _PARAM.sub(r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))
        self._patterns.append((method.upper(), pattern))

    @property
    def patterns(self) -> list[tuple[str, str]]:
        """``(method, pattern)`` of every route as added, so a test can reach them all."""
        return list(self._patterns)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method and not (method == "GET" and request.method == "HEAD"):
                allowed.append(method)
                continue
            request.params = match.groupdict()
            return handler(request)
        if allowed:
            raise HTTPError(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": ", ".join(sorted(set(allowed)))},
            )
        raise HTTPError(404, "not_found", f"nothing at {request.path}")


def route_path(pattern: str, params: Mapping[str, str]) -> str:
    """The path of route ``pattern`` with ``params`` percent-encoded in: a path on this
    site whatever the parameters hold (unlike the raw request path)."""
    return _PARAM.sub(lambda match: quote(params[match.group(1)], safe=""), pattern)


UNAVAILABLE = "unavailable"
RETRY_UNAVAILABLE_S = 5  # the store's pool reconnects in the background meanwhile


def unavailable(error: StoreUnavailable) -> HTTPError:
    """The answer while the database cannot be reached: try again shortly. A request
    cut off before its commit stored nothing; one cut off during it may have been stored,
    which is why bookings take an ``Idempotency-Key``: a retry with the same key gets the
    first answer either way."""
    log.warning("answering 503: %s", error)
    return HTTPError(
        503,
        UNAVAILABLE,
        f"the database cannot be reached right now; try again in {RETRY_UNAVAILABLE_S} s",
        headers={"Retry-After": str(RETRY_UNAVAILABLE_S)},
    )


ErrorPage = Callable[[Request, HTTPError], Response]
Guard = Callable[[Request], None]  # raises HTTPError to refuse a request before routing
AtOnce = Callable[[str, str], bool]  # (method, path): answered without waiting on anything


class App:
    """The WSGI callable: dispatch, map errors, log bugs, add security headers.

    Errors are JSON (the API's contract), except that ``error_page`` answers a browser
    that asked for HTML outside ``/api/``: a person who mistypes a link gets a page in
    their language, not a JSON document. ``guard`` sees every request first (the
    cross-site check); its refusal is answered like any other error.
    """

    def __init__(
        self,
        router: Router,
        *,
        on_request: Callable[[Request, int], None] | None = None,
        error_page: ErrorPage | None = None,
        guard: Guard | None = None,
        at_once: AtOnce | None = None,
    ):
        self.router = router
        self.on_request = on_request
        self.error_page = error_page
        self.guard = guard
        self._at_once = at_once

    def answers_at_once(self, method: str, path: str) -> bool:
        """Whether a request would be answered now, from memory, without waiting on a
        lock, a rebuild or a database server: the server may answer it on its event loop's
        own thread (``daemon/web/server.py``). False unless ``at_once`` says so."""
        return self._at_once is not None and self._at_once(method, path)

    @staticmethod
    def _wants_page(request: Request) -> bool:
        return not request.path.startswith("/api/") and "text/html" in (
            request.header("accept") or ""
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        try:
            if self.guard is not None:
                self.guard(request)
            response = self.router.dispatch(request)
        except (HTTPError, StoreUnavailable) as raised:
            error = raised if isinstance(raised, HTTPError) else unavailable(raised)
            if self.error_page is not None and self._wants_page(request):
                response = self.error_page(request, error)
            else:
                response = Response.json(error.document(), error.status, error.headers)
        except Exception:
            log.exception("bug while answering %s %s", request.method, request.path)
            response = Response.json(
                {"error": {"code": "internal_error", "message": "internal error; see the log"}},
                500,
            )
        headers = [
            *response.headers,
            ("Content-Length", str(len(response.body))),
            ("X-Content-Type-Options", "nosniff"),
            # Other sites never see our paths (signed links); "no-referrer" would also make
            # browsers send "Origin: null" on our own forms, which the CSRF guard refuses.
            ("Referrer-Policy", "same-origin"),
        ]
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers.append(("Cache-Control", "no-store"))
        reason = HTTPStatus(response.status).phrase
        start_response(f"{response.status} {reason}", headers)
        if self.on_request is not None:
            self.on_request(request, response.status)
        return [b"" if request.method == "HEAD" else response.body]
