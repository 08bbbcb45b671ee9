"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``.

Written by hand next to the handlers it describes; a test checks that every route the
API registers is described and that the examples the tests send validate against it.
"""

from __future__ import annotations

from typing import Any

from daemon import __version__
from rules.lifecycle import MAX_REASON
from rules.model import Code

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
    },
}

_BOOKING = {
    "type": "object",
    "required": ["type", "start", "company", "responsible_name", "phone", "accept_rules"],
    "properties": {
        "type": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "company": {"type": "string"},
        "responsible_name": {
            "type": "string",
            "description": "Who will be present during the session (R7).",
        },
        "phone": {"type": "string", "description": "Phone/WhatsApp; Brazilian formats."},
        "email": {"type": "string"},
        "remote_tool": {"type": "string"},
        "remote_id": {"type": "string", "description": "Optional; checked when given (R1)."},
        "description": {"type": "string"},
        "accept_rules": {"type": "boolean", "description": "Must be true (R6)."},
        "language": {"type": "string", "enum": ["pt-BR", "en"]},
    },
}


_DATE = {"type": "string", "format": "date"}


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def document(public_url: str) -> dict[str, Any]:
    error = _ref("Error")
    admin: list[dict[str, list[str]]] = [{"adminToken": []}]
    session_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "expediente",
            "version": __version__,
            "description": "Booking remote-access support sessions within the desk's rules.",
        },
        "servers": [{"url": public_url}],
        "components": {
            "schemas": {"Error": _ERROR, "Session": _SESSION, "Booking": _BOOKING},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/v1/slots": {
                "get": {
                    "summary": "Free slots (the same grid the booking page shows)",
                    "parameters": [
                        {
                            "name": "from",
                            "in": "query",
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "schema": {"type": "string", "format": "date"},
                        },
                        {"name": "type", "in": "query", "schema": {"type": "string"}},
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
                        "400": _json(error, "A bad date, range or type."),
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
                            "schema": {"type": "string", "maxLength": 200},
                            "description": "A retry with the same key returns the first result.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Booking")}},
                    },
                    "responses": {
                        "201": _json(_ref("Session"), "Booked."),
                        "400": _json(error, "The body is not a JSON object."),
                        "409": _json(error, "slot_taken: someone booked it first."),
                        "422": _json(error, "A rule is broken; every violation is listed."),
                        "429": _json(error, "rate_limited: too many bookings from this address."),
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
