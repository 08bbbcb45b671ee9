"""The JSON API (its contract: docs/api.md): slots, bookings, sessions (admin), health.

Input is checked here for shape (types, formats) and by ``rules/`` for meaning; either
way the answer is a 4xx with codes a program can act on. Nothing a client sends can
produce a 5xx.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime, timedelta
from typing import Any

from daemon.availability import DATE_LIMITS, iso, slots_body, supported
from daemon.events import manage_url
from daemon.i18n import LANGUAGES, language_for, language_of, message, negotiate
from daemon.service import BookingOutcome, Service, SessionNotFound
from daemon.signing import Signer
from daemon.store import SessionRecord
from daemon.web.http import HTTPError, Request, Response, Router
from daemon.web.ratelimit import RateLimiter
from rules.lifecycle import CancelReason, IllegalTransition, given_reason
from rules.model import BOOKING_FIELDS, BookingRequest, Code, Violation

MAX_RANGE_DAYS = 62
SLOTS_PATH = "/api/v1/slots"


def request_language(request: Request, default: str) -> str:
    """The language the request's ``Accept-Language`` prefers among the desk's, else
    ``default``."""
    header = request.header("accept-language")
    return negotiate(header, default) if header else default


def violation_documents(violations: tuple[Violation, ...], language: str) -> list[dict[str, Any]]:
    documents = []
    for violation in violations:
        document: dict[str, Any] = {
            "code": str(violation.code),
            "message": message(violation, language),
        }
        if violation.field:
            document["field"] = violation.field
        documents.append(document)
    return documents


def rejection(outcome: BookingOutcome, language: str) -> HTTPError:
    taken = outcome.codes == [Code.SLOT_TAKEN]
    violations = violation_documents(outcome.violations, language)
    first = violations[0]["message"] if violations else ""
    if taken:
        return HTTPError(409, "slot_taken", first, violations=violations)
    if outcome.codes == [Code.CALENDAR_STALE]:
        return HTTPError(
            503, "calendar_stale", first, violations=violations, headers={"Retry-After": "60"}
        )
    return HTTPError(422, "booking_rejected", first, violations=violations)


def _field_error(
    field: str, text: str, language: str, code: Code = Code.INVALID_FIELD
) -> HTTPError:
    """A shape error: the message in the client's language, and what exactly was wrong in
    ``detail`` (English, for the developer of an integration)."""
    violation = Violation(code, field)
    documents = violation_documents((violation,), language)
    documents[0]["detail"] = text
    return HTTPError(422, "booking_rejected", documents[0]["message"], violations=documents)


def _is_text(value: str) -> bool:
    """False for a lone surrogate (JSON can spell one, ``"\\ud800"``; no store can keep it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _cancel_reason(request: Request) -> str:
    """The admin's reason from an optional ``{"reason": "..."}`` body; ``""`` for none."""
    if request.header("content-length") in (None, "", "0"):
        return ""
    body = request.json()
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise HTTPError(
            400, "unknown_field", f'unknown field {unknown[0]!r}: send {{"reason": "..."}}'
        )
    reason = body.get("reason", "")
    if not isinstance(reason, str) or not _is_text(reason):
        raise HTTPError(400, "invalid_reason", "'reason' must be a string (shown to the client)")
    try:
        return given_reason(reason)
    except ValueError as error:
        raise HTTPError(400, "invalid_reason", str(error)) from None


def parse_booking(body: dict[str, Any], language: str) -> BookingRequest:
    """Shape checks only (types, formats); the rules judge the content."""
    unknown = set(body) - {*BOOKING_FIELDS, "type", "start", "accept_rules", "language"}
    if unknown:
        raise _field_error(sorted(unknown)[0], "unknown field", language)
    for name in (*BOOKING_FIELDS, "type", "start", "language"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise _field_error(name, "expected a string", language)
        if isinstance(value, str) and not _is_text(value):
            raise _field_error(name, "not valid Unicode text", language)
    asked = body.get("language")
    if asked and language_for(asked) is None:
        raise _field_error("language", f"one of {', '.join(LANGUAGES)}", language)
    if not body.get("type"):
        raise _field_error("type", "required", language, Code.MISSING_FIELD)
    if not body.get("start"):
        raise _field_error("start", "required", language, Code.MISSING_FIELD)
    try:
        start = datetime.fromisoformat(body["start"])
    except ValueError:
        raise _field_error("start", "expected ISO 8601 with offset", language) from None
    if start.tzinfo is None:
        raise _field_error("start", "the time needs a UTC offset, e.g. -03:00", language)
    if not supported(start):
        raise _field_error("start", f"years {DATE_LIMITS} only", language)
    accept = body.get("accept_rules", False)
    if not isinstance(accept, bool):
        raise _field_error("accept_rules", "expected true or false", language)
    return BookingRequest(
        type=body["type"],
        start=start,
        accept_rules=accept,
        language=language_of(body.get("language") or language),
        **{name: body.get(name) or "" for name in BOOKING_FIELDS},
    )


class Api:
    """The JSON API. ``limiter`` (shared with the booking page, so an address has one
    budget) limits bookings without the admin token; integrations holding the token are
    trusted and not limited."""

    def __init__(
        self, service: Service, signer: Signer, *, limiter: RateLimiter | None = None
    ) -> None:
        self.service = service
        self.signer = signer
        self.limiter = limiter
        config = service.config
        self.public_url = config.server.public_url
        self._admin_token = config.server.admin_token

    @property
    def language(self) -> str:
        return self.service.config.desk.language

    def routes(self, router: Router) -> None:
        router.add("GET", SLOTS_PATH, self.slots)
        router.add("POST", "/api/v1/bookings", self.create_booking)
        router.add("GET", "/api/v1/sessions/{id}", self.get_session)
        router.add("POST", "/api/v1/sessions/{id}/check-in", self.check_in)
        router.add("POST", "/api/v1/sessions/{id}/cancel", self.cancel)
        router.add("GET", "/healthz", self.health)

    # ------------------------------------------------------------------ public

    def slots(self, request: Request) -> Response:
        policy = self.service.policy
        type_name = request.arg("type") or next(iter(policy.session_types))
        if type_name not in policy.session_types:
            raise HTTPError(
                400,
                "unknown_type",
                f"unknown session type {type_name!r}; known: {', '.join(policy.session_types)}",
            )
        today = self.service.clock.now().astimezone(policy.timezone).date()
        first = _date_arg(request, "from", today)
        last = _date_arg(request, "to", first + timedelta(days=13))
        if last < first:
            raise HTTPError(400, "bad_range", "'to' is before 'from'")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise HTTPError(400, "bad_range", f"ask for at most {MAX_RANGE_DAYS} days at once")
        return Response.encoded_json(
            self.service.rendered_slots(type_name, first, last, slots_body)
        )

    def create_booking(self, request: Request) -> Response:
        body = request.json()
        # The client's language for the session's mails is also the language of the answer.
        asked = body.get("language")
        if isinstance(asked, str) and asked:
            language = language_of(asked)
        else:
            language = request_language(request, self.language)
        booking = parse_booking(body, language)
        key = request.header("idempotency-key")
        if key is not None and not (1 <= len(key) <= 200):
            raise HTTPError(400, "bad_idempotency_key", "Idempotency-Key must be 1-200 characters")
        limiter = None if self._is_admin(request) else self.limiter
        now = self.service.clock.now()
        if limiter is not None:
            wait = limiter.acquire(request.client_address, now)
            if wait is not None:
                raise HTTPError(
                    429,
                    "rate_limited",
                    f"too many booking attempts from this address; try again in {int(wait)} s",
                    headers={"Retry-After": str(int(wait))},
                )
        outcome: BookingOutcome | None = None
        try:
            outcome = self.service.book(booking, idempotency_key=key)
        finally:
            if limiter is not None and (
                outcome is None or outcome.session is None or outcome.replayed
            ):
                refused = outcome is not None and outcome.session is None
                limiter.release(request.client_address, now, refused=refused)
        if outcome.session is None:
            raise rejection(outcome, language)
        document = self.session_document(outcome.session)
        headers = {"Location": f"/api/v1/sessions/{outcome.session.id}"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response.json(document, 201, headers)

    def session_document(self, session: SessionRecord, *, full: bool = False) -> dict[str, Any]:
        policy = self.service.policy
        technician = policy.technician(session.technician_id)
        document: dict[str, Any] = {
            "id": session.id,
            "status": str(session.status),
            "type": session.type,
            "start": iso(session.start, policy),
            "end": iso(session.end, policy),
            "technician": technician.first_name if technician else session.technician_id,
            "manage_url": manage_url(self.public_url, self.signer, session, policy),
        }
        if full:
            document.update(
                technician_id=session.technician_id,
                company=session.company,
                responsible_name=session.responsible_name,
                phone=session.phone,
                email=session.email,
                remote_tool=session.remote_tool,
                remote_id=session.remote_id,
                description=session.description,
                language=session.language,
                rules_version=session.rules_version,
                rules_accepted_at=iso(session.rules_accepted_at, policy),
                created_at=iso(session.created_at, policy),
                checked_in_at=iso(session.checked_in_at, policy) if session.checked_in_at else None,
                cancel_reason=session.cancel_reason,
                needs_attention=session.needs_attention,
            )
            if self.service.config.whatsapp is not None:
                document["whatsapp"] = [
                    {
                        "event": sent.event,
                        "form": sent.form,
                        "status": sent.status,
                        "at": iso(sent.status_at, policy),
                        "error_code": sent.error_code,
                    }
                    for sent in self.service.store.whatsapp_messages(session.id)
                ]
        return document

    # ------------------------------------------------------------------- admin

    def _is_admin(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        expected = self._admin_token.reveal()
        # Bytes: compare_digest refuses non-ASCII str, and a header may hold anything.
        given = token.strip().encode("utf-8", "surrogateescape")
        return scheme.lower() == "bearer" and hmac.compare_digest(given, expected.encode())

    def _require_admin(self, request: Request) -> None:
        if not self._is_admin(request):
            raise HTTPError(
                401,
                "unauthorized",
                "this needs the admin token: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="expediente"'},
            )

    def _session(self, request: Request) -> SessionRecord:
        try:
            return self.service.get(request.params["id"])
        except SessionNotFound:
            raise HTTPError(404, "not_found", "no such session") from None

    def get_session(self, request: Request) -> Response:
        self._require_admin(request)
        return Response.json(self.session_document(self._session(request), full=True))

    def check_in(self, request: Request) -> Response:
        self._require_admin(request)
        session = self._session(request)
        try:
            updated = self.service.check_in(session.id, actor="admin")
        except IllegalTransition as error:
            raise HTTPError(409, "illegal_transition", str(error)) from None
        return Response.json(self.session_document(updated, full=True))

    def cancel(self, request: Request) -> Response:
        self._require_admin(request)
        session = self._session(request)
        reason = _cancel_reason(request) or CancelReason.DESK
        try:
            updated = self.service.cancel(session.id, actor="admin", reason=reason)
        except IllegalTransition as error:
            raise HTTPError(409, "illegal_transition", str(error)) from None
        return Response.json(self.session_document(updated, full=True))

    def health(self, request: Request) -> Response:
        """Ages for anyone (load balancers, uptime checks); error texts, which name the
        calendars' servers and paths, for the admin token only."""
        now = self.service.clock.now()
        admin = self._is_admin(request)
        leadership = self.service.leadership
        stale_after = self.service.config.sync.stale_after
        calendars = []
        healthy = True
        for state in self.service.store.calendars():
            age = (now - state.last_sync_ok_at).total_seconds() if state.last_sync_ok_at else None
            stale = age is None or age > stale_after.total_seconds()
            healthy = healthy and not stale
            entry: dict[str, Any] = {
                "id": state.id,
                "technician": state.technician_id,
                "last_sync_age_seconds": None if age is None else round(age, 1),
                "stale": stale,
                "failing": state.last_error is not None,
            }
            if admin:
                entry["last_error"] = state.last_error
            calendars.append(entry)
        document: dict[str, Any] = {
            "status": "ok" if healthy else "stale",
            "stale_after_seconds": stale_after.total_seconds(),
            "calendars": calendars,
            "outbox_depth": self.service.store.outbox_depth(),
            "sessions_needing_attention": len(self.service.store.flagged_sessions()),
            # Several instances on one PostgreSQL store: which one runs the background work.
            "instance": leadership.instance,
            "leading": leadership.is_leader(),
            "leader": leadership.leader(),
        }
        if self.service.config.whatsapp is not None:
            document["whatsapp"] = self._whatsapp_health(admin)
        return Response.json(document, 200 if healthy else 503)

    def _whatsapp_health(self, admin: bool) -> dict[str, Any]:
        """The Cloud API as the outbox last found it. A refused token (error 190) is
        ``token_refused`` until a message goes through: a person must renew it. It does
        not turn the answer into a 503: bookings still work, and mail still goes."""
        now = self.service.clock.now()
        health = self.service.store.whatsapp_health()
        age = None if health.last_ok_at is None else (now - health.last_ok_at).total_seconds()
        entry: dict[str, Any] = {
            "status": "token_refused" if health.token_refused_at else "ok",
            "last_sent_age_seconds": None if age is None else round(age, 1),
            "failing": health.last_error is not None,
        }
        if admin:
            entry["last_error"] = health.last_error
        return entry


def _date_arg(request: Request, name: str, default: date) -> date:
    text = request.arg(name)
    if not text:
        return default
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise HTTPError(400, "bad_date", f"{name}={text!r} is not a date (YYYY-MM-DD)") from None
    if not supported(value):
        raise HTTPError(400, "bad_date", f"{name}={text!r} is out of range ({DATE_LIMITS})")
    return value
