"""The gettext catalogs: which languages the desk speaks, and their words.

English is the source language: every word shown to people is written once, in English,
as a msgid in the code or a template, and each other language is one catalog,
``daemon/locale/<ll_CC>/LC_MESSAGES/expediente.po``. The languages the desk offers (the
configuration's choice, the API's ``language`` field, the pages' language switch) are
derived from the catalogs present, so a new language is a new directory and nothing else.

Catalogs are compiled in memory from the ``.po`` files (``read_po`` → ``write_mo``) on
first use, once per process: no binary ``.mo`` file is committed that could fall out of
step with its ``.po``. ``tests/daemon/test_catalogs.py`` keeps the catalogs complete and
in step with the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "expediente"
SOURCE_LANGUAGE = "en"
DEFAULT_LANGUAGE = "pt-BR"  # the desk's language when nothing else is asked for


def _catalog_path(language: str) -> Path:
    return LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def _catalog_languages() -> tuple[str, ...]:
    return tuple(
        sorted(
            path.parent.parent.name.replace("_", "-")
            for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
        )
    )


# The desk's default first (it is what an unknown tag gets), then the others by tag.
LANGUAGES: tuple[str, ...] = (
    DEFAULT_LANGUAGE,
    *sorted({SOURCE_LANGUAGE, *_catalog_languages()} - {DEFAULT_LANGUAGE}),
)


def _primary(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-")[0].lower()


def language_for(tag: str | None) -> str | None:
    """The supported language a tag (``pt``, ``pt-br``, ``en-US``, ``es-MX``...) asks for:
    the same tag, else the same primary language; ``None`` when none matches."""
    if not tag or not tag.strip():
        return None
    wanted = tag.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if language.lower() == wanted:
            return language
    primary = _primary(wanted)
    return next((lang for lang in LANGUAGES if _primary(lang) == primary), None)


def language_of(tag: str | None) -> str:
    """Map a language tag to a supported language, the default one when unsupported."""
    return language_for(tag) or DEFAULT_LANGUAGE


def negotiate(header: str, default: str) -> str:
    """The language an ``Accept-Language`` header asks for: its tags in order of
    preference (``q``), the first supported one; ``default`` when none is."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and tag.strip() != "*" and quality > 0:
            ranked.append((-quality, n, tag.strip()))
    for _, _, tag in sorted(ranked):
        found = language_for(tag)
        if found is not None:
            return found
    return default


def locale_of(language: str) -> Locale:
    """The CLDR locale of a supported language (dates, names, units, lists)."""
    return Locale.parse(language_of(language), sep="-")


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (an unsupported one gets the default's)."""
    language = language_of(language)
    if language == SOURCE_LANGUAGE:
        return NullTranslations()
    with _catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language.replace("-", "_"), domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def gettext(language: str) -> Callable[[str], str]:
    """``_`` for ``language``: a msgid in, the catalog's words out."""
    return translations(language).gettext


def pgettext(language: str) -> Callable[[str, str], str]:
    """``pgettext`` for ``language``: the same English said differently by context."""
    found = translations(language)

    def translate(context: str, message: str) -> str:
        return str(found.pgettext(context, message))

    return translate


def supported_primaries(languages: Iterable[str] = LANGUAGES) -> list[str]:
    """The primary subtags of the supported languages (``pt``, ``en``, ``es``)."""
    return [_primary(language) for language in languages]
