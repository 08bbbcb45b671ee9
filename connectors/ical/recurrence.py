"""Busy blocks of one series: a single event read directly, anything recurring expanded.

Recurrence (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, RANGE=THISANDFUTURE) is expanded by
``recurring-ical-events`` inside the window only, so endless rules cost what the window holds.
The expander is reached through :mod:`connectors.ical.recurrence_internals` and gets times
already read by :class:`~connectors.ical.times._TimeReader`; rules it cannot handle in
reasonable time (INTERVAL=0, FREQ=MINUTELY, a rule that never matches) are refused or
bounded, and the event then counts once, at DTSTART.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Component, vBroken, vRecur

from connectors.base import brief
from connectors.ical.recurrence_internals import _Adapter, occurrences_between
from connectors.ical.times import _ONE_DAY, Time, _Report, _TimeReader, _uid_of
from rules.intervals import Interval

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Padding around the window handed to the expander; exact overlap is checked afterwards, so
# this only guards against the library's own date/floating comparisons near the edges.
_QUERY_PADDING = timedelta(days=1)
_SKIPPABLE_FREQ = {"WEEKLY": timedelta(weeks=1), "DAILY": _ONE_DAY, "HOURLY": timedelta(hours=1)}
# A busy block repeating by the minute or second is no calendar a person keeps; dateutil would
# spend minutes on one.
_UNSUPPORTED_FREQ = frozenset({"MINUTELY", "SECONDLY"})


def _group_by_uid(events: Iterable[Component]) -> Iterator[tuple[str | None, list[Component]]]:
    """Events sharing a UID form one series; events without a UID stand alone."""
    groups: dict[str, list[Component]] = {}
    for event in events:
        uid = _uid_of(event)
        if uid is None:
            yield None, [event]
        else:
            groups.setdefault(uid, []).append(event)
    yield from groups.items()


def _is_busy(event: Component) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    # Outlook/Exchange exports say "show as free" here and not always in TRANSP.
    return str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() != "FREE"


# Any of these makes an event part of a recurring series (or an override of one).
_RECURRENCE_PROPERTIES = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})


def _is_single(event: Component) -> bool:
    """True for an event with one occurrence of its own: no rule, no dates, no override.

    Components keep their property names upper-cased, so one set test on the keys does what
    four case-insensitive lookups would, at a fraction of the cost.
    """
    return _RECURRENCE_PROPERTIES.isdisjoint(event.keys())


class _Reader(_TimeReader):
    """Reads the events of one calendar in one window, reporting doubts to ``report``.

    ``fast_single`` reads single events directly; off, every event goes through the expander
    (the reference the fast path is tested against).
    """

    fast_single: bool = True

    def __init__(
        self, cal: Component, desk_tz: ZoneInfo, report: _Report, window: Interval | None = None
    ) -> None:
        super().__init__(cal, desk_tz, report, window)
        # The expander compares dates and floating times in the query's zone: the desk's.
        wide = window.widened(_QUERY_PADDING) if window else Interval(_EPOCH, _EPOCH)
        self.query = (wide.start.astimezone(desk_tz), wide.end.astimezone(desk_tz))

    def series_blocks(self, uid: str | None, events: list[Component]) -> list[Interval]:
        if self.fast_single and len(events) == 1 and _is_single(events[0]):
            return self._single_blocks(uid, events[0])
        adapters = [a for a in (self._adapter(uid, e) for e in events) if a is not None]
        if not adapters:
            return []
        if self.fast_single and len(adapters) == 1 and not adapters[0].has_rules:
            # A lone override (RECURRENCE-ID without its master) is one occurrence too.
            only = adapters[0]
            if not only.busy:
                return []
            found = self.interval(only.raw_start, only.raw_end)
            return [found] if found else []
        blocks: list[Interval] = []
        for group in self._series_groups(uid, adapters):
            blocks.extend(self._expand(uid, group))
        return blocks

    def _single_blocks(self, uid: str | None, event: Component) -> list[Interval]:
        """The one busy block of a plain single event, read without the expander.

        Most events are single, and building recurring-ical-events' adapter for each cost more
        than reading it. The result is what the expander gives for such an event (checked
        times, TRANSP/STATUS, zero length and window filtering as in :meth:`interval`), and
        the same problems are reported, since :meth:`event_times` does the reading in both.
        """
        times = self.event_times(uid, event)
        if times is None or not _is_busy(event):
            return []
        found = self.interval(*times)
        return [found] if found is not None else []

    def _series_groups(self, uid: str | None, adapters: list[_Adapter]) -> list[list[_Adapter]]:
        """Overrides go with the newest master; further masters of the same UID (merged
        exports) are expanded on their own rather than silently dropped."""
        masters = [a for a in adapters if not a.is_override]
        overrides = [a for a in adapters if a.is_override]
        if len(masters) <= 1:
            return [adapters]
        self.report.warn(uid, f"{len(masters)} events share this UID; all of them block time")
        masters.sort(key=lambda a: a.sequence, reverse=True)
        return [[masters[0], *overrides]] + [[m] for m in masters[1:]]

    def _expand(self, uid: str | None, adapters: list[_Adapter]) -> list[Interval]:
        try:
            occurrences = occurrences_between(adapters, *self.query)
        except Exception as exc:  # bad rules reach dateutil as ValueError, TypeError, ...
            gist = brief(exc, may_quote_data=True)
            self.report.error(
                uid,
                f"recurrence cannot be expanded ({gist}); only the event's own "
                "DTSTART and its overrides count",
            )
            occurrences = [(a, a.raw_start, a.raw_end) for a in adapters]
        blocks = []
        for source, start, end in occurrences:
            if source.busy:
                found = self.interval(start, end)
                if found is not None:
                    blocks.append(found)
        return blocks

    def _adapter(self, uid: str | None, event: Component) -> _Adapter | None:
        times = self.event_times(uid, event)
        if times is None:
            return None
        start, end = times
        recurrence_id = None
        if "RECURRENCE-ID" in event:
            recurrence_id = self._value(uid, "RECURRENCE-ID", event["RECURRENCE-ID"])
            if recurrence_id is None:
                return None
        rules = self._rules(uid, event, start)
        if len(rules) == 1:
            start, end = self._skip_ahead(rules[0], start, end)
        return _Adapter(
            event,
            start,
            end,
            busy=_is_busy(event),
            rrules={rule.to_ical().decode() for rule in rules},  # type: ignore[no-untyped-call]
            exdates=self._dates(uid, event, "EXDATE"),
            rdates=self._dates(uid, event, "RDATE"),
            sequence=self._sequence(event),
            recurrence_id=recurrence_id,
            horizon=self.query[1].year,
        )

    def _rules(self, uid: str | None, event: Component, start: Time) -> list[vRecur]:
        """The event's RRULEs that can be expanded, UNTIL matching DTSTART's type.

        RFC 5545 wants a floating UNTIL for a floating DTSTART; the expander would read it
        as UTC once we give DTSTART a zone and lose the last occurrence, so it is converted
        here. A date UNTIL on a timed series includes that whole day. A rule that cannot be
        used is reported and the event counts once, at DTSTART.
        """
        found = event.get("RRULE")
        if found is None:
            return []
        rules: list[vRecur] = []
        for rule in found if isinstance(found, list) else [found]:
            if not isinstance(rule, vRecur) or not rule.get("FREQ"):
                self.report.warn(uid, "RRULE cannot be read; only the first occurrence counts")
                continue
            freq = str(rule["FREQ"][0]).upper()
            interval = rule.get("INTERVAL", [1])[0]
            if not isinstance(interval, int) or interval < 1:
                # dateutil loops forever on INTERVAL=0.
                self.report.warn(
                    uid, "RRULE INTERVAL is not positive; only the first occurrence counts"
                )
                continue
            if freq in _UNSUPPORTED_FREQ:
                self.report.warn(
                    uid, f"RRULE FREQ={freq} is not supported; only the first occurrence counts"
                )
                continue
            rule = vRecur(rule)
            until = rule.get("UNTIL")
            if until:
                rule["UNTIL"] = [self._until(until[0], start)]
            rules.append(rule)
        return rules

    def _skip_ahead(self, rule: vRecur, start: Time, end: Time) -> tuple[Time, Time]:
        """Move DTSTART forward by whole periods to just before the window.

        dateutil walks every period from DTSTART, so an hourly rule from 1970 would cost
        seconds. Whole periods of the rule (INTERVAL included) keep every occurrence, the
        weekday and the time of day; dateutil steps in wall time, so the shift is in wall time
        too. Rules with COUNT depend on the occurrences before the window and stay as they are.
        The moved DTSTART itself lies before the window and is filtered out.
        """
        freq = str(rule["FREQ"][0]).upper()
        period = _SKIPPABLE_FREQ.get(freq)
        if period is None or "COUNT" in rule:
            return start, end
        step = period * rule.get("INTERVAL", [1])[0]
        length: timedelta = end - start  # type: ignore[operator]  # same type: event_times
        if isinstance(start, datetime):
            wall = start.replace(tzinfo=None)
            target = self.query[0].astimezone(start.tzinfo).replace(tzinfo=None)
            periods = (target - wall - length) // step - 1
            if periods <= 0:
                return start, end
            moved = (wall + step * periods).replace(tzinfo=start.tzinfo)
            return moved, moved + length
        if step % _ONE_DAY:  # an hourly rule on an all-day event: left as it is
            return start, end
        periods = (self.query[0].date() - start - length) // step - 1
        if periods <= 0:
            return start, end
        moved_day = start + step * periods
        return moved_day, moved_day + length

    def _until(self, until: Time, start: Time) -> Time:
        if not isinstance(start, datetime):
            return until.date() if isinstance(until, datetime) else until
        if not isinstance(until, datetime):
            until = datetime.combine(until, time(23, 59, 59), tzinfo=start.tzinfo)
        elif until.tzinfo is None:
            until = until.replace(tzinfo=start.tzinfo)
        return until.astimezone(UTC)

    def _dates(self, uid: str | None, event: Component, name: str) -> list[Any]:
        found = event.get(name)
        if found is None:
            return []
        values: list[Any] = []
        for prop in found if isinstance(found, list) else [found]:
            dts = getattr(prop, "dts", None)
            if isinstance(prop, vBroken) or dts is None:
                self.report.warn(uid, f"{name} cannot be read; ignored")
                continue
            for item in dts:
                value = item.dt
                if isinstance(value, datetime):
                    value = self.zoned(uid, name, value, prop.params.get("TZID"))
                elif isinstance(value, tuple) and isinstance(value[0], datetime):
                    value = (self.zoned(uid, name, value[0], prop.params.get("TZID")), value[1])
                values.append(value)
        return values

    @staticmethod
    def _sequence(event: Component) -> int:
        try:
            return int(event.get("SEQUENCE", -1))
        except (TypeError, ValueError):
            return -1
