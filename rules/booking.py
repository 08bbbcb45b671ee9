"""Booking validation: a request, ``now`` and busy time in; Accepted or Rejected out.

Every broken rule is reported at once (a client fixes the form in one go); rejections are
data with stable codes, never exceptions. The technician is chosen here so that the choice
is deterministic and testable: the least loaded free technician, ties broken by the order
of the technicians in the policy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import datetime

from rules.contact import normalise_email, normalise_phone
from rules.intervals import BusyTimeline, later
from rules.model import (
    BOOKING_FIELDS,
    Accepted,
    BookingRequest,
    Code,
    Policy,
    Rejected,
    Violation,
)
from rules.slots import free_technicians, time_violations

MAX_LENGTHS: Mapping[str, int] = {
    "company": 200,
    "responsible_name": 200,
    "phone": 40,
    "email": 254,
    "remote_tool": 64,
    "remote_id": 128,
    "description": 5000,
}
_MULTILINE = frozenset({"description"})
_LINE_BREAK = re.compile(r"\r\n|[\r\x85\u2028\u2029]")  # all spelled "\n" in the description
# Hangul fillers render blank but are letters (Lo), so the categories below miss them.
_FILLERS = frozenset({"\u3164", "\uffa0", "\u115f", "\u1160"})


def shown(char: str) -> bool:
    """Whether ``char`` may reach a page, an e-mail or a calendar event.

    Controls (Cc) and format characters (Cf) are not: bidirectional overrides, embeddings,
    isolates and marks (U+202A–E, U+2066–9, U+200E/F, U+061C) reorder what is read around
    them, and zero-width spaces and joiners, the BOM and the soft hyphen hide in it. With
    them client text could pass for the daemon's own lines. Joiners inside emoji go too:
    the pictures still show, side by side.
    """
    return char not in _FILLERS and unicodedata.category(char) not in ("Cc", "Cf")


def clean_text(name: str, value: str) -> str:
    """A booking field as it is stored and shown: trimmed, with nothing invisible (see
    :func:`shown`). Single-line fields get inner whitespace (line breaks included)
    collapsed to one space; the description keeps its line breaks, as LF, and tabs."""
    if name in _MULTILINE:
        value = _LINE_BREAK.sub("\n", value)
        return "".join(c for c in value if c in "\n\t" or shown(c)).strip()
    return " ".join("".join(c for c in value if c in "\t\n\r" or shown(c)).split())


def field_violations(
    policy: Policy, request: BookingRequest
) -> tuple[dict[str, str], list[Violation]]:
    """Check and normalise the form fields; returns (clean fields, violations)."""
    found: list[Violation] = []
    fields = {name: clean_text(name, str(getattr(request, name) or "")) for name in BOOKING_FIELDS}
    for name in BOOKING_FIELDS:
        if not fields[name] and name in policy.required_fields:
            found.append(Violation(Code.MISSING_FIELD, name))
        elif len(fields[name]) > MAX_LENGTHS[name]:
            found.append(
                Violation(
                    Code.INVALID_FIELD,
                    name,
                    detail="too_long",
                    params={"max": str(MAX_LENGTHS[name])},
                )
            )
    if fields["phone"] and len(fields["phone"]) <= MAX_LENGTHS["phone"]:
        phone = normalise_phone(fields["phone"])
        if phone is None:
            found.append(Violation(Code.INVALID_FIELD, "phone", detail="phone"))
        else:
            fields["phone"] = phone
    if fields["email"] and len(fields["email"]) <= MAX_LENGTHS["email"]:
        email = normalise_email(fields["email"])
        if email is None:
            found.append(Violation(Code.INVALID_FIELD, "email", detail="email"))
        else:
            fields["email"] = email
    tool = policy.tool(fields["remote_tool"]) if fields["remote_tool"] else policy.remote_tools[0]
    if tool is None:
        found.append(
            Violation(
                Code.TOOL_NOT_ALLOWED,
                "remote_tool",
                params={"tools": ", ".join(t.name for t in policy.remote_tools)},
            )
        )
    else:
        fields["remote_tool"] = tool.name
        remote_id = fields["remote_id"]
        if (
            remote_id
            and len(remote_id) <= MAX_LENGTHS["remote_id"]
            and not tool.id_is_valid(remote_id)
        ):
            found.append(
                Violation(
                    Code.INVALID_FIELD,
                    "remote_id",
                    detail="remote_id",
                    params={"tool": tool.name, "example": tool.id_example},
                )
            )
    if not request.accept_rules:
        found.append(Violation(Code.RULES_NOT_ACCEPTED, "accept_rules"))
    return fields, found


def validate(
    policy: Policy,
    request: BookingRequest,
    now: datetime,
    busy: Mapping[str, BusyTimeline],
    load: Mapping[str, int] | None = None,
    eligible: Collection[str] | None = None,
    *,
    waive_notice: bool = False,
) -> Accepted | Rejected:
    """Decide a booking request.

    ``busy`` holds each technician's busy time (calendars and active sessions); ``load``
    how many sessions each already has in the assignment period; ``eligible`` limits the
    technicians that may be chosen (the desk picking one names only that one).
    ``waive_notice`` is the desk's override of the minimum notice, and only of that (see
    :func:`rules.slots.time_violations`). ``now`` must be an aware datetime.
    """
    fields, found = field_violations(policy, request)
    session_type = policy.session_types.get(request.type)
    if session_type is None:
        found.append(
            Violation(
                Code.UNKNOWN_TYPE,
                "type",
                params={"types": ", ".join(policy.session_types)},
            )
        )
        return Rejected(tuple(found))
    time_found = time_violations(
        policy, session_type, request.start, now, waive_notice=waive_notice
    )
    found.extend(time_found)
    end = later(request.start, session_type.duration)
    technician: str | None = None
    if not time_found:
        free = free_technicians(policy, busy, request.start, end, eligible)
        if free:
            loads = load or {}
            order = {t.id: n for n, t in enumerate(policy.technicians)}
            technician = min(free, key=lambda tech: (loads.get(tech, 0), order[tech]))
        else:
            found.append(Violation(Code.NO_TECHNICIAN_AVAILABLE, "start"))
    if found or technician is None:
        return Rejected(tuple(found))
    return Accepted(technician, request.start, end, session_type.name, fields)
