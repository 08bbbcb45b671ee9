-- WhatsApp (Cloud API): what the daemon must remember of the conversation with a client,
-- and never what was said. No message text is stored: a check-in needs only who wrote,
-- and when.

-- Each inbound message once, whatever Meta retries: the webhook records it and answers at
-- once (Meta retries slow webhooks), the outbox worker processes it afterwards.
CREATE TABLE whatsapp_inbound (
    message_id    TEXT PRIMARY KEY,
    wa_id         TEXT NOT NULL,
    phone         TEXT,                -- the E.164 number wa_id stands for, if it is one
    kind          TEXT NOT NULL,       -- Meta's message type ("text", "image"...), not its content
    sent_at       INTEGER NOT NULL,    -- the message's own timestamp
    received_at   INTEGER NOT NULL,
    processed_at  INTEGER,
    outcome       TEXT,                -- checked_in, answered, ignored, ...
    session_id    TEXT REFERENCES sessions(id)
);
CREATE INDEX whatsapp_inbound_pending ON whatsapp_inbound (received_at)
    WHERE processed_at IS NULL;

-- Each client number's last message (it opens the 24-hour window for free-form text) and
-- the last automatic answer it got (a chatty client is answered once in a while, not on
-- every message).
CREATE TABLE whatsapp_contacts (
    phone            TEXT PRIMARY KEY,  -- E.164, as sessions.phone
    wa_id            TEXT NOT NULL,     -- how WhatsApp writes it (maybe without the ninth digit)
    last_inbound_at  INTEGER NOT NULL,
    last_reply_at    INTEGER
) WITHOUT ROWID;

-- Each message sent: Meta's id for it, the session and event it told, and how far it got
-- (accepted → sent → delivered → read, or failed with Meta's error code).
CREATE TABLE whatsapp_messages (
    wamid       TEXT PRIMARY KEY,
    session_id  TEXT REFERENCES sessions(id),
    event       TEXT NOT NULL,
    form        TEXT NOT NULL CHECK (form IN ('template', 'text')),
    payload     TEXT NOT NULL DEFAULT '{}',  -- the outbox payload, to send again as a template
    status      TEXT NOT NULL DEFAULT 'accepted',
    status_at   INTEGER NOT NULL,
    error_code  INTEGER,
    error       TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX whatsapp_messages_by_session ON whatsapp_messages (session_id, created_at);

-- The Cloud API's health as the outbox last saw it: a refused token (error 190) needs a
-- person, and /healthz says so until a message goes through again.
CREATE TABLE whatsapp_health (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    token_refused_at INTEGER,
    last_error       TEXT,
    last_ok_at       INTEGER
);
INSERT INTO whatsapp_health (id) VALUES (1);

-- A client's message is matched to their sessions by number.
CREATE INDEX sessions_by_phone ON sessions (phone, start_ts);
