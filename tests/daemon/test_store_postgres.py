"""What only the PostgreSQL store does: the database's own refusal of overlapping sessions,
idempotency across instances, outbox claims, its schema history, and riding out a server
restart. Everything both backends share runs in test_store.py and its neighbours, on both.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from daemon.config import ConfigError, load_config
from daemon.store import (
    Conflict,
    Inserted,
    KeyReused,
    Replayed,
    Store,
    StoreError,
    StoreUnavailable,
    packaged_migrations,
)
from daemon.store import open_store as open_configured
from daemon.store.postgres import WRITE_LOCK, PostgresStore, packaged_pg_migrations, translate
from rules.intervals import Interval
from tests.daemon.desk import write_config
from tests.daemon.store_helpers import NOW, START, open_store, run_together
from tests.factories import new_session
from tests.servers.postgres import PostgresServer

pytestmark = pytest.mark.slow


@pytest.fixture
def dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()


@pytest.fixture
def store(dsn: str) -> Iterator[PostgresStore]:
    opened = open_store(dsn)
    assert isinstance(opened, PostgresStore)
    yield opened
    opened.close()


def test_statements_are_translated_from_sqlites_dialect() -> None:
    assert translate("SELECT 1 FROM t WHERE a = ? AND b IN (SELECT value FROM json_each(?))") == (
        "SELECT 1 FROM t WHERE a = %s AND b IN "
        "(SELECT value FROM json_array_elements_text(%s::json))"
    )
    assert translate("WHERE s.id IS :own OR id IS NOT :own AND t < :hi") == (
        "WHERE s.id IS NOT DISTINCT FROM %(own)s OR id IS DISTINCT FROM %(own)s AND t < %(hi)s"
    )
    assert translate("UPDATE o SET x = 1 WHERE id = last_insert_rowid() AND y LIKE '5%'") == (
        "UPDATE o SET x = 1 WHERE id = lastval() AND y LIKE '5%%'"
    )


def test_the_configuration_names_the_database_by_a_dsn_file(tmp_path: Path, dsn: str) -> None:
    path = write_config(tmp_path, settings={"store": {"kind": "postgresql"}})
    with pytest.raises(ConfigError, match="dsn_file"):
        load_config(path)
    (tmp_path / "secrets" / "postgres-dsn").write_text(dsn + "\n")
    path = write_config(
        tmp_path, settings={"store": {"kind": "postgresql", "dsn_file": "secrets/postgres-dsn"}}
    )
    store = open_configured(load_config(path).store)
    try:
        assert isinstance(store, PostgresStore)
        assert store.schema_version == len(packaged_pg_migrations())
    finally:
        store.close()


def test_the_database_itself_refuses_overlapping_active_sessions(dsn: str) -> None:
    """Without the write lock every writer's re-check passes at once; the exclusion
    constraint still lets exactly one booking in, and the others get a Conflict."""
    open_store(dsn).close()
    unlocked = PostgresStore(dsn, serialize_writes=False)
    try:
        results = run_together(
            8,
            lambda n: unlocked.insert_booking(
                new_session(START + timedelta(minutes=n)), buffer=timedelta(0), now=NOW
            ),
        )
        assert sum(isinstance(r, Inserted) for r in results) == 1, results
        assert all(isinstance(r, Inserted | Conflict) for r in results), results
        assert len(unlocked.list_sessions()) == 1
        assert [e.action for e in unlocked.audit_log()] == ["booking_accepted"]
        assert unlocked.outbox_depth() == 1
    finally:
        unlocked.close()
    with psycopg.connect(dsn) as db, pytest.raises(psycopg.errors.ExclusionViolation):
        db.execute(
            "INSERT INTO sessions SELECT 'x' || id, type, start_ts + 60, end_ts + 60, "
            "technician_id, status, company, responsible_name, phone, email, remote_tool, "
            "remote_id, description, language, rules_accepted_at, rules_version, created_at, "
            "updated_at, NULL, NULL, NULL, NULL, NULL, 'uid-x' FROM sessions"
        )
        db.commit()


def test_one_idempotency_key_on_two_instances_books_once(dsn: str) -> None:
    open_store(dsn).close()
    first, second = PostgresStore(dsn, serialize_writes=False), PostgresStore(dsn)
    try:
        # A client's retry reaches another instance, which gives it a session id of its own.
        attempts = [new_session(), new_session()]
        results = run_together(
            2,
            lambda n: (first, second)[n].insert_booking(
                attempts[n], buffer=timedelta(0), now=NOW, idempotency_key="k1", request_hash="h"
            ),
        )
        assert sorted(type(r).__name__ for r in results) == ["Inserted", "Replayed"], results
        session = next(r.session for r in results if isinstance(r, Inserted))
        assert [r.session for r in results if isinstance(r, Replayed)] == [session]
        again = second.insert_booking(
            new_session(START + timedelta(hours=2)), buffer=timedelta(0), now=NOW,
            idempotency_key="k1", request_hash="other",
        )  # fmt: skip
        assert isinstance(again, KeyReused) and again.session_id == session.id
        replay = first.insert_booking(
            new_session(), buffer=timedelta(0), now=NOW, idempotency_key="k1", request_hash="h"
        )
        assert isinstance(replay, Replayed)
    finally:
        first.close()
        second.close()


def test_a_booking_the_database_rolls_back_for_a_deadlock_is_run_again(dsn: str) -> None:
    """A real deadlock, forced: the booking's insert waits on a lock another connection
    holds, and that connection then waits on the booking's write lock. PostgreSQL breaks
    the cycle by rolling the booking back (its deadlock check runs first); the store runs
    the booking again and the client gets its session, written once."""
    store = open_store(dsn)
    assert isinstance(store, PostgresStore)
    gate = 0x6578_7065_0042
    with closing(store), psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE SEQUENCE insert_attempts")  # a sequence ignores rollbacks
        admin.execute(
            "CREATE FUNCTION wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"PERFORM nextval('insert_attempts'); PERFORM pg_advisory_xact_lock({gate}); "
            "RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER gate BEFORE INSERT ON sessions "
            "FOR EACH ROW EXECUTE FUNCTION wait_at_gate()"
        )
        with psycopg.connect(dsn) as other, ThreadPoolExecutor(1) as pool:
            # This side's deadlock check comes later, so the booking is the one rolled back.
            other.execute("SET deadlock_timeout = '60s'")
            other.execute("SELECT pg_advisory_xact_lock(%s)", (gate,))
            booking = pool.submit(
                store.insert_booking, new_session(), buffer=timedelta(0), now=NOW,
                idempotency_key="k", request_hash="h",
            )  # fmt: skip
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            for _ in range(500):
                if admin.execute(waiting).fetchone() == (1,):
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the booking never reached the gate")
            # Blocks until PostgreSQL rolls the booking back, then lets its second run pass.
            other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            other.rollback()
            result = booking.result(timeout=30)
        assert admin.execute("SELECT last_value FROM insert_attempts").fetchone() == (2,)
        assert isinstance(result, Inserted), result
        assert [s.id for s in store.list_sessions()] == [result.session.id]
        assert [e.action for e in store.audit_log()] == ["booking_accepted"]
        assert store.outbox_depth() == 1
        again = store.insert_booking(
            new_session(), buffer=timedelta(0), now=NOW, idempotency_key="k", request_hash="h"
        )
        assert again == Replayed(result.session)


def test_superseding_a_calendar_write_reads_an_index_of_the_sessions_pending_items(
    store: PostgresStore, dsn: str
) -> None:
    """As on SQLite (test_store.py): with thousands of writes waiting for a calendar server,
    the booking's own write finds the session's earlier ones from an index."""
    booked = store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    assert isinstance(booked, Inserted)
    with psycopg.connect(dsn) as db:
        db.execute(
            "INSERT INTO outbox (session_id, action, next_attempt_at, created_at) "
            "SELECT NULL, 'put', 0, 0 FROM generate_series(1, 5000)"
        )
        db.execute("ANALYZE outbox")
        plan = db.execute(
            "EXPLAIN UPDATE outbox SET superseded = 1 WHERE session_id = %s AND action = 'put' "
            "AND done_at IS NULL AND superseded = 0",
            (booked.session.id,),
        ).fetchall()
    assert "outbox_pending_by_session" in " ".join(row[0] for row in plan), plan


def test_an_outbox_item_is_delivered_by_one_instance_at_a_time(store: PostgresStore) -> None:
    booked = store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    assert isinstance(booked, Inserted)
    lease = timedelta(minutes=5)
    taken = store.claim_outbox(NOW, "instance-a", lease)
    assert [item.session_id for item in taken] == [booked.session.id]
    assert store.claim_outbox(NOW + timedelta(minutes=1), "instance-b", lease) == []
    # The holder may take it again (its own retry); another only once the claim ran out.
    assert len(store.claim_outbox(NOW + timedelta(minutes=1), "instance-a", lease)) == 1
    later = NOW + timedelta(minutes=7)
    assert [item.id for item in store.claim_outbox(later, "instance-b", lease)] == [taken[0].id]
    store.outbox_done(taken[0].id, later)
    assert store.claim_outbox(later + lease, "instance-a", lease) == []


def test_a_database_of_a_newer_schema_is_refused(store: PostgresStore, dsn: str) -> None:
    with psycopg.connect(dsn) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer"):
        PostgresStore(dsn)


def test_migrations_apply_once_and_a_broken_one_changes_nothing(dsn: str) -> None:
    base = packaged_pg_migrations()
    with PostgresStore(dsn) as store:
        assert store.schema_version == len(base)
    broken = "CREATE TABLE extra (x INTEGER); SELECT * FROM missing_table;"
    with pytest.raises(psycopg.errors.UndefinedTable):
        PostgresStore(dsn, migrations=[*base, (len(base) + 1, broken)])
    extra = "CREATE TABLE extra (x INTEGER);"
    with PostgresStore(dsn, migrations=[*base, (len(base) + 1, extra)]) as store:
        assert store.schema_version == len(base) + 1


def test_a_server_restart_fails_only_whats_in_flight_and_the_store_reconnects() -> None:
    server = PostgresServer()
    try:
        server.start()
        dsn = server.create_database()
        open_store(dsn).close()
        store = PostgresStore(dsn, timeout=1)
        assert isinstance(
            store.insert_booking(new_session(), buffer=timedelta(0), now=NOW), Inserted
        )
        server.stop()
        with pytest.raises(StoreUnavailable):
            store.list_sessions()
        server.start()
        # No reopening by hand: the pool replaces the dead connections by itself.
        assert len(store.list_sessions()) == 1
        later = new_session(START + timedelta(hours=1))
        assert isinstance(store.insert_booking(later, buffer=timedelta(0), now=NOW), Inserted)
        store.close()
    finally:
        server.close()


def test_an_unreachable_server_at_start_is_a_clear_error(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreError, match="check dsn_file"):
        PostgresStore("host=127.0.0.1 port=1 dbname=nothing user=nobody", timeout=1)


def test_a_literal_percent_survives_the_translation(store: PostgresStore) -> None:
    row = store._read("SELECT '5%' AS x, 'a%b' LIKE ? AS y", ("a%",))[0]
    assert (row["x"], row["y"]) == ("5%", True)


# What PostgreSQL has that SQLite does not: its migration record (SQLite's is a pragma),
# the shared rate limit, the outbox claims of several instances, and SQLite's implicit
# rowid made a column where the shared queries order by it.
PG_ONLY_TABLES = {"schema_version", "rate_limit_events"}
PG_ONLY_COLUMNS = {
    ("outbox", "claimed_by"), ("outbox", "claimed_until"),
    ("whatsapp_inbound", "rowid"), ("whatsapp_messages", "rowid"),
}  # fmt: skip


def test_postgresql_has_every_table_column_and_index_of_the_sqlite_store(
    store: PostgresStore, dsn: str, tmp_path: Path
) -> None:
    """A migration added to SQLite alone fails here, not on a desk that runs PostgreSQL."""
    with Store(tmp_path / "s.db") as sqlite, closing(sqlite3.connect(tmp_path / "s.db")) as db:
        assert sqlite.schema_version == len(packaged_migrations())
        lite_tables = {
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        lite_columns = {
            (table, column)
            for table in lite_tables
            for (column,) in db.execute("SELECT name FROM pragma_table_info(?)", (table,))
        }
        lite_indexes = {
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    with psycopg.connect(dsn) as pg:
        pg_columns = set(
            pg.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            ).fetchall()
        )
        pg_indexes = {
            name
            for (name,) in pg.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
    pg_tables = {table for table, _ in pg_columns}
    assert "whatsapp_inbound" in lite_tables and "staff" in lite_tables  # the check reads both
    assert pg_tables == lite_tables | PG_ONLY_TABLES
    assert {c for c in pg_columns if c[0] in lite_tables} == lite_columns | PG_ONLY_COLUMNS
    assert lite_indexes <= pg_indexes, f"indexes only on SQLite: {lite_indexes - pg_indexes}"


def test_own_events_stored_before_their_blocks_were_marked_still_repeat_their_session(
    dsn: str,
) -> None:
    """PostgreSQL's migration 0011, as SQLite's 0013 (tests/daemon/test_store.py): the
    blocks of session events already cached are marked, so they do not count as busy."""
    sessions = "ana:sessions:1"
    with PostgresStore(dsn, migrations=packaged_pg_migrations()[:10]) as old:
        old.sync_technicians(
            [("ana", "Ana Souza")], [(sessions, "ana", "sessions", "caldav", "http://127.0.0.1/")]
        )
    start = int(START.timestamp())
    with psycopg.connect(dsn) as db:
        db.execute(
            "INSERT INTO sessions (id, type, start_ts, end_ts, technician_id, status, company, "
            "responsible_name, phone, remote_tool, rules_accepted_at, rules_version, "
            "created_at, updated_at, calendar_uid) VALUES ('s1', 'standard', %s, %s, 'ana', "
            "'booked', 'C', 'R', '+5511987654321', 'AnyDesk', 0, 'v1', 0, 0, 'expediente-s1')",
            (start, start + 1800),
        )
        for href, uid, offset in (("own.ics", "expediente-s1", 0), ("private.ics", "p1", 3600)):
            db.execute(
                "INSERT INTO calendar_objects (calendar_id, href, uid, etag, start_ts, end_ts) "
                "VALUES (%s, %s, %s, '\"1\"', %s, %s)",
                (sessions, href, uid, start + offset, start + offset + 1800),
            )
            db.execute(
                "INSERT INTO busy_intervals (calendar_id, href, start_ts, end_ts) "
                "VALUES (%s, %s, %s, %s)",
                (sessions, href, start + offset, start + offset + 1800),
            )
    window = Interval(START - timedelta(days=1), START + timedelta(days=1))
    private = Interval(START + timedelta(hours=1), START + timedelta(hours=1, minutes=30))
    with PostgresStore(dsn) as store:
        assert store.busy_intervals("ana", window) == [private]
    with psycopg.connect(dsn) as db:
        marks = db.execute("SELECT href, own_event FROM busy_intervals ORDER BY href").fetchall()
    assert marks == [("own.ics", 1), ("private.ics", 0)]
