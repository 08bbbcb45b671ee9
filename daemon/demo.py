"""``expediente demo``: a whole desk on this machine, on a real CalDAV server.

It starts Radicale (a real CalDAV server, installed with expediente) on 127.0.0.1 with its
data in the state folder, creates two technicians' calendars with sample busy time (one
event recurring every weekday, so the demo shows recurrences blocking time), writes a
configuration next to it, and runs the daemon on that configuration. Running it again
reuses the folder: bookings made earlier are still there, and so is the configuration,
edits included (the demo writes it only when it is missing), so the demo is also where
an admin tries a change before making it on the real desk. The ports come from that kept
file; ``--port``/``--caldav-port`` only choose them for a new folder.

Nothing here is special-cased in the daemon: it reads and writes the technicians'
calendars over CalDAV exactly as it would on a production server.
"""

from __future__ import annotations

import secrets
import shlex
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from daemon.clock import Clock, SystemClock
from daemon.errors import UserError

if TYPE_CHECKING:
    from daemon.config import Config

TZ = ZoneInfo("America/Sao_Paulo")
TECHNICIANS = (("ana", "Ana Souza"), ("bruno", "Bruno Lima"))
PASSWORD_FILE = "secrets/caldav-password"  # noqa: S105 - a file name

CONFIG = """\
# The demo desk, written by `expediente demo` on its first start and kept from then on:
# edit it and start the demo again to try a change (delete it to get this one back).
# To run this desk without the demo command, start its CalDAV server, then the daemon:
#   {python} -m radicale --config {radicale_conf}
#   expediente run --config {config}
[desk]
name = "Suporte Técnico (demo)"
timezone = "America/Sao_Paulo"
language = "pt-BR"
holidays = {{ country = "BR", subdivision = "SP" }}

[booking]
slot_step = "30m"
horizon = "30d"
grace = "10m"
remote_tools = ["AnyDesk"]

[sync]
interval = "20s"
stale_after = "10m"

[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
admin_token_file = "secrets/admin-token"
signing_key_file = "secrets/signing-key"

[store]
path = "expediente.db"
{technicians}"""

TECHNICIAN = """
[[technicians]]
id = "{id}"
name = "{name}"
[technicians.calendar]
kind = "caldav"
url = "{caldav}/{id}/work/"
username = "{id}"
password_file = "{password_file}"
[[technicians.busy]]
kind = "caldav"
url = "{caldav}/{id}/personal/"
username = "{id}"
password_file = "{password_file}"
"""

RADICALE_CONFIG = """\
# The demo's CalDAV server, written by `expediente demo` on each start.
[server]
hosts = 127.0.0.1:{port}
[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
[storage]
filesystem_folder = {folder}
[logging]
level = warning
"""
DEFAULT_PORT = 8080
DEFAULT_CALDAV_PORT = 5232


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the embedded CalDAV server exited with code {process.returncode}")
        if not _free(port):
            return
        time.sleep(0.05)
    raise UserError(f"the embedded CalDAV server did not start on port {port}")


def start_radicale(state: Path, port: int, password: str) -> subprocess.Popen[bytes]:
    if not _free(port):
        raise UserError(
            f"port {port} for the embedded CalDAV server is taken; free it, or change the "
            f"technicians' url in {state / 'expediente.toml'}"
        )
    users = state / "radicale-users"
    users.write_text("".join(f"{tech}:{password}\n" for tech, _ in TECHNICIANS))
    # Everything in one file, so the configuration's header can tell how to start this
    # server by hand; naming the file also keeps Radicale from /etc/radicale and ~/.config.
    config = state / "radicale.conf"
    config.write_text(RADICALE_CONFIG.format(port=port, users=users, folder=state / "radicale"))
    command = [sys.executable, "-m", "radicale", "--config", str(config)]
    process = subprocess.Popen(command)  # noqa: S603 - our own interpreter and arguments
    try:
        _wait_for(port, process)
    except BaseException:
        process.terminate()
        process.wait(5)
        raise
    return process


def _sample_events(tech: str, today: datetime) -> dict[str, list[str]]:
    """Busy time for each calendar: a recurring team meeting and a one-off appointment.

    ``today`` is the clock's reading: its seconds are dropped so that an event ends on the
    minute and a one-hour meeting leaves the next slot free.
    """
    today = today.replace(second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    stamp = "20260101T000000Z"
    meeting_start = monday.replace(hour=10 if tech == "ana" else 14, minute=0)
    one_off = (today + timedelta(days=1)).replace(hour=8 if tech == "ana" else 15, minute=30)

    def local(value: datetime) -> str:
        return value.strftime("%Y%m%dT%H%M%S")

    recurring = (
        f"BEGIN:VEVENT\nUID:demo-{tech}-meeting\nDTSTAMP:{stamp}\n"
        f"DTSTART;TZID=America/Sao_Paulo:{local(meeting_start)}\n"
        f"DTEND;TZID=America/Sao_Paulo:{local(meeting_start + timedelta(hours=1))}\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\nSUMMARY:Reunião de equipe (privado)\n"
        "END:VEVENT\n"
    )
    appointment = (
        f"BEGIN:VEVENT\nUID:demo-{tech}-appointment\nDTSTAMP:{stamp}\n"
        f"DTSTART;TZID=America/Sao_Paulo:{local(one_off)}\n"
        f"DTEND;TZID=America/Sao_Paulo:{local(one_off + timedelta(hours=2))}\n"
        "SUMMARY:Consulta médica (privado)\nEND:VEVENT\n"
    )

    def wrap(body: str) -> str:
        text = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//expediente//demo//EN\n" + body
        return (text + "END:VCALENDAR\n").replace("\n", "\r\n")

    return {"work": [wrap(appointment)], "personal": [wrap(recurring)]}


def create_calendars(caldav_url: str, password: str, today: datetime) -> None:
    import caldav

    for tech, _ in TECHNICIANS:
        client_class: Any = caldav.DAVClient
        client: Any = client_class(url=f"{caldav_url}/{tech}/", username=tech, password=password)
        with client:
            principal = client.principal()
            for name, events in _sample_events(tech, today).items():
                calendar = principal.make_calendar(name=f"{tech} {name}", cal_id=name)
                for ics in events:
                    calendar.add_event(ics)


def prepare(state: Path, port: int | None, caldav_port: int | None) -> tuple[Config, int]:
    """Write the demo's missing secrets and, when there is none yet, its configuration;
    load the configuration. Returns it and the port of the CalDAV server it points at.

    ``port``/``caldav_port`` (None: the defaults) choose the ports of a new folder; given
    for a folder whose configuration says otherwise, they are an error rather than a
    silent rewrite of a file the admin may have edited.
    """
    from daemon.config import load_config

    (state / "secrets").mkdir(parents=True, exist_ok=True)
    for name in ("caldav-password", "admin-token", "signing-key"):
        path = state / "secrets" / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24) + "\n")
            path.chmod(0o600)
    path = state / "expediente.toml"
    if not path.exists():
        caldav = f"http://127.0.0.1:{caldav_port or DEFAULT_CALDAV_PORT}"
        technicians = "".join(
            TECHNICIAN.format(id=tech, name=name, caldav=caldav, password_file=PASSWORD_FILE)
            for tech, name in TECHNICIANS
        )
        text = CONFIG.format(
            python=shlex.quote(sys.executable),
            radicale_conf=shlex.quote(str(state / "radicale.conf")),
            config=shlex.quote(str(path)),
            port=port or DEFAULT_PORT,
            technicians=technicians,
        )
        path.write_text(text)
    config = load_config(path)
    if port is not None and port != config.server.port:
        raise UserError(
            f"--port {port}: the demo's configuration {path} listens on "
            f"{config.server.listen}; change [server] listen and public_url there, "
            "or leave --port out"
        )
    local = _local_caldav_ports(config)
    if len(local) > 1:
        raise UserError(
            f"{path} points at CalDAV servers on ports {', '.join(map(str, sorted(local)))} "
            "of 127.0.0.1; the demo runs one: use one port in every url"
        )
    if caldav_port is not None and local and caldav_port not in local:
        raise UserError(
            f"--caldav-port {caldav_port}: the technicians' calendars in {path} are on port "
            f"{local.pop()}; change their url there, or leave --caldav-port out"
        )
    return config, local.pop() if local else caldav_port or DEFAULT_CALDAV_PORT


def _demo_staff(config: Config, state: Path, clock: Clock) -> Path:
    """A desk console account ``demo``, made when missing, its password in a secret file of
    the demo's folder; returns that file."""
    from daemon.staff import hash_password
    from daemon.store import Store

    path = state / "secrets" / "desk-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    store = Store(config.store.path)
    try:
        if store.staff_account("demo") is None:
            password = path.read_text().strip()
            store.add_staff("demo", hash_password(password), now=clock.now(), actor="demo")
    finally:
        store.close()
    return path


def _local_caldav_ports(config: Config) -> set[int]:
    """Ports of the CalDAV calendars on 127.0.0.1: the embedded server the file expects."""
    ports = set()
    for tech in config.technicians:
        for calendar in tech.calendars:
            url = urlsplit(calendar.url or "")
            if calendar.kind == "caldav" and url.hostname == "127.0.0.1":
                ports.add(url.port or 80)
    return ports


def run_demo(
    state: Path,
    *,
    port: int | None = None,
    caldav_port: int | None = None,
    clock: Clock | None = None,
) -> int:
    from daemon import log as logs
    from daemon.loop import Daemon

    clock = clock or SystemClock()
    state = state.resolve()
    if not (state / "expediente.toml").exists():
        # Checked before the file is written with them: a folder is not left holding ports
        # that the next start, with other flags, would refuse as a disagreement.
        for flag, chosen in (("--port", port or DEFAULT_PORT),
                             ("--caldav-port", caldav_port or DEFAULT_CALDAV_PORT)):  # fmt: skip
            if not _free(chosen):
                raise UserError(f"port {chosen} is taken; choose another with {flag}")
    config, caldav_port = prepare(state, port, caldav_port)
    config_path = config.path
    port = config.server.port
    if not _free(port):
        raise UserError(
            f"port {port} is taken; change [server] listen and public_url in {config_path}"
        )
    fresh = not (state / "radicale").exists()
    password = (state / PASSWORD_FILE).read_text().strip()
    logs.setup("INFO", background=True)
    radicale = start_radicale(state, caldav_port, password)
    try:
        if fresh:
            create_calendars(
                f"http://127.0.0.1:{caldav_port}", password, clock.now().astimezone(TZ)
            )
        token = (state / "secrets" / "admin-token").read_text().strip()
        desk_password = _demo_staff(config, state, clock)
        print(
            f"\nexpediente demo — data in {state}\n"
            f"  booking page   http://127.0.0.1:{port}/\n"
            f"  desk console   http://127.0.0.1:{port}/desk/ "
            f"(user demo, password in {desk_password})\n"
            f"  free slots     http://127.0.0.1:{port}/api/v1/slots\n"
            f"  free-slot feed http://127.0.0.1:{port}/feeds/free.ics\n"
            f"  health         http://127.0.0.1:{port}/healthz\n"
            f"  metrics        http://127.0.0.1:{port}/metrics\n"
            f"  API            http://127.0.0.1:{port}/api/v1/openapi.json "
            f"(admin token: {token})\n"
            f"  CalDAV         http://127.0.0.1:{caldav_port}/ana/work/ "
            f"(user ana, password in {state / PASSWORD_FILE})\n"
            f"  configuration  {config_path}\n"
            "Ctrl-C stops it.\n",
            flush=True,
        )
        return Daemon(config, clock=clock).run()
    finally:
        radicale.terminate()
        try:
            radicale.wait(10)
        except subprocess.TimeoutExpired:
            radicale.kill()
