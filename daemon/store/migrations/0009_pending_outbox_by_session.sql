-- A session's pending outbox items, found from an index. Queueing a calendar write marks
-- the session's earlier pending writes superseded (daemon/store/queue.py), inside the
-- booking's transaction; with only the pending index to go on, that walked every pending
-- item of every session. While a calendar server is slow or down, thousands are pending,
-- and each booking paid for all of them with the write lock held (0.6 ms at 5,000).
CREATE INDEX outbox_pending_by_session ON outbox (session_id)
    WHERE done_at IS NULL AND superseded = 0;
