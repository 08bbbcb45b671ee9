"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``.

Written by hand next to the handlers it describes, and held to them by tests: every route
the API registers is described, and ``tests/web/test_openapi_conformance.py`` runs
schemathesis against the app, so a request the document calls valid is refused only for
a reason it names (the desk's rules, a range too long) and one it calls invalid is
refused. Where the server takes an empty value as "the default" or refuses dates outside
the years it reasons about, the document says so: it describes this server, not an ideal.
"""

from __future__ import annotations

from typing import Any

from daemon import __version__
from daemon.availability import FIRST_DATE, LAST_DATE
from daemon.i18n import LANGUAGES
from daemon.web.api import MAX_RANGE_DAYS
from rules.lifecycle import MAX_REASON
from rules.model import BOOKING_FIELDS, Code, Policy

# The years of daemon.availability.supported, FIRST_DATE to LAST_DATE (a test holds the
# two together): JSON Schema has no date minimum, a pattern is how to say it.
YEAR_PATTERN = "(19[0-9]{2}|[2-8][0-9]{3}|9000)"
_DATE_PATTERN = f"{YEAR_PATTERN}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
# What datetime.fromisoformat reads that is also RFC 3339: seconds and fraction optional,
# an offset required (a naive time is refused).
_TIME_PATTERN = (
    r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "violations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": [str(c) for c in Code]},
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                            "detail": {
                                "type": "string",
                                "description": "For a malformed field: what exactly is "
                                "wrong, in English (the message is in the client's language).",
                            },
                        },
                    },
                },
            },
        }
    },
}

_SESSION = {
    "type": "object",
    "required": ["id", "status", "start", "end", "technician", "manage_url"],
    "properties": {
        "id": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["booked", "in_progress", "completed", "rescheduled", "cancelled"],
        },
        "type": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "technician": {"type": "string", "description": "The technician's first name."},
        "manage_url": {"type": "string", "format": "uri"},
        "whatsapp": {
            "type": "array",
            "description": "With [whatsapp], in full: each message sent about the session "
            "and how far it got.",
            "items": {
                "type": "object",
                "properties": {
                    "event": {"type": "string"},
                    "form": {"type": "string", "enum": ["template", "text"]},
                    "status": {
                        "type": "string",
                        "enum": ["accepted", "sent", "delivered", "read", "failed"],
                    },
                    "at": {"type": "string", "format": "date-time"},
                    "error_code": {"type": ["integer", "null"]},
                },
            },
        },
    },
}

_OPTIONAL = "Optional: empty or null when not given."
_FIELD_NOTES = {
    "responsible_name": "Who will be present during the session (R7).",
    "phone": "Phone/WhatsApp; Brazilian formats.",
    "remote_id": "Checked when given (R1).",
}


def _day(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "format": "date",
        "pattern": f"^{_DATE_PATTERN}$",
        "description": f"{description}; years {FIRST_DATE.year}-{LAST_DATE.year} only.",
    }


def _booking(policy: Policy) -> dict[str, Any]:
    """The request body: ``type`` and ``start`` are checked for shape (an empty one is
    missing); a required field left empty, or anything else, is for the rules (422)."""
    fields: dict[str, Any] = {}
    for name in BOOKING_FIELDS:
        required = name in policy.required_fields
        note = " ".join(filter(None, [_FIELD_NOTES.get(name), None if required else _OPTIONAL]))
        fields[name] = {
            "type": "string" if required else ["string", "null"],
            **({"minLength": 1} if required else {}),
            **({"description": note} if note else {}),
        }
    primary = "|".join(
        "".join(f"[{c.upper()}{c.lower()}]" for c in tag.split("-")[0]) for tag in LANGUAGES
    )
    return {
        "type": "object",
        "required": ["type", "start", *sorted(policy.required_fields), "accept_rules"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": list(policy.session_types)},
            "start": {
                "type": "string",
                "format": "date-time",
                "pattern": f"^{_DATE_PATTERN}{_TIME_PATTERN}$",
                "description": f"With a UTC offset; years {FIRST_DATE.year}-{LAST_DATE.year}.",
            },
            **fields,
            "accept_rules": {"type": "boolean", "description": "Must be true (R6)."},
            "language": {
                "type": ["string", "null"],
                "pattern": f"^$|^({primary})(-.*)?$",
                "description": f"A language tag for one of {', '.join(LANGUAGES)} (pt, "
                "en-US... count); empty or null: the desk's language.",
            },
        },
    }


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _optional(name: str, schema: dict[str, Any], default: str) -> dict[str, Any]:
    """A query parameter that may be left out or left empty (``?to=``): both mean the
    default, as ``Request.arg`` returns "" and the handlers treat it as absent."""
    return {
        "name": name,
        "in": "query",
        "schema": {"anyOf": [schema, {"type": "string", "maxLength": 0}]},
        "description": f"Absent or empty: {default}.",
    }


def document(public_url: str, policy: Policy) -> dict[str, Any]:
    """The document for this desk: session types and required fields are its own."""
    error = _ref("Error")
    admin: list[dict[str, list[str]]] = [{"adminToken": []}]
    session_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    cross_site = _json(
        error,
        "cross_site_request: a browser sent it from another site (Origin, Sec-Fetch-Site); "
        "clients without those headers are not affected.",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "expediente",
            "version": __version__,
            "description": "Booking remote-access support sessions within the desk's rules.",
        },
        "servers": [{"url": public_url}],
        "components": {
            "schemas": {"Error": _ERROR, "Session": _SESSION, "Booking": _booking(policy)},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/v1/slots": {
                "get": {
                    "summary": "Free slots (the same grid the booking page shows)",
                    "parameters": [
                        _optional("from", _day("First day, in the desk's zone"), "today"),
                        _optional("to", _day("Last day, included"), "from + 13 days"),
                        _optional(
                            "type",
                            {"type": "string", "enum": list(policy.session_types)},
                            "the first type configured",
                        ),
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["timezone", "type", "slots"],
                                "properties": {
                                    "timezone": {"type": "string"},
                                    "type": {"type": "string"},
                                    "slots": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["start", "end", "technicians"],
                                            "properties": {
                                                "start": {"type": "string", "format": "date-time"},
                                                "end": {"type": "string", "format": "date-time"},
                                                "technicians": {"type": "integer", "minimum": 1},
                                            },
                                        },
                                    },
                                },
                            },
                            "Free slots, in order.",
                        ),
                        "400": _json(
                            error,
                            f"bad_date, unknown_type, or bad_range: 'to' before 'from', or "
                            f"more than {MAX_RANGE_DAYS} days at once.",
                        ),
                    },
                }
            },
            "/api/v1/bookings": {
                "post": {
                    "summary": "Book a session",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                            "description": "A retry with the same key returns the first result.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Booking")}},
                    },
                    "responses": {
                        "201": _json(_ref("Session"), "Booked."),
                        "400": _json(
                            error, "The body is not a JSON object, or a bad Idempotency-Key."
                        ),
                        "403": cross_site,
                        "409": _json(error, "slot_taken: someone booked it first."),
                        "422": _json(error, "A rule is broken; every violation is listed."),
                        "429": _json(
                            error,
                            "rate_limited: too many bookings, or refused bookings, from this "
                            "address; retry after Retry-After seconds.",
                        ),
                        "503": _json(
                            error,
                            "calendar_stale: the only free technicians' calendars are out "
                            "of date; retry after Retry-After seconds.",
                        ),
                    },
                }
            },
            "/api/v1/sessions/{id}": {
                "get": {
                    "summary": "One session, in full",
                    "security": admin,
                    "parameters": [session_id],
                    "responses": {
                        "200": _json(_ref("Session"), "The session."),
                        "401": _json(error, "No or wrong admin token."),
                        "404": _json(error, "No such session."),
                    },
                }
            },
            "/api/v1/sessions/{id}/check-in": {
                "post": {
                    "summary": "The client called: the session is in progress (R2)",
                    "security": admin,
                    "parameters": [session_id],
                    "responses": {
                        "200": _json(_ref("Session"), "Checked in."),
                        "401": _json(error, "No or wrong admin token."),
                        "403": cross_site,
                        "404": _json(error, "No such session."),
                        "409": _json(error, "Too early, too late, or already final."),
                    },
                }
            },
            "/api/v1/sessions/{id}/cancel": {
                "post": {
                    "summary": "Cancel a session",
                    "security": admin,
                    "parameters": [session_id],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "reason": {
                                            "type": "string",
                                            "maxLength": MAX_REASON,
                                            "description": "Why, in words for the client: "
                                            "stored and shown in the cancellation mails. "
                                            "Without it they say the desk cancelled.",
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_ref("Session"), "Cancelled."),
                        "400": _json(error, 'The body is not {"reason": "..."}.'),
                        "401": _json(error, "No or wrong admin token."),
                        "403": cross_site,
                        "404": _json(error, "No such session."),
                        "409": _json(error, "Already final."),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Age of each calendar's last good sync",
                    "responses": {
                        "200": {"description": "Every calendar is fresh."},
                        "503": {"description": "A calendar is staler than [sync] stale_after."},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Prometheus text format."}},
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1."}},
                }
            },
        },
    }
