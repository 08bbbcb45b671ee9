"""The seed policy (Pardini's remote-access rules) built directly, without a config file.

The sample booking to check against it is in ``tests/factories.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from rules.model import KNOWN_TOOLS, Policy, SessionType, Technician, TimeRange

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
SEED_DAY = (TimeRange.parse("07:30-12:00"), TimeRange.parse("13:00-17:30"))


def seed_policy(technicians: int = 2, **changes: object) -> Policy:
    values: dict[str, object] = {
        "timezone": SAO_PAULO,
        "weekly": {day: SEED_DAY for day in range(5)},
        "session_types": {
            "standard": SessionType(
                "standard", "Atendimento remoto", timedelta(minutes=30), timedelta(minutes=15)
            ),
            "extended": SessionType(
                "extended",
                "Atendimento longo (agendado com antecedência)",
                timedelta(hours=2),
                timedelta(hours=24),
            ),
        },
        "technicians": tuple(Technician(f"t{n}", f"Tech {n}") for n in range(technicians)),
        "holidays": holidays.country_holidays("BR", subdiv="SP", years=range(2025, 2029)),
        "closed_dates": {date(2026, 12, 24): "véspera de Natal"},
        "remote_tools": (KNOWN_TOOLS["anydesk"],),
    }
    values.update(changes)
    return Policy(**values)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    """A desk-local instant from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=SAO_PAULO)


def open_every_day(
    tz: ZoneInfo,
    ranges: tuple[TimeRange, ...],
    *,
    step: int,
    duration: int,
    notice: int,
    horizon: timedelta,
    weekdays: Iterable[int] = range(7),
) -> Policy:
    """A desk open on ``weekdays`` (every day by default) with one session type "s" and no
    closed days: what the DST and grid property tests vary (minutes for the integers)."""
    session_type = SessionType("s", "S", timedelta(minutes=duration), timedelta(minutes=notice))
    return seed_policy(
        timezone=tz,
        weekly={d: ranges for d in weekdays},
        session_types={"s": session_type},
        slot_step=timedelta(minutes=step),
        horizon=horizon,
        holidays={},
        closed_dates={},
    )
