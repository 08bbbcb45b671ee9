"""Composing mails: the client's and the desk's texts, in the catalogs' words, and the
message with its invitation.

Client mails are in the session's language, desk notices in the desk's. Every mail carries
the client's manage link (R5: book again from it).

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

from daemon.events import checkin_url, client_text, manage_url
from daemon.i18n import (
    day_label,
    gettext,
    language_of,
    reason_text,
    spoken_duration,
    zone_name,
)
from daemon.invitation import checklist, client_calendar, method_of, one_line
from daemon.notify.base import DeliveryFailed, NotifierBase, _instants
from daemon.store import SessionRecord
from rules.contact import format_phone
from rules.lifecycle import change_deadline, client_may_change
from rules.messages import N_

# Each client mail's subject and first line by kind, and the desk's notices (msgids).
SUBJECTS: Mapping[str, str] = {
    "booked": N_("Remote session booked: {when} — {desk}"),
    "reminder": N_("Reminder: remote session at {time} — {desk}"),
    "rescheduled": N_("Session missed: please book a new time — {desk}"),
    "cancelled": N_("Remote session cancelled: {when} — {desk}"),
    "moved": N_("New time for your remote session: {when} — {desk}"),
}
LEADS: Mapping[str, str] = {
    "booked": N_("Your remote session for {company} is booked."),
    "reminder": N_("Reminder: your remote session for {company} starts at {time}."),
    "rescheduled": N_(
        "The remote session for {company} booked for {when} did not start within the "
        "{minutes}-minute tolerance and must be rescheduled."
    ),
    "cancelled": N_("The remote session for {company} booked for {when} was cancelled."),
    "moved": N_(
        "The time of your remote session for {company} has changed: from {before} to {when}."
    ),
}
LEAD_MOVED_TO = N_("The time of your remote session for {company} has changed: it is now {when}.")
NOTICES: Mapping[str, str] = {
    "booked": N_("New session"),
    "rescheduled": N_("Session missed (no check-in within the tolerance)"),
    "cancelled": N_("Session cancelled"),
    # The client wrote on WhatsApp at session time: the session is checked in, start it.
    "checked_in": N_("Client ready: checked in by WhatsApp"),
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
        manage = manage_url(self.config.server.public_url, self.signer, session, self.config.policy)
        if kind == "notice":
            subject, body = self._notice(session, str(payload.get("event")), role, manage, language)
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
        _ = gettext(language)
        when = self._when(session.start, session.end, language)
        start = self._local(session.start)
        values = {
            "type": self._type_label(session),
            "company": session.company,
            "when": when,
            "time": f"{start:%H:%M}",
            "minutes": int(self.config.policy.grace.total_seconds() // 60),
        }
        subject = _(SUBJECTS[kind]).format(desk=self.config.desk.name, **values)
        lead = LEADS[kind]
        if kind == "moved":
            before = _instants(payload.get("from_start"), payload.get("from_end"))
            if before is None:  # planned by a version that did not record the old time
                lead = LEAD_MOVED_TO
            else:
                values["before"] = self._when(*before, language)
        lines = [_("Hello, {name}.").format(name=session.responsible_name), ""]
        lines.append(_(lead).format(**values))
        if kind == "cancelled" and session.cancel_reason:
            lines.append(_("Reason") + f": {reason_text(session.cancel_reason, language)}")
        if kind in ("booked", "moved", "reminder"):
            zone = zone_name(self.config.policy.timezone, language)
            lines += ["", _("When") + f": {when} ({zone})", _("Type") + f": {values['type']}"]
            lines += ["", _("How to prepare") + ":"]
            lines += checklist(self.config, session, language)
            lines += ["", *self._manage_lines(session, now, manage, language)]
        else:  # rescheduled or cancelled: nothing left to cancel, a new time to book
            lines += ["", _("Choose a new time here:"), manage]
        signature = _("Kind regards,\n{desk}").format(desk=self.config.desk.name)
        lines += ["", signature, *self._contacts(language)]
        lines += ["", _("This message was sent automatically.")]
        return subject, "\n".join(lines) + "\n"

    def _manage_lines(
        self, session: SessionRecord, now: datetime, manage: str, language: str
    ) -> list[str]:
        """The manage link, offering cancel and rebook only while the client may still
        (the cut-off, as on the page): a reminder an hour before says to call instead."""
        _ = gettext(language)
        cutoff = self.config.booking.cancel_cutoff
        if client_may_change(session.status, session.start, cutoff, now):
            deadline = self._local(change_deadline(session.start, cutoff))
            until = f"{day_label(deadline.date(), language)}, {deadline:%H:%M}"
            change = _("You can cancel or rebook here until {time}.").format(time=until)
            return [_("See, cancel or rebook the session:"), manage, change]
        closed = _(
            "The session starts in less than {cutoff}: to cancel or rebook, contact the desk."
        ).format(cutoff=spoken_duration(cutoff, language))
        return [closed, _("See the session:"), manage]

    def _contacts(self, language: str) -> list[str]:
        """How to reach the desk, under the signature of every client mail."""
        _ = gettext(language)
        desk = self.config.desk
        found = [
            (_("WhatsApp"), desk.whatsapp),
            (_("Phone"), desk.phone),
            (_("E-mail"), desk.email),
        ]
        return [f"{label}: {value}" for label, value in found if value]

    def _notice(
        self,
        session: SessionRecord,
        event: str,
        role: str,
        manage: str,
        language: str,
    ) -> tuple[str, str]:
        _ = gettext(language)
        heading = _(NOTICES[event]) if event in NOTICES else event
        when = self._when(session.start, session.end, language)
        subject = f"{heading}: {session.company} — {when}"
        technician = self.config.technician(session.technician_id)
        access = session.remote_id or _("(given when calling)")
        lines = [
            f"{heading}.",
            "",
            _("When") + f": {when}",
            _("Company") + f": {session.company}",
            _("Responsible person") + f": {session.responsible_name}",
            _("Phone/WhatsApp") + f": {format_phone(session.phone)}",
            _("Remote access") + f": {session.remote_tool} — " + _("Access ID") + f": {access}",
            _("Technician") + f": {technician.name if technician else session.technician_id}",
        ]
        if session.cancel_reason:
            lines.append(_("Reason") + f": {reason_text(session.cancel_reason, language)}")
        lines.append("")
        if role == "technician" and event == "booked":
            url = checkin_url(
                self.config.server.public_url, self.signer, session, self.config.policy
            )
            lines += [_("Check-in (open when the client calls)") + f": {url}"]
        lines += [_("Client's link") + f": {manage}", _("Session") + f": {session.id}"]
        if session.description:  # last and quoted: it cannot pass for a line of ours
            lines += ["", *client_text(session.description, language)]
        return subject, "\n".join(lines) + "\n"
