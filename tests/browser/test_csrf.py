"""A forged form in a real browser: what Chromium sends is what the guard must judge."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route

from tests.browser.harness import Served
from tests.factories import booking_form
from tests.web.client import Client

TEN = "2026-11-30T10:00:00-03:00"


def test_a_page_on_another_port_cannot_post_a_planted_cookie_and_token(
    page: Page, served: Served
) -> None:
    # Cookies ignore ports, so a page on another port of the desk's host is "same site":
    # it can plant our cookie name and its form arrives with the cookie. The attacker
    # fetched a genuine cookie and token for themselves; only the form's origin betrays it.
    attacker = Client(served.desk.app)
    token = attacker.get("/book/standard").field("csrf_token")
    cookie = attacker.cookies["expediente_csrf"]
    port = urlsplit(served.url).port
    assert port is not None
    evil = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/"
    fields = {"csrf_token": token, **booking_form(TEN)}
    inputs = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    body = (
        f'<form method="post" action="{served.url}/book/standard">{inputs}'
        "<button>Win a prize</button></form>"
        f'<script>document.cookie = "expediente_csrf={cookie}; path=/";</script>'
    )

    def serve_evil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=body)

    page.route(evil, serve_evil)
    page.goto(evil)
    planted = {c["name"]: c["value"] for c in page.context.cookies(served.url)}
    assert planted.get("expediente_csrf") == cookie  # the browser will send it to the desk
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    assert "este formulário expirou" in page.content()
    assert served.desk.store.list_sessions() == []
