-- The SQLite migration 0013 on PostgreSQL (see it for why): a busy block says whether its
-- object is one of our session events, and one index holds each block's calendar, start,
-- end and that mark, so a technician's busy time is read from the index alone.
ALTER TABLE busy_intervals ADD COLUMN own_event INTEGER NOT NULL DEFAULT 0;

UPDATE busy_intervals SET own_event = 1 WHERE EXISTS (
    SELECT 1 FROM calendar_objects o
    WHERE o.calendar_id = busy_intervals.calendar_id AND o.href = busy_intervals.href
    AND substr(o.uid, 1, 11) = 'expediente-');

DROP INDEX busy_intervals_by_time;
CREATE INDEX busy_intervals_by_time ON busy_intervals (calendar_id, start_ts, end_ts, own_event);
