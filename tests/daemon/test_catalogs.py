"""The gettext catalogs: complete, in step with the code, and the only word tables."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.dates import get_day_names, get_month_names
from babel.messages.pofile import read_po

from daemon.i18n import LANGUAGES, SOURCE_LANGUAGE, locale_of
from daemon.i18n.catalogs import LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
POT = LOCALE_DIR / "messages.pot"
EXTRACT = (
    "pybabel extract -F babel.cfg --no-location --sort-output --omit-header "
    "-o daemon/locale/messages.pot rules daemon"
)
UPDATE = (
    "pybabel update -i daemon/locale/messages.pot -d daemon/locale -D expediente "
    "--no-fuzzy-matching --ignore-obsolete --omit-header -w 100"
)
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def _ids(path: Path) -> set[tuple[str, str | None]]:
    with path.open("rb") as file:
        return {(str(m.id), m.context) for m in read_po(file) if m.id}


def _catalog(language: str) -> Path:
    return LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / "expediente.po"


TRANSLATED = [language for language in LANGUAGES if language != SOURCE_LANGUAGE]


def test_the_languages_are_the_catalogs() -> None:
    assert {"pt-BR", "en"} <= set(LANGUAGES)
    assert LANGUAGES[0] == "pt-BR"  # the desk's default
    assert all(_catalog(language).is_file() for language in TRANSLATED)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_msgid_is_translated_with_the_same_placeholders(language: str) -> None:
    with _catalog(language).open("rb") as file:
        catalog = read_po(file)
    assert {(str(m.id), m.context) for m in catalog if m.id} == _ids(POT), (
        f"{_catalog(language)} is not in step with messages.pot: run {UPDATE}"
    )
    for entry in catalog:
        if not entry.id:
            continue
        assert entry.string, f"{language}: {entry.id!r} is not translated"
        assert not entry.fuzzy, f"{language}: {entry.id!r} is fuzzy"
        source = sorted(PLACEHOLDER.findall(str(entry.id)))
        assert sorted(PLACEHOLDER.findall(str(entry.string))) == source, (
            f"{language}: {entry.id!r} and {entry.string!r} differ in placeholders"
        )


def test_the_template_is_what_the_code_says(tmp_path: Path) -> None:
    out = tmp_path / "messages.pot"
    command = EXTRACT.replace("daemon/locale/messages.pot", str(out)).split()[1:]
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *command],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert _ids(out) == _ids(POT), f"messages.pot is stale: run {EXTRACT}, then {UPDATE}"


def _sources() -> list[Path]:
    return sorted(
        path for top in ("rules", "daemon", "connectors") for path in (ROOT / top).rglob("*.py")
    )


def _calendar_words() -> set[str]:
    """Every language's weekday and month names as CLDR spells them, full and abbreviated
    (``segunda-feira``, ``seg``, ``Monday``, ``Mon``, ``ene``...), without the final dot."""
    words: set[str] = set()
    for language in LANGUAGES:
        locale = locale_of(language)
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for names in (
                    get_day_names(width, context, locale=locale),
                    get_month_names(width, context, locale=locale),
                ):
                    words |= {str(name).rstrip(".") for name in names.values()}
    return words


def _translations() -> set[str]:
    found: set[str] = set()
    for language in TRANSLATED:
        with _catalog(language).open("rb") as file:
            found |= {str(m.string) for m in read_po(file) if m.id and m.string != m.id}
    return found


def test_no_word_table_is_left_in_the_code() -> None:
    """A fourth language needs only a catalog: no table keyed by language, no hand list of
    weekday or month names, no catalog's translation written again in the code."""
    codes = {
        variant for tag in LANGUAGES for variant in (tag, tag.replace("-", "_"), tag.split("-")[0])
    }
    calendar_words = _calendar_words()
    translations = _translations()
    found = []
    for path in _sources():
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                if sum(key in codes for key in keys) >= 2:
                    found.append(f"{where}:{node.lineno}: a table keyed by language {keys}")
            elif isinstance(node, ast.Tuple | ast.List | ast.Set):
                words = [
                    e.value.rstrip(".")
                    for e in node.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
                if sum(word in calendar_words for word in words) >= 3:
                    found.append(f"{where}:{node.lineno}: weekday or month names {words}")
            elif isinstance(node, ast.Constant) and node.value in translations:
                found.append(f"{where}:{node.lineno}: {node.value!r} is a catalog's word")
    assert not found, "words belong in the catalogs and CLDR (daemon/i18n):\n" + "\n".join(found)
