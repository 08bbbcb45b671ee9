"""Dates, weekdays, time zones, durations and lists as people write them, from CLDR.

No hand tables: Babel's CLDR data has every language's weekday and month names, date
patterns, unit words ("2 horas", "2 hours", "2 horas") and list conjunctions ("e", "and",
"y"), so a language added as a catalog is written correctly here without a line of code.
Times stay ``HH:MM`` (24-hour) in every language: the desk works on a 24-hour clock and
the slots a client picks must read the same in mails, pages and calendars.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from babel.dates import format_date, get_day_names, get_timezone_name
from babel.lists import format_list
from babel.units import format_unit

from daemon.i18n.catalogs import gettext, language_of, locale_of, translations
from rules.model import TimeRange


def weekday_names(
    language: str, width: Literal["abbreviated", "narrow", "short", "wide"] = "wide"
) -> tuple[str, ...]:
    """Monday first, as ``date.weekday()`` counts: ``segunda-feira``... / ``Mon``..."""
    names = get_day_names(width, locale=locale_of(language))
    return tuple(names[n] for n in range(7))


def day_label(day: date, language: str, *, year: bool = False) -> str:
    """``segunda-feira, 1 de dezembro`` / ``Monday, December 1``; with the year, CLDR's
    full date. Without it, CLDR's month-day-weekday pattern with the weekday widened to
    its full name (what ICU's pattern generator does for a ``EEEE`` skeleton)."""
    locale = locale_of(language)
    if year:
        return format_date(day, "full", locale=locale)
    pattern = re.sub(r"E+", "EEEE", locale.datetime_skeletons["MMMMEd"].pattern)
    return format_date(day, pattern, locale=locale)


@cache
def zone_name(zone: ZoneInfo, language: str) -> str:
    """The time zone as people there call it, from CLDR: ``horário de Brasília`` for
    America/Sao_Paulo in pt-BR, ``Brasilia Time`` in English. A zone CLDR places nowhere
    (``UTC``, ``Etc/GMT+3``) is its offset instead: ``UTC``, ``UTC-03:00``."""
    locale = locale_of(language)
    name = get_timezone_name(zone.key, locale=locale)
    if locale.territories.get("ZZ", "Unknown Region") in name:
        # Etc zones have one offset for ever: any date reads it.
        offset = datetime(2000, 1, 1, tzinfo=zone).strftime("%z")
        return "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}"
    # Inside a sentence the generic name starts in lower case, except in English.
    return name if language_of(language) == "en" else name[:1].lower() + name[1:]


def _unit(amount: int, unit: str, language: str) -> str:
    return format_unit(amount, f"duration-{unit}", length="long", locale=locale_of(language))


def spoken_duration(value: timedelta, language: str) -> str:
    """``2h`` → "2 horas" / "2 hours"; whole days from two days up; hours, minutes and
    seconds joined as a list ("1 hora e 30 minutos")."""
    total = int(value.total_seconds())
    if total >= 2 * 86400 and total % 86400 == 0:
        return _unit(total // 86400, "day", language)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        _unit(amount, unit, language)
        for unit, amount in (("hour", hours), ("minute", minutes), ("second", seconds))
        if amount
    ]
    return join(parts, language) if parts else _unit(0, "minute", language)


def join(
    items: Sequence[str], language: str, *, style: Literal["standard", "or"] = "standard"
) -> str:
    """``a, b e c`` / ``a, b, and c``; ``style="or"`` for alternatives."""
    if not items:
        return ""
    return format_list(list(items), style=style, locale=locale_of(language))


def days_phrase(days: Sequence[int], language: str) -> str:
    """ "de segunda-feira a sexta-feira" / "Monday to Friday" for a run of three or more
    days (Monday = 0), else the days listed."""
    _ = gettext(language)
    names = weekday_names(language)
    if not days:
        return _("only on announced dates")
    if len(days) > 2 and list(days) == list(range(days[0], days[-1] + 1)):
        return _("{first} to {last}").format(first=names[days[0]], last=names[days[-1]])
    return join([names[d] for d in days], language)


def hours_phrase(weekly: Mapping[int, Sequence[TimeRange]], language: str) -> str:
    """The weekly hours (Monday = 0) in words, consecutive days with equal hours grouped:
    "de segunda-feira a sexta-feira, das 07:30 às 12:00 e das 13:00 às 17:30" /
    "Monday to Friday, 07:30–12:00 and 13:00–17:30"."""
    _ = gettext(language)
    catalog = translations(language)  # its pgettext, by name, is what Babel extracts
    names = weekday_names(language)
    groups: list[tuple[int, int, tuple[TimeRange, ...]]] = []
    for day in range(7):
        ranges = tuple(weekly.get(day, ()))
        if not ranges:
            continue
        if groups and groups[-1][1] == day - 1 and groups[-1][2] == ranges:
            groups[-1] = (groups[-1][0], day, ranges)
        else:
            groups.append((day, day, ranges))
    if not groups:
        return _("only on announced dates")
    phrases = []
    for first, last, ranges in groups:
        days = (
            names[first]
            if first == last
            else _("{first} to {last}").format(first=names[first], last=names[last])
        )
        times = join(
            [
                str(catalog.pgettext("opening hours", "{start}–{end}")).format(
                    start=f"{r.start:%H:%M}", end=f"{r.end:%H:%M}"
                )
                for r in ranges
            ],
            language,
        )
        phrases.append(
            str(catalog.pgettext("opening hours", "{days}, {times}")).format(days=days, times=times)
        )
    return "; ".join(phrases)
