"""WhatsApp through the running daemon: real HTTP in, real Radicale, the local Cloud API
(``tests/servers/whatsapp.py``) out and its signed webhooks back in.

The client booked with ``(11) 98765-4321``; their WhatsApp account predates the ninth
digit, so Meta writes them as ``551187654321``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.systemd import Notifier
from tests.daemon.desk import (
    WHATSAPP_APP_SECRET,
    WHATSAPP_PHONE_ID,
    WHATSAPP_TOKEN,
    WHATSAPP_VERIFY,
    monday,
    smtp_section,
    whatsapp_section,
    write_config,
)
from tests.e2e.harness import ADMIN, LIVE, Desk, Process, http
from tests.factories import booking
from tests.servers import CalDAVServer, free_port
from tests.servers.smtp import SmtpServer, smtp_server
from tests.servers.whatsapp import CloudApi, deploy_guide_handshake, hub_signature

pytestmark = pytest.mark.slow

APP_SECRET, PHONE_ID, TOKEN, VERIFY = (
    WHATSAPP_APP_SECRET, WHATSAPP_PHONE_ID, WHATSAPP_TOKEN, WHATSAPP_VERIFY
)  # fmt: skip
OLD_ID = "551187654321"  # the client's account: no ninth digit
BOOKED_ID = "5511987654321"  # what the daemon sends to: the number as booked
TEMPLATES = {
    "sessao_agendada": ("pt_BR", 5),
    "sessao_lembrete": ("pt_BR", 5),
    "sessao_reagendada": ("pt_BR", 5),
    "sessao_cancelada": ("pt_BR", 5),
}


@dataclass
class WhatsAppDesk:
    desk: Desk
    api: CloudApi
    smtp: SmtpServer

    def drain(self) -> None:
        """Run the outbox until nothing is due now (plans expand into deliveries), after
        the flush the daemon started on its own (its one delivery thread) has finished."""
        self.desk.daemon.delivery_pool.submit(lambda: None).result(timeout=30)
        for _ in range(4):
            self.desk.daemon.flush()

    def status(self, session_id: str) -> str:
        _, body = self.desk.get(f"/api/v1/sessions/{session_id}", ADMIN)
        return str(body["status"])

    def webhooks(self) -> list[int]:
        return self.api.deliver_webhooks()


@pytest.fixture
def wa(radicale: CalDAVServer, tmp_path: Path) -> Iterator[WhatsAppDesk]:
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    clock = FixedClock(monday(7, 0))
    api = CloudApi(
        phone_number_id=PHONE_ID,
        token=TOKEN,
        app_secret=APP_SECRET,
        templates=TEMPLATES,
        now=clock.now,
        accounts=(OLD_ID,),
    )
    technicians = {"ana": {"email": "ana@example.com"}, "bruno": {"email": "bruno@example.com"}}
    settings: dict[str, Mapping[str, object]] = {
        **LIVE,
        "notifications": {"technician_email": True, "client_email": False},
    }
    path = write_config(tmp_path, calendars, settings=settings, technicians=technicians)
    with api, smtp_server() as smtp:
        path.write_text(
            path.read_text()
            + f"\n[smtp]\n{smtp_section(smtp.port)}\n"
            + whatsapp_section(tmp_path, api.endpoint)
        )
        daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
        daemon.start(port=0)
        try:
            desk = Desk(daemon, clock, radicale, calendars, path)
            assert api.subscribe(desk.url + "/webhooks/whatsapp", VERIFY)
            yield WhatsAppDesk(desk, api, smtp)
        finally:
            daemon.shutdown()


def test_booking_reminder_and_no_show_reach_the_client_as_templates(wa: WhatsAppDesk) -> None:
    desk, api = wa.desk, wa.api
    session = desk.book(monday(9))
    wa.drain()
    [booked] = api.sent
    assert booked.template == "sessao_agendada"
    assert booked.request["to"] == BOOKED_ID and booked.wa_id == OLD_ID
    technician = "Ana Souza" if desk.technician(session["id"]) == "ana" else "Bruno Lima"
    assert booked.parameters == [
        "segunda-feira, 30 de novembro", "09:00", technician, "AnyDesk", session["manage_url"],
    ]  # fmt: skip
    assert booked.request["template"]["language"] == {"code": "pt_BR"}
    assert "Relojoaria" not in json.dumps(booked.request)  # no client text in a template

    # Meta reports it sent, then delivered and read: the session's notification says so.
    wa.webhooks()
    api.progress(booked.wamid, "read")
    api.progress(booked.wamid, "delivered")  # late: never overwrites "read"
    assert wa.webhooks() == [200, 200]
    _, full = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    [record] = full["whatsapp"]
    assert (record["event"], record["form"], record["status"]) == ("booked", "template", "read")

    desk.clock.set(monday(8))  # an hour before: the reminder, with the checklist's template
    wa.drain()
    assert [s.template for s in api.sent] == ["sessao_agendada", "sessao_lembrete"]

    desk.clock.set(monday(9, 10) + timedelta(seconds=1))
    desk.daemon.sweep()
    wa.drain()
    assert wa.status(session["id"]) == "rescheduled"
    assert api.sent[-1].template == "sessao_reagendada"
    assert api.sent[-1].parameters[-1] == session["manage_url"]  # the link to book again
    assert len(api.sent) == 3


def test_a_rate_limit_delivers_once_later(wa: WhatsAppDesk) -> None:
    desk, api = wa.desk, wa.api
    api.refuse_next(80007)  # HTTP 429
    api.refuse_next(130429)
    session = desk.book(monday(9))
    other = desk.book(monday(10), phone="(11) 91234-5678")
    wa.drain()
    # One refusal holds back the other message too, until the next round.
    assert api.sent == [] and [code for code, _ in api.refused] == [80007]
    assert wa.status(session["id"]) == "booked"  # the booking never waited for WhatsApp
    desk.clock.advance(timedelta(minutes=16))  # past the longest backoff
    wa.drain()
    assert api.sent == [] and len(api.refused) == 2
    for _ in range(2):  # (up to 07:48: no reminder due yet)
        desk.clock.advance(timedelta(minutes=16))
        wa.drain()
    assert sorted(s.request["to"] for s in api.sent) == ["5511912345678", "5511987654321"]
    assert {s.template for s in api.sent} == {"sessao_agendada"}
    assert len(desk.daemon.store.whatsapp_messages(other["id"])) == 1


def test_a_message_at_session_time_checks_the_session_in_once(wa: WhatsAppDesk) -> None:
    desk, api = wa.desk, wa.api
    session = desk.book(monday(9))
    wa.drain()
    desk.clock.set(monday(9, 3))
    api.client_says(OLD_ID, "Oi, estou pronta. AnyDesk 123 456 789")
    assert set(wa.webhooks()) == {200}
    wa.drain()
    assert wa.status(session["id"]) == "in_progress"
    audit = desk.daemon.store.audit_log(session["id"])
    [checkin] = [e for e in audit if e.details.get("to") == "in_progress"]
    assert (checkin.actor, checkin.details["source"]) == ("client", "whatsapp")
    answer = api.sent[-1]
    assert answer.request["to"] == OLD_ID and answer.text is not None
    assert answer.text.startswith("Obrigado, Maria Lima!")
    # The technician is told by mail (and their calendar event is rewritten).
    notices = [m for m in wa.smtp.messages if "WhatsApp" in str(m.message["Subject"])]
    assert [m.rcpt_tos for m in notices] == [(f"{desk.technician(session['id'])}@example.com",)]

    # Meta retries and replays: nothing happens twice.
    sent = len(api.sent)
    [hook] = [h for h in api.delivered if b'"text":{"body"' in h.body]
    assert api.replay(hook) == 200
    wa.drain()
    assert len(api.sent) == sent
    assert [e.details.get("to") for e in desk.daemon.store.audit_log(session["id"])].count(
        "in_progress"
    ) == 1
    # A message during the session is for the technician: no automatic answer.
    api.client_says(OLD_ID, "Pode acessar")
    wa.webhooks()
    wa.drain()
    assert len(api.sent) == sent


def test_forged_unsigned_unknown_and_early_messages_change_nothing(wa: WhatsAppDesk) -> None:
    desk, api = wa.desk, wa.api
    session = desk.book(monday(9))
    wa.drain()
    wa.webhooks()
    desk.clock.set(monday(9, 2))
    # A reaction to the confirmation is no one writing: no check-in, no answer.
    sent = len(api.sent)
    api.client_reacts(OLD_ID, api.sent[0].wamid)
    wa.webhooks()
    wa.drain()
    assert wa.status(session["id"]) == "booked" and len(api.sent) == sent
    forged = api.client_says(OLD_ID, "Oi")
    [hook] = api.queue
    api.queue.clear()
    assert api.post(hook.body, signature="") == 401
    assert api.post(hook.body, signature=hub_signature("not-the-app-secret", hook.body)) == 403
    tampered = hook.body.replace(OLD_ID.encode(), b"551187654322")
    assert api.post(tampered, signature=hub_signature(APP_SECRET, hook.body)) == 403
    wa.drain()
    assert wa.status(session["id"]) == "booked"
    assert forged not in desk.daemon.store.inbound_outcomes()

    # A number no session was booked with: the booking link, no change.
    api.client_says("5521987650000", "Quero agendar")
    wa.webhooks()
    wa.drain()
    assert wa.status(session["id"]) == "booked"
    assert api.sent[-1].request["to"] == "5521987650000"
    assert desk.daemon.config.server.public_url in (api.sent[-1].text or "")

    # The booked client, too early (check-in opens 30 minutes before): the session's time.
    desk.clock.set(monday(7, 0))
    api.client_says(OLD_ID, "Bom dia")
    wa.webhooks()
    wa.drain()
    assert wa.status(session["id"]) == "booked"
    assert "09:00" in (api.sent[-1].text or "") and "08:30" in (api.sent[-1].text or "")
    # ... and once in a while, not on every message.
    sent = len(api.sent)
    api.client_says(OLD_ID, "?")
    wa.webhooks()
    wa.drain()
    assert len(api.sent) == sent and wa.status(session["id"]) == "booked"


def test_a_late_message_delivered_in_the_window_does_not_check_in(wa: WhatsAppDesk) -> None:
    """Meta retried a message written before the check-in opened: it was not written at
    session time, so it is no check-in."""
    desk, api = wa.desk, wa.api
    session = desk.book(monday(9))
    wa.drain()
    desk.clock.set(monday(8))
    api.client_says(OLD_ID, "Até mais tarde")
    desk.clock.set(monday(9))
    wa.webhooks()
    wa.drain()
    assert wa.status(session["id"]) == "booked"


def test_handshake_and_refusals_of_the_api(wa: WhatsAppDesk) -> None:
    desk, api = wa.desk, wa.api
    assert not api.subscribe(desk.url + "/webhooks/whatsapp", "not-the-verify-token")
    # The deploy guide's check, as pasted (the token file is the test desk's).
    token_file = desk.path.parent / "secrets" / "whatsapp-verify"
    assert deploy_guide_handshake(desk.url, token_file) == "42"
    status, _ = http("GET", desk.url + "/webhooks/whatsapp?hub.mode=subscribe")
    assert status == 400

    # An undeliverable number: the session is flagged for the desk to call.
    session = desk.book(monday(9), phone="(21) 91234-5678")
    wa.drain()
    wa.webhooks()
    _, body = desk.get(f"/api/v1/sessions/{session['id']}", ADMIN)
    assert "131026" in str(body["needs_attention"])

    # The token refused: reported in health, given up rather than retried forever.
    api.token = "EAAG-rotated"
    desk.book(monday(10))
    wa.drain()
    assert api.refused[-1][0] == 190
    _, health = desk.get("/healthz", ADMIN)
    assert health["whatsapp"]["status"] == "token_refused"
    assert "190" in health["whatsapp"]["last_error"]
    refused = len(api.refused)
    desk.clock.advance(timedelta(minutes=30))  # long past any backoff; no reminder due yet
    wa.drain()
    assert len(api.refused) == refused


def test_free_text_refused_outside_meta_s_window_falls_back_to_the_template(
    wa: WhatsAppDesk,
) -> None:
    desk, api = wa.desk, wa.api
    api.client_says(OLD_ID, "Oi, quero marcar")  # the window opens
    wa.webhooks()
    wa.drain()
    api.close_window(OLD_ID)  # but Meta sees it closed
    session = desk.book(monday(9))
    wa.drain()
    text = api.sent[-1]
    assert text.text is not None and text.text.startswith("Olá, Maria Lima!")
    wa.webhooks()  # "failed", 131047
    wa.drain()
    assert api.sent[-1].template == "sessao_agendada"
    wa.webhooks()
    wa.drain()
    records = desk.daemon.store.whatsapp_messages(session["id"])
    assert [(m.form, m.status, m.error_code) for m in records] == [
        ("text", "failed", 131047),
        ("template", "sent", None),
    ]


def test_refusals_in_the_answer_itself_are_handled_like_those_in_webhooks(
    wa: WhatsAppDesk,
) -> None:
    """Meta mostly reports 131026 and 131047 in status webhooks, but may answer a request
    with them: the same follows."""
    desk, api = wa.desk, wa.api
    api.refuse_next(131026)
    first = desk.book(monday(9))
    wa.drain()
    _, body = desk.get(f"/api/v1/sessions/{first['id']}", ADMIN)
    assert "131026" in str(body["needs_attention"]) and api.sent == []

    api.client_says(OLD_ID, "Oi")  # the window opens: the next confirmation is free-form
    wa.webhooks()
    wa.drain()
    api.refuse_next(131047)
    desk.book(monday(10))
    wa.drain()
    assert [code for code, _ in api.refused] == [131026, 131047]
    assert api.refused[-1][1]["type"] == "text"
    assert api.sent[-1].template == "sessao_agendada"  # sent again at once as the template


def test_expediente_run_checks_in_by_message_on_its_own(
    radicale: CalDAVServer, tmp_path: Path
) -> None:
    """The real process: the webhook records the message and the daemon's own loop acts on
    it, with nobody driving the outbox."""
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    start = monday(8, 35)  # check-in for 09:00 is open; a 09:00 booking is still allowed
    began = time.monotonic()
    api = CloudApi(
        phone_number_id=PHONE_ID,
        token=TOKEN,
        app_secret=APP_SECRET,
        templates=TEMPLATES,
        now=lambda: start + timedelta(seconds=time.monotonic() - began),
        accounts=(OLD_ID,),
    )
    port = free_port()
    path = write_config(tmp_path, calendars, port=port, settings=LIVE)
    with api:
        path.write_text(path.read_text() + whatsapp_section(tmp_path, api.endpoint))
        process = Process(path, port, start, tmp_path / "daemon.log")
        try:
            process.start()
            assert api.subscribe(process.url + "/webhooks/whatsapp", VERIFY)
            status, session = http("POST", process.url + "/api/v1/bookings", booking(monday(9)))
            assert status == 201, session
            process.wait_until(lambda: [s.template for s in api.sent] == ["sessao_agendada"],
                               "the confirmation")  # fmt: skip
            api.client_says(OLD_ID, "Pronta!")
            assert 200 in api.deliver_webhooks()
            url = f"{process.url}/api/v1/sessions/{session['id']}"
            process.wait_until(
                lambda: http("GET", url, headers=ADMIN)[1]["status"] == "in_progress", "check-in"
            )
            process.wait_until(lambda: api.sent[-1].text is not None, "the answer")
        finally:
            assert process.stop() == 0
