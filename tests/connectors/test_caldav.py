"""The CalDAV adapter against real Radicale and Xandikos servers, plus the in-memory fake and
the retry helper. Every server quirk in ``connectors.compat`` names the test here that
shows it."""

from __future__ import annotations

import http.server
import random
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors import compat
from connectors.base import (
    AuthFailed,
    BadConfiguration,
    Conflict,
    SessionCalendar,
    Unavailable,
)
from connectors.caldav import CalDAVCalendar, SyncMethod, object_name
from connectors.caldav.poll import (
    FALLBACKS_BEFORE_PAUSE,
    KEPT_IDLE,
    SYNCS_PAUSED,
    Listing,
    SyncPoller,
)
from connectors.memory import MemoryCalendar
from connectors.retry import RetryPolicy, backoff_delay, retry
from rules.intervals import Interval
from tests.connectors.contract import (
    SP,
    WINDOW,
    CalendarApp,
    SessionCalendarContract,
    by_uid,
    name_of,
    session,
    simple_event,
    sp,
    vcalendar,
    vevent,
)
from tests.servers import CalDAVServer, CalendarHandle, make_tls_files
from tests.servers.radicale import RadicaleServer

pytestmark = pytest.mark.slow


class SleepRecorder:
    """Stands in for time.sleep: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def adapter_for(
    handle: CalendarHandle,
    *,
    sync_method: SyncMethod = "auto",
    sleep: SleepRecorder | None = None,
    **kwargs: Any,
) -> CalDAVCalendar:
    policy = RetryPolicy(
        attempts=3,
        base_delay=0.5,
        max_delay=4.0,
        sleep=sleep or SleepRecorder(),
        rng=random.Random(7),
    )
    return CalDAVCalendar(
        handle.url,
        handle.username,
        handle.password,
        SP,
        timeout=10,
        retry_policy=policy,
        sync_method=sync_method,
        **kwargs,
    )


@pytest.fixture
def adapter(calendar_handle: CalendarHandle) -> Iterator[CalDAVCalendar]:
    with adapter_for(calendar_handle) as cal:
        yield cal


class BodyRecorder:
    """A response hook on the adapter's HTTP session that keeps every answer's body."""

    def __init__(self, cal: CalDAVCalendar) -> None:
        self.bodies: list[bytes] = []
        cal._client.session.hooks["response"].append(self)

    def __call__(self, response: Any, **_: Any) -> Any:
        self.bodies.append(bytes(response.content or b""))
        return response


# ---------------------------------------------------------------------- the contract


class TestCalDAVContract(SessionCalendarContract):
    """The SessionCalendar contract on both servers, with each sync method, and with the
    kept connection (``connectors/caldav/poll.py``) on and off: what it cannot answer is
    sent through caldav, so both ways must keep the contract."""

    @pytest.fixture(params=["sync-collection", "etag"])
    def sync_method(self, request: pytest.FixtureRequest) -> SyncMethod:
        method: SyncMethod = request.param
        return method

    @pytest.fixture(params=["kept connection", "caldav only"])
    def calendar(
        self,
        request: pytest.FixtureRequest,
        calendar_handle: CalendarHandle,
        sync_method: SyncMethod,
    ) -> Iterator[SessionCalendar]:
        with adapter_for(calendar_handle, sync_method=sync_method) as cal:
            cal._poller.enabled = request.param == "kept connection"
            yield cal

    @pytest.fixture
    def app(self, calendar_handle: CalendarHandle) -> CalendarApp:
        return calendar_handle


class TestMemoryContract(SessionCalendarContract):
    """The in-memory fake passes the same contract."""

    @pytest.fixture
    def memory(self) -> MemoryCalendar:
        return MemoryCalendar(SP)

    @pytest.fixture
    def calendar(self, memory: MemoryCalendar) -> SessionCalendar:
        return memory

    @pytest.fixture
    def app(self, memory: MemoryCalendar) -> CalendarApp:
        return memory


def test_memory_outage_raises_instead_of_returning_nothing() -> None:
    memory = MemoryCalendar(SP)
    memory.down = Unavailable("planned outage", calendar=memory.name)
    with pytest.raises(Unavailable):
        memory.sync(None, WINDOW)


# ---------------------------------------------------------------------- sync cost


def test_idle_sync_is_one_request_without_bodies(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    # quirk radicale-vtimezone-per-object: deltas matter, so the idle case must be cheap.
    for n in range(5):
        description = "DESCRIPTION:" + "x" * 5000
        calendar_handle.put_raw(
            f"e{n}.ics",
            simple_event(
                f"e{n}", f"2026030{n + 1}T130000Z", f"2026030{n + 1}T140000Z", description
            ),
        )
    first = adapter.sync(None, WINDOW)
    assert len(first.changes) == 5
    assert first.requests == 2  # sync-collection listing + one calendar-multiget
    full_bytes = adapter.last_transfer.bytes_received
    assert full_bytes > 25_000

    idle = adapter.sync(first.state, WINDOW)
    assert idle.changes == []
    assert idle.requests == 1
    assert adapter.last_transfer.requests == 1
    assert 0 < adapter.last_transfer.bytes_received < 1_000  # no event body among them


def test_one_change_fetches_only_that_object(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    for n in range(20):
        calendar_handle.put_raw(
            f"e{n}.ics",
            simple_event(
                f"e{n}", "20260302T130000Z", "20260302T140000Z", "DESCRIPTION:" + "y" * 2000
            ),
        )
    first = adapter.sync(None, WINDOW)
    full_bytes = adapter.last_transfer.bytes_received
    calendar_handle.put_raw("e7.ics", simple_event("e7", "20260303T130000Z", "20260303T140000Z"))
    delta = adapter.sync(first.state, WINDOW)
    assert [c.uid for c in delta.changes] == ["e7"]
    assert delta.requests == 2
    assert adapter.last_transfer.bytes_received * 10 < full_bytes


@pytest.mark.parametrize("method", ["sync-collection", "etag"])
def test_our_own_write_listed_with_its_etag_costs_no_fetch(
    calendar_handle: CalendarHandle, method: SyncMethod
) -> None:
    """The next sync after a session write lists it; with the ETag the write got, the
    listing is the whole sync (no calendar-multiget, no body parsed)."""
    with adapter_for(calendar_handle, sync_method=method) as cal:
        state = cal.sync(None, WINDOW).state
        etag = cal.put_session(session())
        href = cal.session_href("sess-0001")
        known = cal.sync(state, WINDOW, {href: etag})
        unknown = cal.sync(state, WINDOW)
        assert [(c.href, c.written) for c in known.changes] == [(href, True)]
        assert [(c.href, c.written) for c in unknown.changes] == [(href, False)]
        assert known.requests == unknown.requests - 1
        assert known.state == unknown.state


@pytest.mark.parametrize("method", ["sync-collection", "etag"])
def test_each_sync_method_costs_one_request_when_idle(
    calendar_handle: CalendarHandle, method: SyncMethod
) -> None:
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    with adapter_for(calendar_handle, sync_method=method) as cal:
        first = cal.sync(None, WINDOW)
        idle = cal.sync(first.state, WINDOW)
        assert (idle.requests, idle.changes, idle.full) == (1, [], False)
        calendar_handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
        calendar_handle.delete_raw("a.ics")
        delta = cal.sync(idle.state, WINDOW)
        assert sorted((name_of(c), c.deleted) for c in delta.changes) == [
            ("a.ics", True),
            ("b.ics", False),
        ]


# ---------------------------------------------------------------------- the repeated REPORT


def _listing(cal: CalDAVCalendar, token: str) -> tuple[str, dict[str, str | None], list[str]]:
    new_token, changed, deleted, truncated = cal._list_changes(token)
    assert not truncated
    return new_token, changed, sorted(deleted)


def test_the_repeated_report_lists_what_caldav_lists_without_caldav(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    for name in ("a", "b", "c"):
        calendar_handle.put_raw(
            f"{name}.ics", simple_event(name, "20260302T130000Z", "20260302T140000Z")
        )
    token = _token_of(adapter.sync(None, WINDOW).state or "")
    calendar_handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
    calendar_handle.delete_raw("c.ics")
    calendar_handle.put_raw("d.ics", simple_event("d", "20260304T130000Z", "20260304T140000Z"))
    adapter.put_session(session())
    adapter.delete_session("sess-0001")  # Radicale lists it as a bare 404 too

    recorder = BodyRecorder(adapter)
    quick = _listing(adapter, token)
    assert recorder.bodies == []  # sent over the kept connection, not through caldav
    adapter._poller.enabled = False
    through_caldav = _listing(adapter, token)
    assert len(recorder.bodies) == 1
    assert quick == through_caldav
    assert {href.rsplit("/", 1)[1] for href in quick[1]} == {"b.ics", "d.ics"}
    assert "c.ics" in {href.rsplit("/", 1)[1] for href in quick[2]}


def test_a_kept_connection_the_server_closed_is_opened_again(own_server: CalDAVServer) -> None:
    handle = own_server.new_calendar()
    handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    with adapter_for(handle) as cal:
        recorder = BodyRecorder(cal)
        state = cal.sync(None, WINDOW).state
        state = cal.sync(state, WINDOW).state
        sent_by_caldav = len(recorder.bodies)
        own_server.stop()
        own_server.start(same_port=True)
        handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
        result = cal.sync(state, WINDOW)
        assert set(by_uid(result.changes)) == {"b"}
        assert result.requests == 2  # the listing, then the multiget for b
        assert len(recorder.bodies) == sent_by_caldav + 1  # caldav sent only the multiget


def test_a_calendar_whose_name_is_quoted_in_its_url_is_listed_by_the_poller_too(
    caldav_server: CalDAVServer,
) -> None:
    handle = caldav_server.new_calendar("agenda%20t%C3%A9cnica%40desk")
    handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    with adapter_for(handle) as cal:
        state = cal.sync(None, WINDOW).state
        recorder = BodyRecorder(cal)
        handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
        result = cal.sync(state, WINDOW)
        assert set(by_uid(result.changes)) == {"b"}
        assert len(recorder.bodies) == 1  # caldav sent only the multiget


def test_answers_the_repeated_report_cannot_take_go_through_caldav(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    # A refused token is a 403 or 412: the poller leaves it to caldav, which says "resync".
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    state = adapter.sync(None, WINDOW).state or ""
    recorder = BodyRecorder(adapter)
    forged = state.replace(_token_of(state), "http://radicale.org/ns/sync/" + "0" * 64)
    result = adapter.sync(forged, WINDOW)
    assert result.full
    assert set(by_uid(result.changes)) == {"a"}
    assert result.requests == 4  # refused twice (poller, caldav), then listing and multiget
    assert len(recorder.bodies) == 3


class ClosingListener:
    """A TCP port that accepts each connection and closes it at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_a_server_the_poller_cannot_talk_to_is_left_to_caldav_for_a_while() -> None:
    listener = ClosingListener()
    counted: list[tuple[int, int]] = []
    poller = SyncPoller(
        f"http://127.0.0.1:{listener.port}/ana/cal/",
        "ana",
        "x",
        ca_file=None,
        timeout=5,
        count=lambda sent, received: counted.append((sent, received)),
    )
    try:
        for _ in range(FALLBACKS_BEFORE_PAUSE):
            assert poller.report("t") is None
        assert listener.accepted == FALLBACKS_BEFORE_PAUSE
        for _ in range(SYNCS_PAUSED):
            assert poller.report("t") is None
        assert listener.accepted == FALLBACKS_BEFORE_PAUSE  # stood aside, sent nothing
        assert poller.report("t") is None
        assert listener.accepted == FALLBACKS_BEFORE_PAUSE + 1  # and then tried again
        assert counted == []  # no answer, nothing counted
    finally:
        poller.close()
        listener.close()


class CannedDAV:
    """A local HTTP server that answers every request with one canned status, body and
    headers, keeping what it was sent."""

    def __init__(
        self,
        status: int,
        body: bytes,
        *,
        keep_alive: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self) -> None:
                canned.connections += 1
                super().setup()

            def do_REPORT(self) -> None:
                sent = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                canned.requests += 1
                canned.received.append((self.command, self.path, dict(self.headers), sent))
                self.send_response(canned.status)
                self.send_header("Content-Length", str(len(canned.body)))
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(canned.body)

            do_PUT = do_GET = do_DELETE = do_PROPFIND = do_REPORT

            def log_message(self, *_: Any) -> None:
                pass

        self.status, self.body, self.requests, self.connections = status, body, 0, 0
        self.headers = headers or {}
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ana/cal/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def poller(self, **kwargs: Any) -> SyncPoller:
        return SyncPoller(
            self.url, "ana", "x", ca_file=None, timeout=5, count=lambda *_: None, **kwargs
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _multistatus(*members: str, tokened: bool = True) -> bytes:
    token = "<D:sync-token>t2</D:sync-token>" if tokened else ""
    return (
        '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:">' + "".join(members) + token
        + "</D:multistatus>"
    ).encode()  # fmt: skip


def _member(href: str, status: str = "", etag: str | None = '"1"', stat: int = 200) -> str:
    props = (
        f"<D:propstat><D:prop><D:getetag>{etag}</D:getetag></D:prop>"
        f"<D:status>HTTP/1.1 {stat} X</D:status></D:propstat>"
        if etag is not None
        else ""
    )
    code = f"<D:status>HTTP/1.1 {status} X</D:status>" if status else ""
    return f"<D:response><D:href>{href}</D:href>{code}{props}</D:response>"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (207, _multistatus(_member("/ana/cal/a.ics"), tokened=False)),
        (207, b""),
        (207, b"<html>not DAV</html>"),
        (207, _multistatus(_member("/ana/cal/a.ics", status="500", etag=None))),
        (207, _multistatus(_member("/ana/cal/a.ics", stat=500))),
        (207, _multistatus(_member("/ana/cal/", status="507", etag=None))),  # truncated
        (207, _multistatus(_member("/ana/cal/x%2540y.ics"))),  # encoded twice somewhere
        (403, b"<D:error xmlns:D='DAV:'><D:valid-sync-token/></D:error>"),
        (500, b""),
    ],
)
def test_answers_that_are_not_a_plain_listing_are_left_to_caldav(status: int, body: bytes) -> None:
    canned = CannedDAV(status, body)
    poller = canned.poller()
    try:
        assert poller.report("t1") is None
        assert canned.requests == 1
    finally:
        poller.close()
        canned.close()


def test_a_plain_listing_is_read_as_caldav_reads_it() -> None:
    canned = CannedDAV(
        207,
        _multistatus(
            _member("/ana/cal/", etag=None),  # the collection itself
            _member("b.ics"),  # relative to the collection
            _member("/ana/cal/c.ics", etag='"c7"', stat=201),
            _member("/ana/cal/d.ics", status="404", etag=None),
            _member("/ana/cal/e.ics", status="404", etag=None),
            _member("/ana/cal/e.ics", etag='"e2"'),  # listed twice: an ETag means changed
            _member("/ana/cal/f%20g.ics", etag=None),
        ),
    )
    poller = canned.poller()
    try:
        listing = poller.report("t1")
        assert listing == Listing(
            "t2",
            {
                "/ana/cal/b.ics": '"1"',
                "/ana/cal/c.ics": '"c7"',
                "/ana/cal/e.ics": '"e2"',
                "/ana/cal/f g.ics": None,
            },
            ["/ana/cal/d.ics"],
        )
        poller.close()
        assert poller.report("t1") is None  # closed: nothing is sent any more
        assert canned.requests == 1
    finally:
        canned.close()


def test_a_connection_is_kept_between_syncs_but_not_once_it_sat_idle_too_long() -> None:
    canned = CannedDAV(207, _multistatus(), keep_alive=True)
    now = [100.0]
    poller = canned.poller(monotonic=lambda: now[0])
    try:
        for _ in range(3):
            assert poller.report("t1") == Listing("t2", {}, [])
            now[0] += 2
        assert (canned.requests, canned.connections) == (3, 1)
        now[0] += KEPT_IDLE + 1  # a silent drop here would have cost the whole timeout
        assert poller.report("t1") == Listing("t2", {}, [])
        assert (canned.requests, canned.connections) == (4, 2)
    finally:
        poller.close()
        canned.close()


def test_session_writes_go_over_the_kept_connection(adapter: CalDAVCalendar) -> None:
    recorder = BodyRecorder(adapter)
    created = adapter.put_session(session())
    updated = adapter.put_session(session(state="in_progress"), etag=created)
    assert updated != created
    found = adapter.get_session("sess-0001")
    assert found is not None
    assert found[1] == updated
    with pytest.raises(Conflict):  # a 412 answered over the kept connection
        adapter.put_session(session(state="cancelled"), etag=created)
    adapter.delete_session("sess-0001", updated)
    assert adapter.get_session("sess-0001") is None
    assert recorder.bodies == []  # none of them went through caldav


@pytest.mark.parametrize("status", [200, 201, 204, 404, 412])
def test_a_plain_answer_to_a_session_request_is_read_from_the_kept_connection(
    status: int,
) -> None:
    error = b"<D:error xmlns:D='DAV:'><D:no-uid-conflict/></D:error>"
    canned = CannedDAV(status, error, headers={"ETag": '"e1"'})
    poller = canned.poller()
    try:
        answer = poller.send(
            "PUT", "/ana/cal/s%201.ics", b"BEGIN:VCALENDAR", {"If-None-Match": "*"}
        )
        assert answer is not None
        body = b"" if status == 204 else error  # a 204 has no body, whatever follows it
        assert (answer.status, answer.headers.get("etag"), answer._raw) == (status, '"e1"', body)
        ((method, path, headers, sent),) = canned.received
        assert (method, path, sent) == ("PUT", "/ana/cal/s%201.ics", b"BEGIN:VCALENDAR")
        assert headers["If-None-Match"] == "*"
        assert headers["Authorization"].startswith("Basic ")
    finally:
        poller.close()
        canned.close()


@pytest.mark.parametrize("status", [301, 307, 400, 401, 403, 409, 429, 500, 503])
def test_other_answers_to_a_session_request_are_left_to_caldav(status: int) -> None:
    canned = CannedDAV(status, b"")
    poller = canned.poller()
    try:
        assert poller.send("DELETE", "/ana/cal/s.ics", b"", {"If-Match": '"e1"'}) is None
        assert canned.requests == 1
    finally:
        poller.close()
        canned.close()


def test_a_session_write_the_kept_connection_could_not_place_is_sent_again_through_caldav() -> None:
    # Sent twice, the create is still safe: its If-None-Match makes a second one that
    # finds the first landed a 412, which the adapter reads as its own earlier write.
    canned = CannedDAV(503, b"", headers={"Retry-After": "7"})
    try:
        with (
            CalDAVCalendar(canned.url, "ana", "x", SP, timeout=5) as cal,
            pytest.raises(Unavailable) as raised,
        ):
            cal.put_session(session())
        assert [
            (method, headers.get("If-None-Match")) for method, _, headers, _ in canned.received
        ] == [
            ("PUT", "*"),  # over the kept connection
            ("PUT", "*"),  # through caldav, whose answer counts
        ]
        assert raised.value.retry_after == 7
    finally:
        canned.close()


def test_a_ca_file_the_poller_cannot_load_is_left_to_caldav(tmp_path: Path) -> None:
    broken = tmp_path / "ca.pem"
    broken.write_text("not a certificate")
    poller = SyncPoller(
        "https://127.0.0.1:1/ana/cal/", "ana", "x", ca_file=broken, timeout=5,
        count=lambda *_: None,
    )  # fmt: skip
    assert poller.report("t1") is None


def test_an_ipv6_host_without_a_port_gets_the_schemes_port() -> None:
    poller = SyncPoller(
        "https://[::1]/ana/cal/", "ana", "x", ca_file=None, timeout=5, count=lambda *_: None
    )
    assert (poller._host, poller._port) == ("::1", 443)


@pytest.mark.parametrize(
    ("environment", "enabled"),
    [
        ({}, True),
        ({"http_proxy": "http://127.0.0.1:9"}, False),
        ({"all_proxy": "http://127.0.0.1:9"}, False),
        ({"http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1"}, True),
        ({"https_proxy": "http://127.0.0.1:9"}, True),  # the calendar is plain http
    ],
)
def test_a_proxy_in_the_environment_leaves_the_report_to_caldav(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], enabled: bool
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with CalDAVCalendar("http://127.0.0.1:1/ana/cal/", "ana", "x", SP) as cal:
        assert cal._poller.enabled is enabled


def test_a_state_of_the_other_method_is_not_misread(calendar_handle: CalendarHandle) -> None:
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    with adapter_for(calendar_handle, sync_method="etag") as etags:
        state = etags.sync(None, WINDOW).state
    with adapter_for(calendar_handle, sync_method="sync-collection") as tokens:
        result = tokens.sync(state, WINDOW)
    assert result.full
    assert set(by_uid(result.changes)) == {"a"}


# ---------------------------------------------------------------------- tokens and windows


@pytest.mark.parametrize(
    "token",
    [
        "http://example.invalid/never-issued",
        "0000000000000000000000000000000000000000",
        "http://radicale.org/ns/sync/" + "0" * 64,
    ],
)
def test_invalid_token_resyncs_in_full(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle, token: str
) -> None:
    # quirk invalid-sync-token-status: Radicale 403, Xandikos 412, both → full resync.
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    good = adapter.sync(None, WINDOW)
    assert good.state is not None
    forged = good.state.replace(_token_of(good.state), token)
    result = adapter.sync(forged, WINDOW)
    assert result.full
    assert set(by_uid(result.changes)) == {"a"}
    assert any("sync token" in p.message for p in result.problems)
    assert adapter.sync(result.state, WINDOW).changes == []  # the new token works


def _token_of(state: str) -> str:
    import json

    return str(json.loads(state)["token"])


def test_window_inside_the_expanded_range_stays_incremental(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    first = adapter.sync(None, WINDOW)
    a_day_later = Interval(WINDOW.start + timedelta(days=1), WINDOW.end + timedelta(days=1))
    result = adapter.sync(first.state, a_day_later)
    assert not result.full
    assert result.requests == 1


# ---------------------------------------------------------------------- failures


def test_server_stopped_raises_unavailable(own_server: CalDAVServer) -> None:
    # quirk caldav-fake-token-fallback: a failed REPORT must not become a full fetch.
    handle = own_server.new_calendar()
    handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    sleep = SleepRecorder()
    with adapter_for(handle, sleep=sleep) as cal:
        first = cal.sync(None, WINDOW)
        own_server.stop()
        with pytest.raises(Unavailable) as caught:
            cal.sync(first.state, WINDOW)
        assert caught.value.calendar == cal.name
        # Retried with bounded, jittered backoff: 3 attempts, 2 waits, none over the cap.
        assert len(sleep.waits) == 2
        assert all(0 <= w <= 4.0 for w in sleep.waits)
        with pytest.raises(Unavailable):
            cal.sync(None, WINDOW)
        with pytest.raises(Unavailable):
            cal.get_session("sess-0001")


def test_wrong_password_is_auth_failed(radicale_server: CalDAVServer) -> None:
    handle = radicale_server.new_calendar()
    with CalDAVCalendar(handle.url, handle.username, "wrong", SP, timeout=10) as cal:
        with pytest.raises(AuthFailed):
            cal.sync(None, WINDOW)
        with pytest.raises(AuthFailed):
            cal.put_session(session())


def test_missing_calendar_is_bad_configuration(caldav_server: CalDAVServer) -> None:
    handle = caldav_server.new_calendar()
    url = handle.url.rstrip("/") + "-missing/"
    cal = CalDAVCalendar(url, handle.username, handle.password, SP, timeout=10)
    with cal, pytest.raises(BadConfiguration):
        cal.sync(None, WINDOW)


def test_bad_url_and_missing_ca_file_are_refused_early(tmp_path: Path) -> None:
    with pytest.raises(BadConfiguration):
        CalDAVCalendar("ftp://example.com/cal/", "u", "p", SP)
    with pytest.raises(BadConfiguration):
        CalDAVCalendar("https://127.0.0.1:1/cal/", "u", "p", SP, ca_file=tmp_path / "none.pem")


def test_name_never_shows_credentials() -> None:
    with CalDAVCalendar("https://ana:secret@127.0.0.1:1/ana/work", "ana", "x", SP) as cal:
        assert cal.name == "https://127.0.0.1:1/ana/work/"
        assert "secret" not in cal.name


@pytest.fixture(scope="module")
def tls_radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    workdir = tmp_path_factory.mktemp("radicale-tls")
    server = RadicaleServer(workdir, tls=make_tls_files(workdir / "tls"))
    with server:
        yield server


def test_https_with_a_private_ca_file(tls_radicale: RadicaleServer) -> None:
    handle = tls_radicale.new_calendar()
    assert handle.url.startswith("https://")
    handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    ca = tls_radicale.ca_file
    with CalDAVCalendar(handle.url, handle.username, handle.password, SP, ca_file=ca) as cal:
        first = cal.sync(None, WINDOW)
        assert set(by_uid(first.changes)) == {"a"}
        recorder = BodyRecorder(cal)
        handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
        assert set(by_uid(cal.sync(first.state, WINDOW).changes)) == {"b"}
        assert len(recorder.bodies) == 1  # the listing went over TLS outside caldav
    # Without the CA, the system's CAs do not know this server: a person must fix that.
    cal = CalDAVCalendar(handle.url, handle.username, handle.password, SP, timeout=10)
    with cal, pytest.raises(BadConfiguration, match="TLS"):
        cal.sync(None, WINDOW)


@pytest.mark.parametrize("listed_by", ["poller", "caldav"])
def test_object_deleted_between_listing_and_fetch_is_reported_deleted(
    adapter: CalDAVCalendar,
    calendar_handle: CalendarHandle,
    monkeypatch: pytest.MonkeyPatch,
    listed_by: str,
) -> None:
    # quirk caldav-multiget-missing-object
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    calendar_handle.put_raw("b.ics", simple_event("b", "20260303T130000Z", "20260303T140000Z"))
    first = adapter.sync(None, WINDOW)
    calendar_handle.put_raw("a.ics", simple_event("a", "20260304T130000Z", "20260304T140000Z"))

    def delete_after_listing(response: Any, **_: Any) -> Any:
        if response.request.method == "REPORT" and b"sync-token" in (response.content or b""):
            adapter._client.session.hooks["response"].remove(delete_after_listing)
            calendar_handle.delete_raw("a.ics")
        return response

    poller_report = adapter._poller.report

    def report_then_delete(token: str) -> Listing | None:
        listing = poller_report(token)
        assert listing is not None
        calendar_handle.delete_raw("a.ics")
        return listing

    if listed_by == "poller":
        monkeypatch.setattr(adapter._poller, "report", report_then_delete)
    else:
        adapter._poller.enabled = False
        adapter._client.session.hooks["response"].append(delete_after_listing)
    result = adapter.sync(first.state, WINDOW)
    assert [(name_of(c), c.deleted) for c in result.changes] == [("a.ics", True)]
    # The deletion is also what the next sync sees; nothing is lost or doubled.
    after = adapter.sync(result.state, WINDOW)
    assert [(name_of(c), c.deleted) for c in after.changes] in ([], [("a.ics", True)])


@pytest.mark.parametrize("method", ["sync-collection", "etag"])
def test_an_object_created_and_deleted_between_syncs_is_reported_by_radicale_alone(
    calendar_handle: CalendarHandle, method: SyncMethod
) -> None:
    # quirk created-and-deleted-between-syncs
    with adapter_for(calendar_handle, sync_method=method) as cal:
        state = cal.sync(None, WINDOW).state
        cal.put_session(session())
        cal.delete_session("sess-0001")
        result = cal.sync(state, WINDOW)
        reported = [(c.href, c.uid, c.deleted) for c in result.changes]
        if calendar_handle.server == "radicale" and method == "sync-collection":
            assert reported == [(cal.session_href("sess-0001"), None, True)]
        else:
            assert reported == []


# ---------------------------------------------------------------------- writing


def test_create_with_uid_taken_by_another_object_conflicts(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    # quirk uid-conflict-status: Radicale 409, Xandikos 412, both with no-uid-conflict.
    calendar_handle.put_raw(
        "copied-by-an-app.ics", simple_event("sess-0001", "20260310T120000Z", "20260310T123000Z")
    )
    with pytest.raises(Conflict, match="UID"):
        adapter.put_session(session())
    assert calendar_handle.get_raw(object_name("sess-0001")) is None


def test_create_over_a_foreign_object_at_our_name_conflicts(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    calendar_handle.put_raw(
        object_name("sess-0001"),
        simple_event("someone-else", "20260310T120000Z", "20260310T123000Z"),
    )
    with pytest.raises(Conflict):
        adapter.put_session(session())
    raw = calendar_handle.get_raw(object_name("sess-0001"))
    assert raw is not None and b"someone-else" in raw


def test_session_names_are_stable_and_safe() -> None:
    assert object_name("sess-0001") == "sess-0001.ics"
    odd = object_name("a/b@c d")
    assert odd == object_name("a/b@c d")
    assert odd.endswith(".ics") and "/" not in odd and "@" not in odd and " " not in odd
    assert object_name("a/b@c d") != object_name("a/b@c e")


def test_updates_raise_sequence(adapter: CalDAVCalendar, calendar_handle: CalendarHandle) -> None:
    etag = adapter.put_session(session())
    adapter.put_session(session(state="in_progress"), etag=etag)
    raw = calendar_handle.get_raw(object_name("sess-0001"))
    assert raw is not None
    assert b"SEQUENCE:1" in raw
    assert b"X-EXPEDIENTE-STATE:in_progress" in raw


def test_write_requests_are_counted(adapter: CalDAVCalendar) -> None:
    adapter.put_session(session())
    assert adapter.last_transfer.requests == 1  # PUT with If-None-Match, ETag in the answer
    adapter.put_session(session())
    assert adapter.last_transfer.requests == 3  # 412, GET, PUT with If-Match


# ---------------------------------------------------------------------- bad data


def _event(uid: str, *lines: str) -> str:
    return vcalendar(vevent(uid, *lines))


MALFORMED = {
    "missing-dtend": (
        _event("m-nodtend", "DTSTART:20260304T150000Z", "SUMMARY:x"),
        "no DTEND",
    ),
    "unknown-tzid": (
        _event(
            "m-tz",
            "DTSTART;TZID=Mars/Olympus:20260305T100000",
            "DTEND;TZID=Mars/Olympus:20260305T110000",
        ),
        "unknown TZID",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_objects_become_problems_and_sync_continues(
    adapter: CalDAVCalendar,
    calendar_handle: CalendarHandle,
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # quirk put-validation: what each server lets through is read defensively.
    data, words = MALFORMED[case]
    calendar_handle.put_raw(
        "good.ics", simple_event("good", "20260302T130000Z", "20260302T140000Z")
    )
    calendar_handle.put_raw("bad.ics", data)
    result = adapter.sync(None, WINDOW)
    found = by_uid(result.changes)
    assert found["good"].blocks == (Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),)
    bad = next(c for c in result.changes if name_of(c) == "bad.ics")
    assert bad.uid is not None
    assert any(p.uid == bad.uid and words in p.message for p in bad.problems)
    assert any(p.uid == bad.uid and p.calendar == adapter.name for p in result.problems)
    assert bad.blocks  # conservative: still busy
    logged = [r.getMessage() for r in caplog.records if r.name == "connectors.caldav"]
    assert any(adapter.name in m and f"UID={bad.uid}" in m and words in m for m in logged)


def test_values_only_xandikos_stores_are_problems_with_their_uid(
    xandikos_server: CalDAVServer,
) -> None:
    # quirk put-validation: Xandikos keeps what Radicale refuses with 400.
    handle = xandikos_server.new_calendar()
    handle.put_raw("good.ics", simple_event("good", "20260302T130000Z", "20260302T140000Z"))
    handle.put_raw("date.ics", _event("x-date", "DTSTART:notadate", "DTEND:20260303T110000Z"))
    handle.put_raw(
        "rule.ics",
        _event(
            "x-rule", "DTSTART:20260303T130000Z", "DTEND:20260303T140000Z", "RRULE:FREQ=SOMETIMES"
        ),
    )
    handle.put_raw(
        "nouid.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260306T130000Z\r\nDTEND:20260306T140000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    with adapter_for(handle) as cal:
        result = cal.sync(None, WINDOW)
    found = {name_of(c): c for c in result.changes}
    assert found["good.ics"].blocks
    assert found["date.ics"].uid == "x-date"
    assert found["date.ics"].blocks == ()
    assert any(p.uid == "x-date" and p.severity == "error" for p in found["date.ics"].problems)
    # An unreadable rule still blocks the first occurrence.
    assert found["rule.ics"].blocks == (Interval(sp(2026, 3, 3, 10, 0), sp(2026, 3, 3, 11, 0)),)
    assert any(p.uid == "x-rule" for p in found["rule.ics"].problems)
    assert found["nouid.ics"].blocks == (Interval(sp(2026, 3, 6, 10, 0), sp(2026, 3, 6, 11, 0)),)
    assert any("no UID" in p.message for p in found["nouid.ics"].problems)


def test_uid_of_unreadable_text_is_still_named() -> None:
    # Neither server lets unparseable text through today; another server may.
    from connectors.caldav import _uid_from_text

    assert _uid_from_text(b"garbage\r\nUID:abc-1\r\nmore") == "abc-1"
    assert _uid_from_text(b"UID;X-P=1:abc-2\n") == "abc-2"
    assert _uid_from_text(b"no uid here") is None


def test_radicale_refuses_invalid_objects_and_hides_broken_files_on_disk(
    radicale_server: CalDAVServer,
) -> None:
    # quirks put-validation and radicale-skips-broken-items
    handle = radicale_server.new_calendar()
    with pytest.raises(RuntimeError, match="400"):
        handle.put_raw("date.ics", _event("r-date", "DTSTART:notadate", "DTEND:20260303T110000Z"))
    handle.put_raw("good.ics", simple_event("good", "20260302T130000Z", "20260302T140000Z"))
    handle.write_on_disk("broken.ics", _event("r-broken", "DTSTART:notadate").encode())
    handle.write_on_disk("garbage.ics", b"this is not iCalendar")
    with adapter_for(handle) as cal:
        result = cal.sync(None, WINDOW)
    assert [name_of(c) for c in result.changes] == ["good.ics"]
    assert result.problems == ()


def test_endless_rule_is_expanded_only_over_the_window(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    calendar_handle.put_raw(
        "daily.ics",
        _event("daily", "DTSTART:20200101T100000Z", "DTEND:20200101T103000Z", "RRULE:FREQ=DAILY"),
    )
    result = adapter.sync(None, WINDOW)
    blocks = by_uid(result.changes)["daily"].blocks
    expanded = Interval(WINDOW.start, WINDOW.end + adapter.expand_margin)
    assert len(blocks) == 31 + adapter.expand_margin.days
    assert all(b.overlaps(expanded) for b in blocks)
    assert blocks[0] == Interval(sp(2026, 3, 1, 7, 0), sp(2026, 3, 1, 7, 30))


def test_two_megabyte_description_is_read(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    description = "DESCRIPTION:" + "confidencial " * 160_000  # ~2 MB
    calendar_handle.put_raw(
        "big.ics", simple_event("big", "20260302T130000Z", "20260302T140000Z", description)
    )
    calendar_handle.put_raw(
        "small.ics", simple_event("small", "20260303T130000Z", "20260303T140000Z")
    )
    result = adapter.sync(None, WINDOW)
    found = by_uid(result.changes)
    assert found["big"].blocks == (Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),)
    assert found["small"].blocks
    assert adapter.last_transfer.bytes_received > 2_000_000
    assert adapter.sync(result.state, WINDOW).requests == 1


def test_recurring_event_with_exdate_and_override_blocks_the_right_times(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    # quirk server-side-expansion-utc: expanded here, in the event's zone, not by the server.
    weekly = vcalendar(
        vevent(
            "weekly",
            "DTSTART;TZID=America/Sao_Paulo:20260302T100000",
            "DTEND;TZID=America/Sao_Paulo:20260302T110000",
            "RRULE:FREQ=WEEKLY;COUNT=5",
            "EXDATE;TZID=America/Sao_Paulo:20260309T100000",
        ),
        vevent(
            "weekly",
            "RECURRENCE-ID;TZID=America/Sao_Paulo:20260316T100000",
            "DTSTART;TZID=America/Sao_Paulo:20260317T150000",
            "DTEND;TZID=America/Sao_Paulo:20260317T163000",
        ),
        vevent(
            "weekly",
            "RECURRENCE-ID;TZID=America/Sao_Paulo:20260323T100000",
            "DTSTART;TZID=America/Sao_Paulo:20260323T100000",
            "DTEND;TZID=America/Sao_Paulo:20260323T110000",
            "TRANSP:TRANSPARENT",
        ),
    )
    calendar_handle.put_raw("weekly.ics", weekly)
    result = adapter.sync(None, WINDOW)
    assert by_uid(result.changes)["weekly"].blocks == (
        Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),
        # 9 March excluded; 16 March moved to Tuesday 17 afternoon; 23 March free
        Interval(sp(2026, 3, 17, 15, 0), sp(2026, 3, 17, 16, 30)),
        Interval(sp(2026, 3, 30, 10, 0), sp(2026, 3, 30, 11, 0)),
    )
    assert result.problems == ()


# ---------------------------------------------------------------------- free/busy


def test_free_busy_report_matches_sync(
    adapter: CalDAVCalendar, calendar_handle: CalendarHandle
) -> None:
    # quirk free-busy-report: the per-calendar REPORT works on both servers.
    calendar_handle.put_raw("a.ics", simple_event("a", "20260302T130000Z", "20260302T140000Z"))
    calendar_handle.put_raw(
        "free.ics",
        simple_event("free", "20260303T130000Z", "20260303T140000Z", "TRANSP:TRANSPARENT"),
    )
    calendar_handle.put_raw(
        "weekly.ics",
        simple_event("weekly", "20260304T170000Z", "20260304T180000Z", "RRULE:FREQ=WEEKLY;COUNT=2"),
    )
    busy = adapter.free_busy(WINDOW)
    assert adapter.last_transfer.requests == 1
    assert busy.intervals == [
        Interval(sp(2026, 3, 2, 10, 0), sp(2026, 3, 2, 11, 0)),
        Interval(sp(2026, 3, 4, 14, 0), sp(2026, 3, 4, 15, 0)),
        Interval(sp(2026, 3, 11, 14, 0), sp(2026, 3, 11, 15, 0)),
    ]
    synced = sorted(b for c in adapter.sync(None, WINDOW).changes for b in c.blocks)
    assert synced == busy.intervals


# ---------------------------------------------------------------------- compat table


def test_every_quirk_names_a_test_that_exists() -> None:
    here = globals()
    contract = dir(SessionCalendarContract)
    for key, quirk in compat.QUIRKS.items():
        assert quirk.test in here or quirk.test in contract, (key, quirk.test)
        assert quirk.servers and quirk.behaviour and quirk.handling


def test_quirk_predicates() -> None:
    assert compat.is_invalid_sync_token(403, [compat.DAV_VALID_SYNC_TOKEN])  # Radicale
    assert compat.is_invalid_sync_token(412, [compat.DAV_VALID_SYNC_TOKEN])  # Xandikos
    assert not compat.is_invalid_sync_token(403, [])  # a real permission problem
    assert compat.is_uid_conflict(409, [compat.NO_UID_CONFLICT])  # Radicale
    assert compat.is_uid_conflict(412, [compat.NO_UID_CONFLICT])  # Xandikos
    assert not compat.is_uid_conflict(412, [])  # "exists" with If-None-Match
    assert compat.sync_collection_unsupported(403, [compat.DAV_SUPPORTED_REPORT])
    assert compat.sync_collection_unsupported(501, [])
    assert not compat.sync_collection_unsupported(404, [])
    assert compat.usable_etag(' "abc" ') == '"abc"'
    assert compat.usable_etag('W/"abc"') is None
    assert compat.usable_etag(None) is None


# ---------------------------------------------------------------------- retry


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_retry_backs_off_exponentially_with_full_jitter() -> None:
    sleep = SleepRecorder()
    call = Flaky(Unavailable("a"), Unavailable("b"), Unavailable("c"))
    result = retry(call, attempts=4, base_delay=1.0, max_delay=3.0, sleep=sleep, rng=Fixed(0.5))
    assert result == "ok"
    assert call.calls == 4
    assert sleep.waits == [0.5, 1.0, 1.5]  # half of 1, 2, min(4, 3)


def test_retry_gives_up_after_the_attempts() -> None:
    sleep = SleepRecorder()
    call = Flaky(Unavailable("a"), Unavailable("b"), Unavailable("c"))
    with pytest.raises(Unavailable, match="b"):
        retry(call, attempts=2, base_delay=1.0, max_delay=3.0, sleep=sleep, rng=Fixed(0.0))
    assert call.calls == 2
    assert sleep.waits == [0.0]


def test_retry_honours_retry_after_but_never_past_the_cap() -> None:
    sleep = SleepRecorder()
    call = Flaky(Unavailable("busy", retry_after=2.5))
    assert (
        retry(call, attempts=3, base_delay=0.1, max_delay=5.0, sleep=sleep, rng=Fixed(0.5)) == "ok"
    )
    assert sleep.waits == [2.5]
    sleep = SleepRecorder()
    call = Flaky(Unavailable("come back tomorrow", retry_after=86_400))
    with pytest.raises(Unavailable):
        retry(call, attempts=3, base_delay=0.1, max_delay=5.0, sleep=sleep, rng=Fixed(0.5))
    assert sleep.waits == [] and call.calls == 1


def test_retry_passes_other_errors_through_at_once() -> None:
    call = Flaky(AuthFailed("no"))
    with pytest.raises(AuthFailed):
        retry(call, attempts=5, base_delay=1.0, max_delay=1.0, sleep=SleepRecorder())
    assert call.calls == 1
    with pytest.raises(ValueError):
        retry(call, attempts=0, base_delay=1.0, max_delay=1.0)


def test_backoff_stays_within_its_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(80):
        delay = backoff_delay(attempt, base_delay=0.25, max_delay=8.0, rng=rng)
        assert 0 <= delay <= min(8.0, 0.25 * 2**attempt)
