"""The demo's configuration is the admin's to edit: kept across demo starts, and runnable
with ``expediente run`` by following its own header."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.harness import http
from tests.servers import free_port

pytestmark = pytest.mark.slow


@contextmanager
def started(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(url: str, processes: Sequence[subprocess.Popen[bytes]], log: Path) -> None:
    """Poll /healthz until every calendar synced (an event, not a sleep), or fail with the log."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), log.read_text()
        try:
            status, _ = http("GET", url + "/healthz")
        except OSError:
            status = 0
        if status == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"not healthy in time:\n{log.read_text()}")


def test_an_edited_demo_config_is_kept_and_runs_as_its_header_says(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "demo.log"
    port, caldav_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    demo = [sys.executable, "-m", "daemon.cli", "demo", "--state", str(state)]
    with started([*demo, "--port", str(port), "--caldav-port", str(caldav_port)], log) as first:
        wait_healthy(url, [first], log)
    path = state / "expediente.toml"
    edited = path.read_text().replace('"Suporte Técnico (demo)"', '"Suporte Editado"')
    path.write_text(edited)

    # The header's two commands, as an admin would paste them.
    commands = [line.removeprefix("#   ") for line in edited.splitlines()
                if line.startswith("#   ")]  # fmt: skip
    assert len(commands) == 2 and commands[1].startswith("expediente run --config ")
    radicale_argv = shlex.split(commands[0])
    run_argv = shlex.split(commands[1])
    run_argv[0] = str(Path(sys.executable).parent / "expediente")  # this install's script
    with started(radicale_argv, log) as radicale, started(run_argv, log) as daemon:
        wait_healthy(url, [radicale, daemon], log)
        status, page = http("GET", url + "/")
        assert status == 200 and "Suporte Editado" in page

    with started(demo, log) as again:  # no flags: the kept file says the ports
        wait_healthy(url, [again], log)
        status, page = http("GET", url + "/")
        assert status == 200 and "Suporte Editado" in page
    assert path.read_text() == edited
