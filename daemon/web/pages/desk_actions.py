"""What staff do to a session from the console: check in, cancel with a reason, mark
completed, resend the confirmation.

Each is the service call the JSON API and the technician's check-in link make
(``Service.check_in``, ``cancel``, ``complete``, ``resend_confirmation``), so the rules
and the store decide exactly as they do there, and a refusal is the same
:class:`~rules.lifecycle.IllegalTransition`, put into the attendant's language with the
same words the check-in and manage pages use. The audit names the staff member. After an
action the console goes back to the day it was on, at the session's row.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from daemon.i18n import status_label
from daemon.service import NotResendable, SessionNotFound
from daemon.store import SessionRecord
from daemon.web.http import Request, Response
from daemon.web.pages.base import PAGE_ERRORS, PageError, Visit
from daemon.web.pages.checkin import CheckinPages
from daemon.web.pages.desk import DeskPages
from daemon.web.pages.desk_auth import Staff
from rules.lifecycle import MAX_REASON, IllegalTransition, given_reason
from rules.messages import N_

# What the console says after each action (``?done=`` names it).
DONE = {
    "check-in": N_("Checked in: the session is in progress."),
    "cancel": N_("Session cancelled. The client is told why."),
    "complete": N_("Session marked completed."),
    "resend": N_("Confirmation sent to the client again."),
    "rebook": N_("Session moved to the new time."),
    "booked": N_("Session booked."),
}


class DeskActionPages(DeskPages, CheckinPages):
    """``POST /desk/sessions/{id}/{action}``."""

    def _done_message(self, key: str, visit: Visit) -> str:
        return visit.gettext(DONE[key]) if key in DONE else ""

    def _staff_or_login(self, request: Request, visit: Visit) -> Staff:
        """The logged-in staff member; otherwise the login page, saying why."""
        staff, _ = self._who(request, visit)
        if staff is None:
            raise PageError(401, "error_desk_login", back="/desk/")
        return staff

    def _desk_session(self, request: Request) -> SessionRecord:
        try:
            return self.service.get(request.params["id"])
        except SessionNotFound:
            raise PageError(404, "error_not_found", back="/desk/") from None

    def _back_to(self, session: SessionRecord, request: Request, key: str) -> str:
        """The day the console was on (or the session's), with the confirmation."""
        pairs = {"date": request.arg("date") or self._local(session.start).date().isoformat()}
        if request.arg("q"):
            pairs["q"] = request.arg("q") or ""
        pairs["done"] = key
        return f"/desk/?{urlencode(pairs)}#s-{session.id}"

    def desk_check_in(self, request: Request, visit: Visit) -> Response:
        return self._act(request, visit, "check-in", self._do_check_in)

    def desk_cancel(self, request: Request, visit: Visit) -> Response:
        return self._act(request, visit, "cancel", self._do_cancel)

    def desk_complete(self, request: Request, visit: Visit) -> Response:
        return self._act(request, visit, "complete", self._do_complete)

    def desk_resend(self, request: Request, visit: Visit) -> Response:
        return self._act(request, visit, "resend", self._do_resend)

    def _act(
        self,
        request: Request,
        visit: Visit,
        key: str,
        action: Callable[[SessionRecord, Staff, dict[str, str], Visit], str],
    ) -> Response:
        """Run ``action``; it returns a problem to show (the day page again, 409 or 422)
        or ``""`` for done."""
        form = request.form()
        self._check_csrf(request, visit, form)
        staff = self._staff_or_login(request, visit)
        session = self._desk_session(request)
        problem = action(session, staff, form, visit)
        if problem:
            return self._day_page(request, visit, staff, problem=problem, status=409)
        return self._desk_redirect(visit, self._back_to(session, request, key))

    def _refused(self, template: str, error: IllegalTransition, visit: Visit) -> str:
        current = status_label(error.status, visit.language)
        return visit.gettext(template).format(status=current)

    def _do_check_in(
        self, session: SessionRecord, staff: Staff, form: dict[str, str], visit: Visit
    ) -> str:
        try:
            self.service.check_in(session.id, actor=staff.actor)
        except IllegalTransition as error:
            return self._checkin_problem(self.service.get(session.id), error, visit)
        return ""

    def _do_cancel(
        self, session: SessionRecord, staff: Staff, form: dict[str, str], visit: Visit
    ) -> str:
        try:
            reason = given_reason(form.get("reason", ""))
        except ValueError:
            return visit.gettext("The reason is too long: at most {max} characters.").format(
                max=str(MAX_REASON)
            )
        if not reason:
            return visit.gettext("Say why the session is cancelled: the client is told.")
        try:
            self.service.cancel(session.id, actor=staff.actor, reason=reason)
        except IllegalTransition as error:
            return self._refused(PAGE_ERRORS["error_cancel_state"], error, visit)
        return ""

    def _do_complete(
        self, session: SessionRecord, staff: Staff, form: dict[str, str], visit: Visit
    ) -> str:
        try:
            self.service.complete(session.id, actor=staff.actor)
        except IllegalTransition as error:
            return self._refused(
                N_("Cannot mark completed: the session is {status}."), error, visit
            )
        return ""

    def _do_resend(
        self, session: SessionRecord, staff: Staff, form: dict[str, str], visit: Visit
    ) -> str:
        try:
            self.service.resend_confirmation(session.id, actor=staff.actor)
        except NotResendable as error:
            return visit.gettext("Cannot resend the confirmation: the session is {status}.").format(
                status=status_label(error.status, visit.language)
            )
        return ""
