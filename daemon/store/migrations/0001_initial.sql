-- expediente store, version 1. Instants are integer UTC epoch seconds.

CREATE TABLE technicians (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL
);

CREATE TABLE calendars (
    id                    TEXT PRIMARY KEY,
    technician_id         TEXT NOT NULL REFERENCES technicians(id) ON DELETE CASCADE,
    role                  TEXT NOT NULL CHECK (role IN ('sessions', 'busy')),
    kind                  TEXT NOT NULL,
    address               TEXT NOT NULL,
    sync_state            TEXT,
    last_sync_ok_at       INTEGER,
    last_attempt_at       INTEGER,
    last_error            TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0
);

-- What each calendar held at its last good sync: one row per object (href) ...
CREATE TABLE calendar_objects (
    calendar_id  TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    href         TEXT NOT NULL,
    uid          TEXT,
    etag         TEXT,
    start_ts     INTEGER,
    end_ts       INTEGER,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (calendar_id, href)
);
CREATE INDEX calendar_objects_by_uid ON calendar_objects (uid);

-- ... and the busy occurrences it expands to (the busy cache, kept by deltas).
CREATE TABLE busy_intervals (
    calendar_id  TEXT NOT NULL,
    href         TEXT NOT NULL,
    start_ts     INTEGER NOT NULL,
    end_ts       INTEGER NOT NULL,
    FOREIGN KEY (calendar_id, href) REFERENCES calendar_objects (calendar_id, href)
        ON DELETE CASCADE
);
CREATE INDEX busy_intervals_by_time ON busy_intervals (calendar_id, start_ts);
CREATE INDEX busy_intervals_by_object ON busy_intervals (calendar_id, href);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    type               TEXT NOT NULL,
    start_ts           INTEGER NOT NULL,
    end_ts             INTEGER NOT NULL,
    technician_id      TEXT NOT NULL REFERENCES technicians(id),
    status             TEXT NOT NULL CHECK (status IN
                           ('booked', 'in_progress', 'completed', 'rescheduled', 'cancelled')),
    company            TEXT NOT NULL,
    responsible_name   TEXT NOT NULL,
    phone              TEXT NOT NULL,
    email              TEXT NOT NULL DEFAULT '',
    remote_tool        TEXT NOT NULL,
    remote_id          TEXT NOT NULL DEFAULT '',
    description        TEXT NOT NULL DEFAULT '',
    language           TEXT NOT NULL DEFAULT 'pt-BR',
    rules_accepted_at  INTEGER NOT NULL,
    rules_version      TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    checked_in_at      INTEGER,
    ended_at           INTEGER,
    cancel_reason      TEXT,
    idempotency_key    TEXT,
    request_hash       TEXT,
    calendar_uid       TEXT NOT NULL UNIQUE,
    calendar_etag      TEXT,
    needs_attention    TEXT,
    rebooked_from      TEXT REFERENCES sessions(id)
);
CREATE INDEX sessions_by_technician_time ON sessions (technician_id, start_ts);
CREATE INDEX sessions_by_status_time ON sessions (status, start_ts);
CREATE UNIQUE INDEX sessions_by_idempotency_key ON sessions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    session_id       TEXT REFERENCES sessions(id),
    action           TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    done_at          INTEGER,
    superseded       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE done_at IS NULL AND superseded = 0;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    session_id  TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_session ON audit (session_id, at);
