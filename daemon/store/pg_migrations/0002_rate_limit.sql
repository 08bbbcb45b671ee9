-- Booking attempts per client, shared by every instance (``[booking] rate_limit`` and
-- ``refusal_limit``): the in-memory windows of daemon/web/ratelimit.py, as rows, so that
-- a client spreading attempts over several instances is counted once. Instants are
-- microseconds (two attempts of one client may fall in one second).
CREATE TABLE rate_limit_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client  TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('granted', 'refused')),
    at_us   BIGINT NOT NULL
);
CREATE INDEX rate_limit_events_by_client ON rate_limit_events (client, kind, at_us);
CREATE INDEX rate_limit_events_by_time ON rate_limit_events (at_us);
