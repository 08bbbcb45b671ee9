"""Free slots, and the single definition of "this start time is bookable".

Slot listing and booking validation share :func:`time_violations` and
:func:`free_technicians`: a slot offered is a booking accepted and a booking accepted is a
slot that would be offered. Two implementations would drift; there is one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import compress

from rules.hours import DayHours, day_hours, days, local_date, windows
from rules.intervals import BusyTimeline, Interval, query_key, require_aware
from rules.model import Code, Policy, SessionType, Violation


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime
    technicians: tuple[str, ...]  # ids of the technicians free for it, in policy order


def _fmt(value: datetime, policy: Policy) -> str:
    return value.astimezone(policy.timezone).strftime("%H:%M")


def time_violations(
    policy: Policy,
    session_type: SessionType,
    start: datetime,
    now: datetime,
    *,
    waive_notice: bool = False,
) -> list[Violation]:
    """Why a session of ``session_type`` cannot start at ``start`` (empty: it can).

    Checks, in order: past, closed day, fit inside one opening range (or which rule the
    misfit breaks), alignment to the range's grid, notice, horizon. All of it in elapsed
    time (UTC), so a day the clocks change on has the length it really has.

    ``waive_notice`` is the desk's override of the type's minimum notice (R3) for a case
    the attendant judged urgent, with a reason they state: it waives that one check and
    nothing else (past, hours, closed days, the grid and the horizon still hold).
    """
    start = require_aware(start, "start").astimezone(UTC)
    now = require_aware(now, "now").astimezone(UTC)
    found: list[Violation] = []
    end = start + session_type.duration
    if start < now:
        found.append(Violation(Code.IN_PAST, "start"))
    day = local_date(policy, start)
    hours = day_hours(policy, day)
    if hours.closed is not None:
        found.append(
            Violation(
                Code.CLOSED_DAY,
                "start",
                detail=hours.closed,
                params={
                    "date": day.isoformat(),
                    "label": hours.label,
                    # Which weekdays are open, for the message (0 is Monday).
                    "open_days": ",".join(str(d) for d in range(7) if policy.weekly.get(d)),
                },
            )
        )
        return found
    spans = [(w.start, w.end) for w in windows(policy, day)]
    containing = next((s for s in spans if s[0] <= start < s[1]), None)
    if containing is None:
        found.append(Violation(Code.OUTSIDE_HOURS, "start", params=_hours_params(policy, hours)))
        return found
    if end > containing[1]:
        # Running into the gap before a later range of the day is the lunch-break rule;
        # running past the day's last range is plain outside_hours.
        later = [s for s in spans if s[0] >= containing[1]]
        code = Code.SPANS_BREAK if later else Code.OUTSIDE_HOURS
        params = _hours_params(policy, hours)
        params["break_start"] = _fmt(containing[1], policy)
        if later:
            params["break_end"] = _fmt(later[0][0], policy)
        found.append(Violation(code, "start", params=params))
        return found
    if (start - containing[0]) % policy.slot_step:
        found.append(
            Violation(
                Code.INVALID_FIELD,
                "start",
                detail="grid",
                params={"step": str(int(policy.slot_step.total_seconds() // 60))},
            )
        )
    if not waive_notice and now <= start < now + session_type.min_notice:
        found.append(
            Violation(
                Code.INSUFFICIENT_NOTICE,
                "start",
                params={"notice": _human(session_type.min_notice), "type": session_type.name},
            )
        )
    if start > now + policy.horizon:
        found.append(
            Violation(Code.BEYOND_HORIZON, "start", params={"horizon": _human(policy.horizon)})
        )
    return found


def _hours_params(policy: Policy, hours: DayHours) -> dict[str, str]:
    return {"hours": ", ".join(str(r) for r in hours.ranges)}


def _human(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    if minutes % (60 * 24) == 0 and minutes >= 60 * 24 * 2:
        return f"{minutes // (60 * 24)}d"
    if minutes % 60 == 0 and minutes >= 60:
        return f"{minutes // 60}h"
    return f"{minutes}min"


def free_technicians(
    policy: Policy,
    busy: Mapping[str, BusyTimeline],
    start: datetime,
    end: datetime,
    eligible: Collection[str] | None = None,
) -> list[str]:
    """Ids of technicians with no busy time within ``buffer`` of ``[start, end)``.

    A technician absent from ``busy`` has no busy time. ``eligible`` restricts the choice
    (the daemon leaves out technicians whose calendar data is too stale to trust).
    """
    lo = start.timestamp() - policy.buffer.total_seconds()
    hi = end.timestamp() + policy.buffer.total_seconds()
    result = []
    for tech in policy.technicians:
        if eligible is not None and tech.id not in eligible:
            continue
        timeline = busy.get(tech.id)
        if timeline is None or timeline.is_free_at(lo, hi):
            result.append(tech.id)
    return result


def candidate_starts(policy: Policy, session_type: SessionType, day: date) -> list[datetime]:
    """The grid of a day: each range's start, then every ``slot_step`` of elapsed time,
    while the session fits; in UTC (see :func:`rules.hours.range_interval`)."""
    found = []
    for span in windows(policy, day):
        start = span.start
        while start + session_type.duration <= span.end:
            found.append(start)
            start += policy.slot_step
    return found


def free_slots(
    policy: Policy,
    type_name: str,
    first: date,
    last: date,
    now: datetime,
    busy: Mapping[str, BusyTimeline],
    eligible: Collection[str] | None = None,
    *,
    waive_notice: bool = False,
) -> list[Slot]:
    """Free slots of ``type_name`` on the desk-zone days ``first``..``last`` (both included).

    ``waive_notice``: as in :func:`time_violations`, the slots the desk may book when it
    overrides the minimum notice. Raises KeyError naming the unknown type; a range with
    ``last < first`` is empty.
    """
    session_type, starts, ids, masks = _grid_masks(
        policy, type_name, first, last, now, busy, eligible, waive_notice=waive_notice
    )
    slots: list[Slot] = []
    tz = policy.timezone
    duration = session_type.duration
    # zip(*masks) turns the masks into one row per candidate (none when no technician is
    # eligible); compress picks its free technicians, both in C.
    for start, row in zip(starts, zip(*masks, strict=True), strict=False):
        free = tuple(compress(ids, row))
        if free:
            slots.append(Slot(start.astimezone(tz), (start + duration).astimezone(tz), free))
    return slots


def free_counts(
    policy: Policy,
    type_name: str,
    first: date,
    last: date,
    now: datetime,
    busy: Mapping[str, BusyTimeline],
    eligible: Collection[str] | None = None,
) -> list[tuple[datetime, int]]:
    """:func:`free_slots` as the public answer gives it: each slot's start (UTC) and how
    many technicians are free for it, not who.

    The public slots answer is computed again after every booking and calendar change,
    in the process that answers requests. Building a :class:`Slot` per start (a tuple of
    ids, two zone conversions) was most of that; counting needs neither. A property test
    holds it to :func:`free_slots`. Raises KeyError naming the unknown type.
    """
    _, starts, _, masks = _grid_masks(policy, type_name, first, last, now, busy, eligible)
    counts = _counts(masks, len(starts))
    return [(start, count) for start, count in zip(starts, counts, strict=True) if count]


def _counts(masks: Sequence[bytes], size: int) -> list[int]:
    """Free technicians per candidate, from masks of ``size`` bytes (1 free, 0 busy)."""
    if len(masks) < 256:
        # Each mask read as one big number, a byte per candidate: their sum counts each
        # candidate in its own byte (under 256 masks, no byte carries into the next),
        # in C, where summing column by column in Python costs a call per candidate.
        total = sum(int.from_bytes(mask, "big") for mask in masks)
        return list(total.to_bytes(size, "big"))
    return [sum(row) for row in zip(*masks, strict=True)]


def _grid_masks(
    policy: Policy,
    type_name: str,
    first: date,
    last: date,
    now: datetime,
    busy: Mapping[str, BusyTimeline],
    eligible: Collection[str] | None,
    *,
    waive_notice: bool = False,
) -> tuple[SessionType, list[datetime], list[str], list[bytes]]:
    """The type, the bookable grid starts (UTC), and the eligible technicians' ids with,
    for each, a mask over those starts (1 free, 0 busy): what :func:`free_slots` and
    :func:`free_counts` share."""
    session_type = policy.session_types.get(type_name)
    if session_type is None:
        raise KeyError(f"unknown session type {type_name!r}")
    now = require_aware(now, "now").astimezone(UTC)
    # Days past the horizon cannot hold a slot: stop there instead of walking a long range.
    last = min(last, local_date(policy, now + policy.horizon))
    first = max(first, local_date(policy, now))
    # For a grid candidate, time_violations() can only object to the notice and the
    # horizon: the candidate lies in an opening range, on its grid, on an open day by
    # construction (the same windows, the same elapsed-time arithmetic). So the hot path
    # compares instants instead of calling it for every candidate; a property test holds
    # the two to the same answer, DST days included.
    earliest, latest = _bounds(policy, session_type, now, waive_notice=waive_notice)
    starts = [
        start
        for day in (days(first, last) if first <= last else [])
        for start in candidate_starts(policy, session_type, day)
        if earliest <= start <= latest
    ]
    before = policy.buffer.total_seconds()
    after = (session_type.duration + policy.buffer).total_seconds()
    queries = [(start.timestamp() - before, start.timestamp() + after) for start in starts]
    # The same question free_technicians() asks, answered for all candidates per technician
    # in one pass (BusyTimeline.free_mask agrees with is_free_at; property-tested), and
    # kept on the timeline: a timeline that did not change answers from what it kept.
    key = query_key(queries)
    everyone_free = b"\x01" * len(queries)
    ids: list[str] = []
    masks: list[bytes] = []
    for tech in policy.technicians:
        if eligible is not None and tech.id not in eligible:
            continue
        timeline = busy.get(tech.id)
        ids.append(tech.id)
        masks.append(timeline.free_mask_kept(queries, key) if timeline else everyone_free)
    return session_type, starts, ids, masks


def _bounds(
    policy: Policy, session_type: SessionType, now: datetime, *, waive_notice: bool = False
) -> tuple[datetime, datetime]:
    """The instants a candidate start must lie between, both included, at ``now`` (UTC):
    the only way the time enters :func:`free_slots`."""
    notice = timedelta(0) if waive_notice else session_type.min_notice
    return max(now, now + notice), now + policy.horizon


FOREVER = datetime.max.replace(tzinfo=UTC)
# Days slots_valid_until() looks at for the next start before it settles for an earlier,
# safe bound (a desk closed for weeks) instead of walking a long range.
VALIDITY_SEARCH_DAYS = 7


def slots_valid_until(
    policy: Policy, type_name: str, first: date, last: date, now: datetime
) -> datetime:
    """Until when (excluded) :func:`free_slots` with these arguments gives the answer it
    gives at ``now``, whatever the busy time: the same slots and technicians at every
    instant of ``[now, result)``. Aware, UTC, not before ``now``; :data:`FOREVER` when
    time cannot change the answer. It may come early, never late. Raises KeyError for an
    unknown type.

    Time moves the answer only through the bounds of :func:`_bounds`: a start drops out
    once the notice passes it (the first start not before ``earliest``, just after
    ``start - notice``) and one comes in when the horizon reaches it (the first start
    after ``latest``, at ``start - horizon``). Days before today hold no start that late,
    so clamping ``first`` to today changes nothing by itself.
    """
    session_type = policy.session_types.get(type_name)
    if session_type is None:
        raise KeyError(f"unknown session type {type_name!r}")
    now = require_aware(now, "now").astimezone(UTC)
    earliest, latest = _bounds(policy, session_type, now)
    leaving = _next_start(policy, session_type, first, last, earliest, strict=False)
    entering = _next_start(policy, session_type, first, last, latest, strict=True)
    bounds = [FOREVER]
    if leaving is not None:
        bounds.append(leaving - (earliest - now))
    if entering is not None:
        bounds.append(entering - policy.horizon)
    return min(bounds)


def _next_start(
    policy: Policy,
    session_type: SessionType,
    first: date,
    last: date,
    instant: datetime,
    *,
    strict: bool,
) -> datetime | None:
    """The first grid start of days ``first``..``last`` at (``strict``: after) ``instant``,
    or a lower bound of it (the start of the first day not looked at) when none lies in
    the days looked at; None when there is none at all."""
    day = max(first, local_date(policy, instant))
    stop = min(last, day + timedelta(days=VALIDITY_SEARCH_DAYS - 1))
    while day <= stop:
        found = [
            start
            for start in candidate_starts(policy, session_type, day)
            if start > instant or (start == instant and not strict)
        ]
        if found:
            return min(found)
        day += timedelta(days=1)
    if day > last:
        return None
    # Every start of that day lies at or after its local midnight (PEP 495 reading, as in
    # rules.hours.range_interval), so the day's beginning bounds them from below.
    return datetime.combine(day, time(0), tzinfo=policy.timezone).astimezone(UTC)


def timelines(busy: Mapping[str, Sequence[Interval]]) -> dict[str, BusyTimeline]:
    """Build the per-technician timelines the functions above take."""
    return {tech: BusyTimeline(intervals) for tech, intervals in busy.items()}
