-- The longest busy block of each calendar and the longest session of each technician, read
-- from an index instead of a scan (the SQLite migration 0005 explains the clash check that
-- asks for them). PostgreSQL's planner answers the check's max(end_ts - start_ts) per
-- calendar or technician from these by the expression's match, as SQLite's does.
CREATE INDEX busy_intervals_by_length ON busy_intervals (calendar_id, (end_ts - start_ts));
CREATE INDEX sessions_by_length ON sessions (technician_id, (end_ts - start_ts));
