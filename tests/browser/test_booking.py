"""What a client and a technician do in a real browser, with screenshots at two widths.

The desk's clock is fixed (Monday 2026-11-30 07:00, São Paulo) and both technicians are
free, so the slot at 10:00 is on offer in every test.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from icalendar import Calendar
from playwright.sync_api import Browser, Page, expect

from daemon.events import manage_url
from rules.model import Status
from tests.browser.harness import DESKTOP, PHONE, SCREENSHOTS, Served
from tests.factories import booking_request

TEN = "2026-11-30T10:00:00-03:00"
NINE = "2026-11-30T09:00:00-03:00"

# Every form control a person can reach must be named by a label or an ARIA attribute.
UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea'))
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.name || e.id)"""


def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at desktop and phone widths (for people to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=SCREENSHOTS / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def assert_labelled(page: Page) -> None:
    assert page.evaluate(UNLABELLED) == []


def pick(page: Page, start: str) -> None:
    """Click a time as a person does: on its label (the radio itself is visually hidden)."""
    page.locator(f'label[data-start="{start}"]').click()
    expect(page.locator(f'input[value="{start}"]')).to_be_checked()


def fill_form(page: Page, *, phone: str = "(11) 98765-4321", accept: bool = True) -> None:
    page.get_by_label("Empresa").fill("Relojoaria Central")
    page.get_by_label("Responsável presente no atendimento").fill("Maria Lima")
    page.get_by_label("Telefone/WhatsApp do responsável").fill(phone)
    page.get_by_label("E-mail").fill("maria@example.com")
    page.get_by_label("Programa de acesso remoto").select_option("AnyDesk")
    page.get_by_label("ID de acesso").fill("123 456 789")
    page.get_by_label("Descreva o problema").fill("O relógio de ponto não sincroniza.")
    page.get_by_label("Li e aceito as regras").set_checked(accept)


def service_booking(served: Served, start: str) -> None:
    outcome = served.desk.service.book(
        booking_request(datetime.fromisoformat(start), only_required=True)
    )
    assert outcome.session is not None, outcome.codes


def test_book_a_slot_end_to_end(page: Page, served: Served, tmp_path: Path) -> None:
    page.goto("/")
    assert page.get_attribute("html", "lang") == "pt-BR"
    page.get_by_role("link", name="Atendimento remoto", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Agendar: Atendimento remoto")
    expect(page.locator("#tz-local")).to_be_hidden()  # the browser is in the desk's zone
    assert_labelled(page)
    page.get_by_role("group", name="segunda-feira, 30 de novembro").get_by_text("10:00").click()
    fill_form(page)
    shoot(page, "booking-form")
    page.get_by_role("button", name="Agendar").click()
    expect(page).to_have_url(re.compile(r"/booked/"))
    expect(page.get_by_role("status")).to_have_text("Pronto! Seu atendimento está agendado.")
    expect(page.get_by_text("segunda-feira, 30 de novembro de 2026, 10:00–10:30")).to_be_visible()
    expect(page.get_by_text("Instale o AnyDesk no computador antes das 10:00.")).to_be_visible()
    shoot(page, "confirmation")
    sessions = served.desk.store.list_sessions()
    assert len(sessions) == 1
    session = sessions[0]
    assert session.status == Status.BOOKED and session.company == "Relojoaria Central"
    assert session.start == datetime.fromisoformat(TEN)
    with page.expect_download() as download:
        page.get_by_role("link", name="Adicionar à agenda (.ics)").click()
    saved = tmp_path / "session.ics"
    download.value.save_as(saved)
    event = next(iter(Calendar.from_ical(saved.read_bytes()).walk("VEVENT")))
    assert event.decoded("dtstart") == session.start


def test_an_invalid_phone_is_flagged_next_to_the_field(page: Page, served: Served) -> None:
    page.goto("/book/standard")
    pick(page, TEN)
    fill_form(page, phone="12345")
    page.get_by_role("button", name="Agendar").click()
    phone = page.get_by_label("Telefone/WhatsApp do responsável")
    field = page.locator(".field", has=phone)
    expect(field.locator(".error")).to_contain_text("Telefone/WhatsApp inválido")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_value("12345")
    expect(page.get_by_label("Empresa")).to_have_value("Relojoaria Central")
    expect(page.get_by_label("Descreva o problema")).to_have_value(
        "O relógio de ponto não sincroniza."
    )
    expect(page.locator(f'input[value="{TEN}"]')).to_be_checked()
    expect(page.get_by_role("alert")).to_contain_text("Corrija o que está indicado")
    shoot(page, "booking-errors")
    assert served.desk.store.list_sessions() == []


def test_rules_must_be_accepted(page: Page, served: Served) -> None:
    page.goto("/book/standard")
    pick(page, TEN)
    fill_form(page, accept=False)
    page.get_by_role("button", name="Agendar").click()
    checkbox = page.get_by_label("Li e aceito as regras")
    expect(page.locator(".field", has=checkbox).locator(".error")).to_have_text(
        "É preciso ler e aceitar as regras do atendimento remoto."
    )
    assert served.desk.store.list_sessions() == []
    checkbox.check()
    page.get_by_role("button", name="Agendar").click()
    expect(page).to_have_url(re.compile(r"/booked/"))
    assert len(served.desk.store.list_sessions()) == 1


def test_a_slot_taken_meanwhile(page: Page, served: Served) -> None:
    page.goto("/book/standard")
    pick(page, NINE)
    fill_form(page)
    service_booking(served, NINE)
    service_booking(served, NINE)  # both technicians are now busy at 09:00
    page.get_by_role("button", name="Agendar").click()
    expect(page.get_by_role("alert")).to_contain_text("acabou de ser reservado")
    expect(page.get_by_role("alert")).to_contain_text("foi atualizada")
    expect(page.locator(f'input[value="{NINE}"]')).to_have_count(0)
    expect(page.locator(f'input[value="{TEN}"]')).to_have_count(1)
    expect(page.get_by_label("Empresa")).to_have_value("Relojoaria Central")


def test_cancel_through_the_manage_link(page: Page, served: Served) -> None:
    service_booking(served, TEN)
    desk = served.desk
    session = desk.store.list_sessions()[0]
    url = manage_url(desk.config.server.public_url, desk.signer, session, desk.service.policy)
    page.goto(url.removeprefix(desk.config.server.public_url))
    expect(page.get_by_role("heading", level=1)).to_have_text("Seu atendimento")
    assert_labelled(page)
    shoot(page, "manage")
    page.get_by_role("button", name="Cancelar o atendimento").click()
    expect(page.get_by_text("Este atendimento foi cancelado.")).to_be_visible()
    expect(page.get_by_role("button", name="Cancelar o atendimento")).to_have_count(0)
    assert desk.service.get(session.id).status == Status.CANCELLED


def test_the_english_switch_and_the_visitors_time_zone(page: Page, served: Served) -> None:
    page.goto("/")
    page.get_by_role("link", name="English").click()
    assert page.get_attribute("html", "lang") == "en"
    expect(page.get_by_role("heading", level=1)).to_have_text("Book a remote session")
    page.get_by_role("link", name="Atendimento remoto", exact=True).click()
    assert page.get_attribute("html", "lang") == "en"  # kept by the cookie
    expect(page.get_by_role("heading", name="Remote-session rules")).to_be_visible()
    expect(page.get_by_role("group", name="Monday, November 30")).to_be_visible()
    page.get_by_role("link", name="Português").click()
    assert page.get_attribute("html", "lang") == "pt-BR"


def test_the_visitors_own_time_zone_is_shown(browser: Browser, served: Served) -> None:
    context = browser.new_context(
        viewport=DESKTOP, base_url=served.url, locale="en-GB", timezone_id="Europe/Lisbon"
    )
    try:
        page = context.new_page()
        page.goto("/book/standard?lang=en")
        note = page.locator("#tz-local")
        expect(note).to_be_visible()
        expect(note).to_contain_text("Europe/Lisbon")
        # 10:00 in São Paulo is 13:00 in Lisbon.
        expect(page.locator(f'label[data-start="{TEN}"]')).to_have_text("10:00 (13:00)")
        shoot(page, "booking-other-zone")
    finally:
        context.close()


def test_booking_with_the_keyboard_alone(page: Page, served: Served) -> None:
    page.goto("/book/standard")

    def tab_to(selector: str) -> None:
        for _ in range(80):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to('input[name="start"]')
    page.keyboard.press("Space")  # the first free time: 07:30
    for name, text in (
        ("company", "Relojoaria Central"),
        ("responsible_name", "Maria Lima"),
        ("phone", "11987654321"),
    ):
        tab_to(f'[name="{name}"]')
        page.keyboard.type(text)
    tab_to('[name="accept_rules"]')
    page.keyboard.press("Space")
    tab_to('button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/booked/"))
    (session,) = served.desk.store.list_sessions()
    assert session.start == datetime.fromisoformat("2026-11-30T07:30:00-03:00")
    assert session.phone == "+5511987654321"
