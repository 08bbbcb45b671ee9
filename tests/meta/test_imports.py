"""No module of the suite imports a test module or a conftest.

A helper defined in ``test_x.py`` and imported elsewhere ties one test file to another,
runs the other file's module-level code wherever the helper is wanted, and hides the helper
from whoever looks for the suite's shared parts; a conftest imported as a module is loaded
outside pytest's own conftest handling. Those live in helper modules (``tests/factories.py``,
``tests/daemon/desk.py``, ``tests/servers/``, a folder's ``harness.py``) or in conftest
fixtures, which pytest hands out without an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def imported_test_modules(source: str, module: str) -> list[str]:
    """The test modules and conftests that ``source``, the text of ``module``, imports,
    each as ``"line: module"``."""
    package = module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [(node.lineno, name) for name in names if _is_test_or_conftest(name)]
    return [f"{line}: {name}" for line, name in sorted(found)]


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = {
        name: found
        for folder in ("tests", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (name := ".".join(path.relative_to(ROOT).with_suffix("").parts))
        and (found := imported_test_modules(path.read_text(encoding="utf-8"), name))
    }
    assert offenders == {}, "move what is shared into a helper module or a fixture"


def test_the_check_sees_each_form_of_import() -> None:
    source = (
        "import tests.daemon.test_api\n"
        "from tests.e2e.conftest import Desk\n"
        "from tests.daemon import test_notify\n"
        "def lazy():\n"
        "    from . import conftest\n"
        "from ..daemon.test_loop import Desk\n"
        "from tests.factories import booking\n"
        "from tests.daemon.desk import write_config\n"
        "from . import harness\n"
    )
    assert imported_test_modules(source, "tests.e2e.probe") == [
        "1: tests.daemon.test_api",
        "2: tests.e2e.conftest",
        "3: tests.daemon.test_notify",
        "5: tests.e2e.conftest",
        "6: tests.daemon.test_loop",
    ]
