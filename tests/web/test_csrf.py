"""CSRF: the cookie is the server's own, tokens are bound to it, other sites' POSTs are
refused. In-process WSGI on a real store and a fixed clock (Monday 2026-11-30 07:00)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from daemon.web import openapi
from tests import wsgi
from tests.daemon.desk import Desk, monday
from tests.factories import booking, booking_form
from tests.web.client import Client, pages_app, pages_desk

TEN = "2026-11-30T10:00:00-03:00"
PUBLIC = "http://127.0.0.1:8080"  # [server] public_url of the test desk


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return pages_desk(tmp_path, monday(7, 0))


def test_a_cookie_the_server_did_not_issue_never_gets_a_token(desk: Desk) -> None:
    # The old cookie was any 32-64 URL-safe characters: a sibling site could plant one,
    # fetch the form with it to learn its token, and post as the visitor.
    planted = "A" * 43
    attacker = Client(desk.app, cookies={"expediente_csrf": planted})
    token = attacker.get("/book/standard").field("csrf_token")
    assert attacker.cookies["expediente_csrf"] != planted  # replaced by one of ours
    victim = Client(desk.app, cookies={"expediente_csrf": planted})
    forged = victim.post("/book/standard", {"csrf_token": token, **booking_form(TEN)})
    assert forged.status == 403 and "este formulário expirou" in forged.text
    # Nor does a cookie of the new shape with a MAC the server did not make.
    shaped = Client(desk.app, cookies={"expediente_csrf": "A" * 43 + "." + "B" * 43})
    shaped.get("/book/standard")
    assert shaped.cookies["expediente_csrf"] != "A" * 43 + "." + "B" * 43
    assert desk.store.list_sessions() == []


def test_the_cookie_the_server_issued_is_kept_and_its_token_works(desk: Desk) -> None:
    client = Client(desk.app)
    form = client.get("/book/standard")
    issued = client.cookies["expediente_csrf"]
    again = client.get("/book/standard")
    assert again.header("Set-Cookie") is None and client.cookies["expediente_csrf"] == issued
    assert client.submit(form, "/book/standard", booking_form(TEN)).status == 303


CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # sandboxed frames, opaque origins
    {"Origin": "http://127.0.0.1:8081"},  # another port: the same site for cookies
    {"Origin": "https://127.0.0.1:8080"},  # another scheme
    {"Origin": "http://agenda.example.com.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain
    {"Sec-Fetch-Site": "cross-site", "Origin": PUBLIC},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_form_another_site_posts_is_refused(desk: Desk, headers: dict[str, str]) -> None:
    client = Client(desk.app)
    form = client.get("/book/standard")
    hidden = {"csrf_token": form.field("csrf_token"), "form_key": form.field("form_key")}
    browser = {**headers, "Accept": "text/html"}  # a form navigation asks for a page
    page = client.post("/book/standard", {**hidden, **booking_form(TEN)}, headers=browser)
    assert page.status == 403
    assert "text/html" in (page.header("Content-Type") or "") and "formulário" in page.text
    assert desk.store.list_sessions() == []
    # The very same form from this site goes through: only where it came from changed.
    assert client.post("/book/standard", {**hidden, **booking_form(TEN)}).status == 303


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_the_json_api_refuses_another_sites_post_too(desk: Desk, headers: dict[str, str]) -> None:
    env = wsgi.environ(
        "POST", "/api/v1/bookings", json.dumps(booking(TEN)).encode(), headers=headers
    )
    status, _, body = wsgi.call(desk.app, env)
    assert status == 403
    assert json.loads(body)["error"]["code"] == "cross_site_request"
    assert desk.store.list_sessions() == []


def test_the_openapi_document_says_which_posts_can_be_refused_so(desk: Desk) -> None:
    paths = openapi.document(PUBLIC, desk.config.policy)["paths"]
    for path, operations in paths.items():
        if "post" in operations:
            refused = operations["post"]["responses"]["403"]["description"]
            assert refused.startswith("cross_site_request"), path


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a script or a server: no Origin, no Fetch Metadata, no cookies
        {"Origin": PUBLIC, "Sec-Fetch-Site": "same-origin"},
        {"Origin": "HTTP://127.0.0.1:8080"},
        {"Sec-Fetch-Site": "none"},  # the person started it
        # Reached by another address than public_url: the Host it was sent to.
        {"Origin": "http://192.168.0.10:8080", "Host": "192.168.0.10:8080"},
        {"Origin": "http://desk.lan", "Host": "desk.lan:80"},
    ],
)
def test_posts_from_this_site_pass(desk: Desk, headers: dict[str, str]) -> None:
    client = Client(desk.app)
    form = client.get("/book/standard")
    hidden = {"csrf_token": form.field("csrf_token")}
    assert client.post("/book/standard", {**hidden, **booking_form(TEN)}, headers).status == 303
    nine = booking("2026-11-30T09:00:00-03:00")
    env = wsgi.environ("POST", "/api/v1/bookings", json.dumps(nine).encode(), headers=headers)
    assert wsgi.call(desk.app, env)[0] == 201


def test_reads_are_never_refused_whoever_links_to_them(desk: Desk) -> None:
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert Client(desk.app).get("/book/standard", headers=cross).status == 200
    assert Client(desk.app).get("/api/v1/slots?from=2026-11-30&to=2026-11-30", cross).status == 200


def test_over_https_the_cookie_is_host_only(desk: Desk) -> None:
    config = desk.service.config
    desk.service.config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, public_url="https://agenda.example.com")
    )
    app = pages_app(desk)
    client = Client(app)
    form = client.get("/book/standard")
    cookie = form.header("Set-Cookie") or ""
    assert cookie.startswith("__Host-expediente_csrf=")
    assert "; Secure" in cookie and "; Path=/" in cookie and "Domain" not in cookie
    # A cookie without the prefix (set by a sibling host, or over plain http) is not ours.
    sibling = Client(app, cookies={"expediente_csrf": client.cookies["__Host-expediente_csrf"]})
    refused = sibling.post(
        "/book/standard", {"csrf_token": form.field("csrf_token"), **booking_form(TEN)}
    )
    assert refused.status == 403
    assert client.submit(form, "/book/standard", booking_form(TEN)).status == 303
