"""Notifications: e-mail to clients and the desk, JSON webhooks to other systems.

The outbox calls :meth:`Notifier.plan` once per session event, stores the
:class:`Delivery` items it returns (their payloads are JSON in the outbox table), and
later calls :meth:`Notifier.deliver` for each, retrying on :class:`DeliveryFailed` unless
it is ``permanent``. One delivery is one recipient or one webhook, so a refused address
or a broken receiver never holds up the others.

Who gets what
-------------
* Client (``[notifications] client_email`` and the session has an e-mail): ``booked`` → a
  confirmation with a ``METHOD:REQUEST`` invitation, plus a reminder ``booking.reminder``
  before the start; ``rescheduled`` (no check-in within the tolerance, R5) → a request to
  book again; ``cancelled`` → a ``METHOD:CANCEL`` with the same UID and a higher SEQUENCE;
  ``moved`` (the technician moved the session to another valid time) → a mail saying the
  time changed, from what to what, whose invitation (higher SEQUENCE) moves the client's
  copy. Mails offer to cancel or rebook online only while ``[booking] cancel_cutoff``
  allows it when they are sent; a reminder after it says to call the desk instead.
  ``checked_in`` and ``completed`` send the client nothing: they are on the phone with
  the desk then.
* Technician (``technician_email`` and the technician has an ``email``): a notice for
  ``booked``, ``rescheduled`` and ``cancelled``, with the check-in link.
* Admin (``admin_email``): a notice for ``rescheduled`` and ``cancelled``, the changes a
  person may have to follow up.
* Webhooks: every event the hook lists (``checked_in`` is listed as ``in_progress``).

Client mails are in the session's language (pt-BR unless ``en``), desk notices in the
desk's. Every mail carries the client's manage link (R5: book again from it).

The client's invitation is built by :mod:`daemon.invitation`, like the ``.ics`` the
manage page offers: a client who adds both ends up with one event, and the CANCEL
removes it.

Webhook requests
----------------
``POST`` with a JSON body ``{"event", "occurred_at", "delivery", "session": {...}}``; the
session carries the booking's fields and status but no links (they are capabilities). A
``moved`` event adds ``"previous": {"start", "end"}``, the time the session had.
Headers:

* ``X-Expediente-Event``: the event name.
* ``X-Expediente-Delivery``: an id that stays the same across retries of one delivery,
  so receivers can drop duplicates.
* ``X-Expediente-Timestamp``: Unix seconds when this attempt was signed.
* ``X-Expediente-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's
  secret, of ``<timestamp>.<body>`` (the timestamp's ASCII digits, a dot, the raw body
  bytes). Receivers recompute it, compare in constant time, and refuse timestamps more
  than a few minutes old, which stops a captured request being replayed later. Without a
  ``secret_file`` no signature is sent.

Redirects are not followed (a moved receiver is a configuration to fix, and following
one would hand the signed body to wherever it points).
"""

from __future__ import annotations

import contextlib
import email.errors
import email.policy
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from http.client import HTTPException
from typing import Any, Literal

from connectors.retry import retry_after_seconds
from daemon.config import Config, SecretError, spoken_duration
from daemon.events import checkin_url, client_text, manage_url
from daemon.invitation import checklist, client_calendar, method_of, one_line, sequence
from daemon.signing import Signer
from daemon.store import SessionRecord
from daemon.web.texts import TEXTS, day_label, reason_text, zone_name
from rules.contact import format_phone
from rules.lifecycle import change_deadline, client_may_change
from rules.messages import language_of
from rules.model import Status

log = logging.getLogger("expediente.notify")

# "moved": the technician moved the session in their calendar to another valid time.
EVENTS = ("booked", "checked_in", "rescheduled", "cancelled", "completed", "moved")
# Webhooks are configured with session statuses; the event named differently is this one.
_HOOK_STATUS = {"checked_in": "in_progress"}

USER_AGENT = "expediente-webhook/1"
_MAX_RESPONSE = 64 * 1024  # receivers' answers are read only to free the connection
# Headers are written unfolded up to RFC 5322's hard limit: the standard library's folding
# at 78 columns can drop the space between two encoded words ("10:30 —" becomes "10:30—").
_WIRE = email.policy.SMTP.clone(max_line_length=998)

Kind = Literal["booked", "moved", "reminder", "rescheduled", "cancelled", "notice"]
_CLIENT_MAIL: Mapping[str, Kind] = {
    "booked": "booked",
    # A confirmation that says what changed, with an invitation whose same UID and higher
    # SEQUENCE make the client's calendar app move its copy of the event.
    "moved": "moved",
    "rescheduled": "rescheduled",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class Delivery:
    """One message for one recipient or receiver; ``payload`` is stored as JSON."""

    action: Literal["mail", "webhook"]
    payload: dict[str, Any]
    not_before: datetime | None = None  # e.g. the reminder: start - booking.reminder


class DeliveryFailed(Exception):
    """A delivery did not happen. ``permanent``: retrying cannot help (give up and tell a
    person); otherwise retry, no sooner than ``retry_after`` seconds when given."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


# --------------------------------------------------------------------------- texts

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


def delivery_id(*parts: str) -> str:
    """A stable id from what identifies a delivery, so a re-plan gives the same one."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Expediente-Signature`` value; receivers compute the same to verify."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def session_document(session: SessionRecord) -> dict[str, Any]:
    """What a webhook receiver learns about a session: its data, no links or ETags."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")

    return {
        "id": session.id,
        "type": session.type,
        "status": str(session.status),
        "start": when(session.start),
        "end": when(session.end),
        "technician": session.technician_id,
        "company": session.company,
        "responsible_name": session.responsible_name,
        "phone": session.phone,
        "email": session.email,
        "remote_tool": session.remote_tool,
        "remote_id": session.remote_id,
        "description": session.description,
        "language": session.language,
        "rules_version": session.rules_version,
        "rules_accepted_at": when(session.rules_accepted_at),
        "created_at": when(session.created_at),
        "updated_at": when(session.updated_at),
        "checked_in_at": when(session.checked_in_at),
        "ended_at": when(session.ended_at),
        "cancel_reason": session.cancel_reason,
        "rebooked_from": session.rebooked_from,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


# --------------------------------------------------------------------------- notifier


class Notifier:
    """Plans and sends mail and webhooks for session events (see the module docstring).

    ``tls_context`` verifies the mail server (default: the system's trusted CAs).
    """

    def __init__(
        self, config: Config, signer: Signer, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.signer = signer
        self._tls = tls_context
        self._opener = urllib.request.build_opener(_NoRedirect())

    # ---------------------------------------------------------------- planning

    def plan(
        self,
        session: SessionRecord,
        event: str,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> list[Delivery]:
        """The deliveries ``event`` causes for ``session``; ``[]`` for an unknown event.

        ``details`` is the outbox item's payload: for ``moved``, ``from_start`` and
        ``from_end`` (ISO 8601) say the time it had, which the mail and webhooks tell.
        """
        if event not in EVENTS:
            log.warning("no notifications for unknown event %r (session %s)", event, session.id)
            return []
        deliveries: list[Delivery] = []
        config = self.config
        notes = config.notifications
        previous = _previous(details) if event == "moved" else {}
        if config.smtp is not None:
            kind = _CLIENT_MAIL.get(event)
            if notes.client_email and session.email and kind is not None:
                mail = self._mail(kind, "client", session.email, event, sequence=sequence(session))
                deliveries.append(Delivery("mail", {**mail.payload, **previous}))
                reminder = config.booking.reminder
                if kind in ("booked", "moved") and reminder is not None:
                    # (for "moved" too: the reminder planned for the old time is dropped
                    # at delivery, since it names a start the session no longer has)
                    due = session.start - reminder
                    if due > now:
                        deliveries.append(
                            Delivery(
                                "mail",
                                {
                                    **self._mail(
                                        "reminder", "client", session.email, event
                                    ).payload,
                                    "start": session.start.isoformat(),
                                },
                                not_before=due,
                            )
                        )
            technician = config.technician(session.technician_id)
            staff_events = ("booked", "rescheduled", "cancelled")
            if notes.technician_email and technician and technician.email and event in staff_events:
                deliveries.append(self._mail("notice", "technician", technician.email, event))
            if notes.admin_email and event in ("rescheduled", "cancelled"):
                deliveries.append(self._mail("notice", "admin", notes.admin_email, event))
        status = _HOOK_STATUS.get(event, event)
        # The status change's own time, not the planning time: planned again after a crash,
        # the event keeps its id and body, and receivers can drop the duplicate.
        occurred_at = session.updated_at.astimezone(UTC).isoformat(timespec="seconds")
        document = session_document(session)
        for hook in config.webhooks:
            if status in hook.events or event in hook.events:
                deliveries.append(
                    Delivery(
                        "webhook",
                        {
                            "url": hook.url,
                            "id": delivery_id(session.id, event, occurred_at, hook.url),
                            "event": event,
                            "occurred_at": occurred_at,
                            "session": document,
                            **previous,
                        },
                    )
                )
        return deliveries

    @staticmethod
    def _mail(kind: Kind, role: str, to: str, event: str, *, sequence: int = 0) -> Delivery:
        # The SEQUENCE is fixed when planned: the copy says what the session was then.
        return Delivery(
            "mail", {"kind": kind, "role": role, "to": to, "event": event, "sequence": sequence}
        )

    # ---------------------------------------------------------------- delivering

    def deliver(self, delivery: Delivery, session: SessionRecord, now: datetime) -> None:
        """Send one delivery now; raises :class:`DeliveryFailed` (see its ``permanent``).

        A reminder for a session no longer booked, or already started, is dropped; so is a
        confirmation for a session cancelled or missed before it went out (the message
        about that comes next and says what matters).
        """
        payload = delivery.payload
        if delivery.action == "webhook":
            self._post(payload, now)
            return
        if delivery.action != "mail":
            raise DeliveryFailed(f"unknown delivery action {delivery.action!r}", permanent=True)
        kind = payload.get("kind")
        planned_for = payload.get("start")
        moved = planned_for is not None and planned_for != session.start.isoformat()
        if kind == "reminder" and (
            session.status != Status.BOOKED or session.start <= now or moved
        ):
            log.info("reminder for session %s skipped: %s", session.id, session.status)
            return
        announces_booking = kind in ("booked", "moved") or (
            kind == "notice" and payload.get("event") == "booked"
        )
        if announces_booking and session.status in (Status.CANCELLED, Status.RESCHEDULED):
            log.info("confirmation for session %s skipped: %s", session.id, session.status)
            return
        message = self.compose(payload, session, now)
        self._send(message, str(payload["to"]))

    # ---------------------------------------------------------------- mail

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

    def _send(self, message: EmailMessage, to: str) -> None:
        smtp = self.config.smtp
        assert smtp is not None  # noqa: S101 - compose() checked it
        timeout = smtp.timeout.total_seconds()
        where = f"{smtp.host}:{smtp.port}"
        try:
            password = smtp.password.reveal() if smtp.password else None
        except SecretError as error:
            raise DeliveryFailed(str(error)) from None
        context = self._tls or ssl.create_default_context()
        try:
            if smtp.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host, smtp.port, timeout=timeout, context=context
                )
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        except smtplib.SMTPConnectError as error:
            raise _smtp_failure(error, where) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"cannot reach the mail server {where}: {error}") from None
        try:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username and password is not None:
                client.login(smtp.username, password)
            client.sendmail(smtp.from_address, [to], message.as_bytes(policy=_WIRE))
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()), (0, b""))
            reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            raise DeliveryFailed(
                f"the mail server {where} refused {to}: {code} {reply}",
                permanent=500 <= code < 600,
            ) from None
        except smtplib.SMTPAuthenticationError as error:
            # Worth retrying: an admin fixes the password file without losing the mail.
            raise DeliveryFailed(
                f"the mail server {where} refused the login {smtp.username!r} "
                f"({error.smtp_code}); check [smtp] username and password_file"
            ) from None
        except smtplib.SMTPResponseException as error:
            raise _smtp_failure(error, where) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"mail to {to} via {where} failed: {error}") from None
        finally:
            # The message was accepted (or not) before QUIT; a failing QUIT changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    # ---------------------------------------------------------------- webhooks

    def _post(self, payload: Mapping[str, Any], now: datetime) -> None:
        url = str(payload.get("url", ""))
        hook = next((h for h in self.config.webhooks if h.url == url), None)
        if hook is None:
            raise DeliveryFailed(f"webhook {url} is no longer configured", permanent=True)
        document = {
            "event": payload["event"],
            "occurred_at": payload["occurred_at"],
            "delivery": payload["id"],
            "session": payload["session"],
        }
        before = _instants(payload.get("from_start"), payload.get("from_end"))
        if before is not None:
            document["previous"] = {
                "start": before[0].astimezone(UTC).isoformat(timespec="seconds"),
                "end": before[1].astimezone(UTC).isoformat(timespec="seconds"),
            }
        body = json.dumps(
            document,
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Expediente-Event": str(payload["event"]),
            "X-Expediente-Delivery": str(payload["id"]),
            "X-Expediente-Timestamp": str(timestamp),
        }
        if hook.secret is not None:
            try:
                secret = hook.secret.reveal()
            except SecretError as error:
                raise DeliveryFailed(str(error)) from None
            headers["X-Expediente-Signature"] = signature(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the URL schema only allows http(s)
        try:
            with self._opener.open(request, timeout=hook.timeout.total_seconds()) as response:
                response.read(_MAX_RESPONSE)
        except urllib.error.HTTPError as error:
            with error:
                raise _http_failure(url, error, now) from None
        except (urllib.error.URLError, HTTPException, OSError) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            raise DeliveryFailed(f"webhook {url} unreachable: {reason}") from None


def _previous(details: Mapping[str, Any] | None) -> dict[str, str]:
    """The old time a ``moved`` outbox item carries, to copy into its deliveries."""
    found = _instants((details or {}).get("from_start"), (details or {}).get("from_end"))
    if found is None:
        return {}
    return {"from_start": found[0].isoformat(), "from_end": found[1].isoformat()}


def _instants(start: object, end: object) -> tuple[datetime, datetime] | None:
    """Two stored ISO 8601 instants; ``None`` when either is missing or unreadable (an
    item written by an older version), so the message just leaves the old time out."""
    try:
        first = datetime.fromisoformat(str(start))
        last = datetime.fromisoformat(str(end))
    except ValueError:
        return None
    if first.tzinfo is None or last.tzinfo is None:
        return None
    return first, last


def _smtp_failure(error: smtplib.SMTPResponseException, where: str) -> DeliveryFailed:
    """4xx replies are temporary by definition (RFC 5321 §4.2.1); 5xx ones are final."""
    reply = error.smtp_error
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return DeliveryFailed(
        f"the mail server {where} answered {error.smtp_code} {text}",
        permanent=500 <= error.smtp_code < 600,
    )


def _http_failure(url: str, error: urllib.error.HTTPError, now: datetime) -> DeliveryFailed:
    code = error.code
    retry_after = retry_after_seconds(error.headers.get("Retry-After"), now)
    if 300 <= code < 400:
        location = error.headers.get("Location", "?")
        return DeliveryFailed(
            f"webhook {url} answered {code} (redirect to {location}); redirects are not "
            "followed: put the final address in [[webhooks]] url",
            permanent=True,
        )
    if code in (408, 429) or code >= 500:
        return DeliveryFailed(f"webhook {url} answered {code}", retry_after=retry_after)
    return DeliveryFailed(f"webhook {url} refused the delivery: {code}", permanent=True)
