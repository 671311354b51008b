-- Revision 0009 on SQLite: the table of rows that could not be completed (the text of
-- sql/sqlite/10_schema.sql, so that a migrated and a new database have the same schema).
-- Rows that could not be completed (revision 0009), the twin of scheduler.failing_rows: the
-- transition, the row's key as text, the error, and when to try again. A set of due rows whose
-- update fails is split in halves until the rows that fail are alone (each attempt in a
-- savepoint, rolled back when it fails); each of those is recorded here (attempts + 1 on each
-- new failure) and left out of every completion until retry_at, 10 s after its first failure,
-- doubling per attempt, at most an hour: one row that a CHECK constraint or a trigger (the
-- application's, or another transition's) rejects never holds up another, and costs bounded
-- work. The entry goes when the row completes; reconcile also removes those whose row is gone
-- or no longer pending. Times are ISO-8601 UTC text; sqlstate is null on SQLite (PostgreSQL's
-- error code). Shown by doctor (health's failing_rows) and the metrics.
CREATE TABLE IF NOT EXISTS scheduler_failing_rows (
    transition TEXT NOT NULL,
    row_key TEXT NOT NULL,
    error TEXT NOT NULL,
    sqlstate TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_failed_at TEXT NOT NULL,
    last_failed_at TEXT NOT NULL,
    retry_at TEXT NOT NULL,
    PRIMARY KEY (transition, row_key)
);
