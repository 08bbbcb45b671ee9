"""How a problem in the configuration is worded: where it is, what was expected, what was found.

Every problem is collected, none raised on its own, so that one run of ``expediente
check-config`` lists them all (borgmatic and vdirsyncer do the same). A problem names the
file, the key as the person wrote it (``[booking] slot_step``, ``technicians[1].calendar.url``,
list items counted from 1), what was expected, what was found (quoted short, with its TOML
type when the type is the mistake) and, when there is one, how to fix it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from daemon.errors import UserError

KeyPath = tuple[str | int, ...]

# The schema's top-level lists of tables, written [[name]]. This module comes before the
# schema, so it cannot ask it; tests/daemon/test_config_model.py holds the two equal.
ARRAY_SECTIONS = frozenset({"session_types", "technicians", "webhooks"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration file, worded for the person who edits it.

    ``key`` is where: ``[booking] slot_step`` for a key of a section,
    ``technicians[1].calendar.url`` inside a list of tables (counted from 1).
    """

    file: str
    key: str
    expected: str
    found: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}: " if self.key else f"{self.file}: "
        text = f"expected {self.expected}, found {self.found}" if self.expected else self.found
        return where + text + (f"; {self.hint}" if self.hint else "")


class ConfigError(UserError):
    """The configuration cannot be used; ``problems`` lists every reason, all at once."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def render_key(path: KeyPath) -> str:
    """``("booking", "slot_step")`` → ``[booking] slot_step``; list items count from 1."""
    if not path:
        return ""
    head = str(path[0])
    if len(path) == 1:
        return f"[[{head}]]" if head in ARRAY_SECTIONS else f"[{head}]"
    text = head if isinstance(path[1], int) else ""
    for part in path[1:]:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            text += f".{name}" if text else name
    return text if isinstance(path[1], int) else f"[{head}] {text}"


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, except DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: object) -> str:
    """A TOML value, inline form, for the example file and messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def show(raw: object) -> str:
    """How a found value is quoted in a message: short, with its TOML type when unclear."""
    if isinstance(raw, bool):
        return f"{toml_value(raw)} (true/false)"
    if isinstance(raw, int | float):
        return f"{raw} (a number)"
    if isinstance(raw, str):
        text = toml_string(raw)
        return text if len(text) <= 80 else text[:76] + '…"'
    if isinstance(raw, datetime):
        return f"{raw.isoformat()} (a date and time)"
    if isinstance(raw, date):
        return f"{raw.isoformat()} (a date)"
    if isinstance(raw, time):
        return f"{raw.isoformat()} (a time of day)"
    if isinstance(raw, list):
        return "a list" if raw else "an empty list"
    if isinstance(raw, dict):
        return "a table"
    return type(raw).__name__


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """A suggestion for a misspelt name, or "" (prefixes count: "thursday" → "thu")."""
    lowered = word.lower()
    prefixed = [c for c in candidates if len(c) >= 3 and lowered.startswith(c.lower())]
    close = prefixed[-1:] or difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""
