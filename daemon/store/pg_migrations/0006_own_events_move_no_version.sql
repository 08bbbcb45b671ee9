-- The SQLite migration 0008 on PostgreSQL (see it for why): our own session event, where
-- it only repeats its session, moves no version when stored or removed; a busy block
-- follows its object, and one removed with its object (already gone) is left to the
-- object's trigger. Updates move the versions as before.

CREATE FUNCTION versions_repeats_session(object_uid TEXT, object_start BIGINT, object_end BIGINT)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM sessions s WHERE s.calendar_uid = object_uid AND (
            s.status NOT IN ('booked', 'in_progress')
            OR (s.start_ts = object_start AND s.end_ts = object_end)));
$$;

CREATE FUNCTION versions_object_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids TEXT[] := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT versions_repeats_session(NEW.uid, NEW.start_ts, NEW.end_ts) THEN
            ids := ARRAY[NEW.calendar_id];
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT versions_repeats_session(OLD.uid, OLD.start_ts, OLD.end_ts) THEN
            ids := ARRAY[OLD.calendar_id];
        END IF;
    ELSE
        ids := ARRAY[NEW.calendar_id, OLD.calendar_id];
    END IF;
    PERFORM versions_bump_calendar(
        ARRAY(SELECT technician_id FROM calendars WHERE id = ANY (ids)));
    RETURN NULL;
END $$;

CREATE FUNCTION versions_busy_interval_data() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids TEXT[] := '{}';
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (
            SELECT 1 FROM calendar_objects o
            WHERE o.calendar_id = NEW.calendar_id AND o.href = NEW.href
            AND versions_repeats_session(o.uid, o.start_ts, o.end_ts)) THEN
            ids := ARRAY[NEW.calendar_id];
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF EXISTS (
            SELECT 1 FROM calendar_objects o
            WHERE o.calendar_id = OLD.calendar_id AND o.href = OLD.href
            AND NOT versions_repeats_session(o.uid, o.start_ts, o.end_ts)) THEN
            ids := ARRAY[OLD.calendar_id];
        END IF;
    ELSE
        ids := ARRAY[NEW.calendar_id, OLD.calendar_id];
    END IF;
    PERFORM versions_bump_calendar(
        ARRAY(SELECT technician_id FROM calendars WHERE id = ANY (ids)));
    RETURN NULL;
END $$;

DROP TRIGGER versions_busy_interval ON busy_intervals;
CREATE TRIGGER versions_busy_interval AFTER INSERT OR UPDATE OR DELETE ON busy_intervals
    FOR EACH ROW EXECUTE FUNCTION versions_busy_interval_data();
DROP TRIGGER versions_object ON calendar_objects;
CREATE TRIGGER versions_object AFTER INSERT OR UPDATE OR DELETE ON calendar_objects
    FOR EACH ROW EXECUTE FUNCTION versions_object_data();
