"""People's words and CLDR's formats, in every language the desk speaks.

``catalogs`` finds the languages (one gettext catalog each, English the source) and
translates; ``cldr`` writes dates, weekdays, zones, durations and lists from Babel's CLDR
data; ``messages`` renders the rules' violations. Everything that shows text to a person
takes a language and goes through here: no other module holds a word table.
"""

from daemon.i18n.catalogs import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    SOURCE_LANGUAGE,
    gettext,
    language_for,
    language_of,
    locale_of,
    negotiate,
    pgettext,
    translations,
)
from daemon.i18n.cldr import (
    day_label,
    days_phrase,
    hours_phrase,
    join,
    spoken_duration,
    weekday_names,
    zone_name,
)
from daemon.i18n.labels import reason_text, status_label
from daemon.i18n.messages import message

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "SOURCE_LANGUAGE",
    "day_label",
    "days_phrase",
    "gettext",
    "hours_phrase",
    "join",
    "language_for",
    "language_of",
    "locale_of",
    "message",
    "negotiate",
    "pgettext",
    "reason_text",
    "spoken_duration",
    "status_label",
    "translations",
    "weekday_names",
    "zone_name",
]
