"""What every page shares: the visit, rendering, error pages, static files, formatting,
and the signed link that is a page's only credential.

Pages are mixins over :class:`PageBase`; it holds the plumbing and names the attributes
``Pages.__init__`` sets, so each mixin is typed without the others.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jinja2
from markupsafe import Markup

from daemon.availability import iso
from daemon.i18n import (
    LANGUAGES,
    day_label,
    gettext,
    language_of,
    locale_of,
    spoken_duration,
    status_label,
    zone_name,
)
from daemon.service import Service, SessionNotFound
from daemon.signing import BadToken, ExpiredToken, Signer
from daemon.store import SessionRecord
from daemon.web import csrf
from daemon.web.api import request_language
from daemon.web.csrf import CsrfGuard
from daemon.web.http import UNAVAILABLE, HTTPError, Request, Response, route_path
from daemon.web.ratelimit import RateLimiter
from rules.contact import format_phone
from rules.lifecycle import noshow_deadline
from rules.messages import N_
from rules.model import Policy

LANG_COOKIE = "expediente_lang"

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

# The desk console's pages also load their own script (/static/desk.js) and poll the
# console's JSON endpoint.
DESK_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    f"script-src 'self' 'sha256-{_SCRIPT_HASH}'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

PageHandler = Callable[[Request, "Visit"], Response]


# The error pages' words by code: ``PageError.key`` is the code, this its msgid.
PAGE_ERRORS: Mapping[str, str] = {
    "error_csrf": N_(
        "For your security this form expired. Go back, reload the page and try again."
    ),
    "error_link_invalid": N_("This link is not valid. Check that the whole address was copied."),
    "error_link_expired": N_("This link has expired."),
    "error_not_found": N_("Page not found."),
    "error_unknown_type": N_("Unknown kind of session."),
    "error_rate": N_(
        "Too many booking attempts from this connection. Please try again in {minutes} minutes."
    ),
    "error_cancel_state": N_("This session is {status} and can no longer be cancelled."),
    "error_change_closed": N_(
        "The session starts in less than {cutoff}: it can no longer be cancelled or rebooked "
        "here. Please contact the desk."
    ),
    "error_rebook_state": N_("This session is {status} and cannot be rebooked."),
    "error_desk_login": N_("Log in to the desk console first."),
    "error_unavailable": N_("Scheduling is briefly unavailable. Please try again in a minute."),
}


class PageError(HTTPError):
    """An error page: ``key`` is its code, and names its words in :data:`PAGE_ERRORS`."""

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
    def gettext(self) -> Callable[[str], str]:
        """``_`` in the visit's language."""
        return gettext(self.language)


class PageBase:
    """The plumbing every page uses, over the attributes ``Pages.__init__`` sets."""

    service: Service
    signer: Signer
    limiter: RateLimiter
    secure_cookies: bool
    csrf: CsrfGuard
    env: jinja2.Environment
    static: dict[str, tuple[bytes, str]]
    css_url: str

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
        csp: str = CSP,
        **context: Any,
    ) -> Response:
        body = self.env.get_template(template).render(
            lang=visit.language,
            _=visit.gettext,
            gettext=visit.gettext,
            languages=[
                {"tag": tag, "name": _language_name(tag), "url": f"{visit.here}?lang={tag}"}
                for tag in LANGUAGES
                if tag != visit.language
            ],
            desk=self.service.config.desk,
            css_url=self.css_url,
            csrf_field=csrf.FIELD,
            csrf_token=self.csrf.token(visit.csrf_cookie),
            tz_script=Markup(TZ_SCRIPT),  # noqa: S704 - a constant of this module, not input
            desk_zone=self.policy.timezone.key,
            **context,
        )
        response_headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", csp),
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
        elif error.code == UNAVAILABLE:  # the database is restarting or cut off
            error = PageError(503, "error_unavailable", headers=error.headers)
        return self._error(self._visit(request, "/"), error)

    def _error(self, visit: Visit, error: HTTPError) -> Response:
        if isinstance(error, PageError):
            text = visit.gettext(PAGE_ERRORS[error.key]).format(**error.params)
            back = error.back
        else:
            text = visit.gettext("The request could not be handled ({detail}).").format(
                detail=error.message
            )
            back = "/"
        return self._render(
            visit,
            "error.html",
            status=error.status,
            headers=error.headers,
            title=visit.gettext("Could not continue"),
            message=text,
            back=back,
        )

    @staticmethod
    def _redirect(location: str) -> Response:
        return Response(303, b"", [("Location", location)])

    def static_url(self, name: str) -> str:
        """A static file's address, versioned by its content (cached a day, never stale)."""
        body = self.static[name][0]
        return f"/static/{name}?v={hashlib.sha256(body).hexdigest()[:10]}"

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
        return visit.gettext("Times are in the desk's time zone: {zone} (UTC{offset}).").format(
            zone=zone_name(self.policy.timezone, visit.language),
            offset=f"{offset[:3]}:{offset[3:]}",
        )

    def _types(self, visit: Visit) -> list[dict[str, str]]:
        types = []
        for session_type in self.policy.session_types.values():
            duration = spoken_duration(session_type.duration, visit.language)
            if session_type.min_notice > timedelta(0):
                notice = visit.gettext("Book at least {notice} ahead.").format(
                    notice=spoken_duration(session_type.min_notice, visit.language)
                )
            else:
                notice = visit.gettext("Can be booked for today.")
            types.append(
                {
                    "name": session_type.name,
                    "label": session_type.label,
                    "description": session_type.description,
                    "duration": visit.gettext("Duration: {duration}.").format(duration=duration),
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
            "status_label": status_label(session.status, visit.language),
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

    # ------------------------------------------------------------ signed links

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


def _language_name(tag: str) -> str:
    """A language in its own words, for the switch: "Português", "English", "Español"."""
    name = locale_of(tag).language_name or tag
    return name[:1].upper() + name[1:]


def _cookies(header: str | None) -> dict[str, str]:
    """Cookie pairs, tolerantly: a malformed pair is skipped, never an error."""
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip().strip('"')
    return found
