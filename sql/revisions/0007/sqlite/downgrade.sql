-- Downgrade of revision 0007 on SQLite, after the migration dropped the triggers generated for
-- the registered transitions: scheduler_completion_events and scheduler_metric_totals are
-- rebuilt in their shape of 0006 (the text of 0004's 10_schema.sql), as the upgrade rebuilt
-- them. Only the meetings' events (with their attempts and ids) and the meetings' totals are
-- kept: 0006 has no place for another transition's. The AUTOINCREMENT counter is kept. 0004's
-- 20_views.sql and 0006's 30_triggers.sql come next, then the migration re-creates the
-- generated triggers as 0006 wrote them.
DROP VIEW IF EXISTS scheduler_events;
DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_after_update;

CREATE TEMP TABLE scheduler_0007_events AS
    SELECT * FROM scheduler_completion_events WHERE transition = 'meetings';
CREATE TEMP TABLE scheduler_0007_attempts AS
    SELECT * FROM scheduler_webhook_attempts
     WHERE event_id IN (SELECT event_id FROM temp.scheduler_0007_events);
CREATE TEMP TABLE scheduler_0007_totals AS
    SELECT * FROM scheduler_metric_totals WHERE transition = 'meetings';
CREATE TEMP TABLE scheduler_0007_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'scheduler_completion_events';

DELETE FROM scheduler_webhook_attempts;
DROP INDEX IF EXISTS scheduler_completion_events_transition_idx;
DROP INDEX IF EXISTS scheduler_completion_events_pending_idx;
DROP INDEX IF EXISTS scheduler_completion_events_completed_at_idx;
DROP TABLE scheduler_completion_events;
DROP TABLE scheduler_metric_totals;

CREATE TABLE scheduler_completion_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL UNIQUE DEFAULT (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
        || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-'
        || lower(hex(randomblob(6)))
    ),
    meeting_id TEXT NOT NULL,
    end_time TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    path TEXT NOT NULL
        CHECK (path IN ('job', 'sweep', 'waker', 'reconcile', 'recover', 'write')),
    delivery TEXT CHECK (delivery IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    delivered_at TEXT,
    last_error TEXT
);
CREATE INDEX scheduler_completion_events_completed_at_idx
    ON scheduler_completion_events (completed_at);
CREATE INDEX scheduler_completion_events_pending_idx
    ON scheduler_completion_events (next_attempt_at) WHERE delivery = 'pending';
CREATE TABLE scheduler_metric_totals (
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (name, label)
);

INSERT INTO scheduler_completion_events
       (event_id, event_key, meeting_id, end_time, completed_at, path, delivery, attempts,
       next_attempt_at, claimed_until, delivered_at, last_error)
SELECT event_id, event_key, meeting_id, end_time, completed_at, path, delivery, attempts,
       next_attempt_at, claimed_until, delivered_at, last_error
  FROM temp.scheduler_0007_events ORDER BY event_id;
DELETE FROM sqlite_sequence WHERE name = 'scheduler_completion_events';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'scheduler_completion_events', seq FROM temp.scheduler_0007_sequence;
INSERT INTO scheduler_webhook_attempts SELECT * FROM temp.scheduler_0007_attempts;
INSERT INTO scheduler_metric_totals (name, label, value)
SELECT name, label, value FROM temp.scheduler_0007_totals;

DROP TABLE temp.scheduler_0007_events;
DROP TABLE temp.scheduler_0007_attempts;
DROP TABLE temp.scheduler_0007_totals;
DROP TABLE temp.scheduler_0007_sequence;
