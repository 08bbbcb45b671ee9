"""The JSON API in-process (WSGI), on a real store, with a fixed clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from rules.model import Status
from tests.daemon.desk import ADMIN_TOKEN, Desk, call, make_desk, monday
from tests.factories import booking


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path, monday(7, 0))


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_slots_document(desk: Desk) -> None:
    status, _, document = call(
        desk, "GET", "/api/v1/slots?from=2026-12-04&to=2026-12-05&type=standard"
    )
    assert status == 200
    assert document["timezone"] == "America/Sao_Paulo"
    assert document["slots"][-1] == {
        "start": "2026-12-04T17:00:00-03:00",
        "end": "2026-12-04T17:30:00-03:00",
        "technicians": 2,
    }
    assert all(not s["start"].startswith("2026-12-05") for s in document["slots"])


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("type=vip", "unknown_type"),
        ("from=12/01/2026", "bad_date"),
        ("from=9999-12-30&to=9999-12-31", "bad_date"),  # past what datetime can add to
        ("from=0001-01-01", "bad_date"),
        ("from=2026-12-05&to=2026-12-01", "bad_range"),
    ],
)
def test_bad_slot_queries_are_400(desk: Desk, query: str, code: str) -> None:
    status, _, document = call(desk, "GET", f"/api/v1/slots?{query}")
    assert status == 400 and document["error"]["code"] == code


def test_booking_201_then_slot_fills_and_409(desk: Desk) -> None:
    status, _, first = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    assert status == 201, first
    assert first["status"] == "booked" and first["technician"] in ("Ana", "Bruno")
    assert (
        first["start"] == "2026-12-01T09:00:00-03:00"
        and first["end"] == "2026-12-01T09:30:00-03:00"
    )
    assert first["manage_url"].startswith("http://127.0.0.1:8080/manage/")
    status, _, second = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    assert status == 201 and second["technician"] != first["technician"]  # the other one, fairly
    _, _, slots = call(desk, "GET", "/api/v1/slots?from=2026-12-01&to=2026-12-01")
    assert "2026-12-01T09:00:00-03:00" not in [s["start"] for s in slots["slots"]]
    status, _, third = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    assert status == 409 and third["error"]["code"] == "slot_taken"
    assert third["error"]["violations"][0]["code"] == "slot_taken"


def test_rule_violations_are_422_with_codes_and_messages(desk: Desk) -> None:
    status, _, document = call(
        desk,
        "POST",
        "/api/v1/bookings",
        booking("2026-12-01T11:45:00-03:00", phone="123", accept_rules=False, responsible_name=""),
    )
    assert status == 422
    codes = {v["code"]: v.get("field") for v in document["error"]["violations"]}
    assert codes == {
        "spans_break": "start",
        "invalid_field": "phone",
        "rules_not_accepted": "accept_rules",
        "missing_field": "responsible_name",
    }
    messages = {v["code"]: v["message"] for v in document["error"]["violations"]}
    assert "intervalo das 12:00 às 13:00" in messages["spans_break"]  # pt-BR by default
    status, _, english = call(
        desk,
        "POST",
        "/api/v1/bookings",
        booking("2026-12-05T09:00:00-03:00"),
        {"Accept-Language": "en-US,en"},
    )
    assert status == 422 and english["error"]["violations"][0]["code"] == "closed_day"
    assert "closed" in english["error"]["violations"][0]["message"]


def test_shape_errors_speak_the_clients_language_and_detail_the_problem(desk: Desk) -> None:
    body = booking("2026-12-01T09:00:00")  # no offset
    _, _, portuguese = call(desk, "POST", "/api/v1/bookings", body)
    (violation,) = portuguese["error"]["violations"]
    assert violation["message"] == "Valor inválido no campo horário."  # no English in it
    assert violation["detail"] == "the time needs a UTC offset, e.g. -03:00"
    # The language the client asks for its mails is the language of the answer too.
    _, _, english = call(desk, "POST", "/api/v1/bookings", {**body, "language": "en"})
    assert english["error"]["violations"][0]["message"].startswith("Invalid value")
    status, _, french = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00", language="fr")
    )
    assert status == 422
    assert french["error"]["violations"][0] == {
        "code": "invalid_field",
        "field": "language",
        "message": "Valor inválido no campo idioma.",
        "detail": "one of pt-BR, en, es",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (booking("2026-12-01T09:00:00"), "start"),  # no offset
        (booking("amanhã"), "start"),
        (booking("2026-12-01T09:00:00-03:00", accept_rules="yes"), "accept_rules"),
        (booking("2026-12-01T09:00:00-03:00", company=["x"]), "company"),
        (booking("2026-12-01T09:00:00-03:00", admin=True), "admin"),
        ({"start": "2026-12-01T09:00:00-03:00"}, "type"),
        (booking("9999-12-31T23:59:59-03:00"), "start"),  # would overflow in a zone change
        (booking("0001-01-01T00:00:00+00:00"), "start"),
        (booking("2026-12-01T09:00:00-03:00", company="\ud800"), "company"),  # lone surrogate
        (booking("2026-12-01T09:00:00-03:00", description="ok \udfff"), "description"),
        ({**booking("2026-12-01T09:00:00-03:00"), "type": "\ud800"}, "type"),
    ],
)
def test_malformed_bookings_are_422_naming_the_field(
    desk: Desk, body: dict[str, Any], field: str
) -> None:
    status, _, document = call(desk, "POST", "/api/v1/bookings", body)
    assert status == 422
    assert document["error"]["violations"][0]["field"] == field


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b"\xff\xfe", 400), (b"x" * 70000, 413)],
)
def test_garbage_bodies_get_4xx_never_5xx(desk: Desk, raw: bytes, status: int) -> None:
    got, _, document = call(desk, "POST", "/api/v1/bookings", raw)
    assert got == status and "error" in document


def test_idempotency_key_replays_the_first_answer(desk: Desk) -> None:
    key = {"Idempotency-Key": "retry-1"}
    status, _, first = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-02T10:00:00-03:00"), key
    )
    assert status == 201
    status, headers, again = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-02T10:00:00-03:00"), key
    )
    assert status == 201 and again["id"] == first["id"] and headers["Idempotent-Replayed"] == "true"
    status, _, reused = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-02T11:00:00-03:00"), key
    )
    assert status == 422 and reused["error"]["violations"][0]["field"] == "idempotency_key"
    assert len(desk.store.list_sessions()) == 1


def test_admin_endpoints_need_the_token(desk: Desk) -> None:
    _, _, created = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    path = f"/api/v1/sessions/{created['id']}"
    for method, suffix in (("GET", ""), ("POST", "/check-in"), ("POST", "/cancel")):
        status, headers, _ = call(desk, method, path + suffix)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        status, _, _ = call(desk, method, path + suffix, headers={"Authorization": "Bearer wrong"})
        assert status == 401
    status, _, document = call(desk, "GET", path, headers=ADMIN)
    assert status == 200 and document["phone"] == "+5511987654321"
    assert call(desk, "GET", "/api/v1/sessions/nope", headers=ADMIN)[0] == 404


def test_check_in_window_and_no_show_sweep(desk: Desk) -> None:
    _, _, kept = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    _, _, missed = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    start = monday(9, 0) + timedelta(days=1)
    desk.clock.set(start + timedelta(minutes=10))  # exactly at the tolerance
    status, _, checked = call(
        desk, "POST", f"/api/v1/sessions/{kept['id']}/check-in", headers=ADMIN
    )
    assert status == 200 and checked["status"] == "in_progress"
    assert desk.service.sweep() == []  # at +10:00 nothing is late yet
    desk.clock.set(start + timedelta(minutes=10, seconds=1))
    changed = desk.service.sweep()
    assert [s.id for s in changed] == [missed["id"]] and changed[0].status == Status.RESCHEDULED
    status, _, late = call(desk, "POST", f"/api/v1/sessions/{missed['id']}/check-in", headers=ADMIN)
    assert status == 409 and late["error"]["code"] == "illegal_transition"
    desk.clock.set(start + timedelta(minutes=30))
    assert [s.status for s in desk.service.sweep()] == [Status.COMPLETED]
    # The rescheduled session freed its technician's time at once.
    rescheduled = desk.store.get_session(missed["id"])
    assert rescheduled is not None
    timeline = desk.service.timelines(desk.clock.now())[rescheduled.technician_id]
    assert timeline.is_free(rescheduled.start, rescheduled.end)


def test_cancel_frees_the_slot(desk: Desk) -> None:
    for _ in range(2):
        call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    sessions = desk.store.list_sessions()
    status, _, cancelled = call(
        desk, "POST", f"/api/v1/sessions/{sessions[0].id}/cancel", headers=ADMIN
    )
    assert status == 200 and cancelled["status"] == "cancelled"
    status, _, _ = call(desk, "POST", f"/api/v1/sessions/{sessions[0].id}/cancel", headers=ADMIN)
    assert status == 409
    _, _, slots = call(desk, "GET", "/api/v1/slots?from=2026-12-01&to=2026-12-01")
    nine = next(s for s in slots["slots"] if s["start"] == "2026-12-01T09:00:00-03:00")
    assert nine["technicians"] == 1


def test_cancel_keeps_the_reason_the_admin_gives(desk: Desk) -> None:
    _, _, first = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    _, _, second = call(desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00"))
    path = f"/api/v1/sessions/{first['id']}/cancel"
    for body, wrong in (
        ({"reason": 7}, "must be a string"),
        ({"reason": "x" * 301}, "at most 300"),
        ({"motivo": "x"}, "unknown field 'motivo'"),
        (b"[1]", "JSON object"),
    ):
        status, _, refused = call(desk, "POST", path, body, headers=ADMIN)
        assert status == 400 and wrong in refused["error"]["message"], refused
    assert desk.service.get(first["id"]).status == Status.BOOKED, "nothing changed"

    reason = {"reason": "O cliente ligou:\n  o computador\tfoi trocado "}
    status, _, cancelled = call(desk, "POST", path, reason, headers=ADMIN)
    assert status == 200 and cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "O cliente ligou: o computador foi trocado"
    assert desk.service.get(first["id"]).cancel_reason == cancelled["cancel_reason"]
    # Without a reason: the desk's code, which mails put into the reader's words.
    status, _, plain = call(desk, "POST", f"/api/v1/sessions/{second['id']}/cancel", headers=ADMIN)
    assert status == 200 and plain["cancel_reason"] == "desk"


def test_stale_calendars_stop_bookings_and_health_says_so(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, monday(7, 0))
    status, _, health = call(desk, "GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    desk.clock.set(monday(7, 0) + timedelta(minutes=6))  # stale_after defaults to 5 minutes
    status, _, health = call(desk, "GET", "/healthz")
    assert status == 503 and all(c["stale"] for c in health["calendars"])
    failing = desk.config.calendars[0].id
    desk.store.record_sync_failure(failing, "refused by 10.0.0.5:5232/ana/work/", desk.clock.now())
    _, _, public = call(desk, "GET", "/healthz")
    _, _, private = call(desk, "GET", "/healthz", headers=ADMIN)
    assert [c["failing"] for c in public["calendars"]] == [True, False]
    assert all("last_error" not in c for c in public["calendars"]), "server names stay private"
    assert private["calendars"][0]["last_error"] == "refused by 10.0.0.5:5232/ana/work/"
    _, _, slots = call(desk, "GET", "/api/v1/slots?from=2026-12-01&to=2026-12-01")
    assert slots["slots"] == []
    status, _, document = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00")
    )
    assert status == 503 and document["error"]["code"] == "calendar_stale"
    assert document["error"]["violations"][0]["code"] == "calendar_stale"
    # One technician synced again: bookings go to them; the stale one is never chosen.
    desk.store.apply_sync(
        desk.config.calendars[1].id, [], full=True, state=None, now=desk.clock.now()
    )
    status, _, document = call(
        desk, "POST", "/api/v1/bookings", booking("2026-12-01T09:00:00-03:00")
    )
    assert status == 201
    stored = desk.store.get_session(document["id"])
    assert stored is not None and stored.technician_id == desk.config.calendars[1].technician


def test_a_calendar_turns_stale_at_its_instant_with_no_store_change(tmp_path: Path) -> None:
    """The stale set is kept between requests: it must still change at the very instant a
    calendar's last sync is ``stale_after`` old, and at the next sync that lands."""
    desk = make_desk(tmp_path, monday(7, 0))
    everyone = {t.id for t in desk.config.technicians}
    ana_work = desk.config.calendars[0]
    later = monday(7, 0) + timedelta(minutes=2)
    desk.store.apply_sync(ana_work.id, [], full=True, state=None, now=later)
    assert desk.service.eligible(desk.clock.now()) == everyone
    # The other calendars synced at 7:00 go stale after 7:05; ana's after 7:07.
    desk.clock.set(monday(7, 5))
    assert desk.service.eligible(desk.clock.now()) == everyone
    desk.clock.set(monday(7, 5) + timedelta(microseconds=1))
    assert desk.service.eligible(desk.clock.now()) == {ana_work.technician}
    desk.clock.set(monday(7, 7))
    assert desk.service.eligible(desk.clock.now()) == {ana_work.technician}
    desk.clock.set(monday(7, 7) + timedelta(microseconds=1))
    assert desk.service.eligible(desk.clock.now()) == set()
    # A sync landing is seen at once.
    desk.mark_synced(monday(7, 7))
    assert desk.service.eligible(desk.clock.now()) == everyone
    # A clock set back is not served from what was worked out for later.
    desk.clock.set(monday(6, 0))
    assert desk.service.eligible(desk.clock.now()) == everyone


def test_unknown_paths_and_methods(desk: Desk) -> None:
    assert call(desk, "GET", "/nope")[0] == 404
    status, headers, _ = call(desk, "DELETE", "/api/v1/bookings")
    assert status == 405 and headers["Allow"] == "POST"


def test_spanish_answers_in_spanish(desk: Desk) -> None:
    body = booking("2026-12-01T09:00:00-03:00", phone="12", language="es-MX")
    status, _, answer = call(desk, "POST", "/api/v1/bookings", body)
    assert status == 422
    messages = [v["message"] for v in answer["error"]["violations"]]
    assert any(
        m.startswith("Teléfono/WhatsApp inválido: indique el código de área") for m in messages
    )
