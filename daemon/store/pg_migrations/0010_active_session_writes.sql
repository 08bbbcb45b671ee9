-- The SQLite migration 0012 on PostgreSQL (see it for why): the active sessions written to
-- a calendar, from an index of them alone.
CREATE INDEX sessions_active_by_calendar ON sessions (calendar_id, calendar_href)
    WHERE calendar_href IS NOT NULL AND status IN ('booked', 'in_progress');
