"""The suite holds its own clock: no test depends on today's date.

Two guarantees, each tested here:
- ``tests/conftest.py`` makes the daemon's wall clock raise in every test that does not opt
  in, including reads in background threads that a guarded job would swallow;
- the date-sensitive tests pass with Python's clock moved years back and years ahead.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeGuard

import pytest

from daemon.clock import ShiftedClock, SystemClock
from tests.clock_guard import RealClockForbidden

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

# Tests that book, sweep, remind and render times: the ones a fixed clock mixed with the
# wall clock has broken before (the CLI's cancel queued at the real "now" in
# test_operations).
DATE_SENSITIVE = [
    "tests/e2e/test_operations.py",
    "tests/daemon/test_cli.py",
    "tests/daemon/test_loop.py",
    "tests/daemon/test_rebook.py",
    "tests/daemon/test_notify.py",
    "tests/web/test_pages.py",
]


def test_the_daemons_clocks_refuse_in_tests(no_real_clock: list[str]) -> None:
    with pytest.raises(RealClockForbidden):
        SystemClock().now()
    with pytest.raises(RealClockForbidden):
        ShiftedClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    assert len(no_real_clock) == 2
    no_real_clock.clear()  # provoked on purpose


@pytest.mark.real_clock
def test_a_test_may_opt_in_to_the_real_clock() -> None:
    assert SystemClock().now().tzinfo is not None


def test_a_read_swallowed_in_a_thread_still_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the conftest imports tests.clock_guard
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import threading
        from daemon.clock import SystemClock

        def test_reads_in_a_guarded_job():
            def job():
                try:
                    SystemClock().now()
                except Exception:
                    pass  # what a guarded job does: log and carry on
            worker = threading.Thread(target=job)
            worker.start()
            worker.join()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*this test read the real clock*"])


@pytest.mark.slow
@pytest.mark.parametrize("date", ["2019-03-04T10:00:00+00:00", "2033-08-15T18:30:00+00:00"])
def test_date_sensitive_tests_pass_years_away_from_today(date: str) -> None:
    env = {**os.environ, "EXPEDIENTE_TEST_DATE": date}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "tests.meta.travel", *DATE_SENSITIVE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = result.stdout + result.stderr
    report = _failures(result.stdout, result.stderr)
    assert f"travelled: {date[:10]}" in out, report
    assert result.returncode == 0, report
    passed = re.search(r"(\d+) passed", out)
    assert passed is not None and int(passed.group(1)) >= 100, report


def _failures(stdout: str, stderr: str) -> str:
    """The child's failures and summary, not the tail of its stderr.

    A server thread's late log lines at the child's exit filled the last 3,000 characters
    once and hid which test had failed. With no failures section (the child did not get
    to run tests), both outputs' tails: the reason is then in one of them.
    """
    start = stdout.find("= FAILURES =")
    if start < 0:
        start = stdout.find("= ERRORS =")
    if start < 0:
        return stdout[-3000:] + "\n--- stderr ---\n" + stderr[-3000:]
    body = stdout[start:]
    return body[:6000] + ("\n[...]\n" + body[-3000:] if len(body) > 9000 else body[6000:])


def test_browser_tests_fail_in_ci_when_chromium_is_missing(tmp_path: Path) -> None:
    from tests.browser.harness import require_chromium

    missing = tmp_path / "chromium"
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_chromium(missing, {"CI": "true"})
    with pytest.raises(pytest.skip.Exception):
        require_chromium(missing, {})
    missing.touch()
    require_chromium(missing, {"CI": "true"})  # present: nothing to say


# Reads of the date or the time of day. Elapsed-time reads (time.monotonic,
# time.perf_counter) for timeouts and backoff say nothing about the date and stay allowed.
WALL_CLOCK = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"),
}  # fmt: skip


def _reads_wall_clock(node: ast.AST) -> TypeGuard[ast.Call]:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    owner = node.func.value
    name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
    if (name, node.func.attr) not in WALL_CLOCK:
        return False
    # time.localtime(seconds) and gmtime(seconds) convert a given instant: not a read.
    return not (name == "time" and node.func.attr in {"localtime", "gmtime"} and node.args)


def test_only_daemon_clock_reads_the_wall_clock() -> None:
    """Every other module gets ``now`` handed in, so the fixture above covers them all."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in ("rules", "connectors", "daemon")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "daemon" / "clock.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _reads_wall_clock(node)
    ]
    assert not found, f"read the time through daemon.clock instead: {found}"
