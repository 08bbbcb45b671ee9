"""Booking by phone, and rebooking, from the desk console.

The attendant fills in the public booking form's fields while the client is on the line,
and the booking goes through the same door as the public page's and the API's
(``parse_booking`` for shape, ``Service.book`` for the rules and the store), so it is
validated the same way and refused with the same messages. Two things only the desk may
do, both passed to the rules as inputs rather than around them:

- pick the technician (the client asked for the one who knows their system): the rules
  then see only that technician as eligible;
- override the session type's minimum notice (R3) for a long case the desk judges
  urgent, with a reason typed in: the rules get ``waive_notice`` and still refuse a time
  outside the hours, on a closed day, in the past or on another session's time; the
  reason is kept in the booking's audit entry next to the staff member's name.

Rebooking (a booked session moved, or a rescheduled one given a new time) is the same
form with the client's details already known: ``Service.book`` with ``rebooked_from``,
which cancels the old time in the same transaction.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from daemon.store import SessionRecord
from daemon.web.api import parse_booking, violation_documents
from daemon.web.http import HTTPError, Request, Response
from daemon.web.pages.base import PageError, Visit
from daemon.web.pages.booking import _ANCHORS, FORM_LABELS, BookingPages, FormState
from daemon.web.pages.desk_actions import DeskActionPages
from daemon.web.pages.desk_auth import Staff
from rules.lifecycle import IllegalTransition, given_reason
from rules.model import BOOKING_FIELDS, Status


class DeskBookingPages(DeskActionPages, BookingPages):
    """``/desk/book/{type}`` and ``/desk/sessions/{id}/rebook``."""

    def _choices(self, request: Request) -> tuple[str | None, bool]:
        """The technician picked (None: any) and whether the notice is overridden."""
        tech = request.arg("tech") or None
        if tech is not None and self.policy.technician(tech) is None:
            tech = None
        return tech, request.arg("override") == "1"

    def _desk_type(self, name: str) -> str:
        if name not in self.policy.session_types:
            raise PageError(404, "error_unknown_type", back="/desk/")
        return name

    # ------------------------------------------------------------ by phone

    def desk_book_form(self, request: Request, visit: Visit) -> Response:
        staff = self._staff_or_login(request, visit)
        type_name = self._desk_type(request.params["type"])
        state = FormState(values={name: "" for name in BOOKING_FIELDS})
        state.values["remote_tool"] = self.policy.remote_tools[0].name
        return self._desk_form(request, visit, staff, type_name, state, None)

    def desk_book_submit(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        self._check_csrf(request, visit, form)
        staff = self._staff_or_login(request, visit)
        type_name = self._desk_type(request.params["type"])
        values = {name: form.get(name, "") for name in BOOKING_FIELDS}
        return self._desk_submit(request, visit, staff, type_name, form, values, None)

    # ------------------------------------------------------------ rebook

    def desk_rebook_form(self, request: Request, visit: Visit) -> Response:
        staff = self._staff_or_login(request, visit)
        session = self._desk_rebookable(request, visit)
        state = FormState(values={name: getattr(session, name) for name in BOOKING_FIELDS})
        return self._desk_form(request, visit, staff, session.type, state, session)

    def desk_rebook_submit(self, request: Request, visit: Visit) -> Response:
        form = request.form()
        self._check_csrf(request, visit, form)
        staff = self._staff_or_login(request, visit)
        session = self._desk_rebookable(request, visit)
        values = {name: getattr(session, name) for name in BOOKING_FIELDS}
        return self._desk_submit(request, visit, staff, session.type, form, values, session)

    def _desk_rebookable(self, request: Request, visit: Visit) -> SessionRecord:
        session = self._desk_session(request)
        if session.status not in (Status.BOOKED, Status.RESCHEDULED):
            raise PageError(
                409,
                "error_rebook_state",
                params={"status": self._status_words(session.status, visit)},
                back="/desk/",
            )
        return session

    def _status_words(self, status: Status, visit: Visit) -> str:
        from daemon.i18n import status_label

        return status_label(status, visit.language)

    # ------------------------------------------------------------ the form

    def _desk_action_url(self, request: Request, base: str) -> str:
        tech, override = self._choices(request)
        pairs = {}
        if tech:
            pairs["tech"] = tech
        if override:
            pairs["override"] = "1"
        return f"{base}?{urlencode(pairs)}" if pairs else base

    def _desk_form(
        self,
        request: Request,
        visit: Visit,
        staff: Staff,
        type_name: str,
        state: FormState,
        rebook: SessionRecord | None,
        *,
        reason: str = "",
        status: int = 200,
    ) -> Response:
        tech, override = self._choices(request)
        first, last, earlier, later = self._window(request.arg("from"))
        slots = self.service.slots(type_name, first, last, technician=tech, waive_notice=override)
        days = self._days(slots, visit)
        offered = {slot["value"] for day in days for slot in day["slots"]}
        if state.start not in offered:
            state.start = ""
        base = f"/desk/sessions/{rebook.id}/rebook" if rebook else f"/desk/book/{type_name}"
        action = self._desk_action_url(request, base)
        joiner = "&" if "?" in action else "?"
        session_type = self.policy.session_types[type_name]
        title = (
            visit.gettext("Rebook: {company}").format(company=rebook.company)
            if rebook
            else visit.gettext("Book by phone: {label}").format(label=session_type.label)
        )
        return self._desk_render(
            visit,
            "desk/book.html",
            status=status,
            title=title,
            staff=staff,
            labels={name: visit.gettext(label) for name, label in FORM_LABELS.items()},
            type_name=type_name,
            type_links=[
                {
                    "label": other["label"],
                    "url": self._desk_action_url(request, f"/desk/book/{other['name']}"),
                    "current": other["name"] == type_name,
                }
                for other in self._types(visit)
            ],
            base=base,
            action=action,
            days=days,
            earlier_url=f"{action}{joiner}from={earlier.isoformat()}" if earlier else "",
            later_url=f"{action}{joiner}from={later.isoformat()}" if later else "",
            anchors={**_ANCHORS, "notice_override": "f-notice_override"},
            zone_note=self._zone_note(visit),
            state=state,
            tools=[{"name": t.name, "example": t.id_example} for t in self.policy.remote_tools],
            id_example=next((t.id_example for t in self.policy.remote_tools if t.id_example), ""),
            required=self.policy.required_fields,
            rules=self.service.config.desk.rules_for(visit.language),
            form_key=secrets.token_urlsafe(16),
            rebook=self._row(rebook, visit, self.now(), search=True) if rebook else None,
            technicians=[{"id": t.id, "name": t.name} for t in self.policy.technicians],
            tech=tech or "",
            override=override,
            reason=reason,
            notice=session_type.min_notice,
        )

    def _desk_submit(
        self,
        request: Request,
        visit: Visit,
        staff: Staff,
        type_name: str,
        form: dict[str, str],
        values: dict[str, str],
        rebook: SessionRecord | None,
    ) -> Response:
        tech, override = self._choices(request)
        state = FormState(
            values=values,
            accept=form.get("accept_rules") == "yes" or rebook is not None,
            start=form.get("start", ""),
        )
        documents: list[dict[str, Any]] = []
        reason = ""
        if override:
            try:
                reason = given_reason(form.get("notice_override", ""))
            except ValueError:
                reason = ""
            if not reason:
                message = visit.gettext("Say why the minimum notice is overridden.")
                documents.append({"code": "missing_field", "message": message,
                                  "field": "notice_override"})  # fmt: skip
        shape = None if documents else self._shape_violations(type_name, state, visit)
        if shape is not None:
            documents += shape
        if documents:
            return self._desk_rejected(request, visit, staff, type_name, state, documents,
                                       rebook, reason)  # fmt: skip
        try:
            booking = parse_booking(
                {"type": type_name, "start": state.start, "accept_rules": state.accept,
                 "language": rebook.language if rebook else visit.language, **state.values},
                visit.language,
            )  # fmt: skip
        except HTTPError as error:
            return self._desk_rejected(request, visit, staff, type_name, state,
                                       error.violations or [], rebook, reason)  # fmt: skip
        key = form.get("form_key", "")
        try:
            outcome = self.service.book(
                booking,
                idempotency_key=f"desk-{key}" if 16 <= len(key) <= 64 else None,
                actor=staff.actor,
                rebooked_from=rebook.id if rebook else None,
                technician=tech,
                notice_override=reason,
            )
        except IllegalTransition as error:
            raise PageError(
                409,
                "error_rebook_state",
                params={"status": self._status_words(error.status, visit)},
                back="/desk/",
            ) from None
        if outcome.session is None:
            documents = violation_documents(outcome.violations, visit.language)
            return self._desk_rejected(request, visit, staff, type_name, state, documents,
                                       rebook, reason)  # fmt: skip
        session = outcome.session
        day = self._local(session.start).date().isoformat()
        done = "rebook" if rebook else "booked"
        return self._desk_redirect(visit, f"/desk/?date={day}&done={done}#s-{session.id}")

    def _desk_rejected(
        self,
        request: Request,
        visit: Visit,
        staff: Staff,
        type_name: str,
        state: FormState,
        documents: list[dict[str, Any]],
        rebook: SessionRecord | None,
        reason: str,
    ) -> Response:
        for document in documents:
            name = document.get("field") or ""
            state.summary.append((name, document["message"]))
            state.errors.setdefault(name, []).append(document["message"])
        state.taken = any(d["code"] == "slot_taken" for d in documents)
        if state.taken:
            state.start = ""
        return self._desk_form(request, visit, staff, type_name, state, rebook, reason=reason,
                               status=409 if state.taken else 422)  # fmt: skip
