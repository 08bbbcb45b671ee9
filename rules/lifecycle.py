"""Session lifecycle (R2, R5): booked → in_progress → completed; booked → rescheduled; → cancelled.

The policy says up to 10 minutes of lateness is tolerated and a client who is not there
must reschedule. So the deadline is ``start + grace``: a check-in at the deadline itself
still counts, and the sweeper marks a session rescheduled as soon as ``now`` is past it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from rules.booking import clean_text
from rules.intervals import later, require_aware
from rules.model import Policy, Status


class Event(StrEnum):
    CHECK_IN = "check_in"
    NO_SHOW = "no_show"
    COMPLETE = "complete"
    CANCEL = "cancel"


class CancelReason(StrEnum):
    """Why a session was cancelled, when the daemon itself knows: stored as this code and
    put into words in the reader's language. Words a person gives (the admin's reason)
    are stored as written instead, see :func:`given_reason`."""

    CLIENT = "client"  # on the manage page
    DESK = "desk"  # by the admin, with no reason given
    TECHNICIAN_DELETED = "technician_deleted"  # the event was deleted from their calendar
    TECHNICIAN_CANCELLED = "technician_cancelled"  # its STATUS became CANCELLED there
    REBOOKED = "rebooked"  # replaced by the client's new booking (its ``rebooked_from``)


MAX_REASON = 300  # characters: a sentence for the client's mail, not a report


def given_reason(text: str) -> str:
    """A reason a person typed, as stored and shown: on one line, spaces collapsed.

    ``""`` when there is nothing but spaces; raises ``ValueError`` saying the limit when
    it is longer than :data:`MAX_REASON` characters.
    """
    # The same cleaning as a client's single-line field: an admin's words reach the
    # client's mail, so no bidi override or invisible character goes with them.
    reason = clean_text("reason", text)
    if len(reason) > MAX_REASON:
        raise ValueError(
            f"the reason has {len(reason)} characters; at most {MAX_REASON} are kept "
            "(it is shown to the client in the cancellation mail)"
        )
    return reason


class IllegalTransition(ValueError):
    """A transition the lifecycle does not allow; the message says which and why."""

    def __init__(self, status: Status, event: Event, reason: str = "") -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == status)
        text = f"cannot {event.value} a session that is {status.value}"
        if reason:
            text += f": {reason}"
        elif allowed:
            text += f" (allowed: {', '.join(allowed)})"
        else:
            text += " (it is final)"
        super().__init__(text)
        self.status = status
        self.event = event
        self.reason = reason


TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (Status.BOOKED, Event.CHECK_IN): Status.IN_PROGRESS,
    (Status.BOOKED, Event.NO_SHOW): Status.RESCHEDULED,
    (Status.BOOKED, Event.CANCEL): Status.CANCELLED,
    (Status.IN_PROGRESS, Event.COMPLETE): Status.COMPLETED,
}


def transition(status: Status, event: Event) -> Status:
    """The status after ``event``; raises :class:`IllegalTransition` otherwise."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(status, event) from None


def _minutes(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def noshow_deadline(policy: Policy, start: datetime) -> datetime:
    """The last instant a check-in is accepted."""
    return later(start, policy.grace)


def checkin_opens(policy: Policy, start: datetime) -> datetime:
    """The first instant a check-in is accepted."""
    return later(start, -policy.checkin_early)


def change_deadline(start: datetime, cutoff: timedelta) -> datetime:
    """The last instant (exclusive) the client may cancel or rebook on their own:
    ``cutoff`` (``[booking] cancel_cutoff``) before the start."""
    return later(start, -cutoff)


def client_may_change(status: Status, start: datetime, cutoff: timedelta, now: datetime) -> bool:
    """Whether the client may still cancel or rebook on their own at ``now``; after
    :func:`change_deadline` only the desk can, so pages and mails offer it no more."""
    require_aware(now, "now")
    return status == Status.BOOKED and now < change_deadline(start, cutoff)


def check_in(policy: Policy, status: Status, start: datetime, now: datetime) -> Status:
    """Check a session in at ``now``: allowed from ``checkin_early`` before the start
    until the no-show deadline; raises :class:`IllegalTransition` with the reason."""
    require_aware(now, "now")
    if status == Status.BOOKED:
        if now < checkin_opens(policy, start):
            raise IllegalTransition(
                status,
                Event.CHECK_IN,
                f"too early: check-in opens {_minutes(policy.checkin_early)} before the start",
            )
        if now > noshow_deadline(policy, start):
            raise IllegalTransition(
                status,
                Event.CHECK_IN,
                "too late: the tolerance has passed, the session must be rescheduled",
            )
    return transition(status, Event.CHECK_IN)


def due_event(
    policy: Policy, status: Status, start: datetime, end: datetime, now: datetime
) -> Event | None:
    """What the sweeper must apply at ``now``: a no-show or a completion, or nothing."""
    require_aware(now, "now")
    if status == Status.BOOKED and now > noshow_deadline(policy, start):
        return Event.NO_SHOW
    if status == Status.IN_PROGRESS and now >= end:
        return Event.COMPLETE
    return None


def next_deadline(
    policy: Policy, status: Status, start: datetime, end: datetime
) -> datetime | None:
    """When :func:`due_event` will next have something to say, for a precise timer.

    For a no-show that is the first instant *after* the deadline; datetimes have
    microsecond resolution, so one microsecond past it.
    """
    if status == Status.BOOKED:
        return noshow_deadline(policy, start) + timedelta(microseconds=1)
    if status == Status.IN_PROGRESS:
        return end
    return None
