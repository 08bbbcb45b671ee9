"""The one door to the ``holidays`` package's internals: load the desk's country alone.

The package loads a country lazily (``holidays.BR`` is a loader that imports
``holidays.countries.brazil`` when first used), but importing any module of the
``holidays.countries`` package first runs that package's ``__init__``, which imports every
one of its ~250 country modules: 7.5 MB of the daemon's memory, a tenth of it, for the one
country a desk uses.

:func:`countries_on_demand` puts the ``holidays.countries`` package in ``sys.modules``
without running its ``__init__``, so importing one country module loads that module (and
what it imports itself) and no other. The package's ``__init__`` must then do nothing but
import names from its own modules: before opening the door, the ``__init__`` the installed
version ships is read and checked for exactly that; anything else (an upgrade that adds a
registration, a side effect) keeps the package loading as usual, a larger process but the
same holidays. So no version cap is needed for correctness, and none is set: the holiday
data is what upgrades bring, and a desk wants this year's. Names of the package itself are
still there for anyone who asks (``from holidays.countries import Brazil``): the first such
lookup runs the ``__init__`` after all, as an ordinary import would have.

:func:`country_codes` lists the codes the package knows from its registry, without
importing any country (``holidays.list_supported_countries()`` imports all of them to
list their subdivisions).

``tests/daemon/test_holidays_internals.py`` fails when an upgrade closes the door, so the
memory it saves is not lost unnoticed.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import threading
from importlib.abc import Loader
from types import ModuleType
from typing import Any

PACKAGE = "holidays.countries"

_lock = threading.Lock()
_deferred: ModuleType | None = None  # the package as this module put it in sys.modules
_ran = threading.Event()  # set once the deferred package's __init__ has run after all


def country_codes() -> frozenset[str]:
    """Every country code the package accepts, aliases included (``BR``, ``BRA``, ``UK``)."""
    from holidays.registry import EntityLoader

    return frozenset(EntityLoader.get_country_codes(include_aliases=True))


def countries_on_demand() -> bool:
    """Make importing a country module load only that country, if the installed package
    allows it; whether that is now the case (False: the package is loaded, or will load,
    whole; see the module docstring). Call it before any country is used."""
    global _deferred
    with _lock:
        loaded = sys.modules.get(PACKAGE)
        if loaded is not None:
            return loaded is _deferred and not _ran.is_set()
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return False
        get_source = getattr(spec.loader, "get_source", None)
        source = get_source(PACKAGE) if callable(get_source) else None
        if not isinstance(source, str) or not only_own_imports(source, PACKAGE):
            return False
        package = importlib.util.module_from_spec(spec)  # made, not run
        package.__dict__["__getattr__"] = _run_on_first_lookup(package, spec.loader)
        sys.modules[PACKAGE] = package
        parent, _, name = PACKAGE.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], name, package)
        _deferred = package
        return True


def _run_on_first_lookup(package: ModuleType, loader: Loader) -> Any:
    """A module ``__getattr__``: the first name asked for that the package does not have
    (a country module imported on demand is an attribute already) runs its ``__init__``,
    which then answers. ``__all__`` counts (``import *`` asks for it); other dunders are
    what tools probe modules for, and answer as missing without loading anything."""
    loading = threading.RLock()

    def lookup(name: str) -> Any:
        if name.startswith("__") and name != "__all__":
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")
        with loading:
            if not _ran.is_set():
                _ran.set()
                loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    return lookup


def only_own_imports(source: str, package: str) -> bool:
    """Whether ``source`` (a package's ``__init__``) is nothing but a docstring and
    absolute ``from <package>.<module> import <names>`` statements."""
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
