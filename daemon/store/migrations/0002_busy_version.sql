-- A counter that moves whenever the calendar busy time a technician sees could change,
-- so the daemon can keep calendar timelines cached across bookings (a booking adds a
-- session, not calendar busy time) and rebuild them only when this moves. Triggers, not
-- application code, keep it: every writer (the daemon, the admin CLI in another
-- process) moves it, and none can forget to.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value) VALUES ('busy', 0);

CREATE TRIGGER busy_intervals_inserted AFTER INSERT ON busy_intervals
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

CREATE TRIGGER busy_intervals_deleted AFTER DELETE ON busy_intervals
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

CREATE TRIGGER calendar_objects_inserted AFTER INSERT ON calendar_objects
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

CREATE TRIGGER calendar_objects_updated AFTER UPDATE ON calendar_objects
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

CREATE TRIGGER calendar_objects_deleted AFTER DELETE ON calendar_objects
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

-- A session's status or time decides whether its own calendar event counts as busy.
CREATE TRIGGER sessions_busy_changed
AFTER UPDATE OF status, start_ts, end_ts, calendar_uid ON sessions
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;

CREATE TRIGGER calendars_owner_changed AFTER UPDATE OF technician_id ON calendars
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'busy';
END;
