"""The one door to recurring-ical-events' and dateutil's internals.

Every use of another library's private parts lives here, so an upgrade that changes them
breaks one module, and ``tests/connectors/test_recurrence_internals.py`` says so loudly:

* recurring-ical-events: :class:`_Adapter` subclasses ``adapters.event.EventAdapter`` and
  overrides its time and rule properties; :class:`_Occurrence` subclasses
  ``occurrence.Occurrence``; :class:`_Series` and :class:`_Rules` subclass ``series.Series``
  and ``Series.RecurrenceRules`` (``rrulestr``, ``occurrence``, ``sequence``, ``core``);
  ``util.to_recurrence_ids`` reads an override's RECURRENCE-ID. None of these are public
  API; pyproject.toml caps the library at the minor version they were checked against.
* dateutil: :class:`_BoundedRule` swaps the class of an ``rrule`` and counts the years it
  iterates through the private ``_byweekno`` attribute, turning off ``_cache``; it reads
  ``_freq`` and ``_dtstart`` too.

The rest of :mod:`connectors.ical` uses only what this module defines: :class:`_Adapter`
(with ``busy``, ``has_rules``, ``is_override`` and the checked times) and
:func:`occurrences_between`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dateutil.rrule import HOURLY, rrule
from icalendar import Component
from recurring_ical_events.adapters.event import EventAdapter
from recurring_ical_events.occurrence import Occurrence
from recurring_ical_events.series import Series
from recurring_ical_events.util import to_recurrence_ids

from connectors.ical.times import Time

# A rule that never matches (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) keeps dateutil busy until the
# year 9999; these bound the work per rule (see _BoundedRule).
_SPARE_YEARS = 30
_SPARE_YEARS_HOURLY = 8  # 8760 periods a year; 8 years still find a yearly 29 February
_MAX_RESULTS = 200_000


class _Adapter(EventAdapter):  # type: ignore[misc]
    """An event whose times were already checked and made unambiguous by
    :class:`~connectors.ical.times._TimeReader`.

    recurring-ical-events reads DTSTART/DTEND itself and silently swaps a reversed pair,
    turns a missing end into zero length and raises on broken values; feeding it the checked
    values keeps one reading of each event.
    """

    def __init__(
        self,
        event: Component,
        start: Time,
        end: Time,
        *,
        busy: bool,
        rrules: set[str],
        exdates: list[Time],
        rdates: list[Any],
        sequence: int,
        recurrence_id: Time | None,
        horizon: int,
    ) -> None:
        super().__init__(event)
        self.horizon = horizon  # the last year the expansion needs
        self.event = event
        self.busy = busy  # TRANSP, STATUS and the like, judged by the caller
        self._checked = (start, end)
        self._rrules = rrules
        self._exdates = exdates
        self._rdates = rdates
        self._sequence = sequence
        self._recurrence_ids = to_recurrence_ids(recurrence_id) if recurrence_id else ()

    @property
    def recurrence_ids(self) -> tuple[datetime, ...]:
        return self._recurrence_ids

    @property
    def raw_start(self) -> Time:
        return self._checked[0]

    @property
    def raw_end(self) -> Time:
        return self._checked[1]

    @property
    def rrules(self) -> set[str]:
        return self._rrules

    @property
    def exdates(self) -> list[Time]:
        return self._exdates

    @property
    def rdates(self) -> list[Any]:
        return self._rdates

    @property
    def sequence(self) -> int:
        return self._sequence

    @property
    def has_rules(self) -> bool:
        """Whether the event has RRULE, RDATE or EXDATE (read from the component as is)."""
        return bool(self.has_recurrence_rules())

    @property
    def is_override(self) -> bool:
        """Whether the event replaces one occurrence of a series (it has a RECURRENCE-ID)."""
        return bool(self.is_modification())


class _Occurrence(Occurrence):  # type: ignore[misc]
    """An occurrence that keeps a public reference to the component it came from."""

    def __init__(
        self,
        adapter: _Adapter,
        start: Time | None = None,
        end: Time | None = None,
        sequence: int = -1,
    ) -> None:
        super().__init__(adapter, start, end, sequence)
        self.source = adapter


class _ExpansionTooLong(ValueError):
    """A recurrence rule needed more work than any real calendar does."""


class _BoundedRule(rrule):  # type: ignore[misc]
    """A dateutil rule that gives up instead of running for minutes.

    dateutil stops iterating only at a result past UNTIL, after COUNT results or in the year
    9999, so a rule that never matches runs to 9999: seconds for a daily rule, hours for a
    minutely one. dateutil offers no limit; this counts the years it iterates (its
    ``_iterinfo.rebuild`` reads ``_byweekno`` once per new year) and the results it yields,
    and raises :class:`_ExpansionTooLong` past the budget.
    """

    _years_left: int
    _results_left: int

    @classmethod
    def bound(cls, rule: rrule, *, years: int, results: int) -> rrule:
        rule.__class__ = cls
        # With its cache on (recurring-ical-events asks for it) dateutil computes results ten
        # at a time: up to nine needless ones past the window, decades apart for sparse rules.
        rule._cache = None
        rule._years_left = years
        rule._results_left = results
        return rule

    @property
    def _byweekno(self) -> Any:
        self._years_left -= 1
        if self._years_left < 0:
            raise _ExpansionTooLong("the rule finds no occurrence in decades")
        return self.__dict__["_byweekno"]

    def __iter__(self) -> Iterator[datetime]:
        for value in super().__iter__():
            self._results_left -= 1
            if self._results_left < 0:
                raise _ExpansionTooLong(f"more than {_MAX_RESULTS} occurrences before the window")
            yield value


class _Rules(Series.RecurrenceRules):  # type: ignore[misc]
    core: _Adapter

    def rrulestr(self, rule_string: str) -> rrule:
        rule = super().rrulestr(rule_string)
        spare = _SPARE_YEARS_HOURLY if rule._freq == HOURLY else _SPARE_YEARS
        years = max(self.core.horizon - rule._dtstart.year, 0) + spare
        return _BoundedRule.bound(rule, years=years, results=_MAX_RESULTS)


class _Series(Series):  # type: ignore[misc]
    RecurrenceRules = _Rules

    def occurrence(
        self, adapter: _Adapter, start: Time | None = None, end: Time | None = None
    ) -> _Occurrence:
        return _Occurrence(adapter, start, end, sequence=self.sequence)


def occurrences_between(
    adapters: list[_Adapter], start: datetime, end: datetime
) -> list[tuple[_Adapter, Time, Time]]:
    """(event, start, end) of each occurrence of one series between ``start`` and ``end``.

    ``adapters`` are a master and its overrides. Raises whatever dateutil raises on a rule
    it cannot use (ValueError, TypeError, ...) and :class:`_ExpansionTooLong`.
    """
    return [(o.source, o.start, o.end) for o in _Series(adapters).between(start, end)]
