"""The booking form: a week of slots, the client's details, the rules, one POST.

The same form serves a new booking (``/book/{type}``) and a rebooking from the manage
link (:mod:`daemon.web.pages.manage`). A refused form is shown again as typed, with
its problems in a summary that links each to its field.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from daemon.availability import iso
from daemon.events import manage_url
from daemon.i18n import day_label, status_label
from daemon.store import SessionRecord
from daemon.web.api import parse_booking, violation_documents
from daemon.web.http import HTTPError, Request, Response
from daemon.web.pages.base import PageBase, PageError, Visit
from rules.booking import field_violations
from rules.lifecycle import IllegalTransition
from rules.messages import N_
from rules.model import BOOKING_FIELDS, BookingRequest, Code, Violation
from rules.slots import Slot

# The form's labels by field (msgids): the template shows them by name.
FORM_LABELS = {
    "company": N_("Company"),
    "responsible_name": N_("Person responsible, present during the session"),
    "phone": N_("Their phone/WhatsApp"),
    "email": N_("E-mail"),
    "remote_tool": N_("Remote-access program"),
    "remote_id": N_("Access ID"),
    "description": N_("Describe the problem"),
}

WINDOW_DAYS = 7  # days of slots per booking page (short on a phone); "later dates" pages on

# Where the error summary's links jump to, per field.
_ANCHORS = {
    **{name: f"f-{name}" for name in BOOKING_FIELDS},
    "start": "pick",
    "accept_rules": "f-accept_rules",
}


@dataclass
class FormState:
    """What the booking form shows: values as typed, errors by field, the chosen slot."""

    values: dict[str, str]
    accept: bool = False
    start: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)  # (field or "", message)
    taken: bool = False


class BookingPages(PageBase):
    """The slots a form offers, the form, and what a submitted one becomes."""

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
            visit,
            "index.html",
            title=visit.gettext("Book a remote session"),
            types=self._types(visit),
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
        title = (
            visit.gettext("Book another time: {label}")
            if rebook
            else visit.gettext("Book: {label}")
        )
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
            title=title.format(label=session_type.label),
            labels={name: visit.gettext(label) for name, label in FORM_LABELS.items()},
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
            status = status_label(error.status, visit.language)
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
