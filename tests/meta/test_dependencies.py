"""Every package the code imports directly is declared in pyproject.toml.

A package that arrives only through another one's requirements disappears the day that one
drops it; declared, it has a lower bound we chose and tested.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"rules", "connectors", "daemon", "tests", "bench"}
TYPING_ONLY = {"_typeshed"}  # stubs mypy provides; never imported at run time


def _imported(folders: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in OWN | TYPING_ONLY and n not in sys.stdlib_module_names}


def _declared(*groups: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for group in groups:
        requirements += project["optional-dependencies"][group]
    return {_normal(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _undeclared(modules: set[str], declared: set[str]) -> list[str]:
    owners = packages_distributions()
    missing = []
    for module in sorted(modules):
        dists = {_normal(d) for d in owners.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (from {', '.join(sorted(dists))})")
    return missing


def test_the_code_imports_only_declared_packages() -> None:
    missing = _undeclared(_imported(("rules", "connectors", "daemon")), _declared())
    assert not missing, f"declare these in [project] dependencies: {missing}"


def test_tests_and_benchmarks_import_only_declared_packages() -> None:
    missing = _undeclared(_imported(("tests", "bench")), _declared("test", "dev"))
    assert not missing, f"declare these in the test extra: {missing}"


def test_the_constraints_pin_every_declared_package_within_its_range() -> None:
    """CI and the deploy guide install from constraints.txt: a pin outside pyproject's
    range, or a declared package left unpinned, would make the two disagree."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_normal(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        Requirement(r)
        for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]
        + project["optional-dependencies"]["dev"]
        if not r.startswith("expediente")
    ]
    problems = [
        f"{req.name}: {pins.get(_normal(req.name), 'not pinned')} (wants {req.specifier})"
        for req in requirements
        if _normal(req.name) not in pins or pins[_normal(req.name)] not in req.specifier
    ]
    assert not problems, f"regenerate constraints.txt (see its header): {problems}"


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    """The README promises its second command is the whole suite; CI must run that one."""
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(python3 -m venv .*)$", readme, flags=re.M)
    assert len(commands) == 2, "the README starts with two commands: the demo and the tests"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci, f".ci/run must run the README's test command: {commands[1]}"
