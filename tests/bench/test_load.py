"""bench/load.py, the load generator bench/api.py's latency figures rest on.

Open loop means latency counts from the *scheduled* send time: a server that stalls shows
as every request that waited behind the stall, not as one slow request. A generator that
timed from the actual send (coordinated omission) would report the waiting ones as fast.
Here a server answering one request at a time stalls on the first: each request due
during the stall must carry the rest of the stall in its latency. Only lower bounds are
asserted, which a slow machine can only make truer.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.web.server import HttpServer

LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"
STALL = 0.6  # seconds the first request holds the server's only thread
RATE = 20  # requests per second: 12 of them are due during the stall


@pytest.fixture
def stalling_server() -> Iterator[HttpServer]:
    stalled = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not stalled.is_set():
            stalled.set()
            time.sleep(STALL)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = HttpServer(app, "127.0.0.1", 0, threads=1)
    server.start()
    yield server
    server.stop()


def generate(plan: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(LOAD)],
        input=json.dumps(plan).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_open_loop_latency_counts_the_wait_behind_a_stalled_server(
    stalling_server: HttpServer,
) -> None:
    plan = {
        "port": stalling_server.port,
        "mode": "open",
        "duration": 1.0,
        "timeout": 20,
        "grace": 10,
        "connections": 4,
        "streams": [{"name": "get", "method": "GET", "path": "/", "rate": RATE}],
    }
    stream = generate(plan)["streams"]["get"]
    results = stream["results"]
    assert stream["unsent"] == 0
    assert sorted(at for at, _, _ in results) == [k / RATE for k in range(RATE)]
    assert {status for _, _, status in results} == {200}
    waited = [(at, latency) for at, latency, _ in results if at < STALL]
    assert len(waited) == STALL * RATE
    for at, latency_ms in waited:
        # Answered after the stall ends, which is at least STALL after the first was due.
        assert latency_ms >= (STALL - at) * 1000, (at, latency_ms)


def test_closed_loop_sends_each_body_once_then_stops(stalling_server: HttpServer) -> None:
    bodies = [{"n": n} for n in range(5)]
    plan = {
        "port": stalling_server.port,
        "mode": "closed",
        "duration": 30,
        "timeout": 20,
        "connections": 2,
        "streams": [{"name": "post", "method": "POST", "path": "/", "bodies": bodies}],
    }
    results = generate(plan)["streams"]["post"]["results"]
    assert [status for _, _, status in results] == [200] * len(bodies)


def random_plan(port: int, seed: int) -> dict[str, Any]:
    return {
        "port": port,
        "mode": "open",
        "duration": 1.0,
        "timeout": 20,
        "grace": 10,
        "connections": 4,
        "arrivals": "random",
        "seed": seed,
        "streams": [
            {"name": "get", "method": "GET", "path": "/", "rate": 40},
            {"name": "post", "method": "POST", "path": "/", "rate": 5, "bodies": [{}] * 3},
        ],
    }


def test_random_arrivals_are_the_same_for_a_seed_and_not_evenly_spaced() -> None:
    from bench.load import schedule

    first = schedule(random_plan(1, seed=3))
    again = schedule(random_plan(1, seed=3))
    other = schedule(random_plan(1, seed=4))
    assert [(r.stream, r.at) for r in first] == [(r.stream, r.at) for r in again]
    assert [r.at for r in first] != [r.at for r in other]
    gets = [r.at for r in first if r.stream == "get"]
    assert len(gets) == 40 and all(0.0 <= at < 1.0 for at in gets)
    assert [r.stream for r in first].count("post") == 3  # no more than the bodies
    gaps = [b - a for a, b in itertools.pairwise(gets)]
    # Evenly spaced, every gap would be 1/40 s.
    assert min(gaps) < 0.5 / 40 and max(gaps) > 1.5 / 40


def test_arrivals_other_than_even_or_random_are_refused() -> None:
    from bench.load import schedule

    with pytest.raises(ValueError, match="arrivals"):
        schedule({**random_plan(1, seed=0), "arrivals": "bursty"})


def test_an_open_loop_run_sends_at_the_drawn_times_and_reports_how_late(
    stalling_server: HttpServer,
) -> None:
    from bench.load import schedule

    plan = random_plan(stalling_server.port, seed=5)
    plan["streams"] = plan["streams"][:1]
    report = generate(plan)
    drawn = [r.at for r in schedule(plan)]
    stream = report["streams"]["get"]
    assert sorted(at for at, _, _ in stream["results"]) == drawn
    # The server answers nothing before the first request's stall ends, so the fifth
    # request waits for one of the four connections until then at least: late to send.
    assert stream["lag_ms"] >= (drawn[0] + STALL - drawn[4]) * 1000 > 0
    assert 0.0 <= stream["lag_p99_ms"] <= stream["lag_ms"]
