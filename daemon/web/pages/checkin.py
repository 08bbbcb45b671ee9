"""The technician's link: the check-in page, opened when the client calls."""

from __future__ import annotations

from daemon.events import CHECKIN_PURPOSE
from daemon.i18n import status_label
from daemon.store import SessionRecord
from daemon.web.http import Request, Response
from daemon.web.pages.base import PageBase, Visit
from rules.lifecycle import (
    IllegalTransition,
    checkin_opens,
    noshow_deadline,
)
from rules.model import Status


class CheckinPages(PageBase):
    """``/checkin``: the session, and the button that starts it while the rules allow."""

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
            title=visit.gettext("Session check-in"),
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
                return visit.gettext("Too early: check-in opens at {time}.").format(
                    time=f"{opens:%H:%M}"
                )
            deadline = self._local(noshow_deadline(self.policy, session.start))
            return visit.gettext(
                "The tolerance ended at {deadline}: the session must be rescheduled."
            ).format(deadline=f"{deadline:%H:%M}")
        return visit.gettext("Cannot check in: the session is {status}.").format(
            status=status_label(session.status, visit.language)
        )
