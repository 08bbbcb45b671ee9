"""A running desk for daemon tests: a config on disk, a real store, a fixed clock.

:func:`write_config` is the one writer of a test desk's configuration file; the daemon,
web, CLI, notification and end-to-end tests differ only in its arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pytest

from connectors.base import Calendar, SyncResult
from daemon.clock import FixedClock
from daemon.config import Config, load_config
from daemon.refresh import Refresher
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import Store
from daemon.web.api import Api
from daemon.web.csrf import OriginGuard
from daemon.web.http import App, Router
from tests import wsgi

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


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


# The desk every test configures: two technicians, Christmas Eve closed, a 30-day horizon.
TECHNICIANS = {"ana": "Ana Souza", "bruno": "Bruno Lima"}
TABLES: dict[str, dict[str, object]] = {
    "desk": {"name": "Suporte Técnico", "closed_dates": ["2026-12-24"]},
    "booking": {"horizon": "30d"},
    "store": {"path": "state/expediente.db"},
}
# Nothing listens on port 9 (discard): an in-process desk syncs calendars of its own, or none.
UNREACHABLE = "http://127.0.0.1:9"


class CalDAVLogin(Protocol):
    """A CalDAV calendar and the account that reads it (``tests.servers.CalendarHandle``)."""

    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


def write_config(
    folder: Path,
    calendars: Mapping[str, CalDAVLogin | Mapping[str, str]] | None = None,
    *,
    port: int | None = None,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    technicians: Mapping[str, Mapping[str, object]] | None = None,
    tail: str = "",
) -> Path:
    """Write the test desk's ``expediente.toml`` and the secret files it names into
    ``folder``; returns the file's path.

    ``calendars`` puts a technician's calendar on a real CalDAV server, or replaces its
    ``[technicians.calendar]`` table (a Google calendar); the others stay
    :data:`UNREACHABLE`. ``port`` is where the daemon listens and its public URL (8080 and
    the default ``listen`` if not given). ``settings`` adds or overrides keys of top-level
    tables, ``technicians`` keys of a technician's table; ``tail`` is TOML appended as it
    is (``[smtp]``, ``[[webhooks]]``).
    """
    password = "password"
    tables = {name: dict(keys) for name, keys in TABLES.items()}
    tables["server"] = {"public_url": f"http://127.0.0.1:{port or 8080}"}
    if port is not None:
        tables["server"]["listen"] = f"127.0.0.1:{port}"
    for name, keys in (settings or {}).items():
        tables.setdefault(name, {}).update(keys)
    text = "".join(_table(f"[{name}]", keys) for name, keys in tables.items())
    for tech, full_name in TECHNICIANS.items():
        calendar = (calendars or {}).get(tech)
        if calendar is None:
            table: Mapping[str, object] = _caldav(f"{UNREACHABLE}/{tech}/work/", tech)
        elif isinstance(calendar, Mapping):
            table = calendar
        else:
            table, password = _caldav(calendar.url, calendar.username), calendar.password
        own = {"id": tech, "name": full_name, **(technicians or {}).get(tech, {})}
        text += _table("[[technicians]]", own) + _table("[technicians.calendar]", table)
    (folder / "secrets").mkdir(parents=True, exist_ok=True)
    (folder / "state").mkdir(exist_ok=True)
    (folder / "secrets" / "caldav").write_text(password + "\n")
    (folder / "secrets" / "admin-token").write_text(ADMIN_TOKEN + "\n")
    (folder / "secrets" / "signing-key").write_text("signing-key-for-tests-0123456789\n")
    path = folder / "expediente.toml"
    path.write_text(text + tail)
    return path


def _caldav(url: str, username: str) -> dict[str, str]:
    return {"kind": "caldav", "url": url, "username": username, "password_file": "secrets/caldav"}


def _table(header: str, keys: Mapping[str, object]) -> str:
    return f"\n{header}\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items())


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def smtp_section(port: int, **extra: str) -> str:
    """An ``[smtp]`` table's keys for a test server on 127.0.0.1 (no TLS, 5 s timeout)."""
    lines = {
        "host": "127.0.0.1",
        "port": str(port),
        "security": "none",
        "from_address": "agenda@example.com",
        "from_name": "Suporte Técnico",
        "timeout": "5s",
    }
    lines.update(extra)
    return "\n".join(
        f"{key} = {value}" if key == "port" else f'{key} = "{value}"'
        for key, value in lines.items()
    )


def hook_section(url: str, events: list[str] | None = None, secret: bool | str = True) -> str:
    """A ``[[webhooks]]`` table; ``secret``: the key file (``True``: the test key's)."""
    text = f'\n[[webhooks]]\nurl = "{url}"\ntimeout = "5s"\n'
    if events is not None:
        text += f"events = {json.dumps(events)}\n"
    if secret:
        text += f'secret_file = "{"secrets/webhook" if secret is True else secret}"\n'
    return text


# The test desk's WhatsApp Business number and its secrets (``whatsapp_section``).
WHATSAPP_PHONE_ID = "123456789012345"
WHATSAPP_TOKEN = "EAAG-token-for-tests-0123456789"
WHATSAPP_APP_SECRET = "app-secret-for-tests-0123456789"
WHATSAPP_VERIFY = "verify-token-for-tests-0123456789"


def whatsapp_section(folder: Path, endpoint: str = f"{UNREACHABLE}/v21.0/") -> str:
    """A ``[whatsapp]`` table for the Cloud API at ``endpoint``, its secret files written
    into ``folder``'s ``secrets`` (call after :func:`write_config`)."""
    for name, value in (
        ("token", WHATSAPP_TOKEN),
        ("app-secret", WHATSAPP_APP_SECRET),
        ("verify", WHATSAPP_VERIFY),
    ):
        (folder / "secrets" / f"whatsapp-{name}").write_text(value + "\n")
    return (
        f'\n[whatsapp]\nphone_number_id = "{WHATSAPP_PHONE_ID}"\n'
        'access_token_file = "secrets/whatsapp-token"\n'
        'app_secret_file = "secrets/whatsapp-app-secret"\n'
        'verify_token_file = "secrets/whatsapp-verify"\n'
        f'api_endpoint = "{endpoint}"\ntimeout = "5s"\n'
    )


def make_desk(
    folder: Path,
    now: datetime,
    *,
    synced: bool = True,
    whatsapp: bool = False,
    refresher: Refresher | None = None,
) -> Desk:
    """A desk in this process; ``refresher``: its caches rebuild on it, as the daemon's do."""
    path = write_config(folder)
    if whatsapp:
        path.write_text(path.read_text() + whatsapp_section(folder))
    config = load_config(path)
    store = Store(config.store.path)
    clock = FixedClock(now)
    service = Service(config, store, clock, refresher=refresher)
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


def record_syncs(monkeypatch: pytest.MonkeyPatch, adapter: Calendar) -> list[SyncResult]:
    """Every result ``adapter``'s sync hands the daemon from now on, in order: what it
    read and what it left unread."""
    results: list[SyncResult] = []
    sync = adapter.sync

    def recorded(*args: Any) -> SyncResult:
        results.append(sync(*args))
        return results[-1]

    monkeypatch.setattr(adapter, "sync", recorded)
    return results
