-- Revision 0012 on SQLite: the lease of the one active waker among the processes that share the
-- file (the text of sql/sqlite/10_schema.sql, so that a migrated and a new database have the
-- same schema).

-- The election of the application's waker (revision 0012), the twin of scheduler.waker_lease:
-- several processes may share one SQLite file (an application served by several workers), each
-- with its waker; the holder of the lease of a scope ('*': every transition, or a transition's
-- name) calls wake(), the others stand by. Times are to_event_time() text (microseconds), so
-- they compare as text. Written by claim_waker() and release_waker()
-- (scheduler_admin/sqlite/waker.py).
CREATE TABLE IF NOT EXISTS scheduler_waker_lease (
    scope TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
