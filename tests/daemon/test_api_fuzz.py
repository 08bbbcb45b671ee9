"""No input produces a 5xx: arbitrary bodies, headers and query strings against the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.model import BOOKING_FIELDS
from tests import wsgi
from tests.daemon.desk import ADMIN_TOKEN, Desk, make_desk, monday

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


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    return make_desk(Path(tmp_path_factory.mktemp("fuzz")), monday(7, 0))


def request(desk: Desk, method: str, path: str, raw: bytes, headers: dict[str, str]) -> int:
    content_type = headers.pop("content-type", "application/json")
    env = wsgi.environ(method, path, raw, content_type=content_type, headers=headers)
    return wsgi.call(desk.app, env)[0]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, key=st.none() | st.text(max_size=300))
def test_bookings_never_answer_5xx(desk: Desk, body: Any, key: str | None) -> None:
    headers = (
        {} if key is None else {"idempotency-key": key.encode("utf-8", "replace").decode("latin-1")}
    )
    status = request(desk, "POST", "/api/v1/bookings", json.dumps(body).encode(), headers)
    assert status < 500, body


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_raw_bodies_never_answer_5xx(desk: Desk, raw: bytes, content_type: str) -> None:
    status = request(desk, "POST", "/api/v1/bookings", raw, {"content-type": content_type})
    assert 400 <= status < 500


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(
        st.sampled_from(["from", "to", "type", "x"]), st.text(max_size=20), max_size=3
    ),
    path=st.sampled_from(
        [
            "/api/v1/slots",
            "/api/v1/sessions/abc",
            "/api/v1/sessions/../x/check-in",
            "/healthz",
            "/nope",
        ]
    ),
    token=st.none() | st.text(max_size=50),
)
def test_queries_paths_and_tokens_never_answer_5xx(
    desk: Desk, query: dict[str, str], path: str, token: str | None
) -> None:
    from urllib.parse import urlencode

    headers = {}
    if token is not None:
        headers["authorization"] = ("Bearer " + token).encode("utf-8", "replace").decode("latin-1")
    status = request(desk, "GET", f"{path}?{urlencode(query)}", b"", headers)
    assert status < 500 or (path == "/healthz" and status == 503)


def test_the_admin_token_is_what_lets_a_session_be_read(desk: Desk) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert request(desk, "GET", "/api/v1/sessions/nope", b"", dict(headers)) == 404
    assert request(desk, "GET", "/api/v1/sessions/nope", b"", {}) == 401
