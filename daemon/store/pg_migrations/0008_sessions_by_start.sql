-- The SQLite migration 0010 on PostgreSQL (see it for why): sessions by start time, for a
-- window over every technician.
CREATE INDEX sessions_by_start ON sessions (start_ts);
