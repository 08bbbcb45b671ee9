"""The library internals connectors/ical/recurrence_internals.py relies on are still there.

That module subclasses private classes of recurring-ical-events and patches a private
attribute of dateutil's ``rrule``; an upgrade that renames or reshapes them would not fail
by itself: an overridden property nobody reads any more, or an occurrence hook nobody calls,
silently changes busy time (the expander's broad ``except`` would even turn a crash into
"recurrence cannot be expanded"). These tests check the names and signatures it uses, then
that each override is honoured on a small series, and fail with a message naming the module
to revisit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from typing import Any

import pytest
from dateutil.rrule import DAILY, rrule
from icalendar import Event
from recurring_ical_events.adapters.event import EventAdapter
from recurring_ical_events.occurrence import Occurrence
from recurring_ical_events.series import Series
from recurring_ical_events.util import to_recurrence_ids

from connectors.ical.recurrence_internals import (
    _Adapter,
    _BoundedRule,
    _ExpansionTooLong,
    occurrences_between,
)


def revisit(what: str) -> str:
    return (
        f"recurring-ical-events {version('recurring-ical-events')}, "
        f"python-dateutil {version('python-dateutil')}: {what}. Revisit "
        "connectors/ical/recurrence_internals.py (the one module using these internals) "
        "and the version caps in pyproject.toml."
    )


def params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


# ---------------------------------------------------------------------- names and signatures


@pytest.mark.parametrize(
    "name", ["raw_start", "raw_end", "rrules", "exdates", "rdates", "sequence", "recurrence_ids"]
)
def test_the_adapter_properties_we_override_exist(name: str) -> None:
    assert hasattr(EventAdapter, name), revisit(
        f"EventAdapter.{name} is gone; our override of it is dead"
    )


@pytest.mark.parametrize("name", ["has_recurrence_rules", "is_modification"])
def test_the_adapter_methods_we_call_exist(name: str) -> None:
    assert callable(getattr(EventAdapter, name, None)), revisit(f"EventAdapter.{name}() is gone")


def test_the_signatures_we_call() -> None:
    assert params(EventAdapter.__init__) == ["self", "component"], revisit(
        f"EventAdapter.__init__ takes {params(EventAdapter.__init__)}"
    )
    expected = ["self", "adapter", "start", "end", "sequence"]
    assert params(Occurrence.__init__) == expected, revisit(
        f"Occurrence.__init__ takes {params(Occurrence.__init__)}"
    )
    assert params(to_recurrence_ids) == ["time"], revisit(
        f"to_recurrence_ids takes {params(to_recurrence_ids)}"
    )
    assert params(Series.__init__) == ["self", "components"], revisit(
        f"Series.__init__ takes {params(Series.__init__)}"
    )
    assert params(Series.occurrence)[:2] == ["self", "adapter"], revisit(
        "Series.occurrence(adapter, ...) changed"
    )
    assert params(Series.between) == ["self", "span_start", "span_stop"], revisit(
        f"Series.between takes {params(Series.between)}"
    )
    rules = getattr(Series, "RecurrenceRules", None)
    assert inspect.isclass(rules), revisit("Series.RecurrenceRules is gone")
    rrulestr = getattr(rules, "rrulestr", None)
    assert callable(rrulestr), revisit("Series.RecurrenceRules.rrulestr is gone")
    assert params(rrulestr) == ["self", "rule_string"], revisit(
        f"Series.RecurrenceRules.rrulestr takes {params(rrulestr)}"
    )


@pytest.mark.parametrize("name", ["_byweekno", "_cache", "_freq", "_dtstart"])
def test_the_rrule_attributes_we_use_exist(name: str) -> None:
    rule = rrule(DAILY, dtstart=datetime(2026, 3, 2, 9, tzinfo=UTC), cache=True)
    assert name in vars(rule), revisit(f"dateutil's rrule has no {name} attribute")


# ---------------------------------------------------------------------- behaviour

START = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def component(uid: str = "series") -> Event:
    """An event whose own DTSTART (09:00) and lack of RRULE differ from what the adapter is
    given, so each result shows which of the two the library read."""
    event = Event()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime(2026, 1, 1, tzinfo=UTC))
    event.add("DTSTART", START - HOUR)
    event.add("DTEND", START)
    return event


def adapter(
    start: datetime = START,
    *,
    rrules: set[str] | None = None,
    exdates: list[Any] | None = None,
    rdates: list[Any] | None = None,
    recurrence_id: datetime | None = None,
) -> _Adapter:
    return _Adapter(
        component(),
        start,
        start + HOUR,
        busy=True,
        rrules={"FREQ=DAILY;COUNT=3"} if rrules is None else rrules,
        exdates=exdates or [],
        rdates=rdates or [],
        sequence=0,
        recurrence_id=recurrence_id,
        horizon=2026,
    )


def starts(adapters: list[_Adapter]) -> list[tuple[_Adapter, date | datetime]]:
    try:
        found = occurrences_between(adapters, START - 7 * DAY, START + 30 * DAY)
    except Exception as exc:  # the point: a crash here is an upgrade to look into
        pytest.fail(revisit(f"expanding a small series raised {exc!r}"))
    return sorted(((source, start) for source, start, _ in found), key=lambda pair: pair[1])


def test_the_checked_times_and_rules_are_what_the_library_expands() -> None:
    master = adapter()
    assert starts([master]) == [
        (master, START),
        (master, START + DAY),
        (master, START + 2 * DAY),
    ], revisit("the expander no longer reads raw_start/raw_end/rrules from the adapter")


def test_exdates_and_rdates_are_read_from_the_adapter() -> None:
    master = adapter(exdates=[START + DAY], rdates=[START + 5 * DAY])
    assert [s for _, s in starts([master])] == [START, START + 2 * DAY, START + 5 * DAY], revisit(
        "the expander no longer reads exdates/rdates from the adapter"
    )


def test_an_override_replaces_its_occurrence_through_recurrence_ids() -> None:
    master = adapter()
    moved = adapter(START + DAY + 5 * HOUR, rrules=set(), recurrence_id=START + DAY)
    assert moved.is_override and not master.is_override, revisit("is_modification() changed")
    assert starts([master, moved]) == [
        (master, START),
        (moved, START + DAY + 5 * HOUR),
        (master, START + 2 * DAY),
    ], revisit("an override (recurrence_ids, Series.occurrence) is no longer applied")


def test_has_rules_reads_the_component() -> None:
    plain = adapter()
    assert plain.has_rules is False, revisit("has_recurrence_rules() no longer reads the component")
    event = component()
    event.add("RDATE", START + DAY)
    with_rdate = _Adapter(
        event, START, START + HOUR, busy=True, rrules=set(), exdates=[], rdates=[],
        sequence=0, recurrence_id=None, horizon=2026,
    )  # fmt: skip
    assert with_rdate.has_rules is True, revisit("has_recurrence_rules() misses RDATE")


def test_rules_go_through_the_bounded_rule() -> None:
    """A rule that never matches must stop within its budget of years, not run to 9999
    (a yearly one is quick either way, so this fails fast when the hook is gone)."""
    never = adapter(rrules={"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"})
    try:
        occurrences_between([never], START, START + DAY)
    except _ExpansionTooLong:
        return
    pytest.fail(revisit("Series.RecurrenceRules.rrulestr is no longer how rules are built"))


def test_the_bounded_rule_counts_years_and_keeps_results() -> None:
    def daily() -> rrule:
        return rrule(DAILY, dtstart=START, count=40, cache=True)

    bounded = _BoundedRule.bound(daily(), years=5, results=1000)
    assert list(bounded) == list(daily()), revisit("a bounded rule gives other results")
    never = _BoundedRule.bound(
        rrule(DAILY, dtstart=START, bymonth=2, bymonthday=30), years=3, results=1000
    )
    with pytest.raises(_ExpansionTooLong, match="no occurrence in decades"):
        next(iter(never))
