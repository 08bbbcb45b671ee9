"""The desk console in a real browser: login, the day against the store, each action down
to the technician's calendar on a real Radicale, booking by phone, the live no-show, a
cross-site POST refused, axe-core's WCAG 2.1 AA checks, the keyboard alone, and
screenshots at 1280×800 and 390×844 in ``test-artifacts/``.

The desk's clock is fixed (Monday 2026-11-30 07:00, São Paulo) and moved by hand; the
console's idle expiry (30 min) runs on that clock, so tests log in shortly before what
they do.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Locator, Page, Route, expect

from daemon.staff import hash_password
from daemon.store import SessionRecord, Store
from rules.model import Status
from tests.browser.harness import DESKTOP, PHONE, SCREENSHOTS, Served
from tests.daemon.desk import monday
from tests.e2e.harness import Desk as LiveDesk
from tests.factories import booking_request

PASSWORD = "correct horse battery"
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
_axe = Axe()


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def live_page(browser: Browser, live: LiveDesk) -> Iterator[Page]:
    context = browser.new_context(
        viewport=DESKTOP, base_url=live.url, locale="pt-BR", timezone_id="America/Sao_Paulo"
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def add_staff(store: Store, password_hash: str, now: datetime) -> None:
    store.add_staff("carla", password_hash, now=now, actor="test")


def log_in(page: Page, password: str = PASSWORD) -> None:
    page.goto("/desk/")
    page.get_by_label("Nome de usuário").fill("carla")
    page.get_by_label("Senha").fill(password)
    page.get_by_role("button", name="Entrar").click()


def check_accessibility(page: Page) -> None:
    results = _axe.run(page, options=WCAG_AA)
    assert results.violations_count == 0, results.generate_report()


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1280×800 and 390×844, each checked by axe at that width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    check_accessibility(page)
    page.screenshot(path=SCREENSHOTS / f"{name}-1280x800.png", full_page=True)
    page.set_viewport_size(PHONE)
    check_accessibility(page)
    page.screenshot(path=SCREENSHOTS / f"{name}-390x844.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def row(page: Page, session: SessionRecord | str) -> Locator:
    session_id = session if isinstance(session, str) else session.id
    return page.locator(f"#s-{session_id}")


def book(served: Served, start: datetime, **changes: str) -> SessionRecord:
    outcome = served.desk.service.book(booking_request(start, only_required=True, **changes))
    assert outcome.session is not None, outcome.codes
    return outcome.session


# ---------------------------------------------------------------- login


def test_login_wrong_password_throttling_and_logout(
    page: Page, served: Served, password_hash: str
) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    book(served, monday(10), company="Padaria Pão Quente")
    page.goto("/desk/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Painel do suporte: entrar")
    assert "Padaria" not in page.content()
    shoot(page, "desk-login")
    log_in(page, "wrong password")
    expect(page.get_by_role("alert")).to_have_text("Nome ou senha incorretos.")
    check_accessibility(page)
    for _ in range(desk.config.console.failed_logins - 1):
        log_in(page, "wrong password")
    log_in(page)  # the right password, but the account is locked for now
    expect(page.get_by_role("alert")).to_contain_text("Muitas tentativas sem sucesso")
    desk.clock.advance(desk.config.console.failure_window + timedelta(seconds=1))
    log_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Painel do suporte")
    expect(page.locator(".company")).to_have_text("Padaria Pão Quente")
    cookie = next(c for c in page.context.cookies() if c["name"] == "expediente_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Sair").click()
    expect(page.get_by_role("status")).to_have_text("Você saiu.")
    page.goto("/desk/")
    assert "Padaria" not in page.content()


def test_an_idle_login_expires_while_the_page_is_open(
    page: Page, served: Served, password_hash: str
) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    page.clock.install()  # the page's poll timer runs when the test says
    log_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Painel do suporte")
    desk.clock.advance(desk.config.console.idle_timeout + timedelta(seconds=1))
    page.clock.run_for(desk.config.console.poll_interval // timedelta(milliseconds=1))
    # No reload: the poll is refused and the page goes to the login, saying why.
    expect(page.get_by_text("Sua sessão expirou. Entre de novo.")).to_be_visible()
    expect(page.get_by_label("Senha")).to_be_visible()


# ---------------------------------------------------------------- the day


def test_the_day_shows_what_the_store_holds(page: Page, served: Served, password_hash: str) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    for hour, company in ((9, "Ótica Sol"), (10, "Padaria Pão Quente"), (11, "Mercado Bom")):
        book(served, monday(hour), company=company, responsible_name=f"Pessoa {hour}")
    book(served, monday(10, 30), company="Farmácia Cruz")
    flagged = book(served, monday(14), company="Oficina Dois")
    desk.store.flag_session(flagged.id, "moved onto busy time", now=desk.clock.now())
    cancelled = book(served, monday(15), company="Gráfica Três")
    desk.service.cancel(cancelled.id, actor="admin", reason="Cliente desistiu")
    log_in(page)
    sessions = desk.store.list_sessions()
    assert len(sessions) == 6
    for session in sessions:
        found = row(page, session)
        expect(found).to_contain_text(session.company)
        expect(found).to_contain_text(f"{session.start.astimezone(monday(0).tzinfo):%H:%M}")
        expect(found.locator(".badge")).to_have_text(
            "cancelado" if session.status == Status.CANCELLED else "agendado"
        )
        tech = page.locator(f'section[aria-labelledby="tech-{session.technician_id}"]')
        expect(tech.locator(f"#s-{session.id}")).to_have_count(1)
        wa = found.get_by_role("link", name=re.compile("WhatsApp"))
        expect(wa).to_have_attribute("href", f"https://wa.me/{session.phone.lstrip('+')}")
    expect(row(page, flagged)).to_contain_text("Requer atenção")
    expect(row(page, cancelled)).to_contain_text("Cliente desistiu")
    expect(row(page, sessions[0])).to_contain_text("Prazo do check-in 09:10")
    shoot(page, "desk-day")
    page.get_by_label("Buscar empresa, pessoa ou telefone").fill("padaria")
    page.get_by_role("button", name="Mostrar", exact=True).click()
    expect(page.locator(".row")).to_have_count(1)
    expect(page.locator(".row")).to_contain_text("Padaria Pão Quente")
    page.get_by_label("Dia", exact=True).fill("2026-12-01")
    page.get_by_label("Buscar empresa, pessoa ou telefone").fill("")
    page.get_by_role("button", name="Mostrar", exact=True).click()
    expect(page.locator(".row")).to_have_count(0)
    expect(page.get_by_text("Nenhum atendimento.").first).to_be_visible()


def test_a_no_show_appears_without_a_reload(page: Page, served: Served, password_hash: str) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    session = book(served, monday(7, 30), company="Ótica Sol")
    desk.clock.set(monday(7, 25))
    page.clock.install()  # the page's poll timer runs when the test says
    log_in(page)
    expect(row(page, session).locator(".badge")).to_have_text("agendado")
    page.evaluate("window.notReloaded = true")
    desk.clock.set(monday(7, 40) + timedelta(seconds=1))
    assert [s.id for s in desk.service.sweep()] == [session.id]
    page.clock.run_for(desk.config.console.poll_interval // timedelta(milliseconds=1))
    expect(row(page, session).locator(".badge")).to_have_text(
        "não realizado — precisa ser reagendado"
    )
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#desk-updated")).to_have_text("Atualizado às 07:40.")


# ---------------------------------------------------------------- actions, to the calendar


def event_of(live: LiveDesk, session_id: str) -> bytes:
    session = live.daemon.service.get(session_id)
    raw = live.calendars[session.technician_id].get_raw(live.event_name(session_id))
    assert raw is not None, f"no event for {session_id}"
    return raw


def state_of(live: LiveDesk, session_id: str) -> str:
    match = re.search(rb"X-EXPEDIENTE-STATE:(\w+)", event_of(live, session_id))
    assert match is not None
    return match.group(1).decode()


def test_each_action_reaches_the_technicians_calendar(
    live_page: Page, live: LiveDesk, password_hash: str
) -> None:
    page = live_page
    store = live.daemon.store
    add_staff(store, password_hash, live.clock.now())
    ids = {
        name: live.book(monday(hour, minute), company=name)["id"]
        for name, hour, minute in (("Alfa", 7, 30), ("Beta", 8, 0), ("Gama", 8, 30),
                                   ("Delta", 9, 0))
    }  # fmt: skip
    live.daemon.flush()
    assert {state_of(live, i) for i in ids.values()} == {"booked"}
    live.clock.set(monday(7, 25))
    log_in(page)

    row(page, ids["Alfa"]).get_by_role("button", name=re.compile("Fazer check-in")).click()
    expect(page.get_by_role("status").first).to_contain_text("Check-in feito")
    live.daemon.flush()
    assert state_of(live, ids["Alfa"]) == "in_progress"

    row(page, ids["Alfa"]).get_by_role("button", name=re.compile("Marcar como concluído")).click()
    expect(row(page, ids["Alfa"]).locator(".badge")).to_have_text("concluído")
    live.daemon.flush()
    assert state_of(live, ids["Alfa"]) == "completed"

    beta = row(page, ids["Beta"])
    beta.get_by_label("Motivo do cancelamento").fill("Cliente pediu para cancelar")
    beta.get_by_role("button", name=re.compile("Cancelar atendimento")).click()
    expect(row(page, ids["Beta"])).to_contain_text("Cliente pediu para cancelar")
    live.daemon.flush()
    assert b"STATUS:CANCELLED" in event_of(live, ids["Beta"])

    before = event_of(live, ids["Gama"])
    row(page, ids["Gama"]).get_by_role("button", name=re.compile("Reenviar")).click()
    expect(page.get_by_role("status").first).to_contain_text("Confirmação reenviada")
    live.daemon.flush()
    after = event_of(live, ids["Gama"])
    assert state_of(live, ids["Gama"]) == "booked" and b"Gama" in after
    assert after != before  # written again (a new DTSTAMP: the clock moved to 07:25)
    assert ("staff:carla", "confirmation_resent") in [
        (e.actor, e.action) for e in store.audit_log(ids["Gama"])
    ]

    row(page, ids["Delta"]).get_by_role("link", name=re.compile("Reagendar")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reagendar: Delta")
    check_accessibility(page)
    page.locator('label[data-start="2026-11-30T10:00:00-03:00"]').click()
    page.get_by_role("button", name="Confirmar novo horário").click()
    expect(page.get_by_role("status").first).to_contain_text("movido para o novo horário")
    live.daemon.flush()
    assert b"STATUS:CANCELLED" in event_of(live, ids["Delta"])
    (moved,) = [s for s in store.list_sessions() if s.rebooked_from == ids["Delta"]]
    assert b"DTSTART;TZID=America/Sao_Paulo:20261130T100000" in event_of(live, moved.id) or (
        b"DTSTART:20261130T130000Z" in event_of(live, moved.id)
    )
    audited = {(e.actor, e.action) for i in ids.values() for e in store.audit_log(i)}
    assert ("staff:carla", "status_changed") in audited


def test_booking_by_phone_with_and_without_the_notice_override(
    live_page: Page, live: LiveDesk, password_hash: str
) -> None:
    page = live_page
    store = live.daemon.store
    add_staff(store, password_hash, live.clock.now())
    log_in(page)
    page.get_by_role("link", name="Agendar por telefone").click()
    page.get_by_label("Técnico").select_option("bruno")
    page.get_by_role("button", name="Mostrar horários").click()
    page.locator('label[data-start="2026-11-30T10:00:00-03:00"]').click()
    fill_client(page, "Relojoaria Central")
    page.get_by_role("button", name="Agendar", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Atendimento agendado.")
    (first,) = store.list_sessions()
    assert first.technician_id == "bruno"

    page.get_by_role("link", name="Agendar por telefone").click()
    page.get_by_role("link", name="Atendimento longo (agendado com antecedência)").click()
    expect(page.locator('label[data-start="2026-11-30T13:00:00-03:00"]')).to_have_count(0)
    page.get_by_label("Técnico").select_option("ana")
    page.get_by_label("Dispensar a antecedência mínima (caso longo urgente)").check()
    page.get_by_role("button", name="Mostrar horários").click()
    shoot(page, "desk-phone-booking")
    page.locator('label[data-start="2026-11-30T13:00:00-03:00"]').click()
    fill_client(page, "Ótica Sol")
    page.get_by_role("button", name="Agendar", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Informe por que a antecedência")
    check_accessibility(page)  # the form with its errors
    assert len(store.list_sessions()) == 1
    page.locator('label[data-start="2026-11-30T13:00:00-03:00"]').click()
    page.get_by_label("Por que a antecedência mínima foi dispensada").fill("Servidor parado")
    page.get_by_label("O cliente foi informado das regras").check()
    page.get_by_role("button", name="Agendar", exact=True).click()
    expect(page.get_by_role("status").first).to_have_text("Atendimento agendado.")
    second = next(s for s in store.list_sessions() if s.id != first.id)
    assert second.type == "extended" and second.technician_id == "ana"
    (entry,) = [e for e in store.audit_log(second.id) if e.action == "booking_accepted"]
    assert entry.actor == "staff:carla" and entry.details["notice_override"] == "Servidor parado"
    live.daemon.flush()
    assert state_of(live, first.id) == "booked" and state_of(live, second.id) == "booked"
    assert "Ótica Sol".encode() in event_of(live, second.id)


def fill_client(page: Page, company: str) -> None:
    page.get_by_label("Empresa").fill(company)
    page.get_by_label("Responsável presente no atendimento").fill("Maria Lima")
    page.get_by_label("Telefone/WhatsApp do responsável").fill("(11) 98765-4321")
    page.get_by_label("O cliente foi informado das regras").check()


# ---------------------------------------------------------------- safety, keyboard


def test_a_cross_site_post_is_refused(page: Page, served: Served, password_hash: str) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    session = book(served, monday(10), company="Ótica Sol")
    log_in(page)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    port = urlsplit(served.url).port
    assert port is not None
    evil = f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/"
    body = (
        f'<form method="post" action="{served.url}/desk/sessions/{session.id}/cancel">'
        f'<input type="hidden" name="csrf_token" value="{html.escape(token)}">'
        '<input type="hidden" name="reason" value="pwned"><button>Win a prize</button></form>'
    )

    def serve_evil(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=body)

    page.route(evil, serve_evil)
    page.goto(evil)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    assert desk.service.get(session.id).status == Status.BOOKED


def test_the_keyboard_alone_logs_in_and_checks_in(
    page: Page, served: Served, password_hash: str
) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    session = book(served, monday(7, 30), company="Ótica Sol")
    desk.clock.set(monday(7, 25))
    page.goto("/desk/")

    def tab_to(selector: str) -> None:
        for _ in range(80):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to('[name="name"]')
    page.keyboard.type("carla")
    tab_to('[name="password"]')
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Painel do suporte")
    tab_to(f'#s-{session.id} button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Check-in feito")
    assert desk.service.get(session.id).status == Status.IN_PROGRESS


COUNT_POLLS = """window.__polls = 0;
const realFetch = window.fetch;
window.fetch = function () { window.__polls += 1; return realFetch.apply(this, arguments); };"""


def test_a_typed_cancel_reason_survives_a_live_update(
    page: Page, served: Served, password_hash: str
) -> None:
    desk = served.desk
    add_staff(desk.store, password_hash, desk.clock.now())
    first = book(served, monday(7, 30), company="Ótica Sol")
    other = book(served, monday(11), company="Padaria Pão Quente")
    desk.clock.set(monday(7, 25))
    page.add_init_script(COUNT_POLLS)
    page.clock.install()  # the page's timers run when the test says, not on the wall clock
    log_in(page)
    reason = row(page, other).get_by_label("Motivo do cancelamento")
    reason.fill("Cliente ligou cancelando")
    row(page, other).get_by_role("button", name=re.compile("Cancelar atendimento")).focus()
    desk.clock.set(monday(7, 40) + timedelta(seconds=1))
    desk.service.sweep()  # the list changed on the server
    every = desk.config.console.poll_interval // timedelta(milliseconds=1)
    page.clock.run_for(5 * every)  # five polls due: each skipped, so nothing typed is lost
    assert page.evaluate("window.__polls") == 0
    expect(reason).to_have_value("Cliente ligou cancelando")
    reason.fill("")
    page.get_by_label("Buscar empresa, pessoa ou telefone").focus()  # out of the list
    page.clock.run_for(every)
    expect(row(page, first).locator(".badge")).to_have_text(
        "não realizado — precisa ser reagendado"
    )
    assert page.evaluate("window.__polls") == 1
