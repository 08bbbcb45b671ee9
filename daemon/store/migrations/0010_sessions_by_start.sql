-- Sessions by start time, for a window over every technician (the desk console's day):
-- bounded from below by the longest session (daemon/store/sessions.py), such a read
-- takes the sessions that start in a short range from this index, instead of scanning
-- the whole table, a desk's history included, and sorting it.
CREATE INDEX sessions_by_start ON sessions (start_ts);
