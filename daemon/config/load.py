"""Loading: a file in, a :class:`~daemon.config.model.Config` or every problem out.

The schema converts each key on its own; what involves several keys is checked here
afterwards (every day closed, a date both closed and overridden, ``stale_after`` not
longer than ``interval``, a session type that could never be booked, a session calendar
shared by two technicians), and only when nothing is wrong is the typed configuration
assembled, with the rules' :class:`~rules.model.Policy` and the rules text. Paths in the
file are relative to the file's own folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from daemon.config.holidays import HolidayCalendar, HolidaySource, holiday_language
from daemon.config.kinds import BAD, Context
from daemon.config.model import (
    BookingConfig,
    CalendarConfig,
    Config,
    ConsoleConfig,
    DeskConfig,
    LogConfig,
    NotificationsConfig,
    ServerConfig,
    SmtpConfig,
    StoreConfig,
    SyncConfig,
    TechnicianConfig,
    WebhookConfig,
    from_table,
)
from daemon.config.problems import ConfigError, ConfigProblem, KeyPath, render_key
from daemon.config.rules_text import default_rules_text, rules_version
from daemon.config.schema import (
    BOOKING,
    CALENDAR,
    CONSOLE,
    DEFAULT_LABELS,
    DESK,
    LOG,
    NOTIFICATIONS,
    SCHEMA,
    SERVER,
    SMTP,
    STORE,
    SYNC,
    TECHNICIAN,
    WEBHOOK,
    WHATSAPP,
    WHATSAPP_TEMPLATES,
)
from daemon.config.whatsapp import WhatsAppConfig, WhatsAppTemplates
from daemon.i18n import DEFAULT_LANGUAGE, LANGUAGES, gettext
from rules.durations import format_duration
from rules.model import (
    WEEKDAYS,
    HolidayLookup,
    NoHolidays,
    Policy,
    SessionType,
    Technician,
    remote_tool,
)


def load_config(
    path: str | os.PathLike[str],
    *,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate the file at ``path``.

    Raises :class:`ConfigError` listing every problem. With ``check_secrets=False`` the
    secret files are not read (checking a configuration on another machine); each
    :class:`Secret` then reads its file on first use.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise ConfigError(
            [ConfigProblem(str(file), "", "", f"cannot read the file: {error.strerror}")]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            [ConfigProblem(str(file), "", "UTF-8 text", "bytes that are not UTF-8")]
        ) from None
    return parse_config(text, path=file, check_secrets=check_secrets, environ=environ)


def _session_label(label: str, language: str) -> str:
    """A default session type's label the admin kept, in the desk's language; a label they
    wrote themselves, as written."""
    for msgid in DEFAULT_LABELS.values():
        if label == gettext(DEFAULT_LANGUAGE)(msgid):
            return gettext(language)(msgid)
    return label


def parse_config(
    text: str,
    *,
    path: Path,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate configuration ``text`` as if read from ``path`` (relative paths start there)."""
    ctx = Context(
        file=str(path),
        base=path.resolve().parent,
        environ=os.environ if environ is None else environ,
        check_secrets=check_secrets,
    )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            [
                ConfigProblem(
                    str(path),
                    "",
                    "valid TOML",
                    f"a syntax error: {error}",
                    'text values need double quotes, e.g. slot_step = "30m"',
                )
            ]
        ) from None
    root = SCHEMA.convert(document, ctx, ())
    config = _build(root, ctx, path.resolve())
    if ctx.problems or config is None:
        raise ConfigError(ctx.problems)
    return config


def _ok(*values: object) -> bool:
    return all(value is not BAD for value in values)


def _section(root: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = root.get(name)
    return value if isinstance(value, dict) else {}


def _calendar_id(technician: str, role: str, kind: str, address: str) -> str:
    digest = hashlib.sha256(f"{kind}\n{address}".encode()).hexdigest()[:8]
    return f"{technician}:{role}:{digest}"


def _build(root: Mapping[str, Any], ctx: Context, path: Path) -> Config | None:
    """Cross-key checks, then the typed configuration (``None`` when anything is wrong)."""
    desk = _section(root, "desk")
    hours = _section(root, "hours")
    overrides = _section(root, "overrides")
    booking = _section(root, "booking")
    sync = _section(root, "sync")
    types = root.get("session_types")
    techs = root.get("technicians")

    weekly = {n: hours.get(day, BAD) for n, day in enumerate(WEEKDAYS)}
    everything_closed = not any(weekly.values()) and not any(overrides.values())
    if hours and _ok(*weekly.values(), *overrides.values()) and everything_closed:
        ctx.report(("hours",), "at least one open range", "every day closed")
    closed = desk.get("closed_dates", BAD)
    if _ok(closed) and isinstance(closed, dict):
        for day in overrides:
            if day in closed:
                ctx.report(
                    ("overrides", day.isoformat()) if isinstance(day, date) else ("overrides",),
                    "a date that is not also in [desk] closed_dates",
                    "both",
                    "a closed date wins; remove one of them",
                )
    if desk.get("rules_text") and desk.get("rules_file"):
        ctx.report(("desk", "rules_file"), "either rules_text or rules_file", "both", "keep one")
    interval, stale_after = sync.get("interval", BAD), sync.get("stale_after", BAD)
    if _ok(interval, stale_after) and stale_after <= interval:
        ctx.report(
            ("sync", "stale_after"),
            f"longer than [sync] interval ({format_duration(interval)})",
            format_duration(stale_after),
            "a calendar would count as stale between two normal syncs",
        )

    console = _section(root, "console")
    idle, poll = console.get("idle_timeout", BAD), console.get("poll_interval", BAD)
    if _ok(idle, poll) and idle <= poll:
        ctx.report(
            ("console", "idle_timeout"),
            f"longer than [console] poll_interval ({format_duration(poll)})",
            format_duration(idle),
            "an open console would be logged out between two of its own polls",
        )

    if isinstance(types, list):
        _check_session_types(types, booking, weekly, overrides, ctx)
    if isinstance(techs, list):
        _check_technicians(techs, ctx)

    if ctx.problems:
        return None
    return _assemble(root, ctx, path)


def _check_session_types(
    types: list[Any],
    booking: Mapping[str, Any],
    weekly: Mapping[int, Any],
    overrides: Mapping[Any, Any],
    ctx: Context,
) -> None:
    horizon = booking.get("horizon", BAD)
    ranges = [r for day in (*weekly.values(), *overrides.values()) if _ok(day) for r in day]
    longest = max(
        (datetime.combine(date.min, r.end) - datetime.combine(date.min, r.start) for r in ranges),
        default=None,
    )
    names: set[str] = set()
    for n, entry in enumerate(types):
        if not isinstance(entry, dict):
            continue
        name = entry.get("name", BAD)
        if _ok(name):
            if name in names:
                ctx.report(("session_types", n, "name"), "a name used once", f'"{name}" again')
            names.add(name)
        notice = entry.get("min_notice", BAD)
        if _ok(notice, horizon) and notice > horizon:
            ctx.report(
                ("session_types", n, "min_notice"),
                f"a notice no longer than [booking] horizon ({format_duration(horizon)})",
                format_duration(notice),
                "such a session could never be booked",
            )
        duration = entry.get("duration", BAD)
        if _ok(duration) and longest is not None and duration > longest:
            ctx.report(
                ("session_types", n, "duration"),
                f"a duration that fits in one opening range (the longest is "
                f"{format_duration(longest)})",
                format_duration(duration),
                "such a session could never be booked",
            )


def _check_technicians(techs: list[Any], ctx: Context) -> None:
    ids: set[str] = set()
    session_calendars: dict[tuple[str, str], int] = {}
    for n, tech in enumerate(techs):
        if not isinstance(tech, dict):
            continue
        tech_id = tech.get("id", BAD)
        if _ok(tech_id):
            if tech_id in ids:
                ctx.report(("technicians", n, "id"), "an id used once", f'"{tech_id}" again')
            ids.add(tech_id)
        seen: set[tuple[str, str]] = set()
        busy = tech.get("busy")
        entries: list[tuple[KeyPath, Any]] = [
            (("technicians", n, "calendar"), tech.get("calendar"))
        ]
        if isinstance(busy, list):
            entries += [(("technicians", n, "busy", b), cal) for b, cal in enumerate(busy)]
        for where, calendar in entries:
            if not isinstance(calendar, dict) or not _ok(*calendar.values()):
                continue
            if calendar.get("password_file") is not None and not calendar.get("username"):
                ctx.report((*where, "username"), "a user name to go with password_file", "nothing")
            address = calendar.get("url") or calendar.get("calendar_id")
            if not isinstance(address, str):
                continue
            ident = (calendar["kind"], address)
            if ident in seen:
                ctx.report(where, "each calendar once per technician", f"{address} again")
            seen.add(ident)
            if where[2] == "calendar":
                if ident in session_calendars:
                    ctx.report(
                        (*where, "url" if calendar["kind"] == "caldav" else "calendar_id"),
                        "a session calendar of this technician alone",
                        f"the session calendar of technicians[{session_calendars[ident] + 1}]",
                        "sessions in a shared calendar would block every technician; list "
                        "a shared calendar under [[technicians.busy]] instead",
                    )
                else:
                    session_calendars[ident] = n


def _calendar(
    raw: Mapping[str, Any], tech: str, role: Literal["sessions", "busy"], key: KeyPath
) -> CalendarConfig:
    address = raw.get("url") or raw.get("calendar_id") or ""
    return from_table(
        CalendarConfig,
        CALENDAR,
        raw,
        id=_calendar_id(tech, role, raw["kind"], address),
        technician=tech,
        role=role,
        key=render_key(key),
    )


def _assemble(root: Mapping[str, Any], ctx: Context, path: Path) -> Config:
    desk = root["desk"]
    booking = from_table(BookingConfig, BOOKING, root["booking"])
    language = desk["language"]
    source: HolidaySource | None = desk["holidays"]
    lookup: HolidayLookup = NoHolidays()
    if source is not None:
        lookup = HolidayCalendar(
            source.country,
            source.subdivision,
            source.categories,
            language=holiday_language(source, language),
        )
    technicians = tuple(
        from_table(
            TechnicianConfig,
            TECHNICIAN,
            raw,
            calendar=_calendar(
                raw["calendar"], raw["id"], "sessions", ("technicians", n, "calendar")
            ),
            busy=tuple(
                _calendar(cal, raw["id"], "busy", ("technicians", n, "busy", b))
                for b, cal in enumerate(raw["busy"])
            ),
        )
        for n, raw in enumerate(root["technicians"])
    )
    policy = Policy(
        timezone=desk["timezone"],
        weekly={n: root["hours"][day] for n, day in enumerate(WEEKDAYS)},
        session_types={
            t["name"]: SessionType(
                t["name"],
                _session_label(t["label"], desk["language"]),
                t["duration"],
                t["min_notice"],
                t["description"],
            )
            for t in root["session_types"]
        },
        technicians=tuple(Technician(t.id, t.name) for t in technicians),
        holidays=lookup,
        closed_dates=dict(desk["closed_dates"]),
        overrides=dict(root["overrides"]),
        slot_step=booking.slot_step,
        buffer=booking.buffer,
        horizon=booking.horizon,
        grace=booking.grace,
        checkin_early=booking.checkin_early,
        remote_tools=tuple(remote_tool(name) for name in booking.remote_tools),
        required_fields=booking.required_fields,
    )
    if desk["rules_file"] is not None:
        texts = {language: desk["rules_file"].read_text(encoding="utf-8").strip()}
    elif desk["rules_text"] is not None:
        texts = {language: desk["rules_text"]}
    else:
        texts = {
            lang: default_rules_text(
                policy,
                language=lang,
                desk_name=desk["name"],
                phone=desk["phone"],
                whatsapp=desk["whatsapp"],
            )
            for lang in LANGUAGES
        }
    version = rules_version(texts)
    policy = dataclasses.replace(policy, rules_version=version)
    host, port = root["server"]["listen"]
    smtp = root["smtp"]
    return Config(
        path=path,
        policy=policy,
        desk=from_table(
            DeskConfig,
            DESK,
            desk,
            consumed=("rules_file",),
            closed_dates=policy.closed_dates,
            rules_text=texts[language],
            rules_texts=texts,
            rules_version=version,
        ),
        booking=booking,
        technicians=technicians,
        server=from_table(
            ServerConfig,
            SERVER,
            root["server"],
            listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            host=host,
            port=port,
        ),
        store=from_table(StoreConfig, STORE, root["store"]),
        sync=from_table(SyncConfig, SYNC, root["sync"]),
        notifications=from_table(NotificationsConfig, NOTIFICATIONS, root["notifications"]),
        smtp=None
        if smtp is None
        else from_table(SmtpConfig, SMTP, smtp, from_name=smtp["from_name"] or desk["name"]),
        webhooks=tuple(from_table(WebhookConfig, WEBHOOK, hook) for hook in root["webhooks"]),
        console=from_table(ConsoleConfig, CONSOLE, root["console"]),
        log=from_table(LogConfig, LOG, root["log"]),
        whatsapp=_whatsapp(root["whatsapp"]),
    )


def _whatsapp(raw: Mapping[str, Any] | None) -> WhatsAppConfig | None:
    if raw is None:
        return None
    templates = from_table(WhatsAppTemplates, WHATSAPP_TEMPLATES, raw["templates"])
    return from_table(WhatsAppConfig, WHATSAPP, raw, templates=templates)
