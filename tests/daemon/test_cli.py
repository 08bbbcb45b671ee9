"""The command line as an admin uses it: exit codes, messages, and the slots it prints."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from daemon import __version__
from daemon.cli import main
from daemon.store import Inserted
from rules.model import Status
from tests.daemon.desk import make_desk, monday, write_config
from tests.factories import booking_request, new_session

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "expediente.example.toml"
MONDAY_7AM = "2026-11-30T07:00:00-03:00"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version_via_the_console_script() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "expediente"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"expediente {__version__}"


def test_slots_json_is_the_api_document(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "slots", "--config", str(EXAMPLE), "--offline", "--json",
        "--from", "2026-12-04", "--to", "2026-12-05", "--now", MONDAY_7AM,
    )  # fmt: skip
    assert code == 0
    document = json.loads(out)
    assert document["timezone"] == "America/Sao_Paulo" and document["type"] == "standard"
    starts = [slot["start"] for slot in document["slots"]]
    assert starts[0] == "2026-12-04T07:30:00-03:00"
    assert starts[-1] == "2026-12-04T17:00:00-03:00"  # Friday 17:00 offered, Saturday closed
    assert document["slots"][-1] == {
        "start": "2026-12-04T17:00:00-03:00",
        "end": "2026-12-04T17:30:00-03:00",
        "technicians": 1,
    }


def test_slots_table_and_extended_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "slots", "--config", str(EXAMPLE), "--offline", "--type", "extended",
        "--from", "2026-11-30", "--to", "2026-12-01", "--now", "2026-11-30T07:00",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[1].strip() == "Mon 2026-11-30  -"  # 24 h notice: nothing today
    assert lines[2].split()[2] == "07:30"  # tomorrow morning is offered
    assert lines[-1] == "12 free slot(s)"  # 07:30-10:00 and 13:00-15:30, every 30 min


def test_busy_file_removes_the_technicians_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ics = tmp_path / "ana.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        "DTSTAMP:20261101T000000Z\r\nSUMMARY:Dentista\r\n"
        "DTSTART;TZID=America/Sao_Paulo:20261201T090000\r\n"
        "DTEND;TZID=America/Sao_Paulo:20261201T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    code, out, _ = run(
        capsys,
        "slots", "--config", str(EXAMPLE), "--offline", "--json", "--busy", f"ana={ics}",
        "--from", "2026-12-01", "--to", "2026-12-01", "--now", MONDAY_7AM,
    )  # fmt: skip
    assert code == 0
    starts = {s["start"][11:16] for s in json.loads(out)["slots"]}
    assert {"08:30", "10:00"} <= starts
    assert not {"09:00", "09:30"} & starts
    assert "Dentista" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--busy", "bob=x.ics"], "no technician 'bob'"),
        (["--busy", "ana"], "expected TECH=FILE.ics"),
        (["--busy", "ana=/nonexistent.ics"], "cannot read busy file"),
        (["--type", "vip"], "unknown session type 'vip'"),
        (["--from", "2026-12-05", "--to", "2026-12-01"], "before --from"),
    ],
)
def test_slots_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(
        capsys, "slots", "--config", str(EXAMPLE), "--offline", "--now", MONDAY_7AM, *argv
    )
    assert code == 2 and out == ""
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "tomorrow"], "not a date: 'tomorrow'"),
        (["--from", "9999-12-30", "--to", "9999-12-31"], "'9999-12-30' is out of range"),
        (["--now", "9999-12-31T00:00"], "'9999-12-31T00:00' is out of range"),
    ],
)
def test_bad_argument_values_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["slots", "--config", str(EXAMPLE), "--offline", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_busy_file_that_is_not_icalendar_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Read as "no events" it would show the technician free all day."""
    garbage = tmp_path / "ana.ics"
    garbage.write_text("garbage\n")
    code, out, err = run(
        capsys, "slots", "--config", str(EXAMPLE), "--offline", "--now", MONDAY_7AM,
        "--busy", f"ana={garbage}",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert f"busy file {garbage} is not iCalendar" in err


def test_check_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "check-config", "--no-secrets", str(EXAMPLE))
    assert code == 0 and "07:30-12:00, 13:00-17:30" in out and out.rstrip().endswith("OK")
    broken = tmp_path / "broken.toml"
    broken.write_text('[booking]\nslot_step = "30 minutes"\ngrase = "10m"\n')
    code, out, err = run(capsys, "check-config", str(broken))
    assert code == 2 and out == ""
    assert "slot_step" in err and "30 minutes" in err
    assert "grace" in err  # did you mean
    assert all(line.startswith("expediente: error: ") for line in err.splitlines())


def test_run_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path) -> None:
    """Not a traceback: the admin learns which setting to change."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path)
        path.write_text(
            path.read_text().replace("[server]\n", f'[server]\nlisten = "127.0.0.1:{port}"\n')
        )
        result = subprocess.run(
            [str(Path(sys.executable).parent / "expediente"), "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port} ([server] listen)" in result.stderr
    assert "Traceback" not in result.stderr


def test_slots_counts_the_sessions_booked_in_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The CLI answers what the API would: a booked time is not free for its technician."""
    desk = make_desk(tmp_path, monday(7))
    request = booking_request(monday(9), only_required=True)
    assert desk.service.book(request).session is not None
    argv = ["slots", "--config", str(desk.config.path), "--offline", "--json"]
    argv += ["--now", monday(7).isoformat(), "--from", "2026-11-30", "--to", "2026-11-30"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    counts = {s["start"]: s["technicians"] for s in json.loads(out)["slots"]}
    assert counts["2026-11-30T09:00:00-03:00"] == 1
    assert counts["2026-11-30T09:30:00-03:00"] == 2


def test_a_far_to_date_keeps_recurring_busy_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Busy time is read up to the horizon, whatever --to says."""
    daily = tmp_path / "ana.ics"
    daily.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:daily\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=America/Sao_Paulo:20260105T090000\r\n"
        "DTEND;TZID=America/Sao_Paulo:20260105T100000\r\nRRULE:FREQ=DAILY\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    base = ["slots", "--config", str(EXAMPLE), "--offline", "--json", "--busy", f"ana={daily}"]
    base += ["--now", "2026-03-03T06:00", "--from", "2026-03-03"]
    documents = []
    for to in ("2026-03-04", "8999-12-31"):
        code, out, err = run(capsys, *base, "--to", to)
        assert code == 0, err
        documents.append(json.loads(out))
    near, far = ([s for s in d["slots"] if s["start"] < "2026-03-05"] for d in documents)
    assert near == far
    starts = {s["start"] for s in far}
    assert "2026-03-03T08:30:00-03:00" in starts
    assert "2026-03-03T09:00:00-03:00" not in starts, "Ana's daily meeting"


def test_sessions_lists_every_session_past_a_thousand_and_says_how_many(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The store held more than the old silent cap of 1,000 rows: all are listed, in
    order, and the JSON states the total."""
    desk = make_desk(tmp_path, monday(7))
    count = 1203
    for n in range(count):
        start = monday(7) + timedelta(minutes=30 * (n // 2))  # ana and bruno share each start
        inserted = desk.store.insert_booking(
            new_session(start, tech=("ana", "bruno")[n % 2]), buffer=timedelta(0), now=monday(7)
        )
        assert isinstance(inserted, Inserted)
    last = desk.store.list_sessions()[-1]
    desk.store.flag_session(last.id, "moved to a closed day", now=monday(7))
    desk.store.transition(last.id, Status.CANCELLED, now=monday(7), actor="admin")
    config = str(desk.config.path)

    assert main(["sessions", "--config", config, "--json"], desk.clock) == 0
    document = json.loads(capsys.readouterr().out)
    listed = document["sessions"]
    assert document["total"] == len(listed) == count
    assert len({s["id"] for s in listed}) == count
    assert [(s["start"], s["id"]) for s in listed] == sorted((s["start"], s["id"]) for s in listed)
    assert listed[-1]["id"] == last.id and listed[-1]["needs_attention"] == "moved to a closed day"

    assert main(["sessions", "--config", config], desk.clock) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{count} session(s)" and len(lines) == count + 1

    # Filters run in the store, before any page is cut: the one flagged session is found.
    assert main(["sessions", "--config", config, "--flagged", "--json"], desk.clock) == 0
    flagged = json.loads(capsys.readouterr().out)
    assert flagged["total"] == 1 and flagged["sessions"][0]["id"] == last.id
    assert main(["sessions", "--config", config, "--status", "booked", "--json"], desk.clock) == 0
    assert json.loads(capsys.readouterr().out)["total"] == count - 1


def test_sessions_json_with_nothing_to_list(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desk = make_desk(tmp_path, monday(7))
    assert main(["sessions", "--config", str(desk.config.path), "--json"], desk.clock) == 0
    assert json.loads(capsys.readouterr().out) == {"sessions": [], "total": 0}


def test_cancel_stores_the_reason_given(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    desk = make_desk(tmp_path, monday(7))
    request = booking_request(monday(9), only_required=True)
    session = desk.service.book(request).session
    assert session is not None
    config = str(desk.config.path)
    code = main(["cancel", session.id, "--config", config, "--reason", "x" * 301], desk.clock)
    assert code == 2
    assert "--reason: the reason has 301 characters; at most 300" in capsys.readouterr().err
    assert desk.service.get(session.id).status == "booked"
    code = main(
        ["cancel", session.id, "--config", config, "--reason", " Cliente\npediu por telefone "],
        clock=desk.clock,
    )
    assert code == 0
    assert desk.service.get(session.id).cancel_reason == "Cliente pediu por telefone"
