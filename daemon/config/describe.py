"""``expediente check-config``: the effective configuration as text for people.

It shows what the daemon will do with the file (hours, holidays, limits, calendars, the
rules clients accept), defaults filled in, and where each secret is read from, never a
secret itself.
"""

from __future__ import annotations

from daemon.config.model import CalendarConfig, Config
from daemon.config.secrets import Secret
from daemon.config.whatsapp import WHATSAPP_EVENTS
from rules.durations import format_duration
from rules.model import BOOKING_FIELDS, WEEKDAYS


def describe(config: Config) -> str:
    """The effective configuration for people (``expediente check-config``); no secrets."""
    policy = config.policy
    desk = config.desk
    booking = config.booking
    d = format_duration
    lines = [
        f"Configuration: {config.path}",
        f"Desk: {desk.name}; language {desk.language}; time zone {policy.timezone.key}",
    ]
    contacts = [
        f"{label} {value}"
        for label, value in (
            ("phone", desk.phone),
            ("WhatsApp", desk.whatsapp),
            ("e-mail", desk.email),
        )
        if value
    ]
    if contacts:
        lines.append("Contact: " + ", ".join(contacts))
    lines.append("Opening hours:")
    for n, day in enumerate(WEEKDAYS):
        ranges = policy.weekly.get(n, ())
        lines.append(f"  {day}  {', '.join(str(r) for r in ranges) or 'closed'}")
    lines.append(
        f"Public holidays: closed ({desk.holidays})"
        if desk.holidays
        else "Public holidays: open (holidays = false)"
    )
    if policy.closed_dates:
        lines.append(
            "Closed dates: "
            + ", ".join(
                closed.isoformat() + (f" ({label})" if label else "")
                for closed, label in sorted(policy.closed_dates.items())
            )
        )
    for special, ranges in sorted(policy.overrides.items()):
        lines.append(
            f"Override {special.isoformat()}: {', '.join(str(r) for r in ranges) or 'closed'}"
        )
    lines += [
        f"Booking: start times every {d(booking.slot_step)}, buffer {d(booking.buffer)}, up "
        f"to {d(booking.horizon)} ahead",
        f"No-show: rescheduled {d(booking.grace)} after the start without check-in; check-in "
        f"opens {d(booking.checkin_early)} before",
        f"Clients may cancel until {d(booking.cancel_cutoff)} before; "
        + (f"reminder {d(booking.reminder)} before" if booking.reminder else "no reminder"),
        "Rate limit: "
        + (
            f"{booking.rate_limit} bookings per client address per {d(booking.rate_window)}"
            if booking.rate_limit
            else "none"
        )
        + (
            f"; {booking.refusal_limit} refused per {d(booking.rate_window)}"
            if booking.refusal_limit
            else "; refusals not limited"
        ),
        "Remote tools: "
        + ", ".join(
            tool.name + (f" (ID like {tool.id_example})" if tool.id_example else " (any ID)")
            for tool in policy.remote_tools
        ),
        "Required fields: " + ", ".join(f for f in BOOKING_FIELDS if f in policy.required_fields),
        "Session types:",
    ]
    for t in policy.session_types.values():
        lines.append(f"  {t.name}: {t.label}; {d(t.duration)}, at least {d(t.min_notice)} ahead")
    lines.append(f"Technicians ({len(config.technicians)}):")
    for tech in config.technicians:
        lines.append(f"  {tech.id}: {tech.name}" + (f" <{tech.email}>" if tech.email else ""))
        for calendar in tech.calendars:
            lines.append(f"    {calendar.role:<8}  {_describe_calendar(calendar)}")
    server = config.server
    lines += [
        f"Server: listens on {server.listen}; public URL {server.public_url}"
        + ("; behind a reverse proxy" if server.behind_proxy else ""),
        f"  admin token from {_secret_source(server.admin_token)}; signing key from "
        f"{_secret_source(server.signing_key)}",
        f"Store: {config.store.path}; audit kept "
        + (f"{d(config.store.audit_retention)}" if config.store.audit_retention else "forever"),
        f"Sync: every {d(config.sync.interval)}; stale after {d(config.sync.stale_after)}; "
        f"request timeout {d(config.sync.timeout)}; retries up to {d(config.sync.max_backoff)} "
        "apart",
    ]
    smtp = config.smtp
    if smtp is None:
        lines.append("E-mail: off (no [smtp] section)")
    else:
        login = f" as {smtp.username}" if smtp.username else ""
        if smtp.password:
            login += f" (password from {_secret_source(smtp.password)})"
        lines.append(
            f"E-mail: {smtp.host}:{smtp.port} ({smtp.security}){login}, from "
            f"{smtp.from_name} <{smtp.from_address}>"
        )
    notes = config.notifications
    lines.append(
        f"E-mail to clients: {'yes' if notes.client_email and smtp else 'no'}; to technicians: "
        f"{'yes' if notes.technician_email and smtp else 'no'}; problems to: "
        + (notes.admin_email if notes.admin_email and smtp else "nobody")
    )
    if config.webhooks:
        for hook in config.webhooks:
            lines.append(f"Webhook: {hook.url} ({', '.join(sorted(hook.events))})")
    else:
        lines.append("Webhooks: none")
    whatsapp = config.whatsapp
    if whatsapp is None:
        lines.append("WhatsApp: off (no [whatsapp] section)")
    else:
        names = ", ".join(
            f"{event} {whatsapp.templates.for_event(event)}" for event in WHATSAPP_EVENTS
        )
        language = whatsapp.template_language(config.desk.language)
        lines.append(
            f"WhatsApp: number id {whatsapp.phone_number_id} via {whatsapp.api_endpoint}, "
            f"templates in {language}: {names}"
        )
    lines.append(f"Log level: {config.log.level}")
    lines.append(f"Rules shown to clients (version {policy.rules_version}, {desk.language}):")
    lines += [f"  | {line}" if line else "  |" for line in desk.rules_text.splitlines()]
    return "\n".join(lines)


def _secret_source(secret: Secret) -> str:
    return str(secret.path) if secret.path else "the program"


def _describe_calendar(calendar: CalendarConfig) -> str:
    if calendar.kind == "caldav":
        text = f"caldav {calendar.url}"
        if calendar.username:
            text += f" as {calendar.username}"
        if calendar.password:
            text += f" (password from {_secret_source(calendar.password)})"
        if calendar.ca_file:
            text += f", CA {calendar.ca_file}"
        if not calendar.verify_tls:
            text += ", TLS NOT VERIFIED"
    else:
        text = f"google {calendar.calendar_id}"
        if calendar.subject:
            text += f" as {calendar.subject}"
        if calendar.credentials:
            text += f" (credentials from {_secret_source(calendar.credentials)})"
        if calendar.api_endpoint:
            text += f" via {calendar.api_endpoint}"
    return f"{text}  [{calendar.id}]"
