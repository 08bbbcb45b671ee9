"""The pages people see: booking, confirmation, the client's manage link, the check-in.

Everything is decided where the JSON API decides it: slots by ``Service.slots``, a
booking by ``Service.book`` (through the API's own ``parse_booking``), a check-in by
``Service.check_in``. These pages only translate between forms and those calls, in the
visitor's language, and work without JavaScript (a small inline script, allowed by its
hash in the Content-Security-Policy, only adds the visitor's own time zone).

Safety: templates autoescape everything typed; every form carries a CSRF token bound to
a server-issued SameSite=Lax cookie, and other sites' POSTs are refused before they get
here (``daemon.web.csrf``); booking POSTs are rate limited per client address on the
service's clock; a GET never changes a session (mail scanners and calendar previews
follow links). Signed links (``MANAGE_PURPOSE``, ``CHECKIN_PURPOSE``) are the only
credential: a bad one is a 404, an expired one a 410.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from daemon.availability import iso
from daemon.config import spoken_duration
from daemon.events import CHECKIN_PURPOSE, MANAGE_PURPOSE, manage_url
from daemon.invitation import access_text, client_calendar
from daemon.service import Service, SessionNotFound
from daemon.signing import BadToken, ExpiredToken, Signer
from daemon.store import SessionRecord
from daemon.web import csrf
from daemon.web.api import parse_booking, request_language, violation_documents
from daemon.web.csrf import CsrfGuard
from daemon.web.http import HTTPError, Request, Response, Router, route_path
from daemon.web.ratelimit import RateLimiter
from daemon.web.texts import TEXTS, day_label, zone_name
from rules.booking import field_violations
from rules.contact import format_phone
from rules.lifecycle import (
    CancelReason,
    IllegalTransition,
    change_deadline,
    checkin_opens,
    client_may_change,
    noshow_deadline,
)
from rules.messages import LANGUAGES, language_of
from rules.model import BOOKING_FIELDS, BookingRequest, Code, Policy, Status, Violation
from rules.slots import Slot

log = logging.getLogger("expediente.pages")

HERE = Path(__file__).parent
LANG_COOKIE = "expediente_lang"
WINDOW_DAYS = 7  # days of slots per booking page (short on a phone); "later dates" pages on
NEXT_SLOTS = 6  # offered straight on the manage page after a no-show

# Adds the visitor's local times when the browser's zone differs from the desk's. A
# constant, so its hash (not a per-response nonce) is what the CSP allows.
TZ_SCRIPT = (
    "(function(){var b=document.getElementById('tz-local');"
    "if(!b||!window.Intl)return;"
    "var z=Intl.DateTimeFormat().resolvedOptions().timeZone;"
    "if(!z||z===b.getAttribute('data-desk-zone'))return;"
    "b.querySelector('b').textContent=z;b.hidden=false;"
    "var f=new Intl.DateTimeFormat(document.documentElement.lang,"
    "{hour:'2-digit',minute:'2-digit',hourCycle:'h23'});"
    "document.querySelectorAll('[data-start]').forEach(function(e){"
    "var s=document.createElement('small');s.className='local';"
    "s.textContent=' ('+f.format(new Date(e.getAttribute('data-start')))+')';"
    "e.appendChild(s);});})();"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(TZ_SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

# Where the error summary's links jump to, per field.
_ANCHORS = {
    **{name: f"f-{name}" for name in BOOKING_FIELDS},
    "start": "pick",
    "accept_rules": "f-accept_rules",
}

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

PageHandler = Callable[[Request, "Visit"], Response]


class PageError(HTTPError):
    """An error page: ``key`` names its text in ``daemon.web.texts``."""

    def __init__(
        self,
        status: int,
        key: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        back: str = "/",
    ) -> None:
        super().__init__(status, key, key, headers=headers)
        self.key = key
        self.params = dict(params or {})
        self.back = back


@dataclass
class Visit:
    """One request's language and CSRF cookie, and the cookies its answer must set."""

    language: str
    csrf_cookie: str
    here: str
    cookies: list[str] = field(default_factory=list)

    @property
    def t(self) -> Mapping[str, str]:
        return TEXTS[self.language]


@dataclass
class FormState:
    """What the booking form shows: values as typed, errors by field, the chosen slot."""

    values: dict[str, str]
    accept: bool = False
    start: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)  # (field or "", message)
    taken: bool = False


class Pages:
    """The HTML side of the web app; ``routes`` mounts it next to the JSON API.

    ``limiter`` defaults to one built from ``[booking] rate_limit``/``refusal_limit``;
    pass the same instance to anything else that books (the JSON API) so an address
    has one budget, not one per door.
    """

    def __init__(
        self, service: Service, signer: Signer, *, limiter: RateLimiter | None = None
    ) -> None:
        self.service = service
        self.signer = signer
        config = service.config
        booking = config.booking
        self.limiter = limiter or RateLimiter(
            booking.rate_limit, booking.rate_window, booking.refusal_limit
        )
        self.secure_cookies = config.server.public_url.startswith("https://")
        self.csrf = CsrfGuard(signer.key, secure=self.secure_cookies)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.static: dict[str, tuple[bytes, str]] = {}
        for path in sorted((HERE / "static").iterdir()):
            if path.suffix in _STATIC_TYPES:
                self.static[path.name] = (path.read_bytes(), _STATIC_TYPES[path.suffix])
        css = self.static.get("style.css", (b"", ""))[0]
        self.css_url = f"/static/style.css?v={hashlib.sha256(css).hexdigest()[:10]}"

    def routes(self, router: Router) -> None:
        pages: list[tuple[str, str, PageHandler]] = [
            ("GET", "/", self.index),
            ("GET", "/book/{type}", self.book_form),
            ("POST", "/book/{type}", self.book_submit),
            ("GET", "/booked/{token}", self.booked),
            ("GET", "/manage/{token}", self.manage),
            ("POST", "/manage/{token}/cancel", self.cancel),
            ("GET", "/manage/{token}/rebook", self.rebook_form),
            ("POST", "/manage/{token}/rebook", self.rebook_submit),
            ("GET", "/manage/{token}/session.ics", self.ics),
            ("GET", "/checkin/{token}", self.checkin),
            ("POST", "/checkin/{token}", self.checkin_submit),
        ]
        for method, pattern, handler in pages:
            router.add(method, pattern, self._page(pattern, handler))
        router.add("GET", "/static/{name}", self.serve_static)

    # ------------------------------------------------------------ plumbing

    @property
    def policy(self) -> Policy:
        return self.service.policy

    def now(self) -> datetime:
        return self.service.clock.now()

    def _page(self, pattern: str, handler: PageHandler) -> Callable[[Request], Response]:
        """Run a page handler; its errors become HTML pages (the App would answer JSON).

        The page's own address is rebuilt from its route ``pattern``, never taken from the
        raw path, so links made from it (the language switch) stay on this site.
        """

        def run(request: Request) -> Response:
            visit = self._visit(request, route_path(pattern, request.params))
            try:
                return handler(request, visit)
            except HTTPError as error:
                return self._error(visit, error)

        return run

    def _visit(self, request: Request, here: str) -> Visit:
        cookies = _cookies(request.header("cookie"))
        visit = Visit(language="pt-BR", csrf_cookie="", here=here)
        asked = request.arg("lang")
        if asked:
            visit.language = language_of(asked)
            visit.cookies.append(self._cookie(LANG_COOKIE, visit.language, 365 * 86400))
        elif cookies.get(LANG_COOKIE) in LANGUAGES:
            visit.language = cookies[LANG_COOKIE]
        else:
            visit.language = request_language(request, self.service.config.desk.language)
        existing = cookies.get(self.csrf.cookie_name)
        if existing is not None and self.csrf.issued(existing):
            visit.csrf_cookie = existing
        else:  # none yet, or planted: never make a token for a value we did not issue
            visit.csrf_cookie = self.csrf.new_cookie()
            visit.cookies.append(self._cookie(self.csrf.cookie_name, visit.csrf_cookie, None))
        return visit

    def _cookie(self, name: str, value: str, max_age: int | None) -> str:
        parts = [f"{name}={value}", "Path=/", "SameSite=Lax", "HttpOnly"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def _check_csrf(self, request: Request, visit: Visit, form: Mapping[str, str]) -> None:
        cookie = _cookies(request.header("cookie")).get(self.csrf.cookie_name)
        if not self.csrf.valid(cookie, form.get(csrf.FIELD)):
            raise PageError(403, "error_csrf", back=visit.here)

    def _render(
        self,
        visit: Visit,
        template: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Response:
        other = "en" if visit.language == "pt-BR" else "pt-BR"
        body = self.env.get_template(template).render(
            lang=visit.language,
            t=visit.t,
            desk=self.service.config.desk,
            css_url=self.css_url,
            csrf_field=csrf.FIELD,
            csrf_token=self.csrf.token(visit.csrf_cookie),
            switch_url=f"{visit.here}?lang={other}",
            tz_script=Markup(TZ_SCRIPT),  # noqa: S704 - a constant of this module, not input
            desk_zone=self.policy.timezone.key,
            **context,
        )
        response_headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", CSP),
            ("X-Frame-Options", "DENY"),
            *(headers or {}).items(),
            *(("Set-Cookie", cookie) for cookie in visit.cookies),
        ]
        return Response(status, body.encode(), response_headers)

    def error_page(self, request: Request, error: HTTPError) -> Response:
        """The page for an address no route serves (the App calls it for browsers).

        No route means no known address to link back to: the page's links go home, never
        to the raw path (``/%5Cevil.example/x`` would make ``/\\evil.example/x``, which
        browsers read as another site).
        """
        if error.status == 404:
            error = PageError(404, "error_not_found")
        elif error.code == csrf.CROSS_SITE:  # a form another site made a browser send
            error = PageError(403, "error_csrf")
        return self._error(self._visit(request, "/"), error)

    def _error(self, visit: Visit, error: HTTPError) -> Response:
        if isinstance(error, PageError):
            text = visit.t[error.key].format(**error.params)
            back = error.back
        else:
            text = visit.t["error_generic"].format(detail=error.message)
            back = "/"
        return self._render(
            visit,
            "error.html",
            status=error.status,
            headers=error.headers,
            title=visit.t["title_error"],
            message=text,
            back=back,
        )

    @staticmethod
    def _redirect(location: str) -> Response:
        return Response(303, b"", [("Location", location)])

    def serve_static(self, request: Request) -> Response:
        found = self.static.get(request.params["name"])
        if found is None:
            raise HTTPError(404, "not_found", "no such file")
        body, content_type = found
        return Response(
            200, body, [("Content-Type", content_type), ("Cache-Control", "public, max-age=86400")]
        )

    # ------------------------------------------------------------ formatting

    def _local(self, value: datetime) -> datetime:
        return value.astimezone(self.policy.timezone)

    def _moment(self, value: datetime, visit: Visit) -> str:
        local = self._local(value)
        return f"{day_label(local.date(), visit.language)}, {local:%H:%M}"

    def _zone_note(self, visit: Visit) -> str:
        offset = self._local(self.now()).strftime("%z")
        return visit.t["tz_desk"].format(
            zone=zone_name(self.policy.timezone, visit.language),
            offset=f"{offset[:3]}:{offset[3:]}",
        )

    def _types(self, visit: Visit) -> list[dict[str, str]]:
        types = []
        for session_type in self.policy.session_types.values():
            duration = spoken_duration(session_type.duration, visit.language)
            if session_type.min_notice > timedelta(0):
                notice = visit.t["notice"].format(
                    notice=spoken_duration(session_type.min_notice, visit.language)
                )
            else:
                notice = visit.t["no_notice"]
            types.append(
                {
                    "name": session_type.name,
                    "label": session_type.label,
                    "description": session_type.description,
                    "duration": visit.t["duration"].format(duration=duration),
                    "notice": notice,
                }
            )
        return types

    def _session_view(self, session: SessionRecord, visit: Visit) -> dict[str, Any]:
        start, end = self._local(session.start), self._local(session.end)
        technician = self.policy.technician(session.technician_id)
        session_type = self.policy.session_types.get(session.type)
        deadline = self._local(noshow_deadline(self.policy, session.start))
        return {
            "id": session.id,
            "status": str(session.status),
            "status_label": visit.t[f"status_{session.status}"],
            "when": f"{day_label(start.date(), visit.language, year=True)}, "
            f"{start:%H:%M}–{end:%H:%M}",
            "start_iso": iso(session.start, self.policy),
            "start_time": f"{start:%H:%M}",
            "deadline": f"{deadline:%H:%M}",
            "grace_minutes": int(self.policy.grace.total_seconds() // 60),
            "technician": technician.first_name if technician else "",
            "type_label": session_type.label if session_type else session.type,
            "company": session.company,
            "responsible_name": session.responsible_name,
            "phone": format_phone(session.phone),
            "phone_e164": session.phone,
            "phone_digits": session.phone.lstrip("+"),
            "email": session.email,
            "remote_tool": session.remote_tool,
            "remote_id": session.remote_id,
            "description": session.description,
            "checked_in": f"{self._local(session.checked_in_at):%H:%M}"
            if session.checked_in_at
            else "",
        }

    # ------------------------------------------------------------ slots

    def _window(self, asked: str | None) -> tuple[date, date, date | None, date | None]:
        """The days one page of slots covers, and where the previous/next pages start."""
        now = self.now()
        today = self._local(now).date()
        last_day = self._local(now + self.policy.horizon).date()
        first = today
        if asked:
            try:
                first = min(max(date.fromisoformat(asked), today), last_day)
            except ValueError:
                first = today
        last = min(first + timedelta(days=WINDOW_DAYS - 1), last_day)
        earlier = max(today, first - timedelta(days=WINDOW_DAYS)) if first > today else None
        later = last + timedelta(days=1) if last < last_day else None
        return first, last, earlier, later

    def _days(self, slots: list[Slot], visit: Visit) -> list[dict[str, Any]]:
        days: dict[date, dict[str, Any]] = {}
        for slot in slots:
            start = self._local(slot.start)
            day = days.setdefault(
                start.date(),
                {"label": day_label(start.date(), visit.language), "slots": []},
            )
            value = iso(slot.start, self.policy)
            day["slots"].append(
                {
                    "value": value,
                    "label": f"{start:%H:%M}",
                    "id": "slot-" + start.strftime("%Y%m%d%H%M"),
                }
            )
        return list(days.values())

    # ------------------------------------------------------------ booking

    def index(self, request: Request, visit: Visit) -> Response:
        return self._render(
            visit, "index.html", title=visit.t["title_index"], types=self._types(visit)
        )

    def _type(self, request: Request) -> str:
        name = request.params["type"]
        if name not in self.policy.session_types:
            raise PageError(404, "error_unknown_type")
        return name

    def book_form(self, request: Request, visit: Visit) -> Response:
        type_name = self._type(request)
        state = FormState(values={name: "" for name in BOOKING_FIELDS})
        state.values["remote_tool"] = self.policy.remote_tools[0].name
        state.start = request.arg("start") or ""
        return self._form(request, visit, type_name, state, action=f"/book/{type_name}")

    def book_submit(self, request: Request, visit: Visit) -> Response:
        type_name = self._type(request)
        return self._submit(request, visit, type_name, None, action=f"/book/{type_name}")

    def _form(
        self,
        request: Request,
        visit: Visit,
        type_name: str,
        state: FormState,
        *,
        action: str,
        status: int = 200,
        rebook: SessionRecord | None = None,
    ) -> Response:
        first, last, earlier, later = self._window(request.arg("from"))
        days = self._days(self.service.slots(type_name, first, last), visit)
        offered = {slot["value"] for day in days for slot in day["slots"]}
        if state.start not in offered:
            state.start = ""
        session_type = self.policy.session_types[type_name]
        title_key = "title_rebook" if rebook else "title_book"
        base = f"/manage/{request.params['token']}/rebook" if rebook else "/book/"
        type_links = [
            {
                "label": other["label"],
                "url": f"{base}?type={other['name']}" if rebook else base + other["name"],
                "current": other["name"] == type_name,
            }
            for other in self._types(visit)
        ]
        here = action.split("?")[0]
        query = f"?type={type_name}&" if "?" in action else "?"
        tools = [{"name": t.name, "example": t.id_example} for t in self.policy.remote_tools]
        example = next((t.id_example for t in self.policy.remote_tools if t.id_example), "")
        return self._render(
            visit,
            "book.html",
            status=status,
            title=visit.t[title_key].format(label=session_type.label),
            type_name=type_name,
            type_links=type_links,
            action=action,
            days=days,
            earlier_url=f"{here}{query}from={earlier.isoformat()}" if earlier else "",
            later_url=f"{here}{query}from={later.isoformat()}" if later else "",
            anchors=_ANCHORS,
            zone_note=self._zone_note(visit),
            state=state,
            tools=tools,
            id_example=example,
            required=self.policy.required_fields,
            rules=self.service.config.desk.rules_for(visit.language),
            form_key=secrets.token_urlsafe(16),
            rebook=rebook,
        )

    def _submit(
        self,
        request: Request,
        visit: Visit,
        type_name: str,
        rebook: SessionRecord | None,
        *,
        action: str,
    ) -> Response:
        form = request.form()
        self._check_csrf(request, visit, form)
        state = FormState(
            values={name: form.get(name, "") for name in BOOKING_FIELDS},
            accept=form.get("accept_rules") == "yes",
            start=form.get("start", ""),
        )
        violations = self._shape_violations(type_name, state, visit)
        if violations is not None:
            return self._rejected(request, visit, type_name, state, violations, action, rebook)
        try:
            booking = parse_booking(
                {
                    "type": type_name,
                    "start": state.start,
                    "accept_rules": state.accept,
                    "language": visit.language,
                    **state.values,
                },
                visit.language,
            )
        except HTTPError as error:  # a tampered form, e.g. a start without its offset
            documents = error.violations or []
            return self._rejected(request, visit, type_name, state, documents, action, rebook)
        address = request.client_address
        granted_at = self.now()
        wait = self.limiter.acquire(address, granted_at)
        if wait is not None:
            minutes = str(max(1, int(wait + 59) // 60))
            raise PageError(
                429,
                "error_rate",
                params={"minutes": minutes},
                headers={"Retry-After": str(int(wait))},
                back=action,
            )
        key = form.get("form_key", "")
        try:
            outcome = self.service.book(
                booking,
                idempotency_key=f"page-{key}" if 16 <= len(key) <= 64 else None,
                rebooked_from=rebook.id if rebook else None,
            )
        except IllegalTransition as error:  # checked in while the client was choosing
            self.limiter.release(address, granted_at)
            status = visit.t[f"status_{error.status}"]
            raise PageError(
                409, "error_rebook_state", params={"status": status}, back=action
            ) from None
        if outcome.session is None or outcome.replayed:
            self.limiter.release(address, granted_at, refused=outcome.session is None)
        if outcome.session is None:
            documents = violation_documents(outcome.violations, visit.language)
            return self._rejected(request, visit, type_name, state, documents, action, rebook)
        return self._redirect(f"/booked/{self._manage_token(outcome.session)}")

    def _shape_violations(
        self, type_name: str, state: FormState, visit: Visit
    ) -> list[dict[str, Any]] | None:
        """Every problem at once when no time was picked (``parse_booking`` stops at the
        first); ``None`` when the form can go to ``parse_booking`` and the service."""
        if state.start:
            try:
                datetime.fromisoformat(state.start)
            except ValueError:
                state.start = ""
            else:
                return None
        probe = BookingRequest(
            type=type_name, start=self.now(), accept_rules=state.accept, **state.values
        )
        found = (Violation(Code.MISSING_FIELD, "start"), *field_violations(self.policy, probe)[1])
        return violation_documents(found, visit.language)

    def _rejected(
        self,
        request: Request,
        visit: Visit,
        type_name: str,
        state: FormState,
        documents: list[dict[str, Any]],
        action: str,
        rebook: SessionRecord | None,
    ) -> Response:
        for document in documents:
            name = document.get("field") or ""
            state.summary.append((name, document["message"]))
            state.errors.setdefault(name, []).append(document["message"])
        state.taken = any(d["code"] == Code.SLOT_TAKEN for d in documents)
        if state.taken:
            state.start = ""
        status = 409 if state.taken else 422
        return self._form(
            request, visit, type_name, state, action=action, status=status, rebook=rebook
        )

    def _manage_token(self, session: SessionRecord) -> str:
        url = manage_url(self.service.config.server.public_url, self.signer, session, self.policy)
        return url.rsplit("/", 1)[1]

    # ------------------------------------------------------------ the client's link

    def _session(self, request: Request, purpose: str) -> SessionRecord:
        try:
            session_id = self.signer.verify(request.params["token"], purpose, self.now())
            return self.service.get(session_id)
        except ExpiredToken:
            raise PageError(410, "error_link_expired") from None
        except BadToken:
            raise PageError(404, "error_link_invalid") from None
        except SessionNotFound:
            raise PageError(404, "error_link_invalid") from None

    def _changeable(self, session: SessionRecord) -> bool:
        cutoff = self.service.config.booking.cancel_cutoff
        return client_may_change(session.status, session.start, cutoff, self.now())

    def booked(self, request: Request, visit: Visit) -> Response:
        return self._manage(request, visit, just_booked=True)

    def manage(self, request: Request, visit: Visit) -> Response:
        return self._manage(request, visit, just_booked=False)

    def _manage(self, request: Request, visit: Visit, *, just_booked: bool) -> Response:
        session = self._session(request, MANAGE_PURPOSE)
        token = request.params["token"]
        cutoff = self.service.config.booking.cancel_cutoff
        next_slots: list[dict[str, str]] = []
        if session.status in (Status.RESCHEDULED, Status.CANCELLED):
            next_slots = self._next_slots(session.type, visit)
        config = self.service.config
        whatsapp = config.desk.whatsapp or ""
        t = visit.t
        access = access_text(session, t)
        return self._render(
            visit,
            "manage.html",
            title=visit.t["title_booked" if just_booked else "title_manage"],
            just_booked=just_booked and session.status == Status.BOOKED,
            session=self._session_view(session, visit),
            token=token,
            manage_link=f"{config.server.public_url}/manage/{token}",
            changeable=self._changeable(session),
            change_until=self._moment(change_deadline(session.start, cutoff), visit),
            access=access,
            zone_note=self._zone_note(visit),
            cutoff=spoken_duration(cutoff, visit.language),
            can_rebook=session.status != Status.IN_PROGRESS,
            next_slots=next_slots,
            whatsapp=whatsapp,
            whatsapp_link="https://wa.me/" + "".join(c for c in whatsapp if c.isdigit()),
            phone=config.desk.phone or "",
            phone_link="tel:" + "".join(c for c in (config.desk.phone or "") if c in "+0123456789"),
        )

    def _next_slots(self, type_name: str, visit: Visit) -> list[dict[str, str]]:
        if type_name not in self.policy.session_types:
            return []
        first, last, _, _ = self._window(None)
        found = []
        for slot in self.service.slots(type_name, first, last)[:NEXT_SLOTS]:
            start = self._local(slot.start)
            found.append(
                {
                    "value": iso(slot.start, self.policy),
                    "label": f"{day_label(start.date(), visit.language)}, {start:%H:%M}",
                }
            )
        return found

    def cancel(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        token = request.params["token"]
        visit.here = route_path("/manage/{token}", request.params)
        self._check_csrf(request, visit, form)
        session = self._session(request, MANAGE_PURPOSE)
        self._require_changeable(session, visit, "error_cancel_state", visit.here)
        try:
            self.service.cancel(session.id, actor="client", reason=CancelReason.CLIENT)
        except IllegalTransition:
            current = self.service.get(session.id)
            raise PageError(
                409,
                "error_cancel_state",
                params={"status": visit.t[f"status_{current.status}"]},
                back=visit.here,
            ) from None
        return self._redirect(f"/manage/{token}")

    def _require_changeable(
        self, session: SessionRecord, visit: Visit, state_key: str, back: str
    ) -> None:
        """Refuse a change the client may no longer make online (the cut-off, R5)."""
        if session.status != Status.BOOKED:
            status = visit.t[f"status_{session.status}"]
            raise PageError(409, state_key, params={"status": status}, back=back)
        if not self._changeable(session):
            cutoff = spoken_duration(self.service.config.booking.cancel_cutoff, visit.language)
            raise PageError(409, "error_change_closed", params={"cutoff": cutoff}, back=back)

    def _rebookable(self, request: Request, visit: Visit) -> SessionRecord:
        session = self._session(request, MANAGE_PURPOSE)
        if session.status == Status.IN_PROGRESS:
            raise PageError(
                409,
                "error_rebook_state",
                params={"status": visit.t[f"status_{session.status}"]},
                back=f"/manage/{request.params['token']}",
            )
        if session.status == Status.BOOKED:
            back = f"/manage/{request.params['token']}"
            self._require_changeable(session, visit, "error_rebook_state", back)
        return session

    def _rebook_type(self, request: Request, session: SessionRecord) -> str:
        asked = request.arg("type") or session.type
        if asked not in self.policy.session_types:
            raise PageError(404, "error_unknown_type")
        return asked

    def rebook_form(self, request: Request, visit: Visit) -> Response:
        session = self._rebookable(request, visit)
        type_name = self._rebook_type(request, session)
        values = {name: str(getattr(session, name)) for name in BOOKING_FIELDS}
        values["phone"] = format_phone(session.phone)
        state = FormState(values=values, start=request.arg("start") or "")
        action = f"/manage/{request.params['token']}/rebook"
        if type_name != session.type:
            action += f"?type={type_name}"
        return self._form(request, visit, type_name, state, action=action, rebook=session)

    def rebook_submit(self, request: Request, visit: Visit) -> Response:
        session = self._rebookable(request, visit)
        type_name = self._rebook_type(request, session)
        action = f"/manage/{request.params['token']}/rebook"
        if type_name != session.type:
            action += f"?type={type_name}"
        return self._submit(request, visit, type_name, session, action=action)

    def ics(self, request: Request, visit: Visit) -> Response:
        session = self._session(request, MANAGE_PURPOSE)
        language = language_of(session.language) if not request.arg("lang") else visit.language
        body = self._calendar(session, language, request.params["token"])
        return Response(
            200,
            body,
            [
                ("Content-Type", "text/calendar; charset=utf-8"),
                ("Content-Disposition", 'attachment; filename="atendimento.ics"'),
            ],
        )

    def _calendar(self, session: SessionRecord, language: str, token: str) -> bytes:
        """The client's copy, as the mails attach it (see :mod:`daemon.invitation`)."""
        return client_calendar(
            self.service.config,
            session,
            manage=f"{self.service.config.server.public_url}/manage/{token}",
            language=language,
            stamp=session.updated_at,
            now=self.now(),
            invitation=False,
        )

    # ------------------------------------------------------------ the technician's link

    def checkin(self, request: Request, visit: Visit) -> Response:
        session = self._session(request, CHECKIN_PURPOSE)
        return self._checkin_page(request, visit, session)

    def _checkin_page(
        self,
        request: Request,
        visit: Visit,
        session: SessionRecord,
        *,
        problem: str = "",
        status: int = 200,
    ) -> Response:
        opens = self._local(checkin_opens(self.policy, session.start))
        return self._render(
            visit,
            "checkin.html",
            status=status,
            title=visit.t["title_checkin"],
            session=self._session_view(session, visit),
            token=request.params["token"],
            problem=problem,
            early=session.status == Status.BOOKED and self.now() < opens,
            opens=f"{opens:%H:%M}",
        )

    def checkin_submit(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        token = request.params["token"]
        self._check_csrf(request, visit, form)
        session = self._session(request, CHECKIN_PURPOSE)
        try:
            self.service.check_in(session.id, actor="technician")
        except IllegalTransition as error:
            current = self.service.get(session.id)
            return self._checkin_page(
                request, visit, current, problem=self._checkin_problem(current, error, visit),
                status=409,
            )  # fmt: skip
        return self._redirect(f"/checkin/{token}")

    def _checkin_problem(
        self, session: SessionRecord, error: IllegalTransition, visit: Visit
    ) -> str:
        if error.status == Status.BOOKED and session.status == Status.BOOKED:
            if self.now() < session.start:
                opens = self._local(checkin_opens(self.policy, session.start))
                return visit.t["checkin_too_early"].format(time=f"{opens:%H:%M}")
            deadline = self._local(noshow_deadline(self.policy, session.start))
            return visit.t["checkin_too_late"].format(deadline=f"{deadline:%H:%M}")
        return visit.t["checkin_final"].format(status=visit.t[f"status_{session.status}"])


def _cookies(header: str | None) -> dict[str, str]:
    """Cookie pairs, tolerantly: a malformed pair is skipped, never an error."""
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip().strip('"')
    return found
