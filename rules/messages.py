"""The words for violations: one English msgid per code, which the daemon translates.

Codes are the contract; messages are for people and may improve freely. A template is
looked up by ``"code/detail"`` first, then by ``code`` alone. ``rules/`` stays pure: it
names the words (marked with :func:`N_` so Babel's extraction finds them) and never reads
a catalog; ``daemon.i18n.messages`` renders them in the client's language, with dates,
weekdays and durations from CLDR.
"""

from __future__ import annotations

from collections.abc import Mapping

from rules.model import Code, Violation


def N_(text: str) -> str:
    """Marks ``text`` as a msgid for extraction; translated where it is shown."""
    return text


FIELD_LABELS: Mapping[str, str] = {
    "type": N_("session type"),
    "start": N_("time"),
    "company": N_("company"),
    "responsible_name": N_("responsible person"),
    "phone": N_("phone/WhatsApp"),
    "email": N_("e-mail"),
    "remote_tool": N_("remote-access tool"),
    "remote_id": N_("access ID"),
    "description": N_("problem description"),
    "accept_rules": N_("acceptance of the rules"),
    "language": N_("language"),
}

TEMPLATES: Mapping[str, str] = {
    "closed_day/holiday": N_("The desk is closed on {date}: public holiday ({label})."),
    "closed_day/closed_date": N_("The desk is closed on {date}."),
    "closed_day": N_("The desk is closed on this day."),
    "closed_day/weekly": N_("The desk is closed on this day; remote sessions run {days}."),
    "outside_hours": N_("Outside the desk's hours ({hours})."),
    "spans_break": N_(
        "The session would run into the break from {break_start} to {break_end}; pick a time that ends before it."
    ),
    "insufficient_notice": N_("This session type must be booked at least {notice} in advance."),
    "beyond_horizon": N_("Bookings are open up to {horizon} ahead."),
    "in_past": N_("This time has already passed."),
    "unknown_type": N_("Unknown session type (available: {types})."),
    "no_technician_available": N_("No technician is free at this time; please pick another."),
    "calendar_stale": N_(
        "The technicians' calendars could not be checked just now; please try again in a few minutes."
    ),
    "slot_taken": N_("This time was just booked by someone else; please pick another."),
    "missing_field": N_("Please fill in the {field_label}."),
    "invalid_field/phone": N_(
        "Invalid phone/WhatsApp: give the area code and number, e.g. (11) 98765-4321."
    ),
    "invalid_field/email": N_("Invalid e-mail address."),
    "invalid_field/remote_id": N_("Invalid {tool} access ID (example: {example})."),
    "invalid_field/too_long": N_("The {field_label} takes at most {max} characters."),
    "invalid_field/grid": N_("Please pick one of the offered times (every {step} minutes)."),
    "invalid_field": N_("Invalid value for the {field_label}."),
    "rules_not_accepted": N_("Please read and accept the remote-session rules."),
    "tool_not_allowed": N_("Remote-access tool not allowed (allowed: {tools})."),
}


def template_for(violation: Violation) -> str:
    """The msgid that says ``violation`` (its detail's own, else its code's)."""
    code = Code(violation.code).value
    return TEMPLATES.get(f"{code}/{violation.detail}") or TEMPLATES[code]
