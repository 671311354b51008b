-- Settings, the emulated pg_cron tables, the worker's state and the meetings table.
-- Idempotent: every statement can run again on a migrated database without changing it.
-- Times are ISO-8601 UTC text (2026-12-01T15:30:00+00:00); the triggers validate and normalise them.

-- One row. enabled = 0 pauses the scheduler (triggers register no job, jobs change nothing);
-- history_retention_days bounds our rows in cron_job_run_details.
CREATE TABLE IF NOT EXISTS scheduler_settings (
    singleton INTEGER PRIMARY KEY NOT NULL DEFAULT 1 CHECK (singleton = 1),
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    history_retention_days INTEGER NOT NULL DEFAULT 7 CHECK (history_retention_days >= 0),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))
);
INSERT OR IGNORE INTO scheduler_settings (singleton) VALUES (1);

-- The words of meetings.status the scheduler acts on, for tables that use their own
-- (scheduled/completed, ...): a pending meeting gets a job and becomes done at its end_time,
-- cancel_meeting sets cancelled, any other status is left alone. One row, the twin of the columns
-- pending_status, done_status and cancelled_status of scheduler.settings on PostgreSQL: a table
-- of its own because SQLite cannot add a column only when it is missing, and every file here
-- runs again on a migrated database. Set with configure_statuses()
-- (scheduler_admin/sqlite/statuses.py; the migration calls it when it is given other words).
CREATE TABLE IF NOT EXISTS scheduler_statuses (
    singleton INTEGER PRIMARY KEY NOT NULL DEFAULT 1 CHECK (singleton = 1),
    pending_status TEXT NOT NULL DEFAULT 'upcoming',
    done_status TEXT NOT NULL DEFAULT 'done',
    cancelled_status TEXT NOT NULL DEFAULT 'cancelled',
    CONSTRAINT scheduler_statuses_check CHECK (
        typeof(pending_status) = 'text' AND typeof(done_status) = 'text'
        AND typeof(cancelled_status) = 'text'
        AND pending_status <> '' AND done_status <> '' AND cancelled_status <> ''
        AND pending_status <> done_status AND pending_status <> cancelled_status
        AND done_status <> cancelled_status)
);
INSERT OR IGNORE INTO scheduler_statuses (singleton) VALUES (1);

-- Shaped like pg_cron's cron.job (the columns that make sense in SQLite).
CREATE TABLE IF NOT EXISTS cron_job (
    jobid INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    command TEXT NOT NULL,
    nodename TEXT NOT NULL DEFAULT 'localhost',
    nodeport INTEGER NOT NULL DEFAULT 0,
    database TEXT NOT NULL DEFAULT 'main',
    username TEXT NOT NULL DEFAULT 'scheduler',
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    jobname TEXT UNIQUE
);

-- Shaped like pg_cron's cron.job_run_details. status: starting, running, succeeded, failed.
CREATE TABLE IF NOT EXISTS cron_job_run_details (
    jobid INTEGER,
    runid INTEGER PRIMARY KEY AUTOINCREMENT,
    job_pid INTEGER,
    database TEXT,
    username TEXT,
    command TEXT,
    status TEXT,
    return_message TEXT,
    start_time TEXT,
    end_time TEXT
);
CREATE INDEX IF NOT EXISTS scheduler_run_details_start_time_idx
    ON cron_job_run_details (start_time);

-- One row: the last minute the emulated cron worker ran, and its heartbeat.
CREATE TABLE IF NOT EXISTS scheduler_worker (
    singleton INTEGER PRIMARY KEY NOT NULL DEFAULT 1 CHECK (singleton = 1),
    last_minute TEXT,
    heartbeat_at TEXT,
    pid INTEGER,
    hostname TEXT
);
INSERT OR IGNORE INTO scheduler_worker (singleton) VALUES (1);

-- The application's table: created when it is missing (id defaults to a random UUID v4 string),
-- with the default words in its status constraint (a CHECK cannot read scheduler_statuses).
CREATE TABLE IF NOT EXISTS meetings (
    id TEXT PRIMARY KEY NOT NULL DEFAULT (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-'
        || lower(hex(randomblob(6)))
    ),
    title TEXT,
    start_time TEXT,
    end_time TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'upcoming'
        CONSTRAINT meetings_status_check CHECK (status IN ('upcoming', 'done', 'cancelled')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))
);

-- If meetings already existed, check that the columns we rely on are there (SQLite can only
-- RAISE inside a trigger, hence the temporary table and trigger).
CREATE TEMP TABLE IF NOT EXISTS scheduler_preflight (x INTEGER);
CREATE TEMP TRIGGER IF NOT EXISTS scheduler_preflight_check
BEFORE INSERT ON scheduler_preflight
BEGIN
    SELECT RAISE(ABORT, 'meetings exists but has no column "id": add it (id TEXT PRIMARY KEY) or let the migration create the table')
    WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('meetings', 'main') WHERE name = 'id');
    SELECT RAISE(ABORT, 'meetings exists but has no column "status": add it (status TEXT NOT NULL DEFAULT ''upcoming'') or let the migration create the table')
    WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('meetings', 'main') WHERE name = 'status');
    SELECT RAISE(ABORT, 'meetings exists but has no column "end_time": add it (end_time TEXT NOT NULL, ISO-8601 UTC) or let the migration create the table')
    WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('meetings', 'main') WHERE name = 'end_time');
END;
INSERT INTO temp.scheduler_preflight (x) VALUES (1);
DROP TABLE IF EXISTS temp.scheduler_preflight;

CREATE INDEX IF NOT EXISTS scheduler_meetings_status_end_time_idx ON meetings (status, end_time);

-- Completion events (revision 0004): one row per meeting the scheduler completed, written in the
-- transaction that completed it; the twin of scheduler.completion_events. path says how
-- (scheduler_admin.backends.base.PATHS: job = the emulated worker ran the meeting's job, waker,
-- reconcile, recover = recover/resume/configure_statuses, write = a write to meetings with an end
-- time already past, which the after triggers completed). An application's own UPDATE setting a
-- meeting done is no event. end_time and completed_at are UTC text with six fraction digits
-- (YYYY-MM-DDTHH:MM:SS.ffffff+00:00), so that they compare as text and lateness is exact
-- (view scheduler_events, 20_views.sql). delivery: NULL when webhooks were off at completion,
-- else pending, delivered or failed; attempts counts the claims of a dispatcher (claim_events),
-- claimed_until is a dispatcher's lease and next_attempt_at when the event may be claimed again.
-- transition and key (revision 0007): the transition that completed the row and the row's key as
-- text (meetings: 'meetings' and the meeting id, also in meeting_id; another transition's row:
-- meeting_id NULL). Revision 0007 rebuilt the table to add them and let meeting_id be null,
-- keeping every event, its id and its attempts.
CREATE TABLE IF NOT EXISTS scheduler_completion_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL UNIQUE DEFAULT (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-'
        || lower(hex(randomblob(6)))
    ),
    meeting_id TEXT,
    end_time TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    path TEXT NOT NULL
        CHECK (path IN ('job', 'sweep', 'waker', 'reconcile', 'recover', 'write')),
    delivery TEXT CHECK (delivery IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    delivered_at TEXT,
    last_error TEXT,
    transition TEXT NOT NULL DEFAULT 'meetings',
    key TEXT NOT NULL,
    CHECK ((transition = 'meetings') = (meeting_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS scheduler_completion_events_completed_at_idx
    ON scheduler_completion_events (completed_at);
CREATE INDEX IF NOT EXISTS scheduler_completion_events_pending_idx
    ON scheduler_completion_events (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX IF NOT EXISTS scheduler_completion_events_transition_idx
    ON scheduler_completion_events (transition, event_id);

-- One row per delivery attempt of an event (record_attempt), the twin of
-- scheduler.webhook_attempts. outcome: delivered, retry (tried again later) or failed (given up).
-- The rows go with their event (retention deletes both; the foreign key cascades where
-- PRAGMA foreign_keys is on).
CREATE TABLE IF NOT EXISTS scheduler_webhook_attempts (
    attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL
        REFERENCES scheduler_completion_events (event_id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
    status_code INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS scheduler_webhook_attempts_event_idx
    ON scheduler_webhook_attempts (event_id);

-- One row: whether new completion events are to be delivered by webhook (delivery = 'pending'),
-- the twin of scheduler.settings.webhooks (a table of its own, as scheduler_statuses is).
CREATE TABLE IF NOT EXISTS scheduler_webhooks (
    singleton INTEGER PRIMARY KEY NOT NULL DEFAULT 1 CHECK (singleton = 1),
    enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1))
);
INSERT OR IGNORE INTO scheduler_webhooks (singleton) VALUES (1);

-- The counts of the completion events the retention deleted (reconcile), so that the counters
-- of metrics() never decrease; the twin of scheduler.metric_totals, with its names: completions
-- (label: the path), lateness_le (label: the bucket's upper bound in seconds; cumulative),
-- lateness_count, lateness_sum (seconds), webhook_delivered, webhook_failed,
-- webhook_attempt_failures. Per transition (revision 0007, which rebuilt the table keeping the
-- totals of meetings): the metrics of one transition never decrease either.
CREATE TABLE IF NOT EXISTS scheduler_metric_totals (
    transition TEXT NOT NULL DEFAULT 'meetings',
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (transition, name, label)
);

-- The registry of timed transitions (revision 0005), the twin of scheduler.transitions: rows of
-- table_name whose state_column holds one of from_states (a JSON array of text) get to_state at
-- their time_column (ISO-8601 text, validated like meetings.end_time), through one job per
-- pending row named <job_prefix><key> whose command is complete_transition('<name>', '<key>').
-- Each non-builtin row has triggers on its table, generated from this row by
-- scheduler_admin/sqlite/transitions.py (SQLite triggers cannot take their table or columns as
-- parameters): scheduler_<name>_before_insert, _before_update, _after_insert, _after_update,
-- _after_delete. meetings is the builtin row: its triggers are those of 30_triggers.sql, its
-- states are the words of scheduler_statuses (read when listed, hence null here), and it is
-- neither removable nor added again. Names, prefixes and columns are validated by add_transition;
-- the checks below keep the rules that a row alone can state.
-- paused (revision 0006): the transition is paused by name (pause --transition): its triggers
-- register no job, its jobs change nothing, recover refuses it and reconcile and the waker skip
-- it; the scheduler as a whole is paused by scheduler_settings.enabled. Revision 0006 added the
-- column with ALTER TABLE, which writes it right after the last column, on created_at's line:
-- it is written there here too, so that a migrated and a new database have the same schema.
CREATE TABLE IF NOT EXISTS scheduler_transitions (
    name TEXT PRIMARY KEY NOT NULL
        CHECK (typeof(name) = 'text' AND length(name) BETWEEN 1 AND 40
               AND name GLOB '[a-z]*' AND name NOT GLOB '*[^a-z0-9_]*'),
    table_name TEXT NOT NULL,
    key_column TEXT NOT NULL,
    time_column TEXT NOT NULL,
    state_column TEXT NOT NULL,
    from_states TEXT CHECK (from_states IS NULL OR (json_valid(from_states)
                                                    AND json_type(from_states) = 'array')),
    to_state TEXT,
    job_prefix TEXT NOT NULL UNIQUE
        CHECK (job_prefix GLOB '[a-z]*-' AND job_prefix NOT GLOB '*[^a-z0-9-]*'),
    builtin INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')), paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    CONSTRAINT scheduler_transitions_states_check
        CHECK (builtin = 1 OR (from_states IS NOT NULL AND to_state IS NOT NULL)),
    CONSTRAINT scheduler_transitions_table_time_key UNIQUE (table_name, time_column)
);
INSERT OR IGNORE INTO scheduler_transitions
       (name, table_name, key_column, time_column, state_column, job_prefix, builtin)
VALUES ('meetings', 'meetings', 'id', 'end_time', 'status', 'meeting-status-', 1);

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

-- The job horizon (revision 0011), the twin of scheduler.settings.job_horizon and
-- scheduler.transitions.job_horizon: a pending row gets its job once its time is within the
-- horizon of its transition; the reconcile job registers the rows entering it. One row per
-- transition with a horizon of its own, and the row '*' for the default of every transition; no
-- row: no horizon (every pending row has its job). At least 15 minutes (900 s). A table of its
-- own, as scheduler_statuses is. Set with set_job_horizon() (scheduler_admin/sqlite/horizon.py).
CREATE TABLE IF NOT EXISTS scheduler_horizons (
    transition TEXT PRIMARY KEY NOT NULL,
    horizon_seconds INTEGER NOT NULL CHECK (horizon_seconds >= 900)
);

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
