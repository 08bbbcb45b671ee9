"""daemon/config/holidays_internals.py: a desk's country loads alone, with the same holidays.

The door skips an ``__init__`` of the ``holidays`` package only while that file does nothing
but re-export names of its own modules. An upgrade that changes one closes its door by itself
(the daemon loads that whole package again: correct, only larger); the first test here is
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

from daemon.config.holidays_internals import (
    PACKAGES,
    country_codes,
    only_own_imports,
    reexports,
)

ROOT = Path(__file__).resolve().parents[2]

# Countries whose holidays need other calendars and groups: Malaysia (Islamic, Chinese,
# Hindu, Buddhist), Israel (Hebrew), India (Hindu, Islamic), South Korea (Korean lunar),
# and American Samoa, whose module imports the United States' one.
COUNTRIES = (("BR", "SP"), ("PT", None), ("MY", "14"), ("IL", None), ("IN", None),
             ("KR", None), ("AS", None), ("US", "CA"))  # fmt: skip


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


@pytest.mark.parametrize("package", PACKAGES)
def test_each_deferred_package_only_reexports_its_own_modules(package: str) -> None:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.loader is not None
    source = spec.loader.get_source(package)  # type: ignore[attr-defined]
    assert only_own_imports(source, package), revisit(
        f"{package}/__init__.py now does more than re-export its modules, so the whole "
        "package is loaded again (correct, but more memory)"
    )


def test_a_desk_loads_its_own_country_and_what_it_uses_no_more() -> None:
    found = fresh(
        "import datetime, json, sys\n"
        "from daemon.config.holidays import HolidayCalendar\n"
        "calendar = HolidayCalendar('BR', 'SP', language='pt_BR')\n"
        "calendar.get(datetime.date(2027, 7, 9))\n"
        "from daemon.config.holidays_internals import open_door\n"
        "print(json.dumps([list(open_door()), sorted(sys.modules)]))"
    )
    assert isinstance(found, list)
    deferred, loaded = found
    assert deferred == list(PACKAGES), revisit("a package is loaded whole again")
    assert [m for m in loaded if m.startswith("holidays.countries.")] == [
        "holidays.countries.brazil"
    ], revisit("a country no longer loads alone")
    # Brazil's holidays are Gregorian and Christian: none of the lunar calendars.
    assert not {f"holidays.{part}.{kind}" for part in ("calendars", "groups")
                for kind in ("islamic", "chinese", "hebrew", "hindu", "buddhist")} & set(
        loaded
    ), revisit("the calendars and groups load whole again")  # fmt: skip


def test_the_holidays_are_those_of_the_package_loaded_whole() -> None:
    code = (
        "import json, sys\n"
        "{setup}\n"
        "import holidays\n"
        "found = {{}}\n"
        f"for country, part in {COUNTRIES!r}:\n"
        "    days = holidays.country_holidays(country, subdiv=part, years=range(2024, 2031))\n"
        "    found[country] = sorted((str(day), name) for day, name in days.items())\n"
        "countries = [m for m in sys.modules if m.startswith('holidays.countries.')]\n"
        "found['whole'] = len(countries) > 20\n"
        "print(json.dumps(found))"
    )
    deferred = fresh(code.format(setup="import daemon.config.holidays"))
    whole = fresh(code.format(setup=""))
    assert isinstance(deferred, dict) and isinstance(whole, dict)
    assert (deferred.pop("whole"), whole.pop("whole")) == (False, True)
    assert deferred == whole
    assert all(deferred[country] for country, _ in COUNTRIES)  # none came out empty


def test_the_packages_names_are_there_for_whoever_asks() -> None:
    found = fresh(
        "import json\n"
        "import daemon.config.holidays\n"
        "from holidays.countries import Brazil, US\n"
        "from holidays.countries.brazil import Brazil as direct\n"
        "from holidays.countries import united_states\n"
        "from holidays.calendars import _IslamicLunar\n"
        "from holidays.calendars.islamic import _IslamicLunar as islamic\n"
        "from holidays.groups import *\n"
        "from holidays.groups.hebrew import HebrewCalendarHolidays as hebrew\n"
        "print(json.dumps([Brazil is direct, US is united_states.US, _IslamicLunar is islamic,\n"
        "                  HebrewCalendarHolidays is hebrew]))"
    )
    assert found == [True, True, True, True]


def test_a_name_the_package_does_not_export_is_missing_as_usual() -> None:
    found = fresh(
        "import json\n"
        "import daemon.config.holidays\n"
        "import holidays.countries\n"
        "print(json.dumps([hasattr(holidays.countries, 'Atlantis'),\n"
        "                  hasattr(holidays.countries, 'Brazil')]))"
    )
    assert found == [False, True]


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
def test_only_a_package_of_plain_reexports_is_deferred(source: str, expected: bool) -> None:
    assert only_own_imports(source, "holidays.countries") is expected


def test_each_name_is_found_in_the_module_it_is_imported_from() -> None:
    source = (
        "from holidays.countries.brazil import Brazil, BR\n"
        "from holidays.countries.united_states import (\n    UnitedStates as USA,\n)\n"
    )
    assert reexports(source) == {
        "Brazil": "holidays.countries.brazil",
        "BR": "holidays.countries.brazil",
        "USA": "holidays.countries.united_states",
    }
