-- Where the outbox wrote each session's event: the calendar and the object's href there.
-- A technician may delete the event before any sync has listed it; the deletion then
-- arrives as a bare href (or not at all), and only this ties it back to the session.
-- NULL until the first write lands (and for sessions written before this version).
ALTER TABLE sessions ADD COLUMN calendar_id TEXT;
ALTER TABLE sessions ADD COLUMN calendar_href TEXT;
CREATE INDEX sessions_by_calendar_href ON sessions (calendar_id, calendar_href)
    WHERE calendar_href IS NOT NULL;
