"""The client's link: the session, cancelling it, rebooking it, its ``.ics``.

A change is offered only while ``[booking] cancel_cutoff`` allows it (R5); after a
no-show or a cancellation the page offers the next free times straight away.
"""

from __future__ import annotations

from daemon.availability import iso
from daemon.events import MANAGE_PURPOSE
from daemon.i18n import day_label, language_of, spoken_duration, status_label
from daemon.invitation import access_text, client_calendar
from daemon.store import SessionRecord
from daemon.web.http import Request, Response, route_path
from daemon.web.pages.base import PageError, Visit
from daemon.web.pages.booking import BookingPages, FormState
from rules.contact import format_phone
from rules.lifecycle import (
    CancelReason,
    IllegalTransition,
    change_deadline,
    client_may_change,
)
from rules.model import BOOKING_FIELDS, Status

NEXT_SLOTS = 6  # offered straight on the manage page after a no-show


class ManagePages(BookingPages):
    """``/booked`` and ``/manage`` pages; rebooking reuses the booking form."""

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
        access = access_text(session, visit.language)
        return self._render(
            visit,
            "manage.html",
            title=visit.gettext("Session booked") if just_booked else visit.gettext("Your session"),
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
                params={"status": status_label(current.status, visit.language)},
                back=visit.here,
            ) from None
        return self._redirect(f"/manage/{token}")

    def _require_changeable(
        self, session: SessionRecord, visit: Visit, state_key: str, back: str
    ) -> None:
        """Refuse a change the client may no longer make online (the cut-off, R5)."""
        if session.status != Status.BOOKED:
            status = status_label(session.status, visit.language)
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
                params={"status": status_label(session.status, visit.language)},
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
