"""The one door to the ``holidays`` package: load the desk's country and what it uses, alone.

Three packages of ``holidays`` import every module they hold when any one of them is
imported: ``holidays.countries`` (~250 countries), ``holidays.calendars`` (the lunar and
lunisolar calendars) and ``holidays.groups`` (the holiday families built on them). A desk
in Brazil needs one country, the Gregorian calendar and two groups; the rest was 9.9 MB of
the daemon's memory, an eighth of it.

Each of those ``__init__`` files only re-exports names of its own modules. Before
``holidays`` is first imported, :func:`open_door` puts each such package in
``sys.modules`` without running its ``__init__``, with a module ``__getattr__`` (PEP 562)
that answers a name by importing the one module the ``__init__`` took it from. Importing a
country module, or asking a package for a name (``from holidays.groups import
ChristianHolidays``, as the country modules do), then loads that module and no other.

That only holds while an ``__init__`` does nothing but re-export: each is read and checked
before its door opens (:func:`only_own_imports`), and one that does anything else (an
upgrade adding a registration, a side effect) is imported as usual, a larger process but
the same holidays. So no version cap is needed for correctness, and none is set: holiday
data is what upgrades bring, and a desk wants this year's. A package imported before the
door opened (by another library in the same process) stays as it is.

The rest of the daemon reaches the package only through :func:`country_holidays` and
:func:`country_codes` (``holidays.list_supported_countries()`` would import every country
to list their subdivisions). ``tests/daemon/test_holidays_internals.py`` fails when an
upgrade closes a door, so the memory it saves is not lost unnoticed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from holidays import HolidayBase

TOP = "holidays"
PACKAGES = ("holidays.countries", "holidays.calendars", "holidays.groups")

_lock = threading.Lock()
_deferred: dict[str, ModuleType] = {}  # the packages this module put in sys.modules


def country_holidays(country: str, **options: Any) -> HolidayBase:
    """``holidays.country_holidays``, with the door open first."""
    open_door()
    import holidays

    found: HolidayBase = holidays.country_holidays(country, **options)
    return found


def country_codes() -> frozenset[str]:
    """Every country code the package accepts, aliases included (``BR``, ``BRA``, ``UK``)."""
    open_door()
    from holidays.registry import EntityLoader

    return frozenset(EntityLoader.get_country_codes(include_aliases=True))


def open_door() -> tuple[str, ...]:
    """Defer every package of :data:`PACKAGES` that allows it (see the module docstring);
    the packages deferred, now or by an earlier call, whose ``__init__`` has not run."""
    with _lock:
        for name in PACKAGES:
            if name not in sys.modules:
                _defer(name)
        # A package found in sys.modules is not made an attribute of its parent by the
        # import system, as one it loads is: done here, once the parent is imported.
        top = importlib.import_module(TOP)
        for name, package in _deferred.items():
            child = name.rpartition(".")[2]
            if sys.modules.get(name) is package and getattr(top, child, None) is not package:
                setattr(top, child, package)
        return tuple(
            name for name, package in _deferred.items() if sys.modules.get(name) is package
        )


def _defer(name: str) -> None:
    spec = _spec_without_importing_parent(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    get_source = getattr(spec.loader, "get_source", None)
    source = get_source(name) if callable(get_source) else None
    if not isinstance(source, str) or not only_own_imports(source, name):
        return
    package = importlib.util.module_from_spec(spec)  # made, not run
    package.__dict__["__getattr__"] = _lookup(package, reexports(source))
    sys.modules[name] = package
    _deferred[name] = package


def _spec_without_importing_parent(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of ``holidays.<name>``: ``importlib.util.find_spec`` would import
    ``holidays`` first, whose own imports reach the packages to defer."""
    parent = sys.modules.get(TOP)
    if parent is not None:
        locations = list(getattr(parent, "__path__", []))
    else:
        top = importlib.util.find_spec(TOP)
        if top is None or top.submodule_search_locations is None:
            return None
        locations = list(top.submodule_search_locations)
    return importlib.machinery.PathFinder.find_spec(name, locations)


def _lookup(package: ModuleType, names: Mapping[str, str]) -> Any:
    """The deferred package's ``__getattr__``: a re-exported name imports the module it
    comes from; ``__all__`` (asked by ``import *``) lists the public ones."""

    def lookup(name: str) -> Any:
        if name == "__all__":
            return [n for n in names if not n.startswith("_")]
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        package.__dict__[name] = value
        return value

    return lookup


def only_own_imports(source: str, package: str) -> bool:
    """Whether ``source`` (a package's ``__init__``) is nothing but a docstring and
    ``from <package>.<module> import <names>`` statements."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    for statement in body:
        if isinstance(statement, ast.ImportFrom):
            module = statement.module or ""
            if statement.level or not module.startswith(package + "."):
                return False
            if any(alias.name == "*" for alias in statement.names):
                return False
        elif not (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        ):
            return False
    return True


def reexports(source: str) -> dict[str, str]:
    """``name -> module`` for each name a re-exporting ``__init__`` imports."""
    return {
        alias.asname or alias.name: statement.module or ""
        for statement in ast.parse(source).body
        if isinstance(statement, ast.ImportFrom)
        for alias in statement.names
    }
