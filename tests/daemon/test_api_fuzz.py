"""Nothing a client sends produces a 5xx, on any route.

Arbitrary methods, paths, query strings, headers and bodies go to the whole WSGI app the
daemon serves (API, pages, feeds, signed links, health, metrics, static files). Every
answer is checked for what a server in front of it needs (headers it can send, a
Content-Length that is the body's) and every error for a well-formed body: a JSON error
object on the API, an HTML page on the pages and for browsers.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.events import CHECKIN_PURPOSE, MANAGE_PURPOSE, checkin_url, manage_url
from daemon.metrics import Metrics
from daemon.store import SessionRecord
from daemon.web import csrf
from daemon.web.app import build_app
from daemon.web.http import MAX_BODY, App
from rules.model import BOOKING_FIELDS
from tests import wsgi
from tests.daemon.desk import ADMIN_TOKEN, Desk, make_desk, monday
from tests.factories import booking, booking_request

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        ["2026-11-30T09:00:00-03:00", "2026-11-30T09:00", "", "AnyDesk", "(11) 98765-4321"]
    ),
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={name: field_values for name in (*BOOKING_FIELDS, "type", "start")}
    ),
    json_values,
)
# What the JSON parser itself cannot take: nesting past the recursion limit, integers past
# Python's digit limit, both inside otherwise ordinary bodies.
hostile_json = st.one_of(
    st.integers(1, 40_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 30_000).map(lambda n: b'{"type":' + b'{"a":' * n + b"1" + b"}" * (n + 1)),
    st.integers(1, 20_000).map(lambda n: b'{"remote_id":' + b"7" * n + b"}"),
    st.integers(4_000, 20_000).map(lambda n: b"-" + b"9" * n),
)

PAGE_PREFIXES = ("/book/", "/booked/", "/manage/", "/checkin/")


def latin1(text: str) -> str:
    """Text as a WSGI server hands it over: its UTF-8 bytes, decoded as latin-1."""
    return text.encode("utf-8").decode("latin-1")


@dataclass
class Site:
    """The daemon's whole app on a desk with one booked session and a CSRF pair."""

    desk: Desk
    app: App
    session: SessionRecord
    manage_token: str
    checkin_token: str
    csrf_cookie: str
    csrf_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    desk = make_desk(Path(tmp_path_factory.mktemp("fuzz")), monday(7, 0))
    app = build_app(desk.service, desk.signer, Metrics())
    outcome = desk.service.book(booking_request(monday(10), only_required=True))
    assert outcome.session is not None, outcome.codes
    session = outcome.session
    public, policy = desk.config.server.public_url, desk.service.policy
    guard = csrf.CsrfGuard(desk.signer.key)
    cookie = guard.new_cookie()
    return Site(
        desk,
        app,
        session,
        manage_url(public, desk.signer, session, policy).rsplit("/", 1)[1],
        checkin_url(public, desk.signer, session, policy).rsplit("/", 1)[1],
        cookie,
        guard.token(cookie),
    )


def segments(site: Site) -> st.SearchStrategy[str]:
    """One path segment as PATH_INFO holds it: valid links, links with a forged signature,
    names the app knows, and arbitrary text or bytes (never a ``/``)."""
    forged = st.text(max_size=50).map(lambda mac: site.manage_token.rsplit(".", 1)[0] + "." + mac)
    known = st.sampled_from(
        [
            site.manage_token,
            site.checkin_token,
            site.session.id,
            "standard",
            "extended",
            "free",
            "style.css",
            f"{MANAGE_PURPOSE}.x.1.y",
            f"{CHECKIN_PURPOSE}.{site.session.id}.²³.x",
            f"{MANAGE_PURPOSE}.{site.session.id}.{'9' * 40}.x",
        ]
    )
    arbitrary = st.one_of(
        st.text(min_size=1, max_size=60).map(latin1),
        st.binary(min_size=1, max_size=60).map(lambda raw: raw.decode("latin-1")),
    )
    return st.one_of(known, forged.map(latin1), arbitrary).filter(lambda s: "/" not in s)


@st.composite
def requests(draw: st.DrawFn, site: Site) -> dict[str, Any]:
    """One request: a route of the app with its parameters filled in, or any path."""
    patterns = site.app.router.patterns
    if draw(st.integers(0, 9)) == 0:
        path = "/" + draw(st.text(max_size=40).map(latin1))
        template = None
    else:
        _, template = draw(st.sampled_from(patterns))
        path = re.sub(r"\{\w+\}", lambda _: draw(segments(site)), template).replace("\\.", ".")
    route_methods = {m for m, p in patterns if p == template}
    method = draw(
        st.one_of(st.sampled_from(sorted(route_methods)), st.sampled_from(["GET", "POST", "HEAD"]))
        if route_methods
        else st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"])
    )
    query = draw(
        st.dictionaries(
            st.sampled_from(["from", "to", "type", "lang", "start", "x"]) | st.text(max_size=8),
            st.text(max_size=30) | st.sampled_from(["2026-11-30", "en", "extended", "9999-12-31"]),
            max_size=3,
        )
    )
    header_text = st.text(max_size=80).map(latin1).filter(lambda v: "\r" not in v and "\n" not in v)
    headers: dict[str, str] = {}
    for name, choices in (
        ("accept", ["text/html", "application/json", "*/*", "text/html;q=0.9"]),
        ("accept-language", ["en-US,en;q=0.9", "pt-BR", "es", "*"]),
        ("cookie", [f"{csrf.COOKIE}={site.csrf_cookie}", "expediente_lang=en", "=;;=x"]),
        ("authorization", [f"Bearer {ADMIN_TOKEN}", "Bearer ", "Basic x"]),
        ("if-none-match", ["*", 'W/"x"']),
        ("idempotency-key", ["k" * 16, "k" * 201]),
        ("origin", ["http://127.0.0.1:8080", "null", "http://127.0.0.1:99999", "https://x"]),
        ("sec-fetch-site", ["same-origin", "cross-site", "none"]),
        ("host", ["127.0.0.1:8080", "[::1", "a:b:c"]),
    ):
        value = draw(st.none() | st.sampled_from(choices) | header_text)
        if value is not None:
            headers[name] = value
    content_type = draw(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""])
        | header_text
    )
    form = st.fixed_dictionaries(
        {},
        optional={
            csrf.FIELD: st.sampled_from([site.csrf_token, ""]) | st.text(max_size=50),
            "start": st.sampled_from(["2026-11-30T09:00:00-03:00", "2026-11-30T09:00"])
            | st.text(max_size=30),
            "accept_rules": st.sampled_from(["yes", "no"]),
            "form_key": st.text(max_size=70),
            **{name: st.text(max_size=40) for name in BOOKING_FIELDS},
        },
    ).map(lambda fields: urlencode(fields).encode())
    body = draw(
        st.one_of(
            st.just(b""),
            st.binary(max_size=200),
            bodies.map(lambda value: json.dumps(value).encode()),
            hostile_json,
            form,
        )
    )
    return {
        "method": method,
        "path": path,
        "template": template,
        "query": urlencode(query),
        "headers": headers,
        "content_type": content_type,
        "body": body,
    }


def check_answer(
    sent: dict[str, Any],
    patterns: list[tuple[str, str]],
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    """The properties every answer has; an error's body is a JSON error object or a page."""
    assert status < 500, (status, body[:300])
    for name, value in headers:
        value.encode("latin-1")  # what waitress can send; anything else is its own 500
        assert "\r" not in value and "\n" not in value, (name, value)
    if sent["method"] == "HEAD":
        assert body == b""
        return
    assert [v for k, v in headers if k.lower() == "content-length"] == [str(len(body))]
    if status < 400:
        return
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    if content_type.startswith("application/json"):
        document = json.loads(body)
        assert isinstance(document["error"]["code"], str) and document["error"]["code"]
        assert isinstance(document["error"]["message"], str)
        kind = "json"
    else:
        assert content_type.startswith("text/html"), content_type
        assert body.startswith(b"<!doctype html>") and body.rstrip().endswith(b"</html>")
        kind = "html"
    if decoded_path(sent["path"]).startswith("/api/"):
        assert kind == "json", "the API answers errors in JSON, whatever the client accepts"
    elif "text/html" in sent["headers"].get("accept", ""):
        assert kind == "html", "a browser gets an error page"
    template = sent["template"]
    served = {m for m, p in patterns if p == template}
    if "GET" in served:
        served.add("HEAD")
    if (template == "/" or (template or "").startswith(PAGE_PREFIXES)) and sent["method"] in served:
        # A page answers with a page. A cross-site POST is refused by the app before any
        # page sees it, by the app's rule: a page for browsers, JSON for the rest.
        refused_first = kind == "json" and json.loads(body)["error"]["code"] == "cross_site_request"
        assert kind == "html" or refused_first, "the pages answer errors with a page"


def decoded_path(path_info: str) -> str:
    """The path as ``Request.from_environ`` reads PATH_INFO."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path_info


def send(site: Site, sent: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    env = wsgi.environ(
        sent["method"],
        sent["path"],
        sent["body"],
        content_type=sent["content_type"],
        headers=sent["headers"],
    )
    # A "?" drawn into a segment is part of the path here (a server gets it as %3F).
    env["PATH_INFO"], env["QUERY_STRING"] = sent["path"], sent["query"]
    return wsgi.call(site.app, env)


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_request_to_any_route_answers_5xx_or_a_malformed_error(
    site: Site, data: st.DataObject
) -> None:
    sent = data.draw(requests(site))
    status, headers, body = send(site, sent)
    check_answer(sent, site.app.router.patterns, status, headers, body)


def test_the_fuzzed_routes_are_the_apps_own(site: Site) -> None:
    """The strategy draws from the router, so a route added later is fuzzed too."""
    templates = {p for _, p in site.app.router.patterns}
    assert {"/", "/healthz", "/metrics", "/booked/{token}", "/checkin/{token}"} <= templates
    assert {"/manage/{token}/cancel", r"/feeds/{type}\.ics", "/api/v1/bookings"} <= templates


# --------------------------------------------------------------- each hole, by name


LINKS = ["/manage/{}", "/checkin/{}", "/booked/{}", "/manage/{}/rebook", "/manage/{}/session.ics"]


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("signature", ["é" * 43, "ação", "\u200b", "ﬁ"])
def test_a_signed_link_with_a_non_ascii_signature_is_a_404_page(
    site: Site, link: str, signature: str
) -> None:
    token = site.manage_token.rsplit(".", 1)[0] + "." + signature
    status, headers, body = wsgi.call(site.app, wsgi.environ("GET", latin1(link.format(token))))
    assert status == 404
    assert dict(headers)["Content-Type"].startswith("text/html")
    assert b"<!doctype html>" in body


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 50_000 + b"]" * 50_000, None),  # over MAX_BODY: refused before parsing
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"type": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_001, "nested too deeply"),
        (b'{"remote_id": ' + b"9" * 5_000 + b"}", "too many digits"),
        (b'{"accept_rules": -' + b"1" * 4_301 + b"}", "too many digits"),
    ],
    ids=["huge", "deep-array", "deep-object", "long-int", "long-negative-int"],
)
def test_json_the_parser_cannot_take_is_a_4xx(site: Site, raw: bytes, message: str | None) -> None:
    status, _, body = wsgi.call(site.app, wsgi.environ("POST", "/api/v1/bookings", raw))
    error = json.loads(body)["error"]
    if message is None:
        assert (status, error["code"]) == (413, "payload_too_large")
    else:
        assert (status, error["code"]) == (400, "bad_json")
        assert message in error["message"]


class CountingStream(io.BytesIO):
    """A request body that records how much of it the app read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        piece = super().read(size)
        self.taken += len(piece)
        return piece


def chunked_environ(data: bytes) -> tuple[dict[str, Any], CountingStream]:
    """A request whose body has no length, as a server that de-chunks hands it over."""
    env = wsgi.environ("POST", "/api/v1/bookings")
    del env["CONTENT_LENGTH"]
    stream = CountingStream(data)
    env["wsgi.input"] = stream
    env["wsgi.input_terminated"] = True
    return env, stream


def test_a_body_without_a_length_is_read_when_the_server_says_it_ends(site: Site) -> None:
    env, _ = chunked_environ(json.dumps(booking("2026-11-30T09:00:00-03:00", type="nope")).encode())
    status, _, body = wsgi.call(site.app, env)
    assert status == 422, body
    assert json.loads(body)["error"]["violations"][0]["code"] == "unknown_type"


def test_a_body_without_a_length_is_cut_off_just_past_the_limit(site: Site) -> None:
    env, stream = chunked_environ(b" " * (4 * MAX_BODY))
    status, _, body = wsgi.call(site.app, env)
    assert (status, json.loads(body)["error"]["code"]) == (413, "payload_too_large")
    assert stream.taken == MAX_BODY + 1


@pytest.mark.parametrize("length", ["-1", "+5", "1_0", "٣", "9" * 5000])
def test_a_content_length_that_is_not_a_plain_number_is_refused_unread(
    site: Site, length: str
) -> None:
    env = wsgi.environ("POST", "/api/v1/bookings", b"{}")
    env["CONTENT_LENGTH"] = latin1(length)
    stream = CountingStream(b"{}")
    env["wsgi.input"] = stream
    status, _, body = wsgi.call(site.app, env)
    assert status in (400, 413), body
    assert stream.taken == 0


# ----------------------------------------------------------------- the booking API


def api_request(desk: Desk, method: str, path: str, raw: bytes, headers: dict[str, str]) -> int:
    content_type = headers.pop("content-type", "application/json")
    env = wsgi.environ(method, path, raw, content_type=content_type, headers=headers)
    return wsgi.call(desk.app, env)[0]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    return make_desk(Path(tmp_path_factory.mktemp("fuzz-api")), monday(7, 0))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, key=st.none() | st.text(max_size=300))
def test_bookings_never_answer_5xx(desk: Desk, body: Any, key: str | None) -> None:
    headers = {} if key is None else {"idempotency-key": latin1(key)}
    status = api_request(desk, "POST", "/api/v1/bookings", json.dumps(body).encode(), headers)
    assert status < 500, body


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.binary(max_size=200) | hostile_json,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_raw_bodies_never_answer_5xx(desk: Desk, raw: bytes, content_type: str) -> None:
    status = api_request(desk, "POST", "/api/v1/bookings", raw, {"content-type": content_type})
    assert 400 <= status < 500


def test_the_admin_token_is_what_lets_a_session_be_read(desk: Desk) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert api_request(desk, "GET", "/api/v1/sessions/nope", b"", dict(headers)) == 404
    assert api_request(desk, "GET", "/api/v1/sessions/nope", b"", {}) == 401
