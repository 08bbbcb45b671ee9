-- The longest busy block of each calendar, and the longest session of each technician,
-- read from an index instead of a scan. A clash check asks "does anything overlap
-- [lo, hi)?"; with only ``start_ts < hi`` to go on, the (calendar, start) index hands it
-- every block that starts before the slot: half a technician's calendar on average. A
-- block that overlaps also starts no earlier than ``lo`` minus the longest block, which
-- bounds the range from both sides.
CREATE INDEX busy_intervals_by_length ON busy_intervals (calendar_id, end_ts - start_ts);
CREATE INDEX sessions_by_length ON sessions (technician_id, end_ts - start_ts);
