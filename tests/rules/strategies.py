"""Hypothesis strategies and inputs the rules' property tests share."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import strategies as st

from rules.intervals import Interval
from rules.model import TimeRange
from tests.rules.factories import SAO_PAULO

FIRST = date(2026, 12, 1)  # a Tuesday; the week after holds no public holiday
LAST = date(2026, 12, 11)
BASE = datetime(2026, 11, 30, 0, 0, tzinfo=SAO_PAULO)


def quarter_hours(days: int) -> st.SearchStrategy[datetime]:
    return st.integers(0, days * 96).map(lambda n: BASE + timedelta(minutes=15 * n))


busy_interval = st.tuples(quarter_hours(14), st.integers(1, 16)).map(
    lambda pair: Interval(pair[0], pair[0] + timedelta(minutes=15 * pair[1]))
)
busy_map = st.dictionaries(
    st.sampled_from(["t0", "t1", "t2"]), st.lists(busy_interval, max_size=25), max_size=3
)
nows = quarter_hours(6)
type_names = st.sampled_from(["standard", "extended"])

Busy = dict[str, list[Interval]]

ZONES = ["America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "Australia/Lord_Howe"]
RANGES = [
    (TimeRange.parse("00:00-03:30"), TimeRange.parse("07:30-12:00")),
    (TimeRange.parse("01:00-02:59"), TimeRange.parse("13:00-17:30")),
    (TimeRange.parse("07:30-12:00"), TimeRange.parse("13:00-17:30")),
]
# Days around DST changes in the zones above (both directions), and ordinary days.
DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 4), date(2026, 10, 25),
        date(2026, 11, 1), date(2026, 4, 5), date(2026, 11, 30)]  # fmt: skip
