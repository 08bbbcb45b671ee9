-- Our own session event, coming back from a technician's calendar where it only repeats
-- its session (see _CALENDAR_BUSY in daemon/store/busy.py: the event of an inactive
-- session, or of an active one at the session's stored time), adds no busy time: storing
-- or removing it moves no version. It moved the owner's ``calendar`` version before, so
-- after every booking the daemon read the technician's whole calendar busy time again
-- (5,000 rows at the benchmark's scale) only to find it unchanged.
--
-- Whether an object repeats its session changes only with the session (its status, time
-- or UID), and those changes move the calendar version of every owner of an object with
-- its UID (migration 0004), so the version still moves whenever the busy time can.
-- A busy block's own triggers follow its object: a block added to an object that repeats
-- its session moves nothing; a block removed with its object (ON DELETE CASCADE, its
-- object already gone) is left to the object's trigger.

DROP TRIGGER versions_object_added;
DROP TRIGGER versions_object_removed;
DROP TRIGGER versions_busy_interval_added;
DROP TRIGGER versions_busy_interval_removed;

CREATE TRIGGER versions_object_added AFTER INSERT ON calendar_objects
WHEN NOT EXISTS (
    SELECT 1 FROM sessions s WHERE s.calendar_uid = NEW.uid AND (
        s.status NOT IN ('booked', 'in_progress')
        OR (s.start_ts = NEW.start_ts AND s.end_ts = NEW.end_ts)))
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = NEW.calendar_id);
END;

CREATE TRIGGER versions_object_removed AFTER DELETE ON calendar_objects
WHEN NOT EXISTS (
    SELECT 1 FROM sessions s WHERE s.calendar_uid = OLD.uid AND (
        s.status NOT IN ('booked', 'in_progress')
        OR (s.start_ts = OLD.start_ts AND s.end_ts = OLD.end_ts)))
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = OLD.calendar_id);
END;

CREATE TRIGGER versions_busy_interval_added AFTER INSERT ON busy_intervals
WHEN NOT EXISTS (
    SELECT 1 FROM calendar_objects o JOIN sessions s ON s.calendar_uid = o.uid
    WHERE o.calendar_id = NEW.calendar_id AND o.href = NEW.href AND (
        s.status NOT IN ('booked', 'in_progress')
        OR (s.start_ts = o.start_ts AND s.end_ts = o.end_ts)))
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = NEW.calendar_id);
END;

CREATE TRIGGER versions_busy_interval_removed AFTER DELETE ON busy_intervals
WHEN EXISTS (
    SELECT 1 FROM calendar_objects o
    WHERE o.calendar_id = OLD.calendar_id AND o.href = OLD.href AND NOT EXISTS (
        SELECT 1 FROM sessions s WHERE s.calendar_uid = o.uid AND (
            s.status NOT IN ('booked', 'in_progress')
            OR (s.start_ts = o.start_ts AND s.end_ts = o.end_ts))))
BEGIN
    UPDATE technician_versions SET calendar = calendar + 1
    WHERE technician_id = (SELECT technician_id FROM calendars WHERE id = OLD.calendar_id);
END;
