"""Notifications through the running daemon: real HTTP in, real Radicale and a real SMTP
server out, the outbox in between."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest

from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.systemd import Notifier
from tests.daemon.desk import hook_section, monday, smtp_section, write_config
from tests.e2e.harness import LIVE, Desk
from tests.servers import CalDAVServer
from tests.servers.smtp import SmtpServer, smtp_server
from tests.servers.webhooks import Receiver, deploy_guide_webhooks

pytestmark = pytest.mark.slow


@pytest.fixture
def mailing_desk(radicale: CalDAVServer, tmp_path: Path) -> Iterator[tuple[Desk, SmtpServer]]:
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    path = write_config(tmp_path, calendars, settings=LIVE)
    with smtp_server() as smtp:
        path.write_text(path.read_text() + f"\n[smtp]\n{smtp_section(smtp.port)}\n")
        clock = FixedClock(monday(7, 0))
        daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
        daemon.start(port=0)
        try:
            yield Desk(daemon, clock, radicale, calendars, path), smtp
        finally:
            daemon.shutdown()


def invitation(message: EmailMessage) -> icalendar.Calendar:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return icalendar.Calendar.from_ical(payload)
    raise AssertionError("no text/calendar part")


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None, "no text/plain part"
    return str(body.get_content())


def test_booking_confirmation_reminder_and_no_show_mail(
    mailing_desk: tuple[Desk, SmtpServer],
) -> None:
    desk, smtp = mailing_desk
    session = desk.book(monday(9))
    desk.daemon.flush()  # the calendar write and the notification plan
    desk.daemon.flush()  # the mail the plan queued
    [confirmation] = smtp.messages
    assert confirmation.rcpt_tos == ("maria@example.com",)
    cal = invitation(confirmation.message)
    assert str(cal["METHOD"]) == "REQUEST"
    assert cal.walk("VEVENT")[0].decoded("DTSTART") == monday(9)
    assert session["manage_url"] in plain(confirmation.message)

    desk.clock.set(monday(8))  # an hour before: the reminder
    desk.daemon.flush()
    assert len(smtp.messages) == 2
    reminder = plain(smtp.messages[1].message)
    assert "AnyDesk" in reminder and "10" in reminder

    desk.clock.set(monday(9, 10) + timedelta(seconds=1))
    desk.daemon.sweep()
    desk.daemon.flush()
    desk.daemon.flush()
    assert len(smtp.messages) == 3
    rebook = plain(smtp.messages[2].message)
    assert "/manage/" in rebook, "the no-show mail carries the link to book again"


def test_a_mail_outage_never_blocks_or_loses_a_booking(
    mailing_desk: tuple[Desk, SmtpServer],
) -> None:
    desk, smtp = mailing_desk
    smtp.refuse_data = "451 try again later"
    session = desk.book(monday(9))
    desk.daemon.flush()
    report = desk.daemon.flush()
    assert report.failed == 1 and smtp.messages == []
    # The calendar got its event regardless.
    assert desk.event(session["id"]) is not None
    smtp.refuse_data = None
    desk.clock.advance(timedelta(minutes=5))
    desk.daemon.flush()
    assert [m.rcpt_tos for m in smtp.messages] == [("maria@example.com",)]


def test_a_move_in_the_calendar_is_mailed_and_sent_to_webhooks(
    radicale: CalDAVServer, tmp_path: Path
) -> None:
    """The technician moves the event in their calendar app: the client's mail says from
    what time to what, and the webhook (checked with the deploy guide's recipe) says so."""
    calendars = {"ana": radicale.new_calendar(), "bruno": radicale.new_calendar()}
    path = write_config(tmp_path, calendars, settings=LIVE)
    verify = deploy_guide_webhooks(tmp_path / "secrets")
    with smtp_server() as smtp, Receiver() as receiver:
        hook = hook_section(receiver.url, ["moved"], secret="secrets/webhook-key")
        path.write_text(path.read_text() + f"\n[smtp]\n{smtp_section(smtp.port)}\n{hook}")
        clock = FixedClock(monday(7, 0))
        daemon = Daemon(load_config(path), clock=clock, systemd=Notifier({}))
        daemon.start(port=0)
        try:
            desk = Desk(daemon, clock, radicale, calendars, path)
            session = desk.book(monday(9))
            desk.daemon.flush()
            desk.daemon.flush()
            assert len(smtp.messages) == 1  # the confirmation
            desk.daemon.sync_all()
            tech = desk.technician(session["id"])
            name = desk.event_name(session["id"])
            raw = desk.calendars[tech].get_raw(name)
            assert raw is not None
            cal = icalendar.Calendar.from_ical(raw)
            event = cal.events[0]
            event.DTSTART = datetime.fromisoformat("2026-11-30T14:00:00+00:00")  # 11:00 local
            event.DTEND = event.DTSTART + timedelta(minutes=30)
            desk.calendars[tech].put_raw(name, cal.to_ical())
            clock.advance(timedelta(minutes=1))
            desk.daemon.sync_all()
            desk.daemon.flush()
            desk.daemon.flush()
        finally:
            daemon.shutdown()
        moved = smtp.messages[1].message
        assert moved["Subject"].startswith("Novo horário do atendimento remoto: segunda-feira")
        assert (
            "mudou: de segunda-feira, 30 de novembro de 2026, 09:00–09:30 para "
            "segunda-feira, 30 de novembro de 2026, 11:00–11:30."
        ) in plain(moved)
        assert invitation(moved).walk("VEVENT")[0].decoded("DTSTART") == monday(11)
        [(headers, body, _)] = receiver.requests
        assert verify(
            str(tmp_path / "secrets" / "webhook-key"), headers, body, now=clock.now().timestamp()
        )
        document = json.loads(body)
        assert document["event"] == "moved"
        assert document["previous"] == {
            "start": "2026-11-30T12:00:00+00:00",
            "end": "2026-11-30T12:30:00+00:00",
        }
        assert document["session"]["start"] == "2026-11-30T14:00:00+00:00"
