-- WhatsApp (Cloud API): the SQLite migration 0006 on PostgreSQL (see it for what each table
-- keeps, and that no message text is). Instants are integer UTC epoch seconds, as there.

-- ``rowid`` is SQLite's implicit row id made explicit: the insertion order the shared
-- queries break ties by ("ORDER BY received_at, rowid"), so they need no translation.
-- ``expediente store copy`` loads the rows in that order and lets the column number them.
CREATE TABLE whatsapp_inbound (
    message_id    TEXT PRIMARY KEY,
    wa_id         TEXT NOT NULL,
    phone         TEXT,
    kind          TEXT NOT NULL,
    sent_at       BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    processed_at  BIGINT,
    outcome       TEXT,
    session_id    TEXT REFERENCES sessions(id),
    rowid         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX whatsapp_inbound_pending ON whatsapp_inbound (received_at)
    WHERE processed_at IS NULL;

CREATE TABLE whatsapp_contacts (
    phone            TEXT PRIMARY KEY,
    wa_id            TEXT NOT NULL,
    last_inbound_at  BIGINT NOT NULL,
    last_reply_at    BIGINT
);

CREATE TABLE whatsapp_messages (
    wamid       TEXT PRIMARY KEY,
    session_id  TEXT REFERENCES sessions(id),
    event       TEXT NOT NULL,
    form        TEXT NOT NULL CHECK (form IN ('template', 'text')),
    payload     TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'accepted',
    status_at   BIGINT NOT NULL,
    error_code  INTEGER,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE  -- as in whatsapp_inbound
);
CREATE INDEX whatsapp_messages_by_session ON whatsapp_messages (session_id, created_at);

-- One row, always there (a copy from SQLite replaces it with the source's).
CREATE TABLE whatsapp_health (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    token_refused_at BIGINT,
    last_error       TEXT,
    last_ok_at       BIGINT
);
INSERT INTO whatsapp_health (id) VALUES (1);

-- A client's message is matched to their sessions by number.
CREATE INDEX sessions_by_phone ON sessions (phone, start_ts);
