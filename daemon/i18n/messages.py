"""Violations as sentences in the client's language.

``rules.messages`` names the words (English msgids, pure); this renders them: the catalog
translates the template and the field label, CLDR writes the durations ("24 horas") and
the open days ("de segunda-feira a sexta-feira"). A parameter a template names but the
violation lacks reads ``?``: a message is never an error.
"""

from __future__ import annotations

import re
from datetime import timedelta

from daemon.i18n.catalogs import DEFAULT_LANGUAGE, gettext
from daemon.i18n.cldr import days_phrase, spoken_duration
from rules.messages import FIELD_LABELS, template_for
from rules.model import Violation

_SHORT = re.compile(r"(\d+)(d|h|min)")
_UNITS = {"d": "days", "h": "hours", "min": "minutes"}


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _spoken(short: str, language: str) -> str:
    """``"30d"`` → ``"30 dias"``, as every other duration is spoken; anything else as given."""
    match = _SHORT.fullmatch(short)
    if match is None:
        return short
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return spoken_duration(value, language)


def message(violation: Violation, language: str = DEFAULT_LANGUAGE) -> str:
    """The violation as a sentence in ``language`` (the default one when unsupported)."""
    _ = gettext(language)
    params = _Defaulting(violation.params)
    for name in ("notice", "horizon"):  # "24h" in a sentence reads "24 horas"
        if name in violation.params:
            params[name] = _spoken(violation.params[name], language)
    if "open_days" in violation.params:
        days = [int(d) for d in violation.params["open_days"].split(",") if d]
        params["days"] = days_phrase(days, language)
    if violation.field:
        label = FIELD_LABELS.get(violation.field)
        params["field_label"] = _(label) if label else violation.field
    return _(template_for(violation)).format_map(params)
