-- Per-technician versions of busy time, replacing the one global counter of 0002: a
-- change in one technician's calendar, or a booking for them, now costs only that
-- technician's timeline a rebuild. ``calendar`` moves whenever the calendar busy time the
-- technician sees could change; ``sessions`` whenever their active sessions could. Both
-- only ever grow. Triggers, not application code, keep them: every writer (the daemon,
-- the admin CLI in another process) moves them, and none can forget to.
CREATE TABLE technician_versions (
    technician_id  TEXT PRIMARY KEY,
    calendar       INTEGER NOT NULL DEFAULT 0,
    sessions       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO technician_versions (technician_id) SELECT id FROM technicians;

-- Technicians are never deleted (sessions name them), so a row made here stays.
CREATE TRIGGER versions_technician_added AFTER INSERT ON technicians
BEGIN
    INSERT OR IGNORE INTO technician_versions (technician_id) VALUES (NEW.id);
END;

-- Calendar busy time: the owner of the calendar a busy block or an object belongs to.
CREATE TRIGGER versions_busy_interval_added AFTER INSERT ON busy_intervals
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = NEW.calendar_id);
END;

CREATE TRIGGER versions_busy_interval_removed AFTER DELETE ON busy_intervals
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = OLD.calendar_id);
END;

CREATE TRIGGER versions_busy_interval_changed AFTER UPDATE ON busy_intervals
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN
        (SELECT technician_id FROM calendars WHERE id IN (OLD.calendar_id, NEW.calendar_id));
END;

CREATE TRIGGER versions_object_added AFTER INSERT ON calendar_objects
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = NEW.calendar_id);
END;

CREATE TRIGGER versions_object_removed AFTER DELETE ON calendar_objects
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = OLD.calendar_id);
END;

CREATE TRIGGER versions_object_changed AFTER UPDATE ON calendar_objects
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN
        (SELECT technician_id FROM calendars WHERE id IN (OLD.calendar_id, NEW.calendar_id));
END;

-- A calendar given to another technician moves both; a calendar removed moves its owner
-- (its objects go by cascade, perhaps after the calendar row is gone).
CREATE TRIGGER versions_calendar_owner_changed AFTER UPDATE OF technician_id ON calendars
WHEN OLD.technician_id IS NOT NEW.technician_id
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN (OLD.technician_id, NEW.technician_id);
END;

CREATE TRIGGER versions_calendar_removed AFTER DELETE ON calendars
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = OLD.technician_id;
END;

-- Sessions: the technician's ``sessions``. A session's status, time and UID also decide
-- whether its own event in a calendar counts as busy (see daemon/store/busy.py), so the
-- owners of calendars holding an object with its UID move ``calendar`` too. Other columns
-- (ETag, flags, contact) change neither.
CREATE TRIGGER versions_session_added AFTER INSERT ON sessions
BEGIN
    UPDATE technician_versions SET sessions = sessions + 1
    WHERE technician_id = NEW.technician_id;
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN (
        SELECT c.technician_id FROM calendar_objects o JOIN calendars c ON c.id = o.calendar_id
        WHERE o.uid = NEW.calendar_uid);
END;

CREATE TRIGGER versions_session_changed
AFTER UPDATE OF status, start_ts, end_ts, technician_id, calendar_uid ON sessions
WHEN OLD.status IS NOT NEW.status OR OLD.start_ts IS NOT NEW.start_ts
    OR OLD.end_ts IS NOT NEW.end_ts OR OLD.technician_id IS NOT NEW.technician_id
    OR OLD.calendar_uid IS NOT NEW.calendar_uid
BEGIN
    UPDATE technician_versions SET sessions = sessions + 1
    WHERE technician_id IN (OLD.technician_id, NEW.technician_id);
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN (
        SELECT c.technician_id FROM calendar_objects o JOIN calendars c ON c.id = o.calendar_id
        WHERE o.uid IN (OLD.calendar_uid, NEW.calendar_uid));
END;

CREATE TRIGGER versions_session_removed AFTER DELETE ON sessions
BEGIN
    UPDATE technician_versions SET sessions = sessions + 1
    WHERE technician_id = OLD.technician_id;
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id IN (
        SELECT c.technician_id FROM calendar_objects o JOIN calendars c ON c.id = o.calendar_id
        WHERE o.uid = OLD.calendar_uid);
END;

-- The global counter of 0002 has no reader left.
DROP TRIGGER busy_intervals_inserted;
DROP TRIGGER busy_intervals_deleted;
DROP TRIGGER calendar_objects_inserted;
DROP TRIGGER calendar_objects_updated;
DROP TRIGGER calendar_objects_deleted;
DROP TRIGGER sessions_busy_changed;
DROP TRIGGER calendars_owner_changed;
DROP TABLE counters;
