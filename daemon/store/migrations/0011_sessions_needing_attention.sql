-- The sessions waiting for the admin, from an index of them alone. /healthz, /metrics and
-- the systemd status line count them; without an index each count read the whole
-- sessions table, a desk's history included (10 ms at 100,000 sessions), on every probe.
CREATE INDEX sessions_needing_attention ON sessions (start_ts)
    WHERE needs_attention IS NOT NULL;
