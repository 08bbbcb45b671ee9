"""rules/ stays pure: standard-library imports only, no I/O, no clock reads."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "rules"
ALLOWED = {
    "__future__",
    "array",  # compact storage for timelines; no I/O
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "itertools",
    "operator",
    "re",
    "typing",
    "unicodedata",
    "zoneinfo",
}
CLOCK_METHODS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter"}
FORBIDDEN_FUNCTIONS = {"open", "input", "print"}


def test_rules_imports_only_pure_standard_library_modules() -> None:
    for path in RULES.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "rules" or top in ALLOWED, f"{path.name} imports {name}"
                assert top == "rules" or top in sys.stdlib_module_names


def test_rules_never_reads_the_clock_or_opens_files() -> None:
    for path in RULES.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                where = f"{path.name}:{node.lineno}"
                if isinstance(func, ast.Attribute):
                    assert func.attr not in CLOCK_METHODS, f"{where} calls .{func.attr}()"
                elif isinstance(func, ast.Name):
                    assert func.id not in FORBIDDEN_FUNCTIONS, f"{where} calls {func.id}()"
