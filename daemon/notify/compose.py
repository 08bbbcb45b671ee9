"""Composing mails: the words (pt-BR and English), the client's and the desk's texts,
and the message with its invitation.

Client mails are in the session's language (pt-BR unless ``en``), desk notices in the
desk's. Every mail carries the client's manage link (R5: book again from it).

The client's invitation is built by :mod:`daemon.invitation`, like the ``.ics`` the
manage page offers: a client who adds both ends up with one event, and the CANCEL
removes it.
"""

from __future__ import annotations

import email.errors
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from daemon.config import spoken_duration
from daemon.events import checkin_url, client_text, manage_url
from daemon.i18n import language_of
from daemon.invitation import checklist, client_calendar, method_of, one_line
from daemon.notify.base import DeliveryFailed, NotifierBase, _instants
from daemon.store import SessionRecord
from daemon.web.texts import TEXTS, day_label, reason_text, zone_name
from rules.contact import format_phone
from rules.lifecycle import change_deadline, client_may_change

_MAIL: Mapping[str, Mapping[str, str]] = {
    "pt-BR": {
        "subject_booked": "Atendimento remoto agendado: {when} — {desk}",
        "subject_reminder": "Lembrete: atendimento remoto às {time} — {desk}",
        "subject_rescheduled": "Atendimento não realizado: agende um novo horário — {desk}",
        "subject_cancelled": "Atendimento remoto cancelado: {when} — {desk}",
        "subject_moved": "Novo horário do atendimento remoto: {when} — {desk}",
        "hello": "Olá, {name}.",
        "lead_booked": "Seu atendimento remoto para {company} está agendado.",
        "lead_reminder": "Lembrete: seu atendimento remoto para {company} começa às {time}.",
        "lead_rescheduled": "O atendimento remoto de {company}, marcado para {when}, não "
        "começou dentro da tolerância de {minutes} minutos e precisa ser reagendado.",
        "lead_cancelled": "O atendimento remoto de {company}, marcado para {when}, foi cancelado.",
        "lead_moved": "O horário do seu atendimento remoto para {company} mudou: de {before} "
        "para {when}.",
        "lead_moved_to": "O horário do seu atendimento remoto para {company} mudou: agora é "
        "{when}.",
        "when": "Quando",
        "type": "Tipo",
        "book_again": "Escolha um novo horário por este link:",
        "manage": "Ver, cancelar ou remarcar o atendimento:",
        "see": "Ver o atendimento:",
        "signature": "Atenciosamente,\n{desk}",
        "automatic": "Esta é uma mensagem automática.",
        "email": "E-mail",
        "notice_booked": "Nova sessão",
        "notice_rescheduled": "Sessão não realizada (sem check-in na tolerância)",
        "notice_cancelled": "Sessão cancelada",
        "company": "Empresa",
        "technician": "Técnico",
        "reason": "Motivo",
        "checkin": "Check-in (abrir quando o cliente ligar)",
        "client_link": "Link do cliente",
        "session": "Sessão",
    },
    "en": {
        "subject_booked": "Remote session booked: {when} — {desk}",
        "subject_reminder": "Reminder: remote session at {time} — {desk}",
        "subject_rescheduled": "Session missed: please book a new time — {desk}",
        "subject_cancelled": "Remote session cancelled: {when} — {desk}",
        "subject_moved": "New time for your remote session: {when} — {desk}",
        "hello": "Hello, {name}.",
        "lead_booked": "Your remote session for {company} is booked.",
        "lead_reminder": "Reminder: your remote session for {company} starts at {time}.",
        "lead_rescheduled": "The remote session for {company} booked for {when} did not start "
        "within the {minutes}-minute tolerance and must be rescheduled.",
        "lead_cancelled": "The remote session for {company} booked for {when} was cancelled.",
        "lead_moved": "The time of your remote session for {company} has changed: from {before} "
        "to {when}.",
        "lead_moved_to": "The time of your remote session for {company} has changed: it is now "
        "{when}.",
        "when": "When",
        "type": "Type",
        "book_again": "Choose a new time here:",
        "manage": "See, cancel or rebook the session:",
        "see": "See the session:",
        "signature": "Kind regards,\n{desk}",
        "automatic": "This message was sent automatically.",
        "email": "E-mail",
        "notice_booked": "New session",
        "notice_rescheduled": "Session missed (no check-in within the tolerance)",
        "notice_cancelled": "Session cancelled",
        "company": "Company",
        "technician": "Technician",
        "reason": "Reason",
        "checkin": "Check-in (open when the client calls)",
        "client_link": "Client's link",
        "session": "Session",
    },
}


class MailComposer(NotifierBase):
    """Writes the message a planned mail delivery sends, as the session is now."""

    def compose(
        self, payload: Mapping[str, Any], session: SessionRecord, now: datetime
    ) -> EmailMessage:
        """The message a mail delivery sends; raises a permanent :class:`DeliveryFailed`
        for an address that cannot be written (it will never become valid)."""
        smtp = self.config.smtp
        if smtp is None:
            raise DeliveryFailed("e-mail is off: no [smtp] section", permanent=True)
        kind = str(payload.get("kind"))
        role = str(payload.get("role", "client"))
        to = str(payload.get("to", ""))
        language = (
            language_of(session.language)
            if role == "client"
            else language_of(self.config.desk.language)
        )
        m = _MAIL[language]
        manage = manage_url(self.config.server.public_url, self.signer, session, self.config.policy)
        if kind == "notice":
            subject, body = self._notice(
                session, str(payload.get("event")), role, m, manage, language
            )
            name = ""
        elif kind in ("booked", "moved", "reminder", "rescheduled", "cancelled"):
            subject, body = self._client_text(kind, payload, session, now, manage, language)
            name = session.responsible_name
        else:
            raise DeliveryFailed(f"unknown mail kind {kind!r}", permanent=True)

        message = EmailMessage()
        try:
            message["From"] = Address(one_line(smtp.from_name), addr_spec=smtp.from_address)
            message["To"] = Address(one_line(name), addr_spec=one_line(to))
        except (ValueError, IndexError, email.errors.HeaderParseError) as error:
            raise DeliveryFailed(
                f"cannot address a mail to {to!r}: {error}", permanent=True
            ) from None
        message["Subject"] = one_line(subject)
        message["Date"] = format_datetime(now.astimezone(UTC))
        domain = smtp.from_address.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
        if self.config.desk.email:
            message["Reply-To"] = self.config.desk.email
        # Quoted-printable: 8bit bodies need 8BITMIME, which not every relay offers.
        message.set_content(body, cte="quoted-printable")
        if kind in ("booked", "moved", "cancelled") and role == "client":
            ics = client_calendar(
                self.config,
                session,
                manage=manage,
                language=language,
                stamp=now,
                now=now,
                invitation=True,
                revision=int(payload.get("sequence", 0)),
            )
            method = method_of(session, invitation=True)
            message.add_alternative(
                ics.decode(), subtype="calendar", params={"method": method}, cte="quoted-printable"
            )
            message.add_attachment(
                ics, maintype="application", subtype="ics", filename="invite.ics"
            )
        return message

    def _local(self, value: datetime) -> datetime:
        return value.astimezone(self.config.policy.timezone)

    def _when(self, start: datetime, end: datetime, language: str) -> str:
        first, last = self._local(start), self._local(end)
        return f"{day_label(first.date(), language, year=True)}, {first:%H:%M}–{last:%H:%M}"

    def _type_label(self, session: SessionRecord) -> str:
        session_type = self.config.policy.session_types.get(session.type)
        return session_type.label if session_type else session.type

    def _client_text(
        self,
        kind: str,
        payload: Mapping[str, Any],
        session: SessionRecord,
        now: datetime,
        manage: str,
        language: str,
    ) -> tuple[str, str]:
        m = _MAIL[language]
        when = self._when(session.start, session.end, language)
        start = self._local(session.start)
        values = {
            "type": self._type_label(session),
            "company": session.company,
            "when": when,
            "time": f"{start:%H:%M}",
            "minutes": int(self.config.policy.grace.total_seconds() // 60),
        }
        subject = m[f"subject_{kind}"].format(desk=self.config.desk.name, **values)
        lead = f"lead_{kind}"
        if kind == "moved":
            before = _instants(payload.get("from_start"), payload.get("from_end"))
            if before is None:  # planned by a version that did not record the old time
                lead = "lead_moved_to"
            else:
                values["before"] = self._when(*before, language)
        lines = [m["hello"].format(name=session.responsible_name), ""]
        lines.append(m[lead].format(**values))
        if kind == "cancelled" and session.cancel_reason:
            lines.append(f"{m['reason']}: {reason_text(session.cancel_reason, language)}")
        if kind in ("booked", "moved", "reminder"):
            zone = zone_name(self.config.policy.timezone, language)
            lines += ["", f"{m['when']}: {when} ({zone})", f"{m['type']}: {values['type']}"]
            lines += ["", TEXTS[language]["prepare_heading"] + ":"]
            lines += checklist(self.config, session, language)
            lines += ["", *self._manage_lines(session, now, manage, language)]
        else:  # rescheduled or cancelled: nothing left to cancel, a new time to book
            lines += ["", m["book_again"], manage]
        lines += ["", m["signature"].format(desk=self.config.desk.name), *self._contacts(language)]
        lines += ["", m["automatic"]]
        return subject, "\n".join(lines) + "\n"

    def _manage_lines(
        self, session: SessionRecord, now: datetime, manage: str, language: str
    ) -> list[str]:
        """The manage link, offering cancel and rebook only while the client may still
        (the cut-off, as on the page): a reminder an hour before says to call instead."""
        m, t = _MAIL[language], TEXTS[language]
        cutoff = self.config.booking.cancel_cutoff
        if client_may_change(session.status, session.start, cutoff, now):
            deadline = self._local(change_deadline(session.start, cutoff))
            until = f"{day_label(deadline.date(), language)}, {deadline:%H:%M}"
            return [m["manage"], manage, t["change_until"].format(time=until)]
        closed = t["change_closed"].format(cutoff=spoken_duration(cutoff, language))
        return [closed, m["see"], manage]

    def _contacts(self, language: str) -> list[str]:
        """How to reach the desk, under the signature of every client mail."""
        desk = self.config.desk
        t = TEXTS[language]
        found = [
            (t["contact_whatsapp"], desk.whatsapp),
            (t["contact_phone"], desk.phone),
            (_MAIL[language]["email"], desk.email),
        ]
        return [f"{label}: {value}" for label, value in found if value]

    def _notice(
        self,
        session: SessionRecord,
        event: str,
        role: str,
        m: Mapping[str, str],
        manage: str,
        language: str,
    ) -> tuple[str, str]:
        heading = m.get(f"notice_{event}", event)
        when = self._when(session.start, session.end, language)
        subject = f"{heading}: {session.company} — {when}"
        labels = TEXTS[language]
        technician = self.config.technician(session.technician_id)
        lines = [
            f"{heading}.",
            "",
            f"{m['when']}: {when}",
            f"{m['company']}: {session.company}",
            f"{labels['responsible']}: {session.responsible_name}",
            f"{labels['phone']}: {format_phone(session.phone)}",
            f"{labels['tool']}: {session.remote_tool} — {labels['access_id']}: "
            f"{session.remote_id or labels['id_missing']}",
            f"{m['technician']}: {technician.name if technician else session.technician_id}",
        ]
        if session.cancel_reason:
            lines.append(f"{m['reason']}: {reason_text(session.cancel_reason, language)}")
        lines.append("")
        if role == "technician" and event == "booked":
            url = checkin_url(
                self.config.server.public_url, self.signer, session, self.config.policy
            )
            lines += [f"{m['checkin']}: {url}"]
        lines += [f"{m['client_link']}: {manage}", f"{m['session']}: {session.id}"]
        if session.description:  # last and quoted: it cannot pass for a line of ours
            lines += ["", *client_text(session.description, language)]
        return subject, "\n".join(lines) + "\n"
