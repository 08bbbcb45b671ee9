"""The pages in-process (WSGI through App), on a real store and a fixed clock.

Monday 2026-11-30 07:00 in São Paulo; two technicians, both synced and free.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from daemon.events import CHECKIN_PURPOSE, MANAGE_PURPOSE, checkin_url, manage_url
from daemon.store import SessionRecord
from daemon.web.pages import CSP, TZ_SCRIPT
from rules.lifecycle import CancelReason
from rules.model import Status
from tests.daemon.desk import ADMIN_TOKEN, Desk, monday
from tests.factories import booking_form, booking_request
from tests.web.client import Client, Page, pages_app, pages_desk

NINE = "2026-11-30T09:00:00-03:00"
TEN = "2026-11-30T10:00:00-03:00"


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return pages_desk(tmp_path, monday(7, 0))


@pytest.fixture
def client(desk: Desk) -> Client:
    return Client(desk.app)


def book(client: Client, start: str = TEN, **changes: str) -> Page:
    form = client.get("/book/standard")
    return client.submit(form, "/book/standard", booking_form(start, **changes))


def booked_session(desk: Desk, page: Page) -> SessionRecord:
    assert page.status == 303, page.text
    location = page.header("Location") or ""
    assert location.startswith("/booked/")
    session_id = desk.signer.verify(
        location.removeprefix("/booked/"), MANAGE_PURPOSE, desk.clock.now()
    )
    return desk.service.get(session_id)


def manage_path(desk: Desk, session: SessionRecord) -> str:
    url = manage_url(desk.config.server.public_url, desk.signer, session, desk.service.policy)
    return url.removeprefix(desk.config.server.public_url)


def checkin_path(desk: Desk, session: SessionRecord) -> str:
    url = checkin_url(desk.config.server.public_url, desk.signer, session, desk.service.policy)
    return url.removeprefix(desk.config.server.public_url)


def service_booking(desk: Desk, start: str, company: str = "Ótica Sol") -> SessionRecord:
    request = booking_request(datetime.fromisoformat(start), only_required=True, company=company)
    outcome = desk.service.book(request)
    assert outcome.session is not None, outcome.codes
    return outcome.session


# ---------------------------------------------------------------- the booking page


def test_index_lists_session_types(client: Client) -> None:
    page = client.get("/")
    assert page.status == 200
    assert '<html lang="pt-BR">' in page.text
    assert 'href="/book/standard"' in page.text and 'href="/book/extended"' in page.text
    assert "Pode ser agendado" not in page.text  # both types have a minimum notice
    assert "24 horas" in page.text


def test_booking_page_offers_exactly_the_api_grid(desk: Desk, client: Client) -> None:
    page = client.get("/book/standard")
    assert page.status == 200
    assert "Horários no fuso do suporte: horário de Brasília (UTC-03:00)." in page.text
    today = desk.clock.now().astimezone(desk.service.policy.timezone).date()
    expected = desk.service.slots("standard", today, today + timedelta(days=6))
    offered = page.radios()
    assert offered == [s.start.isoformat() for s in expected]
    assert offered[0] == "2026-11-30T07:30:00-03:00"
    # Days without free slots are not shown: the weekend of 5-6 December.
    assert "sábado" not in page.text and "domingo" not in page.text
    later = client.get("/book/standard?from=2026-12-07")  # the "later dates" link
    assert 'href="/book/standard?from=2026-12-07"' in page.text
    assert later.radios()[0] == "2026-12-07T07:30:00-03:00"
    assert 'href="/book/standard?from=2026-11-30"' in later.text  # and back


def test_booking_end_to_end_stores_acceptance_and_confirms(desk: Desk, client: Client) -> None:
    answer = book(client, TEN)
    session = booked_session(desk, answer)
    assert session.status == Status.BOOKED
    assert session.phone == "+5511987654321"  # normalised by rules
    assert session.rules_version == desk.service.policy.rules_version
    assert session.rules_accepted_at == desk.clock.now()
    confirmation = client.get(answer.header("Location") or "")
    assert confirmation.status == 200
    text = confirmation.text
    assert "Pronto! Seu atendimento está agendado." in text
    assert "segunda-feira, 30 de novembro de 2026, 10:00–10:30" in text
    technician = desk.service.policy.technician(session.technician_id)
    assert technician is not None and technician.first_name in text
    assert technician.name not in text  # the first name only
    assert "Instale o AnyDesk no computador antes das 10:00." in text
    assert "Toleramos até 10 minutos de atraso" in text and "10:10" in text
    assert "Maria Lima (ou outro responsável" in text
    assert f"{manage_path(desk, session)}/session.ics" in text
    assert f"http://127.0.0.1:8080{manage_path(desk, session)}" in text
    assert "Cancelar o atendimento" in text


def test_html_headers_carry_the_csp_and_it_allows_the_inline_script(client: Client) -> None:
    page = client.get("/book/standard")
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert page.header("Content-Security-Policy") == CSP
    assert "unsafe-inline" not in CSP and "default-src 'none'" in CSP
    digest = base64.b64encode(hashlib.sha256(TZ_SCRIPT.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CSP
    assert f"<script>{TZ_SCRIPT}</script>" in page.text
    assert page.header("X-Frame-Options") == "DENY"
    # Not "no-referrer": browsers would send our own forms with "Origin: null".
    assert page.header("Referrer-Policy") == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in page.text
    cookie = page.header("Set-Cookie") or ""
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    css = client.get("/static/style.css")
    assert css.status == 200 and css.header("Content-Type") == "text/css; charset=utf-8"


def test_typed_html_is_escaped_everywhere(desk: Desk, client: Client) -> None:
    evil = '<script>alert("x")</script>'
    rejected = book(client, TEN, company=evil, phone="123", description=evil)
    assert rejected.status == 422
    assert "<script>alert" not in rejected.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rejected.text
    session = booked_session(desk, book(client, TEN, company=evil, responsible_name=evil))
    assert session.company == evil  # stored as typed, escaped only when shown
    for path in (manage_path(desk, session), checkin_path(desk, session)):
        page = client.get(path)
        assert page.status == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;" in page.text


def test_invisible_characters_never_reach_what_people_read(desk: Desk, client: Client) -> None:
    hidden = "\u202e\u2066\u200b\u200f"
    typed = {"company": f"Loja{hidden} Sol", "description": f"{hidden}Tela azul"}
    session = booked_session(desk, book(client, TEN, responsible_name=f"Jo{hidden}ão", **typed))
    assert (session.company, session.responsible_name) == ("Loja Sol", "João")
    assert session.description == "Tela azul"
    manage = manage_path(desk, session)
    api = client.get(f"/api/v1/sessions/{session.id}", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    for page in (client.get(manage), client.get(manage + "/session.ics"), api):
        assert page.status == 200 and "João" in page.text
        assert not set(hidden) & set(page.text)
    checkin = client.get(checkin_path(desk, session))
    assert "Tela azul" in checkin.text and not set(hidden) & set(checkin.text)


def test_errors_stand_next_to_their_fields_and_typed_values_stay(client: Client) -> None:
    page = book(client, TEN, phone="12345", accept_rules="", company="Relojoaria Central")
    assert page.status == 422
    text = page.text
    phone_error = "Telefone/WhatsApp inválido: informe DDD e número"
    assert re.search(rf'<p class="error" id="e-phone-1">{phone_error}', text)
    assert 'id="f-phone" name="phone" value="12345"' in text
    assert 'aria-describedby="h-phone e-phone-1" aria-invalid="true"' in text
    assert 'id="e-accept_rules-1">É preciso ler e aceitar as regras' in text
    assert 'value="Relojoaria Central"' in text  # typed values kept
    assert 'value="123 456 789"' in text
    assert f'value="{TEN}" checked' in text  # the chosen slot too
    assert 'href="#f-phone"' in text  # the summary links to the field


def test_no_time_picked_reports_it_with_every_other_problem(client: Client) -> None:
    page = book(client, "", responsible_name="", remote_id="abc")
    assert page.status == 422
    assert 'id="e-start-1">Preencha o campo horário.' in page.text
    assert 'id="e-responsible_name-1">Preencha o campo responsável.' in page.text
    assert 'id="e-remote_id-1">ID de acesso do AnyDesk inválido' in page.text


def test_a_slot_taken_meanwhile_says_so_and_refreshes_the_slots(desk: Desk, client: Client) -> None:
    form = client.get("/book/standard")
    assert NINE in form.radios()
    service_booking(desk, NINE)
    service_booking(desk, NINE)  # both technicians now busy at 09:00
    page = client.submit(form, "/book/standard", booking_form(NINE))
    assert page.status == 409
    assert "Este horário acabou de ser reservado por outra pessoa" in page.text
    assert "A lista de horários abaixo foi atualizada." in page.text
    assert NINE not in page.radios() and TEN in page.radios()
    assert 'value="Relojoaria Central"' in page.text


def test_a_double_submitted_form_books_once(desk: Desk, client: Client) -> None:
    form = client.get("/book/standard")
    first = client.submit(form, "/book/standard", booking_form(TEN))
    second = client.submit(form, "/book/standard", booking_form(TEN))
    assert booked_session(desk, first).id == booked_session(desk, second).id


# ---------------------------------------------------------------- CSRF and rate limit


def test_a_post_without_a_valid_csrf_token_is_refused(desk: Desk, client: Client) -> None:
    client.get("/book/standard")
    missing = client.post("/book/standard", booking_form(TEN))
    assert missing.status == 403
    assert "text/html" in (missing.header("Content-Type") or "")
    assert "este formulário expirou" in missing.text
    forged = client.post("/book/standard", {"csrf_token": "x" * 43, **booking_form(TEN)})
    assert forged.status == 403
    # A token valid for another visitor's cookie does not fit this one's.
    other = Client(desk.app)
    stolen = other.get("/book/standard").field("csrf_token")
    assert client.post("/book/standard", {"csrf_token": stolen, **booking_form(TEN)}).status == 403
    # No cookie at all (a cross-site POST under SameSite=Lax).
    bare = Client(desk.app)
    token = client.get("/book/standard").field("csrf_token")
    assert bare.post("/book/standard", {"csrf_token": token, **booking_form(TEN)}).status == 403
    assert desk.store.list_sessions() == []


def test_booking_posts_are_rate_limited_per_address_on_the_service_clock(
    desk: Desk, client: Client
) -> None:
    config = desk.service.config
    desk.service.config = dataclasses.replace(
        config,
        booking=dataclasses.replace(config.booking, rate_limit=2, rate_window=timedelta(hours=1)),
    )
    desk.app = pages_app(desk)  # the limit is read when the pages are built
    client = Client(desk.app, address="203.0.113.7")
    assert book(client, "2026-11-30T10:00:00-03:00").status == 303
    assert book(client, "2026-11-30T10:30:00-03:00", phone="1").status == 422  # not counted
    desk.clock.advance(timedelta(minutes=10))
    desk.mark_synced()  # calendars go stale after 5 minutes; keep technicians bookable
    assert book(client, "2026-11-30T11:00:00-03:00").status == 303
    limited = book(client, "2026-11-30T11:30:00-03:00")
    assert limited.status == 429
    assert limited.header("Retry-After") == str(50 * 60)
    assert "Tente de novo em 50 minutos" in limited.text
    # Another address is not affected.
    assert book(Client(desk.app, address="198.51.100.1"), "2026-11-30T13:00:00-03:00").status == 303
    desk.clock.advance(timedelta(minutes=50))
    desk.mark_synced()
    assert book(client, "2026-11-30T13:30:00-03:00").status == 303


def test_refused_booking_posts_count_against_the_refusal_limit(desk: Desk) -> None:
    config = desk.service.config
    desk.service.config = dataclasses.replace(
        config, booking=dataclasses.replace(config.booking, refusal_limit=2)
    )
    desk.app = pages_app(desk)
    client = Client(desk.app, address="203.0.113.8")
    assert book(client, "2026-11-30T10:00:00-03:00", phone="1").status == 422
    assert book(client, "2026-11-30T10:00:00-03:00", phone="2").status == 422
    refused = book(client, "2026-11-30T10:00:00-03:00")
    assert refused.status == 429
    assert "Muitas tentativas de agendamento" in refused.text
    assert desk.store.list_sessions() == []
    assert book(Client(desk.app, address="198.51.100.2")).status == 303


# ---------------------------------------------------------------- the manage link


def test_get_never_changes_a_session(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    before = desk.service.get(session.id)
    for path in (
        manage_path(desk, session),
        manage_path(desk, session) + "/rebook",
        manage_path(desk, session) + "/session.ics",
        checkin_path(desk, session),
    ):
        assert client.get(path).status == 200, path
        assert client.request("HEAD", path).status == 200, path
    assert client.get(manage_path(desk, session) + "/cancel").status == 405
    desk.clock.set(monday(10, 0))  # when a check-in POST would be accepted
    assert "Iniciar atendimento" in client.get(checkin_path(desk, session)).text
    assert desk.service.get(session.id) == before


def test_cancel_through_the_manage_link(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    page = client.get(manage_path(desk, session))
    assert (
        "É possível cancelar ou remarcar por aqui até segunda-feira, 30 de novembro, 08:00."
        in page.text
    )
    answer = client.submit(page, manage_path(desk, session) + "/cancel", {})
    assert answer.status == 303 and answer.header("Location") == manage_path(desk, session)
    cancelled = desk.service.get(session.id)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.cancel_reason == CancelReason.CLIENT
    after = client.get(manage_path(desk, session))
    assert "Este atendimento foi cancelado." in after.text
    assert "Cancelar o atendimento" not in after.text
    again = client.submit(page, manage_path(desk, session) + "/cancel", {})
    assert again.status == 409 and "está cancelado e não pode mais ser cancelado" in again.text


def test_cancel_is_refused_inside_the_cutoff(desk: Desk, client: Client) -> None:
    session = service_booking(desk, NINE)  # 2 h ahead: exactly at the cut-off
    page = client.get(manage_path(desk, session))
    assert "Cancelar o atendimento" not in page.text
    assert "Falta menos de 2 horas para o início" in page.text
    earlier = service_booking(desk, TEN)
    form = client.get(manage_path(desk, earlier))
    desk.clock.set(monday(8, 0) + timedelta(seconds=1))  # the cut-off was 08:00
    refused = client.submit(form, manage_path(desk, earlier) + "/cancel", {})
    assert refused.status == 409
    assert "não pode mais ser cancelado ou remarcado por aqui" in refused.text
    assert desk.service.get(earlier.id).status == Status.BOOKED
    rebook = client.get(manage_path(desk, earlier) + "/rebook")
    assert rebook.status == 409


def test_rebook_moves_a_booked_session_with_the_clients_data(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN, company="Ótica Sol")
    form = client.get(manage_path(desk, session) + "/rebook")
    assert form.status == 200
    assert 'value="Ótica Sol"' in form.text and 'value="+55 11 3456-7890"' in form.text
    assert "O horário atual será cancelado" in form.text
    fields = booking_form(
        "2026-12-01T14:00:00-03:00", company="Ótica Sol", responsible_name="João",
        phone="+55 11 3456-7890", email="", remote_id="", description="",
    )  # fmt: skip
    answer = client.submit(form, manage_path(desk, session) + "/rebook", fields)
    moved = booked_session(desk, answer)
    assert moved.rebooked_from == session.id and moved.company == "Ótica Sol"
    assert desk.service.get(session.id).status == Status.CANCELLED


def test_after_a_no_show_the_link_offers_the_next_free_slots(desk: Desk, client: Client) -> None:
    session = service_booking(desk, "2026-11-30T07:30:00-03:00")
    desk.clock.set(monday(7, 41))
    desk.mark_synced()
    assert [s.id for s in desk.service.sweep()] == [session.id]
    page = client.get(manage_path(desk, session))
    assert "não começou dentro da tolerância" in page.text
    offered = re.findall(r'/rebook\?start=([^"]+)"', page.text)
    assert len(offered) == 6 and offered[0] == "2026-11-30T08%3A00%3A00-03%3A00"
    form = client.get(manage_path(desk, session) + "/rebook?start=2026-11-30T08:00:00-03:00")
    assert 'value="2026-11-30T08:00:00-03:00" checked' in form.text
    answer = client.submit(
        form, manage_path(desk, session) + "/rebook",
        booking_form("2026-11-30T08:00:00-03:00", company="Ótica Sol"),
    )  # fmt: skip
    again = booked_session(desk, answer)
    assert again.rebooked_from == session.id
    assert desk.service.get(session.id).status == Status.RESCHEDULED


def test_bad_and_expired_links_get_friendly_pages(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    garbage = client.get("/manage/not-a-token")
    assert garbage.status == 404 and "Este link não é válido" in garbage.text
    assert "text/html" in (garbage.header("Content-Type") or "")
    # A technician's check-in link is not a manage link, and the other way round.
    check_token = checkin_path(desk, session).removeprefix("/checkin/")
    assert client.get(f"/manage/{check_token}").status == 404
    manage_token = manage_path(desk, session).removeprefix("/manage/")
    assert client.get(f"/checkin/{manage_token}").status == 404
    expired = desk.signer.sign(MANAGE_PURPOSE, session.id, desk.clock.now() - timedelta(seconds=1))
    page = client.get(f"/manage/{expired}")
    assert page.status == 410 and "Este link expirou." in page.text
    unknown = desk.signer.sign(CHECKIN_PURPOSE, "nope", desk.clock.now() + timedelta(days=1))
    assert client.get(f"/checkin/{unknown}").status == 404
    assert client.get("/book/vip").status == 404


def test_a_mistyped_address_gets_a_page_in_a_browser_and_json_elsewhere(client: Client) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/agendar", headers=html)
    assert page.status == 404 and "text/html" in (page.header("Content-Type") or "")
    assert "Página não encontrada." in page.text and "Content-Security-Policy" in dict(page.headers)
    english = client.get("/agendar?lang=en", headers=html)
    assert "Page not found." in english.text
    wrong_method = client.get("/manage/x/cancel", headers=html)
    assert wrong_method.status == 405 and wrong_method.header("Allow") == "POST"
    assert "<html" in wrong_method.text
    # Scripts and the API keep their JSON, whatever they accept.
    assert client.get("/agendar").text.startswith('{"error"')
    api = client.get("/api/v1/nope", headers=html)
    assert api.status == 404 and api.text.startswith('{"error"')


def test_ics_download_parses_and_keeps_technicians_out(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    answer = client.get(manage_path(desk, session) + "/session.ics")
    assert answer.status == 200
    assert answer.header("Content-Type") == "text/calendar; charset=utf-8"
    assert "attachment" in (answer.header("Content-Disposition") or "")
    calendar = Calendar.from_ical(answer.text)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert event.decoded("dtstart") == session.start and event.decoded("dtend") == session.end
    assert str(event["uid"]) != session.calendar_uid
    assert "Instale o AnyDesk" in str(event["description"])
    technician = desk.service.policy.technician(session.technician_id)
    assert technician is not None
    assert technician.name not in answer.text and "/checkin/" not in answer.text


def test_ics_download_carries_a_sequence_and_once_cancelled_removes_the_event(
    desk: Desk, client: Client
) -> None:
    session = service_booking(desk, TEN)
    path = manage_path(desk, session) + "/session.ics"
    booked = Calendar.from_ical(client.get(path).text)
    [first] = booked.walk("VEVENT")
    assert booked["METHOD"] == "PUBLISH" and first["STATUS"] == "CONFIRMED"
    assert first.decoded("SEQUENCE") == 0
    assert first.walk("VALARM"), "a booked session's copy rings before the start"
    assert "Ver, cancelar ou remarcar: http://" in str(first["DESCRIPTION"])

    desk.clock.advance(timedelta(minutes=1))
    desk.service.cancel(session.id, actor="client", reason=CancelReason.CLIENT)
    cancelled = Calendar.from_ical(client.get(path).text)
    [second] = cancelled.walk("VEVENT")
    assert cancelled["METHOD"] == "CANCEL" and second["STATUS"] == "CANCELLED"
    assert second["UID"] == first["UID"]
    assert second.decoded("SEQUENCE") > first.decoded("SEQUENCE")
    assert not second.walk("VALARM"), "no alarm for a session that will not happen"
    assert "Ver o atendimento: http://" in str(second["DESCRIPTION"]), "nothing to cancel"


def test_ics_download_after_the_cutoff_offers_no_online_cancel(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    desk.clock.set(monday(8, 30))  # cancel_cutoff is 2h: changes closed at 08:00
    [event] = Calendar.from_ical(client.get(manage_path(desk, session) + "/session.ics").text).walk(
        "VEVENT"
    )
    assert "cancelar" not in str(event["DESCRIPTION"])
    assert "Ver o atendimento: http://" in str(event["DESCRIPTION"])


# ---------------------------------------------------------------- check-in


def test_checkin_is_a_post_from_the_page_inside_its_window(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN, company="Ótica Sol")
    path = checkin_path(desk, session)
    page = client.get(path)
    assert page.status == 200
    for shown in ("Ótica Sol", "João", "+55 11 3456-7890", "AnyDesk", "(informado ao ligar)"):
        assert shown in page.text
    assert "O check-in abre às 09:30." in page.text
    early = client.submit(page, path, {})
    assert early.status == 409 and "Ainda é cedo: o check-in abre às 09:30." in early.text
    desk.clock.set(monday(10, 5))
    done = client.submit(page, path, {})
    assert done.status == 303 and done.header("Location") == path
    assert desk.service.get(session.id).status == Status.IN_PROGRESS
    assert "Check-in feito às 10:05" in client.get(path).text
    twice = client.submit(page, path, {})
    assert twice.status == 409 and "o atendimento está em andamento" in twice.text


def test_checkin_after_the_tolerance_says_to_reschedule(desk: Desk, client: Client) -> None:
    session = service_booking(desk, TEN)
    path = checkin_path(desk, session)
    page = client.get(path)
    desk.clock.set(monday(10, 11))
    late = client.submit(page, path, {})
    assert late.status == 409
    assert "A tolerância terminou às 10:10" in late.text
    assert desk.service.get(session.id).status == Status.BOOKED


@pytest.mark.parametrize(
    "path",
    ["/\\evil.example/x", "//evil.example/x", "/book/\\evil.example", "/manage/\\evil.example"],
)
def test_error_pages_link_only_to_this_site(client: Client, path: str) -> None:
    # What waitress hands over for /%5Cevil.example/x: browsers read "/\\" as "//".
    page = client.get(path + "?lang=pt-BR", headers={"Accept": "text/html"})
    assert page.status == 404 and "<html" in page.text
    links = re.findall(r'(?:href|action|src)="([^"]*)"', page.text)
    assert any("lang=en" in link for link in links)
    for link in links:
        target = urljoin("http://127.0.0.1:8080/", html.unescape(link).replace("\\", "/"))
        assert urlsplit(target).netloc == "127.0.0.1:8080", link


# ---------------------------------------------------------------- languages


def test_english_by_switch_kept_in_a_cookie_and_by_accept_language(
    desk: Desk, client: Client
) -> None:
    first = client.get("/book/standard")
    assert '<html lang="pt-BR">' in first.text and 'href="/book/standard?lang=en"' in first.text
    english = client.get("/book/standard?lang=en")
    assert '<html lang="en">' in english.text and "Pick a time" in english.text
    assert "Monday, November 30" in english.text
    assert "Remote-access rules" in english.text  # the rules in full, in English
    assert desk.config.desk.rules_for("en").splitlines()[-1] in english.text
    assert client.get("/").text.count('<html lang="en">') == 1  # the cookie keeps it
    errors = book(client, TEN, phone="12")
    assert "Invalid phone/WhatsApp" in errors.text
    assert "pt-BR" in client.get("/?lang=pt-BR").text.split("\n")[1]
    browser = Client(desk.app)
    page = browser.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in page.text


@pytest.mark.parametrize(
    ("zone", "language", "name"),
    [
        ("America/Sao_Paulo", "pt-BR", "horário de Brasília"),
        ("America/Sao_Paulo", "en", "Brasilia Time"),
        ("America/Manaus", "pt-BR", "horário do Amazonas"),
        ("UTC", "pt-BR", "UTC"),  # CLDR places it nowhere: the offset, not "Região desconhecida"
        ("Etc/GMT+3", "en", "UTC-03:00"),
    ],
)
def test_time_zones_are_named_as_people_say_them(zone: str, language: str, name: str) -> None:
    from daemon.i18n import zone_name

    assert zone_name(ZoneInfo(zone), language) == name


def test_the_rules_on_the_booking_page_are_spanish(desk: Desk) -> None:
    page = Client(desk.app).get("/book/standard", headers={"Accept-Language": "es"})
    assert "Reglas para el acceso remoto — Suporte Técnico" in page.text
    assert "de lunes a viernes, de 07:30 a 12:00 y de 13:00 a 17:30" in page.text
    assert "Se tolerarán hasta 10 minutos de retraso" in page.text
    assert desk.config.desk.rules_for("es").splitlines()[-1] in page.text
    assert "Remote-access rules" not in page.text and "Regras para" not in page.text


def test_spanish_by_accept_language_and_by_the_desks_language(desk: Desk) -> None:
    page = Client(desk.app).get("/book/standard", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es">' in page.text and "Elija el horario" in page.text
    assert "lunes, 30 de noviembre" in page.text
    assert 'href="/book/standard?lang=pt-BR"' in page.text and ">English<" in page.text
    spanish = dataclasses.replace(desk.config.desk, language="es")
    desk.service.config = dataclasses.replace(desk.config, desk=spanish)
    page = Client(desk.app).get("/")
    assert '<html lang="es">' in page.text and "Agendar una atención remota" in page.text
