"""Notifications against real servers: aiosmtpd for mail, http.server for webhooks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest

from daemon.config import Config, load_config
from daemon.events import CHECKIN_PURPOSE, MANAGE_PURPOSE
from daemon.invitation import client_uid
from daemon.notify import Delivery, DeliveryFailed, Notifier
from daemon.signing import Signer
from daemon.store import SessionRecord
from rules.model import Status
from tests.daemon.desk import hook_section, smtp_section, write_config
from tests.daemon.forged import FORGED, own_and_quoted
from tests.factories import RECORD_BOOKED, RECORD_START
from tests.factories import session_record as record
from tests.servers import free_port
from tests.servers.smtp import SmtpServer, self_signed, smtp_server
from tests.servers.webhooks import Receiver, deploy_guide_webhooks

NOW, START = RECORD_BOOKED, RECORD_START  # the sample session was booked at NOW for START
WEBHOOK_KEY = "webhook-key-for-tests-0123456789"


# --------------------------------------------------------------------------- fixtures


def write_notify_config(
    folder: Path,
    *,
    smtp: str | None = None,
    notifications: str = "technician_email = true\nadmin_email = 'chefe@example.com'",
    reminder: str = "1h",
    webhooks: str = "",
    language: str = "pt-BR",
) -> Config:
    path = write_config(
        folder,
        settings={
            "desk": {
                "language": language,
                "phone": "+55 11 3333-4444",
                "whatsapp": "+55 11 99999-0000",
                "email": "suporte@example.com",
            },
            "booking": {"reminder": reminder},
        },
        technicians={"ana": {"email": "ana@example.com"}},
        tail=f"\n[notifications]\n{notifications}\n"
        + ("" if smtp is None else f"\n[smtp]\n{smtp}\n")
        + webhooks,
    )
    (folder / "secrets" / "webhook").write_text(WEBHOOK_KEY + "\n")
    return load_config(path)


def signer_of(config: Config) -> Signer:
    return Signer(config.server.signing_key.reveal().encode())


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_config(tmp_path: Path, smtp: SmtpServer) -> Config:
    return write_notify_config(tmp_path, smtp=smtp_section(smtp.port))


def send(notifier: Notifier, delivery: Delivery, session: SessionRecord, now: datetime) -> None:
    """Deliver as the outbox does: from the stored JSON payload, without ``not_before``."""
    stored = json.loads(json.dumps(delivery.payload))
    notifier.deliver(Delivery(delivery.action, stored), session, now)


def mails(deliveries: list[Delivery]) -> list[tuple[str, str, str]]:
    return [
        (d.payload["kind"], d.payload["role"], d.payload["to"])
        for d in deliveries
        if d.action == "mail"
    ]


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    attachments = [p for p in message.walk() if p.get_filename() == "invite.ics"]
    assert len(parts) == 1 and len(attachments) == 1
    inline = icalendar.Calendar.from_ical(parts[0].get_content())
    attached = icalendar.Calendar.from_ical(attachments[0].get_content())
    assert inline.to_ical() == attached.to_ical(), "the inline part and the file agree"
    method = parts[0].get_param("method")
    assert method == str(inline["METHOD"])
    return inline


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


# --------------------------------------------------------------------------- planning


def test_booked_plans_confirmation_reminder_technician_notice_and_webhooks(
    tmp_path: Path,
) -> None:
    hooks = hook_section("http://127.0.0.1:9/all") + hook_section(
        "http://127.0.0.1:9/cancels", ["cancelled"]
    )
    config = write_notify_config(tmp_path, smtp=smtp_section(25), webhooks=hooks)
    plan = Notifier(config, signer_of(config)).plan(record(), "booked", NOW)
    assert mails(plan) == [
        ("booked", "client", "maria@example.com"),
        ("reminder", "client", "maria@example.com"),
        ("notice", "technician", "ana@example.com"),
    ]
    reminder = next(d for d in plan if d.payload.get("kind") == "reminder")
    assert reminder.not_before == START - timedelta(hours=1)
    assert all(d.not_before is None for d in plan if d is not reminder)
    assert [d.payload["url"] for d in plan if d.action == "webhook"] == ["http://127.0.0.1:9/all"]
    json.dumps([d.payload for d in plan])  # stored as JSON in the outbox


def test_a_resent_confirmation_goes_to_the_client_alone(tmp_path: Path) -> None:
    """The desk console's "resend": the booked mail and invitation again; no reminder (the
    first one is still planned), no notice to the technician, no webhook."""
    config = write_notify_config(
        tmp_path, smtp=smtp_section(25), webhooks=hook_section("http://127.0.0.1:9/all")
    )
    plan = Notifier(config, signer_of(config)).plan(record(), "resend", NOW)
    assert mails(plan) == [("booked", "client", "maria@example.com")]
    assert [d for d in plan if d.action == "webhook"] == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("rescheduled", [("rescheduled", "client"), ("notice", "technician"), ("notice", "admin")]),
        ("cancelled", [("cancelled", "client"), ("notice", "technician"), ("notice", "admin")]),
        ("checked_in", []),
        ("completed", []),
    ],
)
def test_each_event_mails_whom_it_concerns(
    tmp_path: Path, event: str, expected: list[tuple[str, str]]
) -> None:
    config = write_notify_config(tmp_path, smtp=smtp_section(25))
    plan = Notifier(config, signer_of(config)).plan(record(), event, NOW)
    assert [(kind, role) for kind, role, _ in mails(plan)] == expected
    assert all(d.not_before is None for d in plan)


def test_webhooks_get_the_events_they_list_and_checked_in_is_in_progress(
    tmp_path: Path,
) -> None:
    hooks = hook_section("http://127.0.0.1:9/a", ["in_progress", "completed"]) + hook_section(
        "http://127.0.0.1:9/b", ["booked"]
    )
    config = write_notify_config(tmp_path, webhooks=hooks)
    notifier = Notifier(config, signer_of(config))
    urls = {
        event: [d.payload["url"] for d in notifier.plan(record(), event, NOW)]
        for event in ("booked", "checked_in", "rescheduled", "cancelled", "completed")
    }
    assert urls == {
        "booked": ["http://127.0.0.1:9/b"],
        "checked_in": ["http://127.0.0.1:9/a"],
        "rescheduled": [],
        "cancelled": [],
        "completed": ["http://127.0.0.1:9/a"],
    }


def test_webhooks_fire_on_a_move_by_default_and_when_listed(tmp_path: Path) -> None:
    hooks = hook_section("http://127.0.0.1:9/all") + hook_section(
        "http://127.0.0.1:9/moves", ["moved"]
    )
    config = write_notify_config(tmp_path, webhooks=hooks)
    notifier = Notifier(config, signer_of(config))
    urls = {
        event: [d.payload["url"] for d in notifier.plan(record(), event, NOW)]
        for event in ("booked", "moved")
    }
    assert urls == {
        "booked": ["http://127.0.0.1:9/all"],
        "moved": ["http://127.0.0.1:9/all", "http://127.0.0.1:9/moves"],
    }


def test_without_smtp_only_webhooks_are_planned(tmp_path: Path) -> None:
    config = write_notify_config(tmp_path, webhooks=hook_section("http://127.0.0.1:9/a"))
    plan = Notifier(config, signer_of(config)).plan(record(), "booked", NOW)
    assert [d.action for d in plan] == ["webhook"]


def test_client_mail_needs_the_setting_and_an_address(tmp_path: Path) -> None:
    off = write_notify_config(
        tmp_path / "off", smtp=smtp_section(25), notifications="client_email = false"
    )
    assert Notifier(off, signer_of(off)).plan(record(), "booked", NOW) == []
    on = write_notify_config(tmp_path / "on", smtp=smtp_section(25), notifications="")
    assert Notifier(on, signer_of(on)).plan(record(email=""), "booked", NOW) == []
    assert mails(Notifier(on, signer_of(on)).plan(record(), "cancelled", NOW)) == [
        ("cancelled", "client", "maria@example.com")
    ]


def test_no_reminder_when_off_or_already_due(tmp_path: Path) -> None:
    off = write_notify_config(tmp_path / "off", smtp=smtp_section(25), reminder="0m")
    assert [
        k for k, _, _ in mails(Notifier(off, signer_of(off)).plan(record(), "booked", NOW))
    ] == [
        "booked",
        "notice",
    ]
    on = write_notify_config(tmp_path / "on", smtp=smtp_section(25))
    late = Notifier(on, signer_of(on)).plan(record(), "booked", START - timedelta(minutes=30))
    assert "reminder" not in [k for k, _, _ in mails(late)]


def test_unknown_event_plans_nothing(tmp_path: Path) -> None:
    config = write_notify_config(tmp_path, smtp=smtp_section(25))
    assert Notifier(config, signer_of(config)).plan(record(), "exploded", NOW) == []


# --------------------------------------------------------------------------- mail


def test_confirmation_is_a_pt_br_invitation_with_the_checklist(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    booked = notifier.plan(session, "booked", NOW)[0]
    send(notifier, booked, session, NOW)
    [received] = smtp.messages
    assert received.rcpt_tos == ("maria@example.com",)
    assert received.mail_from == "agenda@example.com"
    message = received.message
    assert message["Subject"] == (
        "Atendimento remoto agendado: segunda-feira, 30 de novembro de 2026, 10:00–10:30 "
        "— Suporte Técnico"
    )
    assert message["To"].addresses[0].addr_spec == "maria@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    text = text_of(message)
    assert "Instale o AnyDesk no computador antes das 10:00." in text
    assert "WhatsApp: +55 11 99999-0000" in text
    assert "Maria Lima (ou outro responsável da empresa) deve estar presente" in text
    assert "Toleramos até 10 minutos de atraso" in text
    assert "10:00–10:30 (horário de Brasília)" in text
    assert "America/Sao_Paulo" not in text
    assert "http://127.0.0.1:8080/manage/" in text
    assert "/checkin/" not in received.data.decode(), "the check-in link is the desk's"

    calendar = calendar_of(message)
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == client_uid(session)
    assert event.decoded("DTSTART") == START
    assert event.decoded("DTEND") == START + timedelta(minutes=30)
    assert event.decoded("SEQUENCE") == 0
    assert str(event["ORGANIZER"]) == "mailto:agenda@example.com"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:maria@example.com"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["CN"] == "Maria Lima"


def test_english_session_gets_english_mail(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(language="en")
    send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    message = smtp.messages[0].message
    assert message["Subject"].startswith("Remote session booked: Monday, November 30, 2026, 10:00")
    text = text_of(message)
    assert "Install AnyDesk on the computer before 10:00." in text
    assert "Up to 10 minutes of delay are tolerated" in text
    assert "10:00–10:30 (Brasilia Time)" in text
    assert "Instale" not in text


def test_a_spanish_desk_mails_in_spanish(tmp_path: Path, smtp: SmtpServer) -> None:
    config = write_notify_config(tmp_path, smtp=smtp_section(smtp.port), language="es")
    notifier = Notifier(config, signer_of(config))
    session = record(language="es")
    for delivery in notifier.plan(session, "booked", NOW):
        if delivery.action == "mail" and delivery.payload["kind"] in ("booked", "notice"):
            send(notifier, delivery, session, NOW)
    client, technician = (m.message for m in smtp.messages)
    assert client["Subject"] == (
        "Atención remota agendada: lunes, 30 de noviembre de 2026, 10:00–10:30 — Suporte Técnico"
    )
    text = text_of(client)
    assert text.startswith("Hola, Maria Lima:\n\nSu atención remota para Relojoaria Central")
    assert "Cuándo: lunes, 30 de noviembre de 2026, 10:00–10:30 (hora de Brasilia)" in text
    assert "Tipo: Atención remota" in text  # the default session type, from the catalog
    assert "Instale AnyDesk en la computadora antes de las 10:00." in text
    assert "Se toleran hasta 10 minutos de retraso" in text
    assert "Teléfono: +55 11 3333-4444" in text and "Saludos cordiales," in text
    assert "Instale o" not in text and "Install" not in text
    [event] = calendar_of(client).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Atención remota — Suporte Técnico"
    assert "comuníquese con soporte técnico por WhatsApp" in str(event["DESCRIPTION"])
    # The technician reads the desk's language.
    assert technician["Subject"].startswith("Nueva atención: Relojoaria Central — lunes")
    assert "Check-in (abrir cuando el cliente llame): " in text_of(technician)


def test_reminder_carries_the_checklist_and_is_skipped_once_void(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    reminder = next(
        d for d in notifier.plan(session, "booked", NOW) if d.payload.get("kind") == "reminder"
    )
    due = START - timedelta(hours=1)
    send(notifier, reminder, dataclasses.replace(session, status=Status.CANCELLED), due)
    send(notifier, reminder, dataclasses.replace(session, status=Status.RESCHEDULED), due)
    send(notifier, reminder, session, START + timedelta(minutes=1))
    assert smtp.messages == []
    send(notifier, reminder, session, due)
    [received] = smtp.messages
    assert received.message["Subject"].startswith("Lembrete: atendimento remoto às 10:00")
    text = text_of(received.message)
    for line in (
        "Instale o AnyDesk no computador antes das 10:00.",
        "chame o suporte por WhatsApp ou ligação com os dados do acesso (AnyDesk, ID 123456789)",
        "deve estar presente",
        "Toleramos até 10 minutos de atraso: sem contato até as 10:10",
        "/manage/",
    ):
        assert line in text
    assert not [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]


def test_a_reminder_after_the_cancel_cutoff_says_to_call_instead(
    mail_config: Config, smtp: SmtpServer
) -> None:
    """cancel_cutoff is 2h: a reminder an hour before must not offer what the page refuses."""
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    confirmation, reminder = notifier.plan(session, "booked", NOW)[:2]
    send(notifier, confirmation, session, NOW)
    send(notifier, reminder, session, START - timedelta(hours=1))
    booked, reminded = (text_of(m.message) for m in smtp.messages)
    assert "Ver, cancelar ou remarcar o atendimento:\nhttp://127.0.0.1:8080/manage/" in booked
    assert "É possível cancelar ou remarcar por aqui até segunda-feira, 30 de novembro, 08:00." in (
        booked
    )
    assert "cancelar ou remarcar o atendimento" not in reminded
    assert (
        "Falta menos de 2 horas para o início: para cancelar ou remarcar, fale com o suporte.\n"
        "Ver o atendimento:\nhttp://127.0.0.1:8080/manage/"
    ) in reminded


def test_a_reminder_before_the_cancel_cutoff_still_offers_it(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    config = write_notify_config(tmp_path, smtp=smtp_section(smtp.port), reminder="3h")
    notifier = Notifier(config, signer_of(config))
    session = record()
    reminder = notifier.plan(session, "booked", NOW - timedelta(hours=1))[1]
    assert reminder.payload["kind"] == "reminder"
    send(notifier, reminder, session, START - timedelta(hours=3))
    text = text_of(smtp.messages[0].message)
    assert "Ver, cancelar ou remarcar o atendimento:" in text
    assert "até segunda-feira, 30 de novembro, 08:00." in text


def test_a_moved_session_mail_says_from_when_to_when(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    later = NOW + timedelta(minutes=5)
    new_start = START + timedelta(hours=4)
    moved = dataclasses.replace(
        session, start=new_start, end=new_start + timedelta(minutes=30), updated_at=later
    )
    details = {
        "from_start": START.isoformat(),
        "from_end": (START + timedelta(minutes=30)).isoformat(),
    }
    plan = notifier.plan(moved, "moved", later, details)
    assert mails(plan) == [
        ("moved", "client", "maria@example.com"),
        ("reminder", "client", "maria@example.com"),
    ]
    send(notifier, plan[0], moved, later)
    message = smtp.messages[1].message
    assert message["Subject"] == (
        "Novo horário do atendimento remoto: segunda-feira, 30 de novembro de 2026, "
        "14:00–14:30 — Suporte Técnico"
    )
    assert (
        "O horário do seu atendimento remoto para Relojoaria Central mudou: de segunda-feira, "
        "30 de novembro de 2026, 10:00–10:30 para segunda-feira, 30 de novembro de 2026, "
        "14:00–14:30."
    ) in text_of(message)
    [first] = calendar_of(smtp.messages[0].message).walk("VEVENT")
    [second] = calendar_of(message).walk("VEVENT")
    assert calendar_of(message)["METHOD"] == "REQUEST"
    assert second["UID"] == first["UID"]
    assert second.decoded("SEQUENCE") > first.decoded("SEQUENCE")
    assert second.decoded("DTSTART") == new_start


def test_a_move_planned_without_the_old_time_still_says_the_time_changed(
    mail_config: Config, smtp: SmtpServer
) -> None:
    """An outbox item written before the old time was recorded: the new time alone."""
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    send(notifier, notifier.plan(session, "moved", NOW)[0], session, NOW)
    assert "mudou: agora é segunda-feira, 30 de novembro de 2026, 10:00–10:30." in text_of(
        smtp.messages[0].message
    )


def test_cancel_has_same_uid_and_a_higher_sequence(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    later = NOW + timedelta(seconds=1)  # as fast as the store allows: one second apart
    cancelled = dataclasses.replace(session, status=Status.CANCELLED, updated_at=later)
    send(notifier, notifier.plan(cancelled, "cancelled", later)[0], cancelled, later)
    request, cancel = (calendar_of(m.message) for m in smtp.messages)
    assert (request["METHOD"], cancel["METHOD"]) == ("REQUEST", "CANCEL")
    [first], [second] = request.walk("VEVENT"), cancel.walk("VEVENT")
    assert first["UID"] == second["UID"]
    assert second.decoded("SEQUENCE") > first.decoded("SEQUENCE")
    assert second["STATUS"] == "CANCELLED"
    assert first.walk("VALARM") and not second.walk("VALARM")
    assert second.decoded("DTSTART") == START
    assert smtp.messages[1].message["Subject"].startswith("Atendimento remoto cancelado")


def test_cancel_in_the_same_second_still_outranks_the_request(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    cancelled = record(status=Status.CANCELLED)
    [cancel] = [
        d for d in notifier.plan(cancelled, "cancelled", NOW) if d.payload["role"] == "client"
    ]
    assert cancel.payload["sequence"] == 1


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("desk", "Motivo: cancelado pelo suporte"),
        ("technician_deleted", "Motivo: o técnico retirou o atendimento da agenda"),
        # What earlier versions stored reads in the desk's words too.
        ("cancelled by the desk", "Motivo: cancelado pelo suporte"),
        ("rebooked as 0123abcd", "Motivo: substituído por um novo horário"),
        ("O cliente pediu por telefone", "Motivo: O cliente pediu por telefone"),
    ],
)
def test_cancel_mails_give_the_reason_in_the_readers_language(
    mail_config: Config, smtp: SmtpServer, stored: str, shown: str
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(status=Status.CANCELLED, cancel_reason=stored)
    for delivery in notifier.plan(session, "cancelled", NOW):
        send(notifier, delivery, session, NOW)
    assert [m.rcpt_tos[0] for m in smtp.messages] == [
        "maria@example.com",
        "ana@example.com",
        "chefe@example.com",
    ]
    for received in smtp.messages:
        text = text_of(received.message)
        assert shown in text, text
        assert "cancelled" not in text.replace("CANCELLED", "")
    client = text_of(smtp.messages[0].message)
    assert "Escolha um novo horário por este link:\nhttp://127.0.0.1:8080/manage/" in client
    assert "cancelar ou remarcar" not in client, "nothing is left to cancel"


def test_an_english_client_reads_the_reason_in_english(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(status=Status.CANCELLED, cancel_reason="client", language="en")
    client, notice = notifier.plan(session, "cancelled", NOW)[:2]
    send(notifier, client, session, NOW)
    send(notifier, notice, session, NOW)
    assert "Reason: cancelled at the client's request" in text_of(smtp.messages[0].message)
    # The desk reads its own language whatever the client's.
    assert "Motivo: cancelado a pedido do cliente" in text_of(smtp.messages[1].message)


def test_no_show_mail_links_to_booking_again(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(status=Status.RESCHEDULED, updated_at=START + timedelta(minutes=10))
    now = START + timedelta(minutes=11)
    send(notifier, notifier.plan(session, "rescheduled", now)[0], session, now)
    message = smtp.messages[0].message
    assert message["Subject"].startswith("Atendimento não realizado")
    text = text_of(message)
    assert "tolerância de 10 minutos" in text
    link = text.split("Escolha um novo horário por este link:\n", 1)[1].split("\n", 1)[0]
    token = link.rsplit("/manage/", 1)[1]
    assert signer_of(mail_config).verify(token, MANAGE_PURPOSE, now) == "s1"


def test_a_confirmation_overtaken_by_a_cancel_is_not_sent(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    booked = notifier.plan(session, "booked", NOW)[0]
    send(notifier, booked, dataclasses.replace(session, status=Status.CANCELLED), NOW)
    assert smtp.messages == []


def test_technician_notice_has_the_check_in_link(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    notice = next(d for d in notifier.plan(session, "booked", NOW) if d.payload["role"] != "client")
    send(notifier, notice, session, NOW)
    [received] = smtp.messages
    assert received.rcpt_tos == ("ana@example.com",)
    text = text_of(received.message)
    token = text.split("/checkin/", 1)[1].split()[0]
    assert signer_of(mail_config).verify(token, CHECKIN_PURPOSE, NOW) == "s1"
    assert "Relojoaria Central" in received.message["Subject"]
    assert "/manage/" in text


def test_in_the_technicians_mail_the_clients_words_come_last_and_quoted(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(description=FORGED)
    notice = next(d for d in notifier.plan(session, "booked", NOW) if d.payload["role"] != "client")
    send(notifier, notice, session, NOW)
    own, quoted = own_and_quoted(text_of(smtp.messages[0].message).rstrip("\n"))
    assert "\n".join(line.removeprefix("> ").removeprefix(">") for line in quoted) == FORGED
    assert own[-2:] == ["Sessão: s1", ""]
    [checkin] = [line for line in own if line.startswith("Check-in")]
    token = checkin.split("/checkin/", 1)[1]
    assert signer_of(mail_config).verify(token, CHECKIN_PURPOSE, NOW) == "s1"


def test_user_text_cannot_inject_headers(mail_config: Config, smtp: SmtpServer) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(
        company="ACME\r\nBcc: victim@example.org",
        responsible_name="Maria\r\nX-Evil: 1",
        description="linha 1\r\nBcc: other@example.org",
    )
    for delivery in notifier.plan(session, "booked", NOW)[:3:2]:  # the client's and Ana's
        send(notifier, delivery, session, NOW)
    assert [m.rcpt_tos for m in smtp.messages] == [("maria@example.com",), ("ana@example.com",)]
    for received in smtp.messages:
        headers = received.data.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert "\nbcc:" not in headers and "\nx-evil:" not in headers
        assert received.message["Bcc"] is None and received.message["X-Evil"] is None
    assert "ACME Bcc: victim@example.org" in smtp.messages[1].message["Subject"]
    [event] = calendar_of(smtp.messages[0].message).walk("VEVENT")
    assert event["ATTENDEE"].params["CN"] == "Maria X-Evil: 1"


def test_an_address_that_cannot_be_written_is_a_permanent_failure(
    mail_config: Config, smtp: SmtpServer
) -> None:
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record(email="not an address@@example.com")
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert failure.value.permanent
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("where", "reply", "permanent"),
    [
        ("rcpt", "451 4.3.0 mailbox busy, try later", False),
        ("rcpt", "550 5.1.1 no such user", True),
        ("data", "452 4.3.1 insufficient storage", False),
        ("data", "554 5.7.1 message refused", True),
    ],
)
def test_smtp_refusals_are_transient_or_permanent_by_code(
    mail_config: Config, smtp: SmtpServer, where: str, reply: str, permanent: bool
) -> None:
    if where == "rcpt":
        smtp.refuse_rcpt = reply
    else:
        smtp.refuse_data = reply
    notifier = Notifier(mail_config, signer_of(mail_config))
    session = record()
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert failure.value.permanent is permanent
    assert reply.split()[0] in str(failure.value)


def test_mail_server_down_is_transient(tmp_path: Path) -> None:
    config = write_notify_config(tmp_path, smtp=smtp_section(free_port()))
    notifier = Notifier(config, signer_of(config))
    session = record()
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert not failure.value.permanent
    assert "cannot reach the mail server" in str(failure.value)


def test_silent_mail_server_times_out_transiently(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        config = write_notify_config(tmp_path, smtp=smtp_section(silent.getsockname()[1]))
        assert config.smtp is not None
        smtp = dataclasses.replace(config.smtp, timeout=timedelta(milliseconds=50))
        notifier = Notifier(dataclasses.replace(config, smtp=smtp), signer_of(config))
        session = record()
        with pytest.raises(DeliveryFailed) as failure:
            send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert not failure.value.permanent


def test_starttls_and_login(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    (tmp_path / "conf" / "secrets").mkdir(parents=True)
    (tmp_path / "conf" / "secrets" / "smtp").write_text("s3cret-pass\n")
    with smtp_server(starttls=cert.server_context(), login=("agenda", "s3cret-pass")) as server:
        section = smtp_section(
            server.port, security="starttls", username="agenda", password_file="secrets/smtp"
        )
        config = write_notify_config(tmp_path / "conf", smtp=section)
        session = record()
        trusting = Notifier(config, signer_of(config), tls_context=cert.client_context())
        send(trusting, trusting.plan(session, "booked", NOW)[0], session, NOW)
        assert [m.rcpt_tos for m in server.messages] == [("maria@example.com",)]

        untrusting = Notifier(config, signer_of(config))  # the system CAs do not know it
        with pytest.raises(DeliveryFailed) as failure:
            send(untrusting, untrusting.plan(session, "booked", NOW)[0], session, NOW)
        assert not failure.value.permanent
        assert len(server.messages) == 1


def test_wrong_password_is_retried_and_says_what_to_fix(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    (tmp_path / "conf" / "secrets").mkdir(parents=True)
    (tmp_path / "conf" / "secrets" / "smtp").write_text("wrong\n")
    with smtp_server(starttls=cert.server_context(), login=("agenda", "right")) as server:
        section = smtp_section(
            server.port, security="starttls", username="agenda", password_file="secrets/smtp"
        )
        config = write_notify_config(tmp_path / "conf", smtp=section)
        notifier = Notifier(config, signer_of(config), tls_context=cert.client_context())
        session = record()
        with pytest.raises(DeliveryFailed) as failure:
            send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
        assert not failure.value.permanent
        assert "password_file" in str(failure.value)
        assert server.messages == []


def test_implicit_tls(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    with smtp_server(implicit_tls=cert.server_context()) as server:
        config = write_notify_config(
            tmp_path / "conf", smtp=smtp_section(server.port, security="tls")
        )
        notifier = Notifier(config, signer_of(config), tls_context=cert.client_context())
        session = record()
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
        assert len(server.messages) == 1


# --------------------------------------------------------------------------- webhooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def hook_notifier(tmp_path: Path, url: str, *, secret: bool = True) -> Notifier:
    config = write_notify_config(tmp_path, webhooks=hook_section(url, secret=secret))
    return Notifier(config, signer_of(config))


def test_webhook_body_headers_and_a_verifiable_signature(
    tmp_path: Path, receiver: Receiver
) -> None:
    notifier = hook_notifier(tmp_path, receiver.url)
    session = record()
    [hook] = notifier.plan(session, "booked", NOW + timedelta(seconds=1))
    at = NOW + timedelta(seconds=3)
    send(notifier, hook, session, at)
    [(headers, body, path)] = receiver.requests
    assert path == "/hook"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Expediente-Event"] == "booked"
    document = json.loads(body)
    assert document["event"] == "booked"
    assert document["occurred_at"] == "2026-11-30T10:00:00+00:00"
    assert document["delivery"] == headers["X-Expediente-Delivery"]
    assert document["session"]["id"] == "s1"
    assert document["session"]["status"] == "booked"
    assert document["session"]["start"] == "2026-11-30T13:00:00+00:00"
    assert document["session"]["company"] == "Relojoaria Central"
    assert "/manage/" not in body.decode() and "/checkin/" not in body.decode()
    assert "calendar_etag" not in document["session"]

    # What a receiver does: recompute the MAC of "<timestamp>.<body>" with the shared key.
    timestamp = headers["X-Expediente-Timestamp"]
    assert int(timestamp) == int(at.timestamp())
    expected = hmac.new(WEBHOOK_KEY.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(headers["X-Expediente-Signature"], "sha256=" + expected.hexdigest())


def test_a_moved_webhook_says_the_previous_time(tmp_path: Path, receiver: Receiver) -> None:
    notifier = hook_notifier(tmp_path, receiver.url)
    new_start = START + timedelta(hours=4)
    session = record(start=new_start, end=new_start + timedelta(minutes=30))
    details = {
        "from_start": START.isoformat(),
        "from_end": (START + timedelta(minutes=30)).isoformat(),
    }
    [hook] = notifier.plan(session, "moved", NOW, details)
    send(notifier, hook, session, NOW)
    [(headers, body, _)] = receiver.requests
    document = json.loads(body)
    assert headers["X-Expediente-Event"] == document["event"] == "moved"
    assert document["previous"] == {
        "start": "2026-11-30T13:00:00+00:00",
        "end": "2026-11-30T13:30:00+00:00",
    }
    assert document["session"]["start"] == "2026-11-30T17:00:00+00:00"


def test_the_deploy_guides_recipe_verifies_a_real_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    verify = deploy_guide_webhooks(secrets)
    key_file = secrets / "webhook-key"
    assert key_file.read_text().endswith("\n"), "base64 ends the file with a newline"
    hook = hook_section(receiver.url, secret="secrets/webhook-key")
    config = write_notify_config(tmp_path, webhooks=hook)
    notifier = Notifier(config, signer_of(config))
    session = record()
    at = NOW + timedelta(seconds=3)
    send(notifier, notifier.plan(session, "booked", NOW)[0], session, at)
    [(headers, body, _)] = receiver.requests
    assert verify(str(key_file), headers, body, now=at.timestamp() + 60)
    # And it refuses what it must: another body, a replay ten minutes on, another key.
    assert not verify(str(key_file), headers, body.replace(b"s1", b"s2"), now=at.timestamp())
    assert not verify(str(key_file), headers, body, now=at.timestamp() + 600)
    (tmp_path / "other-key").write_text(WEBHOOK_KEY + "\n")
    assert not verify(str(tmp_path / "other-key"), headers, body, now=at.timestamp())


def test_a_retry_has_the_same_delivery_id_and_body(tmp_path: Path, receiver: Receiver) -> None:
    notifier = hook_notifier(tmp_path, receiver.url)
    session = record()
    [hook] = notifier.plan(session, "booked", NOW)
    # Planned again later, e.g. after a crash between planning and recording the plan.
    [again] = notifier.plan(session, "booked", NOW + timedelta(seconds=30))
    send(notifier, hook, session, NOW)
    send(notifier, again, session, NOW + timedelta(minutes=1))
    (first, body1, _), (second, body2, _) = receiver.requests
    assert first["X-Expediente-Delivery"] == second["X-Expediente-Delivery"]
    assert body1 == body2
    assert first["X-Expediente-Signature"] != second["X-Expediente-Signature"]
    cancelled = dataclasses.replace(session, status=Status.CANCELLED, updated_at=NOW)
    [cancel] = notifier.plan(cancelled, "cancelled", NOW)
    assert cancel.payload["id"] != hook.payload["id"]


def test_webhook_without_secret_is_unsigned(tmp_path: Path, receiver: Receiver) -> None:
    notifier = hook_notifier(tmp_path, receiver.url, secret=False)
    session = record()
    send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    [(headers, _, _)] = receiver.requests
    assert "X-Expediente-Signature" not in headers


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (503, False), (429, False), (408, False), (400, True), (404, True), (410, True)],
)
def test_webhook_answers_map_to_retry_or_give_up(
    tmp_path: Path, receiver: Receiver, status: int, permanent: bool
) -> None:
    receiver.status = status
    notifier = hook_notifier(tmp_path, receiver.url)
    session = record()
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert failure.value.permanent is permanent
    assert str(status) in str(failure.value)


def test_retry_after_is_passed_on(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 429
    receiver.headers = {"Retry-After": "120"}
    notifier = hook_notifier(tmp_path, receiver.url)
    session = record()
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert failure.value.retry_after == 120.0


def test_redirects_are_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 307
    receiver.headers = {"Location": receiver.url + "/elsewhere"}
    notifier = hook_notifier(tmp_path, receiver.url)
    session = record()
    with pytest.raises(DeliveryFailed) as failure:
        send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
    assert failure.value.permanent
    assert [path for _, _, path in receiver.requests] == ["/hook"]


def test_webhook_timeout_and_refused_connection_are_transient(tmp_path: Path) -> None:
    with socket.socket() as silent:  # the connection is queued and never answered
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        config = write_notify_config(tmp_path, webhooks=hook_section(url))
        fast = tuple(
            dataclasses.replace(h, timeout=timedelta(milliseconds=50)) for h in config.webhooks
        )
        notifier = Notifier(dataclasses.replace(config, webhooks=fast), signer_of(config))
        session = record()
        with pytest.raises(DeliveryFailed) as failure:
            send(notifier, notifier.plan(session, "booked", NOW)[0], session, NOW)
        assert not failure.value.permanent

    down = hook_notifier(tmp_path / "down", f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(DeliveryFailed) as failure:
        send(down, down.plan(session, "booked", NOW)[0], session, NOW)
    assert not failure.value.permanent
    assert "unreachable" in str(failure.value)


def test_a_webhook_removed_from_the_config_gives_up(tmp_path: Path) -> None:
    notifier = hook_notifier(tmp_path, "http://127.0.0.1:9/gone")
    session = record()
    [hook] = notifier.plan(session, "booked", NOW)
    other = write_notify_config(tmp_path / "other")
    with pytest.raises(DeliveryFailed) as failure:
        Notifier(other, signer_of(other)).deliver(hook, session, NOW)
    assert failure.value.permanent
