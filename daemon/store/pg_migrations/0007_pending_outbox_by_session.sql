-- The SQLite migration 0009 on PostgreSQL (see it for why): a session's pending outbox
-- items from an index, so superseding its earlier calendar writes does not walk every
-- pending item of every session.
CREATE INDEX outbox_pending_by_session ON outbox (session_id)
    WHERE done_at IS NULL AND superseded = 0;
