"""Durations as people write them in the configuration: ``90s``, ``10m``, ``2h``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ORDER = "dhms"


class DurationError(ValueError):
    """Raised with a message that shows the accepted forms."""


class DurationTooLong(DurationError):
    """Longer than :data:`MAX_SECONDS`."""


# Ten years: longer than any setting means, and far from what datetime can add (year 9999).
MAX_SECONDS = 3650 * 86400


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"``-style text; units in the order d, h, m, s, each at most once."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise DurationError('empty duration; write it like "30m", "2h", "1h30m" or "90s"')
    position = 0
    seconds = 0
    last_unit = -1
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        unit_rank = _ORDER.index(match.group(2))
        if unit_rank <= last_unit:
            raise DurationError(
                f"duration {text!r} repeats or misorders units; "
                'write them largest first, like "1h30m"'
            )
        last_unit = unit_rank
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(cleaned) or last_unit < 0:
        raise DurationError(
            f'not a duration: {text!r}; write it like "30m", "2h", "1h30m", "1d" or "90s"'
        )
    if seconds > MAX_SECONDS:
        raise DurationTooLong(f"duration {text!r} is too long (at most {MAX_SECONDS // 86400}d)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, shortest form (``0m`` for zero)."""
    total = int(value.total_seconds())
    if total == 0:
        return "0m"
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit in _ORDER:
        amount, total = divmod(total, _UNITS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + "".join(parts)
