"""Junk at every desk console route from a logged-in attendant: never a 5xx.

``tests/daemon/test_api_fuzz.py`` fuzzes every route without a login (a console route
answers the login page, a 401 or a 403 there); this reaches the handlers behind the login
with a valid CSRF token, so the forms' and queries' contents are what is fuzzed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.staff import hash_password
from daemon.store import SessionRecord
from rules.model import BOOKING_FIELDS
from tests.daemon.desk import Desk, monday
from tests.factories import booking_request
from tests.web.client import Client, pages_desk

PASSWORD = "correct horse battery"
FIELDS = [*BOOKING_FIELDS, "start", "accept_rules", "reason", "notice_override", "form_key",
          "name", "password"]  # fmt: skip
QUERY = ["date", "q", "tech", "override", "from", "lang", "done", "expired", "bye"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Desk, Client, SessionRecord]:
    desk = pages_desk(Path(tmp_path_factory.mktemp("desk-fuzz")), monday(7))
    desk.store.add_staff("carla", hash_password(PASSWORD), now=desk.clock.now(), actor="test")
    outcome = desk.service.book(booking_request(monday(10), only_required=True))
    assert outcome.session is not None
    client = Client(desk.app)
    form = client.get("/desk/")
    assert client.submit(form, "/desk/login", {"name": "carla", "password": PASSWORD}).status == 303
    return desk, client, outcome.session


text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "1", "yes", "2026-11-30", "2026-11-30T10:00:00-03:00", "ana",
                     "9999-12-31", "0001-01-01T00:00:00+14:00", "extended", "x" * 400]),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_console_request_answers_5xx(
    site: tuple[Desk, Client, SessionRecord], data: st.DataObject
) -> None:
    desk, client, session = site
    desk.clock.set(monday(7))  # the login stays fresh; a cancel or check-in may happen
    routes = [
        (m, p)
        for m, p in client.app.router.patterns
        if p.startswith("/desk") and p not in ("/desk/login", "/desk/logout")
    ]
    method, pattern = data.draw(st.sampled_from(routes))
    path = pattern.replace("{id}", data.draw(st.sampled_from([session.id, "nope", "é"])))
    path = path.replace("{type}", data.draw(st.sampled_from(["standard", "extended", "x"])))
    query = data.draw(st.dictionaries(st.sampled_from(QUERY), text, max_size=4))
    if query:
        path += "?" + urlencode(query)
    if method == "GET":
        answer = client.get(path)
    else:
        page = client.get("/desk/")
        form = data.draw(st.dictionaries(st.sampled_from(FIELDS), text, max_size=8))
        answer = client.submit(page, path, form)
    assert answer.status < 500, (method, path, answer.text[:500])
    assert client.get("/desk/live").status == 200  # still logged in: the handlers were reached


def test_every_console_route_is_fuzzed(site: tuple[Desk, Client, SessionRecord]) -> None:
    _, client, _ = site
    desk_routes = {p for _, p in client.app.router.patterns if p.startswith("/desk")}
    assert {"/desk/", "/desk/live", "/desk/book/{type}", "/desk/sessions/{id}/cancel"} <= (
        desk_routes
    )
