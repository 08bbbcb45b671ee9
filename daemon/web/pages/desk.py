"""The desk console's day: each technician's sessions in time order, kept current.

What an attendant needs while a client is on the line: status, company, the person
responsible and their phone (with a WhatsApp link), the remote tool and access ID, and
for a booked session the time left to the check-in deadline (R5). What needs a person
stands out: sessions flagged because a technician moved them to a time the rules refuse,
and technicians whose calendar is stale (their free time cannot be trusted).

The page keeps itself current by polling :meth:`DeskPages.desk_live` (a small JSON answer
holding the list's HTML) every ``[console] poll_interval``. The answer's ``ETag`` is
made from what the list depends on (the store's data version, the day, the search, the
language and the clock's minute), so an unchanged list costs one read and a 304, no
rendering: a no-show the sweeper marks ``rescheduled`` shows within one poll, without
hammering the server. No websockets: a plain GET works through every proxy.

Search matches company, person (case and accents ignored) and phone (digits) over a span
around the chosen day (:data:`SEARCH_BEFORE` back, the booking horizon ahead): the client
on the phone rarely knows the date.
"""

from __future__ import annotations

import contextlib
import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from daemon.i18n import day_label, reason_text, spoken_duration
from daemon.store import SessionRecord
from daemon.web.http import HTTPError, Request, Response
from daemon.web.pages.base import Visit
from daemon.web.pages.desk_auth import DeskAuthPages, Staff
from rules.intervals import Interval
from rules.lifecycle import noshow_deadline
from rules.model import Status

SEARCH_BEFORE = timedelta(days=30)
MAX_QUERY = 100  # characters of a search


@dataclass(frozen=True)
class DayQuery:
    """What the attendant asked to see: a day, and maybe a search."""

    day: date
    text: str = ""

    @property
    def query_string(self) -> str:
        from urllib.parse import urlencode

        pairs = {"date": self.day.isoformat()}
        if self.text:
            pairs["q"] = self.text
        return urlencode(pairs)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _folded(text: str) -> str:
    """``text`` for matching: case and accents ignored ("otica" finds "Ótica"), as an
    attendant types a name heard on the phone."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class DeskPages(DeskAuthPages):
    """``/desk/``: the login, or the day's list; ``/desk/live``: the list, for polling."""

    @property
    def poll_seconds(self) -> int:
        """``[console] poll_interval``, in the whole seconds the page's script takes."""
        return max(1, int(self.service.config.console.poll_interval.total_seconds()))

    def _today(self) -> date:
        return self._local(self.now()).date()

    def _day_query(self, request: Request) -> DayQuery:
        """The day and search asked for; a day that is not a date is today."""
        day = self._today()
        asked = request.arg("date") or ""
        with contextlib.suppress(ValueError):
            day = date.fromisoformat(asked) if asked else day
        if not date(2000, 1, 1) <= day <= date(2999, 12, 31):
            day = self._today()
        text = " ".join((request.arg("q") or "").split())[:MAX_QUERY]
        return DayQuery(day, text)

    def desk_home(self, request: Request, visit: Visit) -> Response:
        staff, expired = self._who(request, visit)
        if staff is None:
            notice = ""
            if expired or request.arg("expired"):
                notice = visit.gettext("Your session expired. Please log in again.")
            elif request.arg("bye"):
                notice = visit.gettext("You have logged out.")
            return self._login_page(visit, notice=notice)
        return self._day_page(request, visit, staff)

    def _day_page(
        self,
        request: Request,
        visit: Visit,
        staff: Staff,
        *,
        problem: str = "",
        done: str = "",
        status: int = 200,
    ) -> Response:
        query = self._day_query(request)
        done = done or self._done_message(request.arg("done") or "", visit)
        return self._desk_render(
            visit,
            "desk/day.html",
            status=status,
            title=visit.gettext("Desk console"),
            staff=staff,
            query=query,
            day_label=day_label(query.day, visit.language, year=True),
            previous_day=(query.day - timedelta(days=1)).isoformat(),
            next_day=(query.day + timedelta(days=1)).isoformat(),
            today=self._today().isoformat(),
            groups=self._groups(query, visit),
            poll_seconds=self.poll_seconds,
            etag=self._etag(query, visit, staff),
            problem=problem,
            done=done,
            js_url=self.static_url("desk.js"),
            types=self._types(visit),
        )

    def _done_message(self, key: str, visit: Visit) -> str:
        """The confirmation shown after an action (``?done=`` names it)."""
        return ""

    def desk_live(self, request: Request) -> Response:
        visit = self._visit(request, "/desk/")
        staff, _ = self._who(request, visit)
        if staff is None:
            raise HTTPError(401, "login_required", "log in at /desk/ first")
        query = self._day_query(request)
        etag = f'"{self._etag(query, visit, staff)}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in (request.header("if-none-match") or ""):
            return Response(304, b"", list(headers.items()))
        html = self.env.get_template("desk/list.html").render(
            lang=visit.language,
            _=visit.gettext,
            gettext=visit.gettext,
            groups=self._groups(query, visit),
            query=query,
            csrf_field="csrf_token",
            csrf_token=self.csrf.token(visit.csrf_cookie),
        )
        updated = visit.gettext("Updated at {time}.").format(
            time=f"{self._local(self.now()):%H:%M}"
        )
        return Response.json({"html": html, "updated": updated}, headers=headers)

    def _etag(self, query: DayQuery, visit: Visit, staff: Staff) -> str:
        minute = self.now().replace(second=0, microsecond=0).isoformat()
        parts = (
            self.service.store.data_version(), self.service.store.quiet_version(), query.day,
            query.text, visit.language, minute,
            staff.name, visit.csrf_cookie,
        )  # fmt: skip
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]

    # ------------------------------------------------------------ the list

    def _desk_window(self, query: DayQuery) -> Interval:
        tz = self.policy.timezone
        if query.text:
            first = query.day - SEARCH_BEFORE
            last = max(query.day, self._local(self.now() + self.policy.horizon).date())
        else:
            first = last = query.day
        return Interval(
            datetime.combine(first, time(0), tzinfo=tz),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz),
        )

    def _matches(self, session: SessionRecord, text: str) -> bool:
        needle = _folded(text)
        if needle in _folded(session.company) or needle in _folded(session.responsible_name):
            return True
        digits = _digits(text)
        return len(digits) >= 3 and digits in _digits(session.phone)

    def _groups(self, query: DayQuery, visit: Visit) -> list[dict[str, Any]]:
        """One group per technician, in the configured order, with their rows."""
        now = self.now()
        stale = self.service.stale_technicians(now)
        sessions = [
            s
            for s in self.service.store.iter_sessions(window=self._desk_window(query))
            if not query.text or self._matches(s, query.text)
        ]
        groups = []
        for technician in self.policy.technicians:
            rows = [
                self._row(s, visit, now, search=bool(query.text))
                for s in sessions
                if s.technician_id == technician.id
            ]
            if query.text and not rows:
                continue
            groups.append(
                {
                    "id": technician.id,
                    "name": technician.name,
                    "stale": technician.id in stale,
                    "rows": rows,
                }
            )
        return groups

    def _row(
        self, session: SessionRecord, visit: Visit, now: datetime, *, search: bool
    ) -> dict[str, Any]:
        _ = visit.gettext
        view = self._session_view(session, visit)
        start, end = self._local(session.start), self._local(session.end)
        view["time"] = f"{start:%H:%M}–{end:%H:%M}"
        view["date"] = day_label(start.date(), visit.language) if search else ""
        view["day"] = start.date().isoformat()
        deadline = noshow_deadline(self.policy, session.start)
        view["deadline_text"] = ""
        view["late"] = False
        if session.status == Status.BOOKED:
            local = f"{self._local(deadline):%H:%M}"
            if now <= deadline:
                left = timedelta(minutes=int((deadline - now).total_seconds() // 60))
                view["deadline_text"] = _("Check-in deadline {time} ({duration} left)").format(
                    time=local, duration=spoken_duration(left, visit.language)
                )
                view["late"] = now >= session.start
            else:
                view["deadline_text"] = _("Check-in deadline {time} has passed").format(time=local)
                view["late"] = True
        view["flag"] = session.needs_attention or ""
        view["cancel_reason"] = reason_text(session.cancel_reason, visit.language)
        view["actions"] = {
            "check_in": session.status == Status.BOOKED,
            "cancel": session.status == Status.BOOKED,
            "rebook": session.status in (Status.BOOKED, Status.RESCHEDULED),
            "resend": session.status == Status.BOOKED and bool(session.email),
            "complete": session.status == Status.IN_PROGRESS,
        }
        return view
