"""A client moving a session: one transaction books the new time and frees the old one."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon.store import InProgress, NewSession, SessionRecord
from rules.lifecycle import CancelReason, IllegalTransition
from rules.model import Code, Status
from tests.daemon.desk import Desk, make_desk, monday
from tests.factories import booking_request

TUESDAY = monday(0) + timedelta(days=1)


def at(hour: int) -> datetime:
    return TUESDAY.replace(hour=hour)


def book(desk: Desk, start: datetime, *, rebooked_from: str | None = None) -> SessionRecord:
    # Extended: two hours, so a move by one hour overlaps the old time.
    request = booking_request(start, "extended", only_required=True)
    outcome = desk.service.book(request, rebooked_from=rebooked_from)
    assert outcome.session is not None, outcome.codes
    return outcome.session


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return make_desk(tmp_path, monday(7))


def test_a_move_by_less_than_its_length_keeps_the_technician_and_frees_the_old_time(
    desk: Desk,
) -> None:
    first = book(desk, at(8))
    other = book(desk, at(8))  # both technicians are now busy 08:00–10:00
    assert {first.technician_id, other.technician_id} == {"ana", "bruno"}

    moved = book(desk, at(9), rebooked_from=first.id)

    assert moved.technician_id == first.technician_id, "only the old session's time was free"
    assert moved.rebooked_from == first.id
    old = desk.service.get(first.id)
    assert old.status == Status.CANCELLED and old.cancel_reason == CancelReason.REBOOKED
    queued = {
        (i.session_id, i.action, i.payload.get("event")) for i in desk.store.due_outbox(monday(8))
    }
    assert {
        (moved.id, "put", None),
        (moved.id, "notify", "booked"),
        (first.id, "put", None),
        (first.id, "notify", "cancelled"),
    } <= queued
    entries = [(e.action, e.session_id) for e in desk.store.audit_log()]
    assert ("booking_accepted", moved.id) in entries and ("status_changed", first.id) in entries
    free = {
        s.start: s.technicians
        for s in desk.service.slots("standard", TUESDAY.date(), TUESDAY.date())
    }
    assert free[at(8)] == (first.technician_id,), "the old time is free again"
    assert at(9) not in free, "both technicians are busy at 09:00"


def test_a_move_onto_someone_elses_time_changes_nothing(desk: Desk) -> None:
    first = book(desk, at(8))
    book(desk, at(13))
    book(desk, at(13))  # both technicians busy 13:00–15:00
    request = booking_request(at(13), "extended", only_required=True)
    outcome = desk.service.book(request, rebooked_from=first.id)
    assert outcome.session is None and outcome.codes == [Code.SLOT_TAKEN]
    assert desk.service.get(first.id).status == Status.BOOKED
    assert len(desk.store.list_sessions()) == 3


def test_a_session_checked_in_meanwhile_cannot_be_moved(desk: Desk) -> None:
    first = book(desk, at(8))
    desk.clock.set(at(8) - timedelta(minutes=5))
    desk.service.check_in(first.id, actor="technician")
    desk.mark_synced()
    with pytest.raises(IllegalTransition, match="checked in"):
        book(desk, at(13) + timedelta(days=2), rebooked_from=first.id)
    assert [s.id for s in desk.store.list_sessions()] == [first.id]
    assert desk.service.get(first.id).status == Status.IN_PROGRESS


def test_the_store_refuses_to_replace_a_session_in_progress(desk: Desk) -> None:
    """The check the service does first is repeated inside the insert's transaction, where
    no check-in can slip in between."""
    first = book(desk, at(8))
    desk.clock.set(at(8))
    desk.service.check_in(first.id, actor="technician")
    same = {f.name: getattr(first, f.name) for f in dataclasses.fields(NewSession)}
    new = NewSession(
        **same
        | {
            "id": "n" * 32,
            "start": at(13),
            "end": at(15),
            "calendar_uid": "new-uid",
            "rebooked_from": first.id,
        }
    )
    result = desk.store.insert_booking(new, buffer=timedelta(0), now=at(8))
    assert result == InProgress(first.id)
    assert desk.store.get_session(new.id) is None


def test_rebooking_after_a_no_show_leaves_the_old_session_rescheduled(desk: Desk) -> None:
    first = book(desk, at(8))
    desk.clock.set(at(8) + timedelta(minutes=11))
    desk.mark_synced()
    assert [s.id for s in desk.service.sweep()] == [first.id]
    again = book(desk, TUESDAY + timedelta(days=2, hours=8), rebooked_from=first.id)
    assert again.rebooked_from == first.id
    assert desk.service.get(first.id).status == Status.RESCHEDULED
