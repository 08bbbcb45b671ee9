"""The desk console's actions in-process: check in, cancel, complete, resend, rebook, and
booking by phone with a technician chosen and the minimum notice overridden.

A real store and a fixed clock (Monday 2026-11-30 07:00 in São Paulo); what reaches the
technician's calendar is the browser tests' part (tests/browser/test_desk.py).
"""

from __future__ import annotations

import inspect
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.staff import hash_password
from daemon.store import SessionRecord
from daemon.web import pages as pages_module
from daemon.web.pages.booking import BookingPages
from daemon.web.pages.checkin import CheckinPages
from daemon.web.pages.desk_console import DeskConsole
from daemon.web.pages.manage import ManagePages
from rules.model import Status
from tests.daemon.desk import Desk, monday
from tests.factories import booking_form, booking_request
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


def login(desk: Desk) -> Client:
    client = Client(desk.app)
    form = client.get("/desk/")
    answer = client.submit(form, "/desk/login", {"name": "carla", "password": PASSWORD})
    assert answer.status == 303
    return client


@pytest.fixture
def client(desk: Desk) -> Client:
    return login(desk)


def book(desk: Desk, hour: int, minute: int = 0, **changes: Any) -> SessionRecord:
    outcome = desk.service.book(booking_request(monday(hour, minute), **changes))
    assert outcome.session is not None, outcome.codes
    return outcome.session


def act(client: Client, session: SessionRecord, action: str, **form: str) -> Page:
    page = client.get("/desk/?date=2026-11-30")
    return client.submit(page, f"/desk/sessions/{session.id}/{action}?date=2026-11-30", form)


def audit_of(desk: Desk, session: SessionRecord) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.reason) for e in desk.store.audit_log(session.id)]


def test_the_desk_mixins_shadow_no_page_of_the_others() -> None:
    """Pages combines the console before the client's pages: a console method named like
    one of theirs would silently replace it."""
    own = {
        name
        for cls in inspect.getmro(DeskConsole)
        if cls.__module__.startswith("daemon.web.pages.desk")
        for name in vars(cls)
        if not name.startswith("__")
    }
    theirs = {name for cls in (BookingPages, ManagePages, CheckinPages) for name in vars(cls)}
    allowed = {"_done_message"}
    assert (own & theirs) - allowed == set()
    assert pages_module.Pages.__mro__.index(DeskConsole) == 1


def test_check_in_then_complete_with_the_staff_name_in_the_audit(
    desk: Desk, client: Client
) -> None:
    session = book(desk, 9)
    early = act(client, session, "check-in")
    assert early.status == 409 and "Ainda é cedo: o check-in abre às 08:30." in early.text
    desk.clock.set(monday(9, 5))
    client = login(desk)  # the first login has been idle too long by now
    done = act(client, session, "check-in")
    assert done.status == 303
    assert done.header("Location") == f"/desk/?date=2026-11-30&done=check-in#s-{session.id}"
    assert desk.service.get(session.id).status == Status.IN_PROGRESS
    assert "Check-in feito" in client.get((done.header("Location") or "").split("#")[0]).text
    again = act(client, session, "check-in")
    assert again.status == 409 and "em andamento" in again.text
    assert act(client, session, "complete").status == 303
    assert desk.service.get(session.id).status == Status.COMPLETED
    refused = act(client, session, "complete")
    assert refused.status == 409 and "Não é possível concluir" in refused.text
    actors = {actor for actor, action, _ in audit_of(desk, session) if action == "status_changed"}
    assert actors == {"staff:carla"}


def test_cancel_needs_a_reason_that_reaches_the_client(desk: Desk, client: Client) -> None:
    session = book(desk, 10)
    missing = act(client, session, "cancel", reason="   ")
    assert missing.status == 409 and "Informe o motivo do cancelamento" in missing.text
    assert desk.service.get(session.id).status == Status.BOOKED
    assert act(client, session, "cancel", reason="Cliente pediu outro dia").status == 303
    cancelled = desk.service.get(session.id)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.cancel_reason == "Cliente pediu outro dia"
    assert ("staff:carla", "status_changed", "Cliente pediu outro dia") in audit_of(desk, session)
    refused = act(client, session, "cancel", reason="de novo")
    assert refused.status == 409 and "não pode mais ser cancelado" in refused.text


def test_resend_queues_the_client_confirmation_and_the_calendar_write(
    desk: Desk, client: Client
) -> None:
    session = book(desk, 10)
    before = desk.store.outbox_depth()
    assert act(client, session, "resend").status == 303
    assert desk.store.outbox_depth() > before
    items = [(i.action, i.payload) for i in desk.store.due_outbox(desk.clock.now())]
    assert ("notify", {"event": "resend"}) in items
    assert ("staff:carla", "confirmation_resent", "") in audit_of(desk, session)
    desk.service.cancel(session.id, actor="admin")
    refused = act(client, session, "resend")
    assert refused.status == 409 and "Não é possível reenviar" in refused.text


def test_an_action_without_a_login_is_refused(desk: Desk, client: Client) -> None:
    session = book(desk, 10)
    page = client.get("/desk/")
    stranger = Client(desk.app, cookies={"expediente_csrf": client.cookies["expediente_csrf"]})
    answer = stranger.post(
        f"/desk/sessions/{session.id}/cancel", {"csrf_token": page.field("csrf_token"),
                                                 "reason": "x"},
    )  # fmt: skip
    assert answer.status == 401
    assert desk.service.get(session.id).status == Status.BOOKED
    assert act(client, session, "nonsense").status in (404, 405)
    missing = client.submit(page, "/desk/sessions/nope/cancel", {"reason": "x"})
    assert missing.status == 404


def test_rebook_moves_the_session_and_frees_the_old_time(desk: Desk, client: Client) -> None:
    session = book(desk, 10)
    form = client.get(f"/desk/sessions/{session.id}/rebook")
    assert form.status == 200 and "Reagendar: Relojoaria Central" in form.text
    new_start = "2026-11-30T14:00:00-03:00"
    assert new_start in form.radios()
    answer = client.submit(form, f"/desk/sessions/{session.id}/rebook", {"start": new_start})
    assert answer.status == 303 and "done=rebook" in (answer.header("Location") or "")
    assert desk.service.get(session.id).status == Status.CANCELLED
    moved = [s for s in desk.store.list_sessions() if s.rebooked_from == session.id]
    assert len(moved) == 1 and moved[0].start == datetime.fromisoformat(new_start)
    assert moved[0].company == session.company and moved[0].phone == session.phone
    assert ("staff:carla", "booking_accepted", "") in audit_of(desk, moved[0])


def phone_form(start: str, **changes: str) -> dict[str, str]:
    return booking_form(start, **changes)


def test_booking_by_phone_with_a_technician_chosen(desk: Desk, client: Client) -> None:
    form = client.get("/desk/book/standard?tech=bruno")
    assert form.status == 200
    start = "2026-11-30T10:00:00-03:00"
    answer = client.submit(form, "/desk/book/standard?tech=bruno", phone_form(start))
    assert answer.status == 303, answer.text
    (session,) = desk.store.list_sessions()
    assert session.technician_id == "bruno" and session.start == datetime.fromisoformat(start)
    assert ("staff:carla", "booking_accepted", "") in audit_of(desk, session)
    # Bruno is taken at 10:00 now: chosen again, he is not offered, nor booked.
    again = client.get("/desk/book/standard?tech=bruno")
    assert start not in again.radios()
    refused = client.submit(again, "/desk/book/standard?tech=bruno", phone_form(start))
    assert refused.status in (409, 422) and len(desk.store.list_sessions()) == 1


def test_booking_by_phone_validates_like_the_public_page(desk: Desk, client: Client) -> None:
    form = client.get("/desk/book/standard")
    start = "2026-11-30T10:00:00-03:00"
    bad = client.submit(form, "/desk/book/standard", phone_form(start, phone="12"))
    assert bad.status == 422 and desk.store.list_sessions() == []
    assert 'href="#f-phone"' in bad.text


def test_the_notice_override_needs_a_reason_and_is_audited(desk: Desk, client: Client) -> None:
    today = "2026-11-30T09:00:00-03:00"  # the extended type needs 24 h
    plain = client.get("/desk/book/extended")
    assert today not in plain.radios()
    refused = client.submit(plain, "/desk/book/extended", phone_form(today))
    assert refused.status == 422 and "antecedência" in refused.text
    waived = client.get("/desk/book/extended?override=1")
    assert today in waived.radios()
    no_reason = client.submit(waived, "/desk/book/extended?override=1", phone_form(today))
    assert no_reason.status == 422 and "Informe por que a antecedência" in no_reason.text
    assert desk.store.list_sessions() == []
    answer = client.submit(
        waived, "/desk/book/extended?override=1",
        {**phone_form(today), "notice_override": "Servidor parado, cliente sem faturar"},
    )  # fmt: skip
    assert answer.status == 303, answer.text
    (session,) = desk.store.list_sessions()
    assert session.type == "extended" and session.start == datetime.fromisoformat(today)
    (entry,) = [e for e in desk.store.audit_log(session.id) if e.action == "booking_accepted"]
    assert entry.actor == "staff:carla"
    assert entry.details["notice_override"] == "Servidor parado, cliente sem faturar"


def test_the_override_never_books_outside_the_hours_or_over_a_session(
    desk: Desk, client: Client
) -> None:
    waived = client.get("/desk/book/extended?override=1")
    reason = {"notice_override": "urgente"}
    lunch = client.submit(
        waived, "/desk/book/extended?override=1",
        {**phone_form("2026-11-30T12:00:00-03:00"), **reason},
    )  # fmt: skip
    assert lunch.status == 422 and desk.store.list_sessions() == []
    saturday = client.submit(
        waived, "/desk/book/extended?override=1",
        {**phone_form("2026-12-05T09:00:00-03:00"), **reason},
    )  # fmt: skip
    assert saturday.status == 422 and desk.store.list_sessions() == []
    book(desk, 9)
    book(desk, 9, 30)  # both technicians busy from 09:00
    taken = client.submit(
        waived, "/desk/book/extended?override=1&tech=ana",
        {**phone_form("2026-11-30T09:00:00-03:00"), **reason},
    )  # fmt: skip
    assert taken.status in (409, 422) and len(desk.store.list_sessions()) == 2
