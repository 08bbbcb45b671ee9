-- The active sessions written to a calendar, from an index of them alone. Every sync asks
-- which of them its calendar no longer lists (daemon/store/sessions.py); the index of
-- migration 0003 holds every session ever written to the calendar, so on a desk in use
-- each sync walked the technician's whole history.
CREATE INDEX sessions_active_by_calendar ON sessions (calendar_id, calendar_href)
    WHERE calendar_href IS NOT NULL AND status IN ('booked', 'in_progress');
