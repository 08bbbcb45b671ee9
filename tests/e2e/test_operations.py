"""Operating the daemon: systemd readiness and watchdog, the admin CLI, the demo."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.loop import Daemon
from daemon.systemd import Notifier
from tests.daemon.desk import monday, write_config
from tests.e2e.harness import ADMIN, LIVE, Desk, http
from tests.factories import private_event
from tests.servers import CalDAVServer, free_port

pytestmark = pytest.mark.slow


def test_ready_is_sent_after_the_first_sync_and_the_watchdog_from_the_loop(
    radicale: CalDAVServer, tmp_path: Path
) -> None:
    ana, bruno = radicale.new_calendar(), radicale.new_calendar()
    path = write_config(tmp_path, {"ana": ana, "bruno": bruno}, settings=LIVE)
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000"})
        daemon = Daemon(load_config(path), clock=FixedClock(monday(7)), systemd=notifier)
        try:
            daemon.start(port=0)
            messages: list[str] = []
            while not any(m.startswith("READY=1") for m in messages):
                messages.append(systemd.recv(512).decode())
            assert any(m.startswith("STATUS=") for m in messages)
            # When READY arrived, every calendar had synced and the server answered.
            assert all(c.last_sync_ok_at is not None for c in daemon.store.calendars())
            assert daemon.server is not None
            assert http("GET", daemon.server.url + "/healthz")[0] == 200
            daemon.scheduler.run_all()  # every scheduled job once, no waiting
            received = [systemd.recv(512).decode() for _ in range(2)]
            assert "WATCHDOG=1" in received
        finally:
            daemon.shutdown()
        assert systemd.recv(512) == b"STOPPING=1"


def test_admin_cli_lists_checks_in_and_cancels(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    first = desk.book(monday(9))
    second = desk.book(monday(10))
    clock = desk.clock
    config = str(desk.path)

    assert main(["sessions", "--config", config, "--json"], clock) == 0
    listed = json.loads(capsys.readouterr().out)["sessions"]
    assert {s["id"] for s in listed} == {first["id"], second["id"]}

    clock.set(monday(9, 5))
    assert main(["check-in", first["id"], "--config", config], clock) == 0
    assert capsys.readouterr().out.strip() == f"{first['id']}: in_progress"
    cancel = ["cancel", second["id"], "--config", config, "--reason", "client asked"]
    assert main(cancel, clock) == 0
    capsys.readouterr()
    assert main(["cancel", second["id"], "--config", config], clock) == 1
    assert "refused" in capsys.readouterr().err
    assert main(["check-in", "nope", "--config", config], clock) == 2
    assert "no session 'nope'" in capsys.readouterr().err

    _, body = desk.get(f"/api/v1/sessions/{second['id']}", ADMIN)
    assert body["status"] == "cancelled"
    assert main(["sessions", "--config", config, "--status", "in_progress"], clock) == 0
    out = capsys.readouterr().out
    assert first["id"] in out and second["id"] not in out
    # What the CLI changed reaches the calendar through the daemon's outbox.
    desk.daemon.flush()
    event = desk.event(second["id"])
    assert event is not None and b"CANCELAD" in event.upper()


def test_sync_once_syncs_sweeps_and_delivers(
    desk: Desk, capsys: pytest.CaptureFixture[str]
) -> None:
    session = desk.book(monday(9))
    desk.daemon.shutdown()  # the CLI works on its own, on the same store
    code = main(["sync", "--config", str(desk.path), "--once"], desk.clock)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ana:sessions" in out and "outbox: 2 delivered, 0 failed" in out
    assert desk.calendars[desk_technician(desk, session["id"])].get_raw(
        f"expediente-{session['id']}.ics"
    )


def desk_technician(desk: Desk, session_id: str) -> str:
    session = desk.daemon.store.get_session(session_id)
    assert session is not None
    return session.technician_id


def test_the_demo_serves_slots_from_its_embedded_caldav_server(tmp_path: Path) -> None:
    port, caldav_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "demo", "--state", str(tmp_path / "state"),
             "--port", str(port), "--caldav-port", str(caldav_port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()
            try:
                status, body = http("GET", f"http://127.0.0.1:{port}/healthz")
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                break
            time.sleep(0.1)
        assert body.get("status") == "ok", log.read_text()
        assert len(body["calendars"]) == 4  # type: ignore[arg-type]
        status, slots = http("GET", f"http://127.0.0.1:{port}/api/v1/slots")
        assert status == 200 and slots["timezone"] == "America/Sao_Paulo"
        assert f"http://127.0.0.1:{port}/" in log.read_text()
        status, page = http("GET", f"http://127.0.0.1:{port}/")
        assert status == 200 and '<html lang="pt-BR"' in page, "the booking page is served"
    finally:
        demo.terminate()
        assert demo.wait(20) == 0


def test_slots_reads_the_technicians_calendars_live(
    radicale: CalDAVServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ana, bruno = radicale.new_calendar(), radicale.new_calendar()
    ana.put_raw("dentist.ics", private_event("d", "20261130T140000Z", "20261130T150000Z"))
    path = write_config(tmp_path, {"ana": ana, "bruno": bruno}, settings=LIVE)
    argv = ["slots", "--config", str(path), "--from", "2026-11-30", "--to", "2026-11-30"]
    code = main([*argv, "--json", "--now", "2026-11-30T07:00:00-03:00"])
    slots = {s["start"]: s["technicians"] for s in json.loads(capsys.readouterr().out)["slots"]}
    assert code == 0
    assert slots[monday(11).isoformat()] == 1 and slots[monday(10).isoformat()] == 2
    # A calendar that cannot be read leaves its technician out, with a warning.
    bruno_url = bruno.url
    path.write_text(
        path.read_text().replace(
            bruno_url, bruno_url.replace(f":{radicale.port}/", f":{free_port()}/")
        )
    )
    code = main([*argv, "--json", "--now", "2026-11-30T07:00:00-03:00"])
    out, err = capsys.readouterr()
    slots = {s["start"]: s["technicians"] for s in json.loads(out)["slots"]}
    assert code == 0 and "bruno" in err and "leaving this technician out" in err
    assert slots[monday(10).isoformat()] == 1 and monday(11).isoformat() not in slots


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_the_client_address_comes_from_the_proxy_only_when_one_is_configured(
    behind_proxy: bool,
) -> None:
    from daemon.web.server import HttpServer

    def app(environ: dict[str, str], start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [environ["REMOTE_ADDR"].encode()]

    server = HttpServer(app, "127.0.0.1", 0, behind_proxy=behind_proxy)
    server.start()
    try:
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
            server.url + "/", headers={"X-Forwarded-For": "203.0.113.9"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            seen = response.read().decode()
    finally:
        server.stop()
    assert seen == ("203.0.113.9" if behind_proxy else "127.0.0.1")
