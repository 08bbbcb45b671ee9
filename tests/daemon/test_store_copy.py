"""``expediente store copy``: a desk's SQLite file into an empty PostgreSQL database, whole,
and never onto a desk already there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connectors.base import ObjectChange
from daemon.cli import main
from daemon.store import Inserted, Store
from daemon.store.postgres import PostgresStore
from daemon.store.whatsapp import InboundMessage, StatusUpdate
from rules.intervals import Interval
from rules.model import Status
from tests.daemon.desk import write_config
from tests.daemon.store_helpers import NOW, START, open_store
from tests.factories import new_session
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.slow

PHONE = "+5511987654321"
WINDOW = Interval(START - timedelta(days=2), START + timedelta(days=2))


def a_desk(path: Path) -> Store:
    """A desk with some of everything: sessions in several states and a rebooking, a
    synced busy block, delivered and pending outbox items, flags, audit entries."""
    store = open_store(path)
    first = store.insert_booking(new_session(START), buffer=timedelta(0), now=NOW)
    second = store.insert_booking(
        new_session(START + timedelta(hours=2), tech="bruno"), buffer=timedelta(0), now=NOW
    )
    assert isinstance(first, Inserted) and isinstance(second, Inserted)
    moved = store.insert_booking(
        new_session(START + timedelta(minutes=15), rebooked_from=first.session.id),
        buffer=timedelta(0), now=NOW, idempotency_key="key-1", request_hash="h",
    )  # fmt: skip
    assert isinstance(moved, Inserted)
    store.transition(second.session.id, Status.IN_PROGRESS, now=NOW, actor="admin")
    store.flag_session(moved.session.id, "check this", now=NOW)
    block = Interval(START + timedelta(hours=4), START + timedelta(hours=5))
    change = ObjectChange("p.ics", "p", '"1"', start=block.start, end=block.end, blocks=(block,))
    store.apply_sync("ana:busy:1", [change], full=True, state="token-1", now=NOW)
    store.outbox_done(store.due_outbox(NOW)[0].id, NOW)
    store.audit("client", "booking_rejected", now=NOW, reason="closed day", details={"x": 1})
    # The WhatsApp conversation: two messages of one second (ids against their order), one
    # settled, a sent message's status, a refused token; the console's people.
    inbound = [InboundMessage(i, PHONE[1:], PHONE, "text", NOW, NOW) for i in ("w.b", "w.a", "w.c")]
    store.record_webhook(inbound[:2], [], now=NOW)
    store.record_webhook(inbound[2:], [], now=NOW)
    store.settle_inbound("w.a", "answered", now=NOW)
    store.record_sent("wamid.1", session_id=second.session.id, event="booked", form="template",
                      payload={"event": "booked"}, now=NOW)  # fmt: skip
    store.record_webhook([], [StatusUpdate("wamid.1", "delivered", NOW)], now=NOW)
    store.whatsapp_problem("token refused", now=NOW, token_refused=True)
    store.add_staff("carla", "$argon2id$hash", now=NOW, actor="admin-cli")
    store.start_staff_login("t" * 64, "carla", now=NOW, address="10.0.0.1")
    store.record_login_failure("10.0.0.9", "ana", now=NOW, forget_before=NOW)
    return store


def snapshot(store: Store) -> dict[str, object]:
    """Everything a daemon reads, through the store's own interface."""
    return {
        "technicians": store.technicians(),
        "calendars": store.calendars(),
        "objects": store.calendar_objects("ana:busy:1"),
        "busy": sorted(store.busy_pairs("ana", WINDOW)),
        "sessions": store.list_sessions(),
        "flagged": store.flagged_sessions(),
        "by_key": store.session_by_idempotency_key("key-1"),
        "outbox": store.due_outbox(NOW + timedelta(days=1)),
        "depth": store.outbox_depth(),
        "audit": store.audit_log(limit=1000),
        "pending": store.pending_inbound(),
        "outcomes": store.inbound_outcomes(),
        "window": store.window_open(PHONE, NOW),
        "sent": [store.whatsapp_messages(s.id) for s in store.list_sessions()],
        "whatsapp": store.whatsapp_health(),
        "staff": store.staff_accounts(),
        "login": store.staff_login("t" * 64),
        "failures": store.login_failures("10.0.0.9", "ana", NOW - timedelta(days=1)),
    }


@pytest.fixture
def pg_config(tmp_path: Path, postgres_server: PostgresServer) -> tuple[Path, str]:
    write_config(tmp_path)
    dsn = postgres_server.create_database()
    (tmp_path / "secrets" / "postgres-dsn").write_text(dsn + "\n")
    path = write_config(
        tmp_path, settings={"store": {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}}
    )
    return path, dsn


def test_a_desk_is_copied_whole_and_a_second_copy_is_refused(
    tmp_path: Path, pg_config: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, dsn = pg_config
    source = tmp_path / "desk.db"
    with a_desk(source) as sqlite:
        before = snapshot(sqlite)
        highest = max(item.id for item in sqlite.due_outbox(NOW + timedelta(days=1)))
    assert main(["store", "copy", "--from", str(source), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "sessions: 3 rows" in out and "audit: " in out
    with PostgresStore(dsn) as copied:
        assert snapshot(copied) == before
        copied.enqueue(None, "webhook", {}, now=NOW)
        newest = copied.due_outbox(NOW + timedelta(days=1))[-1]
        assert newest.id > highest, "new items continue after the copied ids"
        copied.record_login_failure("10.0.0.9", "ana", now=NOW, forget_before=NOW)
        assert len(copied.login_failures("10.0.0.9", "ana", NOW)[0]) == 2
        copied.record_webhook([InboundMessage("w.0", "1", None, "text", NOW, NOW)], [], now=NOW)
        assert [m.message_id for m in copied.pending_inbound()] == ["w.b", "w.c", "w.0"]
    assert main(["store", "copy", "--from", str(source), "--config", str(config)]) == 2
    assert "already holds a desk" in capsys.readouterr().err


def test_overlapping_active_sessions_are_named_and_nothing_is_copied(
    tmp_path: Path, pg_config: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, dsn = pg_config
    source = tmp_path / "overlap.db"
    with open_store(source) as sqlite:
        a = sqlite.insert_booking(new_session(START), buffer=timedelta(0), now=NOW)
        b = sqlite.insert_booking(
            new_session(START + timedelta(hours=1)), buffer=timedelta(0), now=NOW
        )
        assert isinstance(a, Inserted) and isinstance(b, Inserted)
        # SQLite records a technician's own move even onto another session.
        sqlite.move_session(b.session.id, START, START + timedelta(minutes=30), now=NOW,
                            actor="technician:ana")  # fmt: skip
    assert main(["store", "copy", "--from", str(source), "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "overlap" in error and a.session.id in error and b.session.id in error
    with PostgresStore(dsn) as target:
        assert target.is_empty()


def test_the_source_must_exist_and_the_target_be_postgresql(
    tmp_path: Path, pg_config: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = pg_config
    missing = tmp_path / "missing.db"
    assert main(["store", "copy", "--from", str(missing), "--config", str(config)]) == 2
    assert "no SQLite store" in capsys.readouterr().err
    assert not missing.exists()
    sqlite_config = write_config(tmp_path / "other")
    assert main(["store", "copy", "--from", str(missing), "--config", str(sqlite_config)]) == 2
    assert 'kind = "postgresql"' in capsys.readouterr().err
