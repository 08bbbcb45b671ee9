"""daemon/config/holidays_internals.py: the desk's country loads alone, with the same holidays.

The door skips the ``holidays.countries`` package's ``__init__`` only while that file does
nothing but import its own modules. An upgrade that changes it closes the door by itself
(the daemon loads every country again, correctly, 7.5 MB larger): the first test here is
the one that says so. Each check of what a process loads runs in a fresh interpreter, since
this one may have loaded every country already.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import holidays
import pytest

from daemon.config.holidays_internals import PACKAGE, country_codes, only_own_imports

ROOT = Path(__file__).resolve().parents[2]


def revisit(what: str) -> str:
    return (
        f"holidays {version('holidays')}: {what}. Revisit daemon/config/holidays_internals.py "
        "(the one module using the package's internals)."
    )


def fresh(code: str) -> object:
    """What ``code`` (a Python snippet ending in ``print(json.dumps(...))``) prints, run in a
    new interpreter from the checkout."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_installed_countries_package_only_imports_its_own_modules() -> None:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.loader is not None
    source = spec.loader.get_source(PACKAGE)  # type: ignore[attr-defined]
    assert only_own_imports(source, PACKAGE), revisit(
        f"{PACKAGE}/__init__.py now does more than import its country modules, so every "
        "country is loaded again (correct, but 7.5 MB more memory)"
    )


def test_a_desk_loads_its_own_country_and_no_other() -> None:
    loaded = fresh(
        "import json, sys\n"
        "from daemon.config.holidays import HolidayCalendar\n"
        "calendar = HolidayCalendar('BR', 'SP', language='pt_BR')\n"
        "import datetime\n"
        "calendar.get(datetime.date(2027, 7, 9))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('holidays.countries'))))"
    )
    assert loaded == ["holidays.countries", "holidays.countries.brazil"], revisit(
        "a country no longer loads alone"
    )


def test_the_holidays_are_those_of_the_package_loaded_whole() -> None:
    # American Samoa's module imports the United States' one: a country that needs another.
    code = (
        "import json, sys\n"
        "{setup}\n"
        "import holidays\n"
        "found = {{}}\n"
        "for country, part in (('BR', 'SP'), ('PT', None), ('AS', None), ('US', 'CA')):\n"
        "    days = holidays.country_holidays(country, subdiv=part, years=range(2026, 2029))\n"
        "    found[country] = sorted((str(day), name) for day, name in days.items())\n"
        "countries = [m for m in sys.modules if m.startswith('holidays.countries.')]\n"
        "found['whole'] = len(countries) > 4\n"
        "print(json.dumps(found))"
    )
    deferred = fresh(code.format(setup="import daemon.config.holidays"))
    whole = fresh(code.format(setup="import holidays.countries"))
    assert isinstance(deferred, dict) and isinstance(whole, dict)
    assert (deferred.pop("whole"), whole.pop("whole")) == (False, True)
    assert deferred == whole


def test_names_of_the_package_are_still_there_for_whoever_asks() -> None:
    found = fresh(
        "import json\n"
        "import daemon.config.holidays\n"
        "from holidays.countries import Brazil, US\n"
        "from holidays.countries.brazil import Brazil as direct\n"
        "from holidays.countries import united_states\n"
        "from daemon.config.holidays_internals import countries_on_demand\n"
        "print(json.dumps([Brazil is direct, US is united_states.US, countries_on_demand()]))"
    )
    # Asking the package for a name runs its __init__: from then on it is loaded whole.
    assert found == [True, True, False]


def test_the_country_codes_are_those_the_package_lists() -> None:
    assert country_codes() == set(holidays.list_supported_countries())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"""Docstring."""\nfrom holidays.countries.brazil import Brazil, BR\n', True),
        ("from holidays.countries.brazil import (\n    Brazil,\n    BR,\n)\n", True),
        ("from holidays.countries.brazil import Brazil\nREGISTRY = {}\n", False),
        ("from .brazil import Brazil\n", False),
        ("from holidays.countries.brazil import *\n", False),
        ("from holidays.registry import EntityLoader\n", False),
        ("import holidays.countries.brazil\n", False),
        ("from holidays.countries.brazil import Brazil\nregister(Brazil)\n", False),
        ("def broken(:\n", False),
    ],
)
def test_only_a_package_of_plain_imports_is_deferred(source: str, expected: bool) -> None:
    assert only_own_imports(source, PACKAGE) is expected
