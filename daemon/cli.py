"""The ``expediente`` command line.

One top-level handler turns user errors into a message on stderr and exit code 2
(usage and configuration), runtime failures into exit code 1, and lets bugs show a
traceback. Output meant for programs (``--json``) goes to stdout alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from daemon import __version__
from daemon.availability import (
    DATE_LIMITS,
    compute_slots,
    date_range_window,
    slots_document,
    supported,
)
from daemon.clock import Clock, SystemClock
from daemon.errors import UserError
from rules.hours import local_date
from rules.intervals import Interval
from rules.model import Policy, Status

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.service import Service


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="expediente",
        description="Scheduling daemon for remote-access support desks.",
    )
    parser.add_argument("--version", action="version", version=f"expediente {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    check = commands.add_parser(
        "check-config", help="validate a configuration file and print the effective policy"
    )
    check.add_argument("path", type=Path)
    check.add_argument(
        "--no-secrets",
        action="store_true",
        help="do not require the secret files (checking a file meant for another machine)",
    )

    slots = commands.add_parser("slots", help="list free slots")
    slots.add_argument("--config", required=True, type=Path)
    slots.add_argument("--from", dest="first", type=_date, help="first day, YYYY-MM-DD (today)")
    slots.add_argument(
        "--to", dest="last", type=_date, help="last day, YYYY-MM-DD (from + 13 days)"
    )
    slots.add_argument("--type", dest="type_name", help="session type (the first one configured)")
    slots.add_argument(
        "--now",
        type=_instant,
        help="pretend it is this instant, ISO 8601 (no offset: the desk's zone); "
        "default: the clock",
    )
    slots.add_argument(
        "--offline", action="store_true", help="contact no calendar: technicians are free"
    )
    slots.add_argument(
        "--busy",
        action="append",
        default=[],
        metavar="TECH=FILE.ics",
        help="read a technician's busy time from an iCalendar file (repeatable)",
    )
    slots.add_argument("--json", action="store_true", help="print the API's JSON document")

    run = commands.add_parser("run", help="run the daemon (the systemd service runs this)")
    run.add_argument("--config", required=True, type=Path)
    run.add_argument(
        "--clock-start",
        type=_instant,
        help="for rehearsals and tests: the clock starts at this instant and runs from there",
    )

    sessions = commands.add_parser("sessions", help="list sessions")
    sessions.add_argument("--config", required=True, type=Path)
    sessions.add_argument(
        "--status",
        action="append",
        choices=[str(s) for s in Status],
        help="only this status (repeatable)",
    )
    sessions.add_argument("--technician", help="only this technician's sessions")
    sessions.add_argument("--from", dest="first", type=_date, help="first day, YYYY-MM-DD")
    sessions.add_argument("--to", dest="last", type=_date, help="last day, YYYY-MM-DD")
    sessions.add_argument(
        "--flagged", action="store_true", help="only sessions waiting for the admin"
    )
    sessions.add_argument("--json", action="store_true", help="one JSON document")

    for name, text in (("check-in", "the client called: mark a session in progress"),
                       ("cancel", "cancel a session")):  # fmt: skip
        command = commands.add_parser(name, help=text)
        command.add_argument("session_id", metavar="ID")
        command.add_argument("--config", required=True, type=Path)
        if name == "cancel":
            command.add_argument(
                "--reason",
                default="",
                help="why, in the client's words: shown in the cancellation mails to the "
                "client and the desk, and kept in the audit log",
            )

    sync = commands.add_parser(
        "sync", help="sync calendars, apply no-shows and deliver the outbox, once"
    )
    sync.add_argument("--config", required=True, type=Path)
    sync.add_argument("--once", action="store_true", required=True, help="one round, then exit")
    sync.add_argument("--full", action="store_true", help="ignore sync tokens: read everything")

    from daemon import cli_staff

    cli_staff.add_parser(commands)
    store = commands.add_parser("store", help="the store itself: move a desk to PostgreSQL")
    store_commands = store.add_subparsers(dest="store_command", metavar="ACTION")
    store_commands.required = True
    copy = store_commands.add_parser(
        "copy", help="copy a desk's SQLite store into the empty PostgreSQL database of --config"
    )
    copy.add_argument("--from", dest="source", required=True, type=Path, metavar="SQLITE_PATH")
    copy.add_argument("--config", required=True, type=Path, help='with [store] kind = "postgresql"')

    demo = commands.add_parser(
        "demo", help="a desk on an embedded CalDAV server, with sample technicians"
    )
    demo.add_argument(
        "--state",
        type=Path,
        default=Path("expediente-demo"),
        help="folder for the demo's data (default: ./expediente-demo)",
    )
    demo.add_argument(
        "--port",
        type=int,
        help="booking page port when the folder is new (8080); later, its configuration's",
    )
    demo.add_argument(
        "--caldav-port",
        type=int,
        help="CalDAV port when the folder is new (5232); later, its configuration's",
    )
    return parser


def _date(text: str) -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None
    if not supported(value):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range ({DATE_LIMITS})")
    return value


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 instant: {text!r} (e.g. 2026-12-01T09:00-03:00)"
        ) from None
    if not supported(value):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range ({DATE_LIMITS})")
    return value


def main(argv: Sequence[str] | None = None, clock: Clock | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return cmd_check_config(args)
        if args.command == "slots":
            return cmd_slots(args, clock or SystemClock())
        if args.command == "run":
            return cmd_run(args, clock)
        if args.command == "sessions":
            return cmd_sessions(args, clock or SystemClock())
        if args.command in ("check-in", "cancel"):
            return cmd_lifecycle(args, clock or SystemClock())
        if args.command == "sync":
            return cmd_sync(args, clock or SystemClock())
        if args.command == "staff":
            from daemon import cli_staff

            return cli_staff.run(args, clock or SystemClock())
        if args.command == "store":
            return cmd_store_copy(args)
        if args.command == "demo":
            from daemon.demo import run_demo

            return run_demo(args.state, port=args.port, caldav_port=args.caldav_port, clock=clock)
    except UserError as error:
        for line in str(error).splitlines() or [""]:
            print(f"expediente: error: {line}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # `expediente slots | head`: the reader left; that is not an error worth a trace.
        sys.stderr.close()
        return 0
    raise AssertionError(f"unhandled command {args.command}")  # argparse guarantees one


def _load(path: Path, *, check_secrets: bool = True) -> Config:
    from daemon.config import load_config

    return load_config(path, check_secrets=check_secrets)


def cmd_check_config(args: argparse.Namespace) -> int:
    from daemon.config import describe

    config = _load(args.path, check_secrets=not args.no_secrets)
    print(describe(config))
    print(f"{args.path}: OK")
    return 0


def cmd_slots(args: argparse.Namespace, clock: Clock) -> int:
    # Offline, no calendar is contacted, so calendar secrets need not exist here.
    config = _load(args.config, check_secrets=not args.offline)
    policy = config.policy
    now = args.now or clock.now()
    if now.tzinfo is None:
        now = now.replace(tzinfo=policy.timezone)
    type_name = args.type_name or next(iter(policy.session_types))
    if type_name not in policy.session_types:
        raise UserError(
            f"unknown session type {type_name!r}; configured: {', '.join(policy.session_types)}"
        )
    first = args.first or now.astimezone(policy.timezone).date()
    last = args.last or first + timedelta(days=13)
    if last < first:
        raise UserError(f"--to {last} is before --from {first}")
    # Busy time is read for the days that can hold a slot (today to the horizon) only:
    # expanding recurrences over a --to centuries away would exhaust the expander.
    reachable = local_date(policy, now + policy.horizon)
    busy_first = max(first, local_date(policy, now))
    window = date_range_window(policy, busy_first, max(busy_first, min(last, reachable)))
    files = _busy_files(args.busy, policy)
    eligible: set[str] | None = None
    if args.offline:
        busy = {tech: _read_busy_file(path, window, policy) for tech, path in files.items()}
    else:
        busy, unreadable = _live_busy(config, window, files)
        if unreadable:
            eligible = {t.id for t in policy.technicians} - unreadable
    for tech, sessions in _booked(config, window).items():
        busy[tech] = [*busy.get(tech, []), *sessions]
    slots = compute_slots(policy, type_name, first, last, now, busy, eligible)
    document = slots_document(policy, type_name, slots)
    if args.json:
        json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(policy, document, first, last))
    return 0


def _booked(config: Config, window: Interval) -> dict[str, list[Interval]]:
    """Sessions booked in the daemon's store, when there is one: the API would not offer
    their times, so neither does ``slots``."""
    from daemon.store import StoreError, open_store

    if config.store.kind == "sqlite" and not config.store.path.exists():
        return {}
    try:
        store = open_store(config.store)
    except StoreError as error:
        print(f"expediente: warning: booked sessions not counted: {error}", file=sys.stderr)
        return {}
    try:
        return {t.id: store.active_session_intervals(t.id, window) for t in config.technicians}
    finally:
        store.close()


def _busy_files(specs: Sequence[str], policy: Policy) -> dict[str, Path]:
    files: dict[str, Path] = {}
    known = [t.id for t in policy.technicians]
    for spec in specs:
        tech, sep, filename = spec.partition("=")
        if not sep or not tech or not filename:
            raise UserError(f"--busy {spec!r}: expected TECH=FILE.ics")
        if tech not in known:
            raise UserError(
                f"--busy {spec!r}: no technician {tech!r} (configured: {', '.join(known)})"
            )
        files[tech] = Path(filename)
    return files


def _read_busy_file(path: Path, window: Interval, policy: Policy) -> list[Interval]:
    from connectors.ical import expand_busy, parse_calendar

    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read busy file {path}: {error.strerror}") from None
    # A file that is not iCalendar at all would leave the technician free all day: that is
    # a mistake in the command, not a calendar with nothing in it.
    cal, problems = parse_calendar(data, calendar=str(path))
    if cal is None:
        reason = problems[0].message if problems else "unreadable"
        raise UserError(f"busy file {path} is not iCalendar: {reason}")
    result = expand_busy(cal, window, policy.timezone, calendar=str(path))
    for problem in (*problems, *result.problems):
        print(f"expediente: warning: {problem}", file=sys.stderr)
    return list(result.intervals)


def _live_busy(
    config: Config, window: Interval, files: dict[str, Path]
) -> tuple[dict[str, list[Interval]], set[str]]:
    """Busy time read from each technician's calendars now; unreadable ones are left out."""
    from connectors.base import ConnectorError
    from daemon.calendars import open_calendar

    busy: dict[str, list[Interval]] = {}
    unreadable: set[str] = set()
    for tech in config.technicians:
        if tech.id in files:
            busy[tech.id] = _read_busy_file(files[tech.id], window, config.policy)
            continue
        intervals: list[Interval] = []
        for calendar_config in (tech.calendar, *tech.busy):
            try:
                calendar = open_calendar(calendar_config, config.policy.timezone)
                result = calendar.sync(None, window)
            except ConnectorError as error:
                print(
                    f"expediente: warning: {tech.id}: {error}; leaving this technician out",
                    file=sys.stderr,
                )
                unreadable.add(tech.id)
                break
            for change in result.changes:
                intervals.extend(change.blocks)  # result.problems: logged by the adapter
        busy[tech.id] = intervals
    return busy, unreadable


def cmd_run(args: argparse.Namespace, clock: Clock | None) -> int:
    from daemon import log as logs
    from daemon.clock import ShiftedClock
    from daemon.loop import Daemon
    from daemon.malloc import cap_arenas

    cap_arenas()  # before any thread starts (daemon/malloc.py)
    config = _load(args.config)
    logs.setup(config.log.level, background=True)
    if args.clock_start is not None:
        start = args.clock_start
        if start.tzinfo is None:
            start = start.replace(tzinfo=config.policy.timezone)
        clock = ShiftedClock(start)
    return Daemon(config, clock=clock).run()


def _service(path: Path, clock: Clock) -> Service:
    """The service on the daemon's store, for admin commands (no calendar is contacted:
    what they change reaches calendars through the outbox the running daemon drains)."""
    from daemon.service import Service
    from daemon.store import open_store

    config = _load(path, check_secrets=False)
    return Service(config, open_store(config.store), clock)


def cmd_sessions(args: argparse.Namespace, clock: Clock) -> int:
    """Every matching session, however many: read from the store a page at a time and
    written as they come, so a desk with years of history neither waits nor sees a
    silently shortened list."""
    from daemon.availability import iso

    service = _service(args.config, clock)
    policy = service.policy
    window = None
    if args.first or args.last:
        first = args.first or date.min
        last = args.last or date.max - timedelta(days=1)
        window = date_range_window(policy, first, last)
    found = service.store.iter_sessions(
        status=[Status(s) for s in args.status] if args.status else None,
        technician_id=args.technician,
        window=window,
        flagged=args.flagged,
    )
    total = 0
    if args.json:
        # One JSON document, written row by row: {"sessions": [...], "total": N}.
        sys.stdout.write('{\n  "sessions": [')
        for s in found:
            total += 1
            row = {
                "id": s.id,
                "status": str(s.status),
                "type": s.type,
                "start": iso(s.start, policy),
                "end": iso(s.end, policy),
                "technician_id": s.technician_id,
                "company": s.company,
                "responsible_name": s.responsible_name,
                "phone": s.phone,
                "needs_attention": s.needs_attention,
            }
            text = json.dumps(row, ensure_ascii=False, indent=2).replace("\n", "\n    ")
            sys.stdout.write(("," if total > 1 else "") + "\n    " + text)
        close = "\n  ]" if total else "]"
        sys.stdout.write(f'{close},\n  "total": {total}\n}}\n')
        return 0
    for s in found:
        total += 1
        start = s.start.astimezone(policy.timezone)
        flag = f"  ! {s.needs_attention}" if s.needs_attention else ""
        print(
            f"{s.id}  {start:%Y-%m-%d %H:%M}  {s.status:<11}  {s.technician_id:<10}  "
            f"{s.company} ({s.responsible_name}){flag}"
        )
    print(f"{total} session(s)")
    return 0


def cmd_lifecycle(args: argparse.Namespace, clock: Clock) -> int:
    from daemon.service import SessionNotFound
    from rules.lifecycle import IllegalTransition, given_reason

    service = _service(args.config, clock)
    try:
        if args.command == "check-in":
            session = service.check_in(args.session_id, actor="admin-cli")
        else:
            try:
                reason = given_reason(args.reason)
            except ValueError as error:
                raise UserError(f"--reason: {error}") from None
            session = service.cancel(args.session_id, actor="admin-cli", reason=reason)
    except SessionNotFound:
        raise UserError(f"no session {args.session_id!r} (see: expediente sessions)") from None
    except IllegalTransition as error:
        print(f"expediente: {args.command} refused: {error}", file=sys.stderr)
        return 1
    print(f"{session.id}: {session.status}")
    return 0


def cmd_sync(args: argparse.Namespace, clock: Clock) -> int:
    from daemon import log as logs
    from daemon.loop import Daemon

    config = _load(args.config)
    logs.setup(config.log.level)
    daemon = Daemon(config, clock=clock)
    try:
        reports = daemon.sync_all(full=args.full)
        changed = daemon.sweep()
        flushed = daemon.flush()
    finally:
        daemon.shutdown()
    for report in reports:
        state = "ok" if report.ok else f"FAILED: {report.error}"
        kind = "full" if report.full else "incremental"
        print(
            f"{report.calendar_id}: {state}"
            + (f" ({kind}, {report.changes} changes)" if report.ok else "")
        )
        for label, ids in (("cancelled", report.cancelled), ("moved", report.moved),
                           ("flagged", report.flagged)):  # fmt: skip
            for session_id in ids:
                print(f"  session {session_id} {label}")
    for session in changed:
        print(f"session {session.id}: {session.status}")
    print(f"outbox: {flushed.delivered} delivered, {flushed.failed} failed")
    return 0 if all(r.ok for r in reports) and not flushed.failed else 1


def cmd_store_copy(args: argparse.Namespace) -> int:
    from daemon.store import StoreError
    from daemon.store.copy import CopyRefused, copy_sqlite_to_postgres
    from daemon.store.postgres import PostgresStore

    config = _load(args.config, check_secrets=False)
    if config.store.kind != "postgresql" or config.store.dsn is None:
        raise UserError(
            f'{args.config}: [store] kind is "{config.store.kind}"; the copy goes into the '
            'PostgreSQL database of a configuration with kind = "postgresql" and dsn_file'
        )
    try:
        target = PostgresStore(config.store.dsn.reveal().strip())
    except StoreError as error:
        raise CopyRefused(str(error)) from None
    try:
        copied = copy_sqlite_to_postgres(args.source, target)
    finally:
        target.close()
    for table, count in copied.rows.items():
        print(f"{table}: {count} rows")
    print(f"copied {args.source} into {target.path}")
    return 0


def render_table(policy: Policy, document: dict[str, Any], first: date, last: date) -> str:
    """Free slots by day for people: start time, and ``×N`` when N technicians are free."""
    from daemon.i18n import SOURCE_LANGUAGE, weekday_names

    session_type = policy.session_types[str(document["type"])]
    slots: list[dict[str, Any]] = document["slots"]
    by_day: dict[date, list[str]] = {}
    for slot in slots:
        start = datetime.fromisoformat(slot["start"])
        count = slot["technicians"]
        by_day.setdefault(start.date(), []).append(
            f"{start:%H:%M}" + (f"×{count}" if count > 1 else "")
        )
    minutes = int(session_type.duration.total_seconds() // 60)
    lines = [
        f"{session_type.label} ({session_type.name}, {minutes} min), "
        f"{first.isoformat()} to {last.isoformat()}, {document['timezone']}"
    ]
    weekdays = weekday_names(SOURCE_LANGUAGE, "abbreviated")  # the CLI speaks English
    day = first
    while day <= last:
        times = by_day.get(day)
        label = f"{weekdays[day.weekday()]} {day.isoformat()}"
        lines.append(f"  {label}  {'  '.join(times) if times else '-'}")
        day += timedelta(days=1)
    lines.append(f"{len(slots)} free slot(s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
