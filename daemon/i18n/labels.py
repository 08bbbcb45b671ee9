"""Words for the daemon's codes: a session's status and why it was cancelled.

Codes are stored and sent; people read these. Each is an English msgid (marked with
``N_`` for extraction) translated where it is shown, so pages, mails and the check-in
say a status the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from daemon.i18n.catalogs import gettext
from rules.lifecycle import CancelReason
from rules.messages import N_
from rules.model import Status

STATUS: Mapping[Status, str] = {
    Status.BOOKED: N_("booked"),
    Status.IN_PROGRESS: N_("in progress"),
    Status.COMPLETED: N_("completed"),
    Status.RESCHEDULED: N_("missed — needs a new time"),
    Status.CANCELLED: N_("cancelled"),
}

REASONS: Mapping[CancelReason, str] = {
    CancelReason.CLIENT: N_("cancelled at the client's request"),
    CancelReason.DESK: N_("cancelled by the desk"),
    CancelReason.TECHNICIAN_DELETED: N_("the technician removed the session from their calendar"),
    CancelReason.TECHNICIAN_CANCELLED: N_("the technician cancelled the session in their calendar"),
    CancelReason.REBOOKED: N_("replaced by a new time the client booked"),
}

# What earlier versions stored instead of a code; they read the same as the code now.
_OLD_REASONS = {
    "cancelled": CancelReason.DESK,
    "cancelled by the desk": CancelReason.DESK,
    "cancelled by the client": CancelReason.CLIENT,
    "the technician deleted the event": CancelReason.TECHNICIAN_DELETED,
    "the technician cancelled the event": CancelReason.TECHNICIAN_CANCELLED,
}


def status_label(status: Status | str, language: str) -> str:
    """A session's status in ``language`` ("agendado", "booked", "agendada")."""
    return gettext(language)(STATUS[Status(status)])


def reason_text(stored: str | None, language: str) -> str:
    """A stored cancel reason in ``language``: a :class:`CancelReason` code in the
    catalog's words, a person's own words as they wrote them; ``""`` for none."""
    if not stored:
        return ""
    code = _OLD_REASONS.get(stored)
    if code is None and stored.startswith("rebooked as "):
        code = CancelReason.REBOOKED
    if code is None:
        try:
            code = CancelReason(stored)
        except ValueError:
            return stored
    return gettext(language)(REASONS[code])
