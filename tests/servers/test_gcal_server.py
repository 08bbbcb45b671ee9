"""The local Calendar v3 server answers like Google, checked with plain urllib: each refusal,
paging, sync tokens and their expiry, conditional writes, free/busy and the token endpoint."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.servers.gcal import Fault, GoogleCalendarServer, make_service_account_key

_ids = count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[GoogleCalendarServer]:
    with GoogleCalendarServer() as running:
        yield running


@pytest.fixture
def cal(server: GoogleCalendarServer) -> str:
    cal_id = f"server-test{next(_ids)}@empresa.example"
    server.add_calendar(cal_id)
    return cal_id


@pytest.fixture(scope="module")
def token(server: GoogleCalendarServer) -> str:
    return server.issue_token()


def request(
    server: GoogleCalendarServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
    elif body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)  # noqa: S310
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as exc:
        with exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None, exc.headers


def events(cal: str, suffix: str = "", **query: str) -> str:
    path = f"/calendar/v3/calendars/{urllib.parse.quote(cal)}/events{suffix}"
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


def timed(day: int, **extra: Any) -> dict[str, Any]:
    return {
        "summary": f"day {day}",
        "start": {"dateTime": f"2026-03-{day:02d}T10:00:00-03:00"},
        "end": {"dateTime": f"2026-03-{day:02d}T11:00:00-03:00"},
        **extra,
    }


def reason(body: Any) -> str:
    return str(body["error"]["errors"][0]["reason"])


# ---------------------------------------------------------------------- auth


def test_api_calls_need_a_bearer_token(server: GoogleCalendarServer, cal: str) -> None:
    status, body, headers = request(server, "GET", events(cal), token=None)
    assert status == 401 and reason(body) == "authError"
    assert "Bearer" in headers["WWW-Authenticate"]
    assert request(server, "GET", events(cal), token="ya29.forged")[0] == 401


def test_a_token_without_a_calendar_scope_is_forbidden(
    server: GoogleCalendarServer, cal: str
) -> None:
    narrow = server.issue_token(frozenset({"https://www.googleapis.com/auth/calendar.freebusy"}))
    status, body, _ = request(server, "GET", events(cal), token=narrow)
    assert status == 403 and reason(body) == "insufficientPermissions"


def _jwt(key: Any, claims: dict[str, Any]) -> str:
    def enc(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = enc(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = enc(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{enc(signature)}"


def test_token_endpoint_checks_the_jwt(server: GoogleCalendarServer, cal: str) -> None:
    account = make_service_account_key(server.token_uri, email="jwt-test@example.iam")
    server.add_service_account(account)
    now = int(time.time())
    claims = {
        "iss": account.email,
        "aud": server.token_uri,
        "scope": "https://www.googleapis.com/auth/calendar",
        "iat": now,
        "exp": now + 3600,
        "sub": "ana@empresa.example",
    }
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    status, body, _ = request(
        server,
        "POST",
        "/token",
        token=None,
        form={"grant_type": grant, "assertion": _jwt(account.private_key, claims)},
    )
    assert status == 200 and body["token_type"] == "Bearer"
    assert request(server, "GET", events(cal), token=body["access_token"])[0] == 200
    assert server.api_requests()[-1].subject == "ana@empresa.example"

    other = make_service_account_key(server.token_uri, email=account.email)
    refused = [
        _jwt(other.private_key, claims),  # signed with another key
        _jwt(account.private_key, {**claims, "aud": "https://evil.example/token"}),
        _jwt(account.private_key, {**claims, "exp": now + 7200}),  # lives too long
        _jwt(account.private_key, {**claims, "iss": "nobody@example.iam"}),
        _jwt(account.private_key, {**claims, "scope": ""}),
        "not.a.jwt",
    ]
    for assertion in refused:
        status, body, _ = request(
            server, "POST", "/token", token=None, form={"grant_type": grant, "assertion": assertion}
        )
        assert (status, body["error"]) == (400, "invalid_grant"), assertion[:40]


def test_token_endpoint_refresh_grant(server: GoogleCalendarServer) -> None:
    server.add_refresh_token("cid", "secret", "1//r1")
    good = {"grant_type": "refresh_token", "client_id": "cid", "client_secret": "secret"}
    status, body, _ = request(
        server, "POST", "/token", token=None, form={**good, "refresh_token": "1//r1"}
    )
    assert status == 200 and body["access_token"].startswith("ya29.")
    status, body, _ = request(
        server, "POST", "/token", token=None, form={**good, "refresh_token": "1//other"}
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body, _ = request(
        server,
        "POST",
        "/token",
        token=None,
        form={**good, "client_secret": "wrong", "refresh_token": "1//r1"},
    )
    assert (status, body["error"]) == (401, "invalid_client")


# ---------------------------------------------------------------------- insert / get


@pytest.mark.parametrize(
    "bad_id", ["abc", "UPPERCASE1", "has-dash1", "wxyz12345", "a" * 1025, "ok_under"]
)
def test_insert_refuses_ids_that_are_not_base32hex(
    server: GoogleCalendarServer, cal: str, token: str, bad_id: str
) -> None:
    status, body, _ = request(server, "POST", events(cal), {"id": bad_id, **timed(2)}, token=token)
    assert status == 400 and reason(body) == "invalid"


def test_insert_with_an_id_then_duplicate_is_409(
    server: GoogleCalendarServer, cal: str, token: str
) -> None:
    status, created, _ = request(
        server, "POST", events(cal), {"id": "abcde0", **timed(2)}, token=token
    )
    assert status == 200 and created["id"] == "abcde0" and created["etag"]
    status, body, _ = request(
        server, "POST", events(cal), {"id": "abcde0", **timed(3)}, token=token
    )
    assert status == 409 and reason(body) == "duplicate"
    status, got, _ = request(server, "GET", events(cal, "/abcde0"), token=token)
    assert status == 200 and got["summary"] == "day 2"


@pytest.mark.parametrize(
    "body",
    [
        {"start": {"dateTime": "2026-03-02T10:00:00-03:00"}},  # no end
        {"start": {"dateTime": "2026-03-02T10:00:00"}, "end": {"dateTime": "2026-03-02T11:00:00"}},
        {**timed(2), "end": {"dateTime": "2026-03-02T09:00:00-03:00"}},  # ends before
        {
            "start": {"dateTime": "2026-03-02T10:00:00-03:00", "timeZone": "Mars/Olympus"},
            "end": {"dateTime": "2026-03-02T11:00:00-03:00"},
        },
        {**timed(2), "recurrence": ["RRULE:FREQ=WEEKLY"]},  # recurring without timeZone
        {
            **timed(2),
            "reminders": {"useDefault": True, "overrides": [{"method": "popup", "minutes": 5}]},
        },
        {
            **timed(2),
            "reminders": {
                "useDefault": False,
                "overrides": [{"method": "popup", "minutes": 50000}],
            },
        },
        {**timed(2), "transparency": "see-through"},
        {"start": {"date": "2026-03-02"}, "end": {"dateTime": "2026-03-03T10:00:00-03:00"}},
    ],
)
def test_insert_refuses_what_google_refuses(
    server: GoogleCalendarServer, cal: str, token: str, body: dict[str, Any]
) -> None:
    status, answer, _ = request(server, "POST", events(cal), body, token=token)
    assert status == 400, answer
    assert answer["error"]["code"] == 400 and answer["error"]["message"]


def test_unknown_calendar_and_event_are_404(
    server: GoogleCalendarServer, cal: str, token: str
) -> None:
    assert request(server, "GET", events("nobody@x"), token=token)[0] == 404
    status, body, _ = request(server, "GET", events(cal, "/zzzzz0"), token=token)
    assert status == 404 and reason(body) == "notFound"


# ---------------------------------------------------------------------- conditional writes


def test_if_match_and_delete(server: GoogleCalendarServer, cal: str, token: str) -> None:
    _, created, _ = request(server, "POST", events(cal), timed(2), token=token)
    path = events(cal, "/" + created["id"])
    status, patched, _ = request(
        server, "PATCH", path, {"summary": "x"}, token=token, headers={"If-Match": created["etag"]}
    )
    assert status == 200 and patched["etag"] != created["etag"]
    assert patched["start"] == created["start"]  # a patch keeps what it does not name
    status, body, _ = request(
        server, "PUT", path, timed(4), token=token, headers={"If-Match": created["etag"]}
    )
    assert status == 412 and reason(body) == "conditionNotMet"
    status, _, _ = request(
        server, "DELETE", path, token=token, headers={"If-Match": created["etag"]}
    )
    assert status == 412
    assert request(server, "DELETE", path, token=token)[0] == 204
    status, body, _ = request(server, "DELETE", path, token=token)
    assert status == 410 and reason(body) == "deleted"
    status, got, _ = request(server, "GET", path, token=token)
    assert status == 200 and got["status"] == "cancelled"


# ---------------------------------------------------------------------- listing


def test_paging_and_sync_tokens(server: GoogleCalendarServer, cal: str, token: str) -> None:
    for day in range(2, 9):
        request(server, "POST", events(cal), timed(day), token=token)
    seen: list[str] = []
    page: str | None = None
    pages = 0
    while True:
        query = {"maxResults": "3", **({"pageToken": page} if page else {})}
        status, body, _ = request(server, "GET", events(cal, **query), token=token)
        assert status == 200
        pages += 1
        seen += [e["id"] for e in body["items"]]
        page = body.get("nextPageToken")
        if page is None:
            sync = body["nextSyncToken"]
            break
        assert "nextSyncToken" not in body
    assert (pages, len(seen), len(set(seen))) == (3, 7, 7)

    status, body, _ = request(server, "GET", events(cal, syncToken=sync), token=token)
    assert status == 200 and body["items"] == []
    request(server, "DELETE", events(cal, "/" + seen[0]), token=token)
    _, new, _ = request(server, "POST", events(cal), timed(20), token=token)
    status, body, _ = request(
        server, "GET", events(cal, syncToken=body["nextSyncToken"]), token=token
    )
    assert [(e["id"], e["status"]) for e in body["items"]] == [
        (seen[0], "cancelled"),
        (new["id"], "confirmed"),
    ]
    assert set(body["items"][0]) <= {"kind", "etag", "id", "status"}  # deleted: id only


@pytest.mark.parametrize(
    "extra",
    [
        {"timeMin": "2026-03-01T00:00:00Z"},
        {"timeMax": "2026-03-01T00:00:00Z"},
        {"orderBy": "updated"},
        {"iCalUID": "x@y"},
        {"q": "text"},
        {"showDeleted": "false"},
    ],
)
def test_sync_token_refuses_incompatible_parameters(
    server: GoogleCalendarServer, cal: str, token: str, extra: dict[str, str]
) -> None:
    _, body, _ = request(server, "GET", events(cal), token=token)
    status, answer, _ = request(
        server, "GET", events(cal, syncToken=body["nextSyncToken"], **extra), token=token
    )
    assert status == 400, answer


def test_expired_or_unknown_sync_token_is_410(
    server: GoogleCalendarServer, cal: str, token: str
) -> None:
    _, body, _ = request(server, "GET", events(cal), token=token)
    sync = body["nextSyncToken"]
    status, answer, _ = request(server, "GET", events(cal, syncToken="CPforged"), token=token)
    assert status == 410 and reason(answer) == "fullSyncRequired"
    assert answer["error"]["code"] == 410
    server.expire_sync_tokens()
    status, answer, _ = request(server, "GET", events(cal, syncToken=sync), token=token)
    assert status == 410 and reason(answer) == "fullSyncRequired"


def test_list_parameter_checks(server: GoogleCalendarServer, cal: str, token: str) -> None:
    assert request(server, "GET", events(cal, maxResults="0"), token=token)[0] == 400
    assert request(server, "GET", events(cal, pageToken="nope"), token=token)[0] == 400
    assert request(server, "GET", events(cal, orderBy="startTime"), token=token)[0] == 400
    assert request(server, "GET", events(cal, timeMin="2026-03-01T00:00:00"), token=token)[0] == 400
    status, body, _ = request(
        server,
        "GET",
        events(cal, timeMin="2026-03-02T00:00:00Z", timeMax="2026-03-01T00:00:00Z"),
        token=token,
    )
    assert status == 400 and reason(body) == "timeRangeEmpty"
    # A page token belongs to its query.
    for day in (2, 3):
        request(server, "POST", events(cal), timed(day), token=token)
    _, first, _ = request(server, "GET", events(cal, maxResults="1"), token=token)
    status, _, _ = request(
        server,
        "GET",
        events(cal, maxResults="1", showDeleted="true", pageToken=first["nextPageToken"]),
        token=token,
    )
    assert status == 400


def test_show_deleted_and_single_events(server: GoogleCalendarServer, cal: str, token: str) -> None:
    weekly = {
        "summary": "weekly",
        "start": {"dateTime": "2026-03-02T10:00:00-03:00", "timeZone": "America/Sao_Paulo"},
        "end": {"dateTime": "2026-03-02T11:00:00-03:00", "timeZone": "America/Sao_Paulo"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
    }
    _, master, _ = request(server, "POST", events(cal), weekly, token=token)
    _, gone, _ = request(server, "POST", events(cal), timed(5), token=token)
    request(server, "DELETE", events(cal, "/" + gone["id"]), token=token)
    instance = f"{master['id']}_20260309T130000Z"
    assert request(server, "DELETE", events(cal, "/" + instance), token=token)[0] == 204
    _, plain, _ = request(server, "GET", events(cal), token=token)
    ids = [e["id"] for e in plain["items"]]
    assert gone["id"] not in ids
    assert instance in ids  # cancelled instances are listed even without showDeleted
    _, deleted, _ = request(server, "GET", events(cal, showDeleted="true"), token=token)
    assert gone["id"] in [e["id"] for e in deleted["items"]]
    _, single, _ = request(
        server,
        "GET",
        events(
            cal,
            singleEvents="true",
            orderBy="startTime",
            timeMin="2026-03-01T00:00:00Z",
            timeMax="2026-04-01T00:00:00Z",
        ),
        token=token,
    )
    starts = [e["start"]["dateTime"][:10] for e in single["items"]]
    assert starts == ["2026-03-02", "2026-03-16"]
    _, by_uid, _ = request(server, "GET", events(cal, iCalUID=master["iCalUID"]), token=token)
    assert {e["id"] for e in by_uid["items"]} == {master["id"], instance}
    assert "nextSyncToken" not in by_uid


# ---------------------------------------------------------------------- free/busy and faults


def test_free_busy(server: GoogleCalendarServer, cal: str, token: str) -> None:
    request(server, "POST", events(cal), timed(2), token=token)
    request(server, "POST", events(cal), timed(3, transparency="transparent"), token=token)
    body = {
        "timeMin": "2026-03-01T00:00:00Z",
        "timeMax": "2026-03-31T00:00:00Z",
        "items": [{"id": cal}, {"id": "nobody@x"}],
    }
    status, answer, _ = request(server, "POST", "/calendar/v3/freeBusy", body, token=token)
    assert status == 200
    assert answer["calendars"][cal]["busy"] == [
        {"start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:00:00Z"}
    ]
    assert answer["calendars"]["nobody@x"]["errors"][0]["reason"] == "notFound"
    many = {**body, "items": [{"id": cal}] + [{"id": f"c{n}@x"} for n in range(50)]}
    _, answer, _ = request(server, "POST", "/calendar/v3/freeBusy", many, token=token)
    assert answer["calendars"][cal]["errors"][0]["reason"] == "tooManyCalendarsRequested"
    long = {**body, "timeMax": "2026-07-01T00:00:00Z"}
    status, answer, _ = request(server, "POST", "/calendar/v3/freeBusy", long, token=token)
    assert status == 400 and reason(answer) == "timeRangeTooLong"
    status, answer, _ = request(server, "POST", "/calendar/v3/freeBusy", {"items": []}, token=token)
    assert status == 400 and reason(answer) == "required"


def test_injected_faults(server: GoogleCalendarServer, cal: str, token: str) -> None:
    server.inject(Fault(status=429, retry_after="7"), Fault(status=503))
    status, body, headers = request(server, "GET", events(cal), token=token)
    assert (status, headers["Retry-After"], reason(body)) == (429, "7", "rateLimitExceeded")
    assert request(server, "GET", events(cal), token=token)[0] == 503
    assert request(server, "GET", events(cal), token=token)[0] == 200
    server.inject(Fault(drop="after", method="POST"))
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        request(server, "POST", events(cal), {"id": "dropped0", **timed(2)}, token=token)
    assert server.event(cal, "dropped0") is not None  # carried out, answer lost
