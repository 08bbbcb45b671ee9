"""The desk console in-process (WSGI through App): login, expiry, throttling, the day's
list and its live update, on a real store and a fixed clock (Monday 2026-11-30 07:00)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.staff import hash_password
from daemon.store import SessionRecord
from daemon.web.pages.desk_auth import DESK_COOKIE
from rules.model import Status
from tests.daemon.desk import Desk, monday
from tests.factories import booking_request
from tests.web.client import Client, Page, pages_desk

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def desk(tmp_path: Path, password_hash: str) -> Desk:
    desk = pages_desk(tmp_path, monday(7, 0))
    desk.store.add_staff("carla", password_hash, now=desk.clock.now(), actor="test")
    return desk


@pytest.fixture
def client(desk: Desk) -> Client:
    return Client(desk.app)


def login(client: Client, name: str = "carla", password: str = PASSWORD) -> Page:
    form = client.get("/desk/")
    return client.submit(form, "/desk/login", {"name": name, "password": password})


def logged_in(client: Client) -> Page:
    answer = login(client)
    assert answer.status == 303 and answer.header("Location") == "/desk/", answer.text
    return client.get("/desk/")


def book(desk: Desk, hour: int, minute: int = 0, **changes: str) -> SessionRecord:
    request = booking_request(monday(hour, minute), only_required=True, **changes)
    outcome = desk.service.book(request)
    assert outcome.session is not None, outcome.codes
    return outcome.session


# ---------------------------------------------------------------- login


def test_nothing_about_sessions_is_shown_before_login(desk: Desk, client: Client) -> None:
    book(desk, 10, company="Padaria Pão Quente")
    page = client.get("/desk/")
    assert page.status == 200 and 'action="/desk/login"' in page.text
    assert "Padaria" not in page.text and "Carla" not in page.text
    assert page.header("Cache-Control") == "no-store"
    live = client.get("/desk/live")
    assert live.status == 401 and "Padaria" not in live.text
    assert json.loads(live.text)["error"]["code"] == "login_required"


def test_login_sets_a_strict_httponly_cookie_and_shows_the_day(desk: Desk, client: Client) -> None:
    book(desk, 10, company="Padaria Pão Quente")
    answer = login(client)
    assert answer.status == 303
    cookie = next(
        v for k, v in answer.headers if k.lower() == "set-cookie" and v.startswith(DESK_COOKIE)
    )
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
    assert "Secure" not in cookie  # the test desk is served over http
    token = cookie.split(";")[0].partition("=")[2]
    assert len(token) >= 43 and token not in json.dumps(
        [list(r) for r in desk.store._read("SELECT * FROM staff_logins")]
    )
    page = client.get("/desk/")
    assert "Padaria Pão Quente" in page.text and "carla" in page.text
    entries = [(e.actor, e.action) for e in desk.store.audit_log()]
    assert ("staff:carla", "staff_login") in entries


def test_a_wrong_password_or_unknown_name_is_refused_the_same_way(
    desk: Desk, client: Client
) -> None:
    wrong = login(client, password="not the password")
    unknown = login(client, name="nobody")
    for page in (wrong, unknown):
        assert page.status == 401 and DESK_COOKIE not in client.cookies
        assert "Nome ou senha incorretos." in page.text
    assert 'value="nobody"' in unknown.text  # the name is kept, the password never
    assert PASSWORD not in wrong.text


def test_guessing_is_throttled_per_account_and_per_address(desk: Desk) -> None:
    limit = desk.config.console.failed_logins
    guesser = Client(desk.app, address="10.0.0.1")
    for _ in range(limit):
        assert login(guesser, password="guess").status == 401
    # Locked now, even with the right password, and from another address too.
    locked = login(guesser)
    assert locked.status == 429 and locked.header("Retry-After") == "900"
    assert "Muitas tentativas" in locked.text
    assert login(Client(desk.app, address="10.0.0.2")).status == 429
    # The lock ends when the failures leave the window (the daemon's clock, not the wall's).
    desk.clock.advance(desk.config.console.failure_window + timedelta(seconds=1))
    assert login(Client(desk.app, address="10.0.0.2")).status == 303


def test_one_address_guessing_many_names_is_throttled(desk: Desk) -> None:
    guesser = Client(desk.app, address="10.0.0.7")
    for n in range(desk.config.console.failed_logins_per_address):
        assert login(guesser, name=f"user{n}").status == 401
    assert login(guesser).status == 429
    assert login(Client(desk.app, address="10.0.0.8")).status == 303


def test_idle_and_absolute_expiry_follow_the_daemons_clock(desk: Desk, client: Client) -> None:
    logged_in(client)
    desk.clock.advance(desk.config.console.idle_timeout - timedelta(minutes=1))
    assert "Sair" in client.get("/desk/").text  # still in; and the idle clock restarts
    desk.clock.advance(desk.config.console.idle_timeout - timedelta(minutes=1))
    assert "Sair" in client.get("/desk/").text
    desk.clock.advance(desk.config.console.idle_timeout + timedelta(seconds=1))
    page = client.get("/desk/")
    assert 'action="/desk/login"' in page.text and "Sua sessão expirou" in page.text
    # Absolute: however active, a login ends desk_lifetime after it began.
    logged_in(client)
    step = desk.config.console.idle_timeout - timedelta(minutes=1)
    elapsed = timedelta(0)
    while elapsed + step <= desk.config.console.login_lifetime:
        desk.clock.advance(step)
        elapsed += step
        assert client.get("/desk/live").status == 200
    desk.clock.advance(step)
    assert client.get("/desk/live").status == 401


def test_logout_ends_the_login_server_side(desk: Desk, client: Client) -> None:
    page = logged_in(client)
    token = client.cookies[DESK_COOKIE]
    answer = client.submit(page, "/desk/logout", {})
    assert answer.status == 303 and answer.header("Location") == "/desk/?bye=1"
    assert "Você saiu." in client.get("/desk/?bye=1").text
    # The old cookie is worth nothing now, even replayed.
    replay = Client(desk.app, cookies={DESK_COOKIE: token})
    assert replay.get("/desk/live").status == 401
    assert ("staff:carla", "staff_logout") in [(e.actor, e.action) for e in desk.store.audit_log()]


def test_posts_need_the_csrf_token_and_our_origin(desk: Desk, client: Client) -> None:
    logged_in(client)
    forged = client.post("/desk/logout", {})
    assert forged.status == 403
    page = client.get("/desk/")
    cross = client.post(
        "/desk/logout",
        {"csrf_token": page.field("csrf_token")},
        headers={"origin": "http://evil.example", "accept": "text/html"},
    )
    assert cross.status == 403
    assert client.get("/desk/live").status == 200  # still logged in
    no_token = Client(desk.app).post("/desk/login", {"name": "carla", "password": PASSWORD})
    assert no_token.status == 403


# ---------------------------------------------------------------- the day


def test_the_day_lists_each_technicians_sessions_in_time_order(desk: Desk, client: Client) -> None:
    first = book(desk, 10, company="Ótica Sol")
    second = book(desk, 9, company="Padaria Pão Quente")
    third = book(desk, 11, company="Mercado Bom Preço")
    tomorrow = booking_request(monday(10) + timedelta(days=1), only_required=True,
                               company="Farmácia Amanhã")  # fmt: skip
    assert desk.service.book(tomorrow).session is not None
    page = logged_in(client)
    text = page.text
    assert "Farmácia Amanhã" not in text
    by_tech: dict[str, list[str]] = {}
    for session in (first, second, third):
        by_tech.setdefault(session.technician_id, []).append(session.company)
    for tech, companies in by_tech.items():
        section = text.split(f'id="tech-{tech}"')[1].split("</section>")[0]
        positions = [section.index(company) for company in companies]
        assert positions == sorted(positions), (tech, companies)
    assert "https://wa.me/551134567890" in text
    assert "AnyDesk" in text
    other = client.get("/desk/?date=2026-12-01")
    assert "Farmácia Amanhã" in other.text and "Ótica Sol" not in other.text


def test_time_left_to_the_no_show_deadline_and_flags_stand_out(desk: Desk, client: Client) -> None:
    session = book(desk, 9, company="Ótica Sol")
    desk.store.flag_session(session.id, "moved while in progress", now=desk.clock.now())
    desk.clock.set(monday(9, 4))
    page = logged_in(client)
    assert "Prazo do check-in 09:10 (faltam 6 minutos)" in page.text
    assert "Requer atenção" in page.text and "flagged" in page.text


def test_a_stale_calendar_stands_out(desk: Desk, client: Client) -> None:
    desk.clock.advance(desk.config.sync.stale_after + timedelta(minutes=1))
    page = logged_in(client)
    assert page.text.count('class="tech stale"') == 2
    assert "agenda deste técnico está desatualizada" in page.text


def test_search_by_company_person_or_phone_across_days(desk: Desk, client: Client) -> None:
    book(desk, 9, company="Ótica Sol", responsible_name="Joana Prado", phone="11 91234-5678")
    later = booking_request(monday(10) + timedelta(days=3), only_required=True,
                            company="Padaria Pão Quente")  # fmt: skip
    assert desk.service.book(later).session is not None
    logged_in(client)
    for query, expected, absent in (
        ("ótica", "Ótica Sol", "Padaria"),
        ("OTICA", "Ótica Sol", "Padaria"),
        ("pao quente", "Padaria Pão Quente", "Ótica"),
        ("JOANA", "Ótica Sol", "Padaria"),
        ("91234", "Ótica Sol", "Padaria"),
        ("padaria", "Padaria Pão Quente", "Ótica"),
    ):
        page = client.get(f"/desk/?q={query}")
        assert expected in page.text and absent not in page.text.split("<main")[1], query
    assert "Nada encontrado." in client.get("/desk/?q=zzz").text


def test_the_live_list_answers_304_until_something_changes(desk: Desk, client: Client) -> None:
    # This process's commits only: the store's poll for other processes' commits runs on
    # the wall clock, and one landing between two requests here would move the ETag.
    desk.service.store.OUTSIDE_POLL_S = 3600.0
    session = book(desk, 7, 30, company="Ótica Sol")
    desk.clock.set(monday(7, 25))
    page = logged_in(client)
    etag_attr = re.search(r'data-etag="([^"]+)"', page.text)
    assert etag_attr is not None
    etag = etag_attr.group(1).replace("&#34;", '"').replace("&quot;", '"')
    unchanged = client.get("/desk/live", headers={"if-none-match": etag})
    assert unchanged.status == 304 and unchanged.text == ""
    # The no-show: the sweeper marks it rescheduled once the tolerance has passed.
    desk.clock.set(monday(7, 40) + timedelta(seconds=1))
    assert [s.id for s in desk.service.sweep()] == [session.id]
    changed = client.get("/desk/live", headers={"if-none-match": etag})
    assert changed.status == 200 and changed.header("ETag") != etag
    document = json.loads(changed.text)
    assert "precisa ser reagendado" in document["html"] and "Ótica Sol" in document["html"]
    again = client.get("/desk/live", headers={"if-none-match": changed.header("ETag") or ""})
    assert again.status == 304
    assert desk.service.get(session.id).status == Status.RESCHEDULED


def test_a_bad_date_or_huge_search_is_not_an_error(desk: Desk, client: Client) -> None:
    logged_in(client)
    for path in ("/desk/?date=nope", "/desk/?date=9999-99-99", "/desk/?q=" + "x" * 5000,
                 "/desk/live?date=0001-01-01"):  # fmt: skip
        assert client.get(path).status == 200, path


def test_the_console_keys_of_the_configuration_apply(tmp_path: Path, password_hash: str) -> None:
    from daemon.config import load_config
    from tests.daemon.desk import write_config

    settings = {"console": {"failed_logins": 2, "idle_timeout": "5m", "poll_interval": "7s"}}
    config = load_config(write_config(tmp_path, settings=settings))
    assert config.console.failed_logins == 2 and config.console.idle_timeout == timedelta(minutes=5)
    desk = pages_desk(tmp_path / "other", monday(7))
    # The same desk with these keys: rebuild its service's configuration in place.
    desk.service.config = config
    desk.store.add_staff("carla", password_hash, now=desk.clock.now(), actor="test")
    client = Client(desk.app)
    assert login(client, password="guess").status == 401
    assert login(client, password="guess").status == 401
    assert login(client).status == 429  # locked after 2, not 5
    desk.clock.advance(timedelta(minutes=16))
    page = logged_in(client)
    assert 'data-every="7"' in page.text
    desk.clock.advance(timedelta(minutes=5, seconds=1))
    assert client.get("/desk/live").status == 401


def test_over_https_the_login_cookie_is_secure_and_host_only(
    tmp_path: Path, password_hash: str
) -> None:
    from daemon.clock import FixedClock
    from daemon.config import load_config
    from daemon.service import Service
    from daemon.signing import Signer
    from daemon.store import Store as StoreClass
    from daemon.web.http import App, Router
    from tests.daemon.desk import write_config
    from tests.web.client import pages_app

    settings = {"server": {"public_url": "https://agenda.example.com"}}
    config = load_config(write_config(tmp_path, settings=settings))
    store = StoreClass(config.store.path)
    service = Service(config, store, FixedClock(monday(7)))
    signer = Signer(config.server.signing_key.reveal().encode())
    desk = Desk(config, store, FixedClock(monday(7)), service, App(Router()), signer)
    desk.service.clock = desk.clock
    desk.mark_synced()
    desk.app = pages_app(desk)
    store.add_staff("carla", password_hash, now=monday(7), actor="test")
    client = Client(desk.app)
    answer = login(client)
    assert answer.status == 303
    cookie = next(v for k, v in answer.headers if k.lower() == "set-cookie" and DESK_COOKIE in v)
    assert cookie.startswith(f"__Host-{DESK_COOKIE}=")
    parts = {p.strip() for p in cookie.split(";")}
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= parts
    assert "Sair" in client.get("/desk/").text
