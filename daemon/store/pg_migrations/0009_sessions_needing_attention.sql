-- The SQLite migration 0011 on PostgreSQL (see it for why): the sessions waiting for the
-- admin, from an index of them alone.
CREATE INDEX sessions_needing_attention ON sessions (start_ts)
    WHERE needs_attention IS NOT NULL;
