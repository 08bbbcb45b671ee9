"""Benchmark: syncing one large calendar from a real Radicale through the CalDAV adapter.

One technician's calendar holds ``--events`` objects (5,000), ``--recurring`` of them (200)
weekly series, some with EXDATEs and moved occurrences (RECURRENCE-ID overrides in the same
object), all in America/Sao_Paulo with the VTIMEZONE clients write. The calendar is filled
by writing the ``.ics`` files straight into Radicale's storage folder (its storage is one
plain file per object), which takes a second where 5,000 validated PUTs would take minutes;
the first sync after that, when Radicale builds its own cache of the files, is timed apart
as "cold" and the figures below are for a server that has seen the files.

Measured through :class:`connectors.caldav.CalDAVCalendar`, as the daemon calls it:

* full: a sync with no state (the first sync of a calendar, or after a lost token);
* idle: an incremental sync when nothing changed (what every sync interval costs);
* change: an incremental sync after one event was edited by a separate client playing the
  technician's calendar app (one PUT, not timed).

For each: median wall time, HTTP requests, and bytes. Bytes are counted twice: the
adapter's ``last_transfer`` counts bodies after decompression (request bodies sent, response
bodies received); a byte-counting TCP forwarder between the adapter and Radicale counts what
crossed the socket (headers, gzip-compressed bodies, framing). All traffic, and so all the
timings, go through that forwarder. Targets are printed as PASS/FAIL; nothing is asserted.

Run: ``.venv/bin/python bench/sync.py [--events 5000] [--recurring 200] [--quick]``.
Network: 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

# tests.servers is not an installed package: it is found from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.base import SyncResult
from connectors.caldav import CalDAVCalendar, TransferStats
from rules.intervals import Interval
from tests.servers import CalendarHandle
from tests.servers.radicale import RadicaleServer
from tests.servers.xandikos import XandikosServer

TZ = ZoneInfo("America/Sao_Paulo")
TZID = "America/Sao_Paulo"
FIRST = date(2027, 3, 1)  # the sync window: 60 days from a Monday
DAYS = 60
HISTORY_START = date(2026, 9, 1)  # a calendar kept for a while: most events are past
HISTORY_END = date(2027, 6, 30)
STAMP = "20260801T120000Z"

FULL_RUNS = 3
INCREMENTAL_RUNS = 7
TARGET_CHANGE_RATIO = 0.05
IDLE_RECEIVED_LIMIT = 2048  # bytes: a multistatus with a token and no response element

# What Thunderbird and Apple Calendar send for São Paulo since Brazil dropped DST in 2019.
VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    f"TZID:{TZID}",
    f"X-LIC-LOCATION:{TZID}",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0300",
    "TZOFFSETTO:-0300",
    "TZNAME:-03",
    "DTSTART:19700101T000000",
    "END:STANDARD",
    "END:VTIMEZONE",
)

CLIENTS = ("Padaria Estrela", "Contabilidade Souza", "Clínica Bem-Estar", "Loja Horizonte")
PROBLEMS = (
    "Impressora fiscal não imprime após atualização do Windows.",
    "E-mail não sincroniza no celular; senha trocada ontem.",
    "Lentidão no sistema de vendas a partir das 10h, todos os caixas.",
    "Certificado digital A1 vencido, precisa reinstalar no navegador.",
)


# --------------------------------------------------------------------------- the calendar


def fold(line: str) -> list[str]:
    """RFC 5545 §3.1 folding at 75 octets, never inside a UTF-8 character."""
    out: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode())
        if size + width > (75 if not out else 74):
            out.append(current)
            current, size = "", 0
        current += char
        size += width
    out.append(current)
    return [out[0], *(" " + part for part in out[1:])]


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def wall(value: datetime) -> str:
    return f"{value:%Y%m%dT%H%M%S}"


def vcalendar(*events: list[str]) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN",
    ]
    lines += VTIMEZONE
    for event in events:
        lines += event
    lines.append("END:VCALENDAR")
    return ("\r\n".join(x for line in lines for x in fold(line)) + "\r\n").encode()


def vevent(
    uid: str, start: datetime, end: datetime, rng: random.Random, *extra: str, sequence: int = 0
) -> list[str]:
    """A timed event as a technician's client writes it: text, organizer, alarm and all."""
    client = rng.choice(CLIENTS)
    description = (
        f"Responsável: Maria {rng.randrange(100)}\nTelefone: (11) 9{rng.randrange(10**8):08d}\n"
        f"Ferramenta: AnyDesk {rng.randrange(10**9)}\nProblema: {rng.choice(PROBLEMS)}\n"
        f"Check-in: https://agenda.example.com.br/c/{uid[:12]}"
    )
    lines = [
        "BEGIN:VEVENT",
        f"CREATED:{STAMP}",
        f"LAST-MODIFIED:{STAMP}",
        f"DTSTAMP:{STAMP}",
        f"UID:{uid}",
        f"SUMMARY:{escape(client)} — Atendimento remoto",
        "STATUS:CONFIRMED",
        "ORGANIZER;CN=Ana Técnica:mailto:ana@example.com.br",
        f"ATTENDEE;CN={escape(client)};PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:contato@example.com",
        f"DTSTART;TZID={TZID}:{wall(start)}",
        f"DTEND;TZID={TZID}:{wall(end)}",
        *extra,
        f"SEQUENCE:{sequence}",
        f"DESCRIPTION:{escape(description)}",
        f"LOCATION:{escape(client)}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER;VALUE=DURATION:-PT10M",
        "DESCRIPTION:Lembrete",
        "END:VALARM",
        "END:VEVENT",
    ]
    return lines


def single_event(n: int, rng: random.Random) -> tuple[str, bytes]:
    uid = f"single-{n:05d}-{rng.randrange(16**8):08x}"
    day = HISTORY_START + timedelta(days=rng.randrange((HISTORY_END - HISTORY_START).days))
    if n % 40 == 0:  # an all-day event now and then (vacation, holiday, training)
        days = rng.choice((1, 1, 2, 5))
        lines = [
            "BEGIN:VEVENT",
            f"DTSTAMP:{STAMP}",
            f"UID:{uid}",
            "SUMMARY:Folga",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=days):%Y%m%d}",
            "TRANSP:TRANSPARENT" if n % 80 == 0 else "TRANSP:OPAQUE",
            "END:VEVENT",
        ]
        return uid, vcalendar(lines)
    start = datetime(
        day.year, day.month, day.day, rng.randrange(7, 18), rng.choice((0, 15, 30, 45))
    )
    length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
    return uid, vcalendar(vevent(uid, start, start + length, rng))


def recurring_event(n: int, rng: random.Random) -> tuple[str, bytes]:
    """A weekly series; every 4th has EXDATEs, every 5th a moved occurrence."""
    uid = f"weekly-{n:04d}-{rng.randrange(16**8):08x}"
    day = FIRST - timedelta(days=7 * rng.randrange(1, 30) + rng.randrange(7))
    start = datetime(day.year, day.month, day.day, rng.randrange(7, 17), rng.choice((0, 30)))
    end = start + timedelta(minutes=rng.choice((30, 60)))
    rule = "RRULE:FREQ=WEEKLY"
    if n % 2:
        until = FIRST + timedelta(days=rng.randrange(14, 120))
        rule += f";UNTIL={until:%Y%m%d}T235959Z"
    in_window = [
        start + timedelta(weeks=k)
        for k in range(60)
        if start + timedelta(weeks=k) >= datetime(FIRST.year, FIRST.month, FIRST.day)
    ]
    extra = [rule]
    if n % 4 == 0:
        skipped = in_window[1 : 1 + rng.choice((1, 2))]
        extra.append(f"EXDATE;TZID={TZID}:" + ",".join(wall(x) for x in skipped))
    events = [vevent(uid, start, end, rng, *extra)]
    if n % 5 == 0:
        original = in_window[0]
        moved = original + timedelta(days=1, hours=1)
        events.append(
            vevent(
                uid,
                moved,
                moved + (end - start),
                rng,
                f"RECURRENCE-ID;TZID={TZID}:{wall(original)}",
                sequence=1,
            )
        )
    return uid, vcalendar(*events)


def fill(
    write: Callable[[str, bytes], object], events: int, recurring: int, rng: random.Random
) -> tuple[list[str], int]:
    """Store the objects with ``write(name, data)``; (names of single events, bytes written)."""
    written = 0
    singles: list[str] = []
    for n in range(events - recurring):
        uid, data = single_event(n, rng)
        write(f"{uid}.ics", data)
        singles.append(f"{uid}.ics")
        written += len(data)
    for n in range(recurring):
        uid, data = recurring_event(n, rng)
        write(f"{uid}.ics", data)
        written += len(data)
    return singles, written


def edited(name: str, version: int, rng: random.Random) -> bytes:
    """The technician's app moves the event to the window and saves it (a new SEQUENCE)."""
    uid = name.removesuffix(".ics")
    start = datetime(FIRST.year, FIRST.month, FIRST.day, 9) + timedelta(
        days=version, minutes=30 * version
    )
    return vcalendar(vevent(uid, start, start + timedelta(hours=1), rng, sequence=version))


# --------------------------------------------------------------------------- measuring


class CountingForwarder:
    """A TCP forwarder on 127.0.0.1 that counts the bytes crossing it in each direction.

    The adapter's own statistics see bodies after decompression and no headers; this sees
    what goes over the connection, which is what a slow or metered link pays for.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = 0  # client → server
        self.received = 0  # server → client
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for sock in (client, upstream):
                # Without it, small answers wait for the peer's delayed ACK (~40 ms).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                with self._lock:
                    if outbound:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):  # the other side may have closed it already
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@dataclass
class Run:
    ms: float
    cpu_ms: float  # this process only: the adapter, plus the forwarder's threads
    adapter: TransferStats
    wire_sent: int
    wire_received: int
    result: SyncResult
    bodies: bytes  # response bodies as the adapter saw them (decompressed)


@dataclass
class Phase:
    name: str
    runs: list[Run]

    @property
    def ms(self) -> float:
        return statistics.median(r.ms for r in self.runs)

    def _median(self, value: Callable[[Run], int]) -> int:
        return int(statistics.median(value(r) for r in self.runs))

    @property
    def cpu_ms(self) -> float:
        return statistics.median(r.cpu_ms for r in self.runs)

    @property
    def requests(self) -> int:
        return self._median(lambda r: r.adapter.requests)

    @property
    def sent(self) -> int:
        return self._median(lambda r: r.adapter.bytes_sent)

    @property
    def received(self) -> int:
        return self._median(lambda r: r.adapter.bytes_received)

    @property
    def wire_sent(self) -> int:
        return self._median(lambda r: r.wire_sent)

    @property
    def wire_received(self) -> int:
        return self._median(lambda r: r.wire_received)

    def line(self) -> str:
        return (
            f"{self.name:<7} {self.ms:>9.1f} ms (client CPU {self.cpu_ms:>8.1f} ms)  {self.requests:>4} req  "
            f"body {self.sent:>9,} B sent {self.received:>11,} B received  "
            f"wire {self.wire_sent:>9,} B sent {self.wire_received:>10,} B received  "
            f"(median of {len(self.runs)})"
        )


class Meter:
    """Times one adapter call and collects its traffic at both levels."""

    def __init__(self, calendar: CalDAVCalendar, forwarder: CountingForwarder) -> None:
        self.calendar = calendar
        self.forwarder = forwarder
        self._bodies: list[bytes] = []
        # The adapter's session is private; a benchmark may look at what it receives.
        calendar._client.session.hooks["response"].append(self._keep_body)

    def _keep_body(self, response: Any, **_: Any) -> Any:
        self._bodies.append(bytes(getattr(response, "content", b"") or b""))
        return response

    @contextmanager
    def _capture(self) -> Iterator[list[bytes]]:
        self._bodies = []
        yield self._bodies

    def sync(self, state: str | None, window: Interval) -> Run:
        wire_before = self.forwarder.totals()
        with self._capture() as bodies:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = self.calendar.sync(state, window)
            ms = (time.perf_counter() - started) * 1000
            cpu_ms = (time.process_time() - cpu_started) * 1000
        wire_after = self.forwarder.totals()
        return Run(
            ms,
            cpu_ms,
            self.calendar.last_transfer.copy(),
            wire_after[0] - wire_before[0],
            wire_after[1] - wire_before[1],
            result,
            b"".join(bodies),
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("inf")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="objects in the calendar")
    parser.add_argument("--recurring", type=int, default=200, help="of which weekly series")
    parser.add_argument("--quick", action="store_true", help="500 events, 20 recurring")
    parser.add_argument(
        "--server",
        choices=("radicale", "xandikos"),
        default="radicale",
        help="the CalDAV server to measure against (radicale)",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.recurring = 500, 20
    if not 0 <= args.recurring <= args.events or args.events - args.recurring < 1:
        parser.error("need at least one single event and 0 <= --recurring <= --events")
    rng = random.Random(20270301)
    window = Interval(
        datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=TZ),
        datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=TZ) + timedelta(days=DAYS),
    )

    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp,
        (RadicaleServer if args.server == "radicale" else XandikosServer)(Path(tmp)) as server,
    ):
        handle: CalendarHandle = server.new_calendar("bench")
        started = time.perf_counter()
        folder = handle.disk_folder
        if folder is not None:  # Radicale: plain files, written behind its back
            singles, written = fill(
                lambda name, data: (folder / name).write_bytes(data),
                args.events,
                args.recurring,
                rng,
            )
            how = "by writing .ics files into Radicale's storage folder"
        else:  # Xandikos keeps a git repository: one PUT per object
            singles, written = fill(handle.put_raw, args.events, args.recurring, rng)
            how = "by one PUT per object"
        fill_ms = (time.perf_counter() - started) * 1000
        forwarder = CountingForwarder(server.port)
        # The forwarder stands in for Radicale's host and port.
        url = f"http://127.0.0.1:{forwarder.port}{urlsplit(handle.url).path}"
        calendar = CalDAVCalendar(url, server.username, server.password, TZ)
        meter = Meter(calendar, forwarder)
        try:
            cold = meter.sync(None, window)
            full = Phase("full", [meter.sync(None, window) for _ in range(FULL_RUNS)])
            state = full.runs[-1].result.state
            idle = Phase("idle", [meter.sync(state, window) for _ in range(INCREMENTAL_RUNS)])
            change_runs: list[Run] = []
            changed_names: list[str] = []
            for version in range(1, INCREMENTAL_RUNS + 1):
                name = rng.choice(singles)
                handle.put_raw(name, edited(name, version, rng))  # the technician's app
                run = meter.sync(state, window)
                state = run.result.state
                change_runs.append(run)
                changed_names.append(name)
            change = Phase("change", change_runs)
        finally:
            calendar.close()
            forwarder.close()

    blocks = sum(len(c.blocks) for c in full.runs[-1].result.changes)
    objects = len(full.runs[-1].result.changes)
    print(
        f"{server.kind.capitalize()}, one calendar: {args.events:,} objects ({args.recurring} weekly series, "
        f"{(args.recurring + 3) // 4} with EXDATE, {(args.recurring + 4) // 5} with a moved occurrence), "
        f"{written / 2**20:.1f} MB of iCalendar"
    )
    print(f"filled {how}: {fill_ms:.0f} ms; window {window.start:%Y-%m-%d} + {DAYS} days")
    print(
        f"cold first sync (the server builds its caches): {cold.ms:.0f} ms, "
        f"{cold.adapter.requests} requests"
    )
    print(f"full sync result: {objects:,} objects, {blocks:,} busy blocks in the window")
    print()
    for phase in (full, idle, change):
        print(phase.line())
    print()

    def total(p: Phase) -> int:
        return p.sent + p.received

    def wire(p: Phase) -> int:
        return p.wire_sent + p.wire_received

    time_ratio = ratio(change.ms, full.ms)
    body_ratio = ratio(total(change), total(full))
    wire_ratio = ratio(wire(change), wire(full))
    idle_ratio = ratio(idle.ms, full.ms)
    print(
        f"change/full: time {time_ratio:.2%}, body bytes {body_ratio:.2%}, wire bytes {wire_ratio:.2%}"
    )
    print(f"idle/full:   time {idle_ratio:.2%}, wire bytes {ratio(wire(idle), wire(full)):.2%}")
    print(
        f"change/full, client CPU only (the server's share left out): "
        f"{ratio(change.cpu_ms, full.cpu_ms):.2%}"
    )
    print()

    idle_requests = max(r.adapter.requests for r in idle.runs)
    idle_changes = max(len(r.result.changes) for r in idle.runs)
    idle_received = max(r.adapter.bytes_received for r in idle.runs)
    idle_calendar_data = any(b"VEVENT" in r.bodies or b"VCALENDAR" in r.bodies for r in idle.runs)
    changes_seen = [[c.href.rsplit("/", 1)[-1] for c in r.result.changes] for r in change.runs]
    change_exact = all(
        seen == [name] for seen, name in zip(changes_seen, changed_names, strict=True)
    )
    print(
        f"{verdict(idle_requests == 1)}  idle sync: 1 request per calendar "
        f"(max {idle_requests} over {len(idle.runs)} runs)"
    )
    print(
        f"{verdict(not idle_calendar_data and idle_received <= IDLE_RECEIVED_LIMIT and idle_changes == 0)}"
        f"  idle sync: no event bodies (max {idle_received} B received, "
        f"VEVENT data {'present' if idle_calendar_data else 'absent'}, {idle_changes} changes)"
    )
    print(
        f"{verdict(change_exact)}  change sync: exactly the edited object reported "
        f"({sum(len(s) for s in changes_seen)} changes over {len(change.runs)} edits)"
    )
    print(
        f"{verdict(time_ratio <= TARGET_CHANGE_RATIO)}  one change ≤ 5 % of a full sync in time "
        f"({change.ms:.1f} / {full.ms:.1f} ms = {time_ratio:.2%})"
    )
    print(
        f"{verdict(body_ratio <= TARGET_CHANGE_RATIO and wire_ratio <= TARGET_CHANGE_RATIO)}"
        f"  one change ≤ 5 % of a full sync in bytes (body {body_ratio:.2%}, wire {wire_ratio:.2%})"
    )


if __name__ == "__main__":
    main()
