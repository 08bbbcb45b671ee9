"""The gettext catalogs: complete, in step with the code, and the only word tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from daemon.i18n import LANGUAGES, SOURCE_LANGUAGE
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
