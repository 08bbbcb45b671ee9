"""A running desk for daemon tests: a config on disk, a real store, a fixed clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from daemon.clock import FixedClock
from daemon.config import Config, load_config
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import Store
from daemon.web.api import Api
from daemon.web.csrf import OriginGuard
from daemon.web.http import App, Router
from tests import wsgi

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ADMIN_TOKEN = "admin-token-for-tests-0123456789"

CONFIG = """
[desk]
name = "Suporte Técnico"
closed_dates = ["2026-12-24"]

[booking]
horizon = "30d"

[[technicians]]
id = "ana"
name = "Ana Souza"
[technicians.calendar]
kind = "caldav"
url = "{caldav}/ana/work/"
username = "ana"
password_file = "secrets/caldav"

[[technicians]]
id = "bruno"
name = "Bruno Lima"
[technicians.calendar]
kind = "caldav"
url = "{caldav}/bruno/work/"
username = "bruno"
password_file = "secrets/caldav"

[server]
public_url = "http://127.0.0.1:8080"

[store]
path = "state/expediente.db"
"""


@dataclass
class Desk:
    config: Config
    store: Store
    clock: FixedClock
    service: Service
    app: App
    signer: Signer

    def mark_synced(self, at: datetime | None = None) -> None:
        """Pretend every calendar synced now (empty), so technicians are bookable."""
        for calendar in self.config.calendars:
            self.store.apply_sync(
                calendar.id, [], full=True, state=None, now=at or self.clock.now()
            )


def write_config(folder: Path, caldav: str = "http://127.0.0.1:9") -> Path:
    (folder / "secrets").mkdir(parents=True, exist_ok=True)
    (folder / "state").mkdir(exist_ok=True)
    (folder / "secrets" / "caldav").write_text("password\n")
    (folder / "secrets" / "admin-token").write_text(ADMIN_TOKEN + "\n")
    (folder / "secrets" / "signing-key").write_text("signing-key-for-tests-0123456789\n")
    path = folder / "expediente.toml"
    path.write_text(CONFIG.format(caldav=caldav))
    return path


def make_desk(folder: Path, now: datetime, *, synced: bool = True) -> Desk:
    config = load_config(write_config(folder))
    store = Store(config.store.path)
    clock = FixedClock(now)
    service = Service(config, store, clock)
    signer = Signer(config.server.signing_key.reveal().encode())
    router = Router()
    Api(service, signer).routes(router)
    app = App(router, guard=OriginGuard(config.server.public_url))
    desk = Desk(config, store, clock, service, app, signer)
    if synced:
        desk.mark_synced()
    return desk


def monday(hour: int, minute: int = 0, weeks: int = 0) -> datetime:
    """A Monday of the test calendar (2026-11-30) at a desk-local time."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=SAO_PAULO) + timedelta(weeks=weeks)


class Served(Protocol):
    """Anything with the daemon's WSGI app (a test desk, a running daemon's wrapper)."""

    app: Any


def call(
    desk: Served,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    status, response_headers, data = wsgi.call(
        desk.app, wsgi.environ(method, path, raw, headers=headers)
    )
    return status, dict(response_headers), json.loads(data) if data else None
