-- Revision 0007 on SQLite: completion events of every transition. scheduler_completion_events
-- gains transition and key and its meeting_id may be null (another transition's row), and
-- scheduler_metric_totals is kept per transition. SQLite can neither drop a NOT NULL nor change a
-- primary key in place, so both tables are rebuilt: their rows are copied aside (temporary
-- tables), the tables dropped and created again in their new shape (the text of
-- sql/sqlite/10_schema.sql, so that a migrated and a new database have the same schema), and
-- the rows copied back with their ids: the existing events are the meetings' (key = meeting id).
-- The attempts are copied aside too and put back: where PRAGMA foreign_keys is on, dropping the
-- events would cascade to them. The AUTOINCREMENT counter of the events is kept, so that no
-- event id is ever given twice. The view scheduler_events and the meetings triggers that
-- record events are dropped first and created again by 20_views.sql and 30_triggers.sql of
-- 0007 (applied next), the triggers generated per transition by the migration itself.
DROP VIEW IF EXISTS scheduler_events;
DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_after_update;

CREATE TEMP TABLE scheduler_0007_events AS SELECT * FROM scheduler_completion_events;
CREATE TEMP TABLE scheduler_0007_attempts AS SELECT * FROM scheduler_webhook_attempts;
CREATE TEMP TABLE scheduler_0007_totals AS SELECT * FROM scheduler_metric_totals;
CREATE TEMP TABLE scheduler_0007_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'scheduler_completion_events';

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
CREATE INDEX scheduler_completion_events_completed_at_idx
    ON scheduler_completion_events (completed_at);
CREATE INDEX scheduler_completion_events_pending_idx
    ON scheduler_completion_events (next_attempt_at) WHERE delivery = 'pending';
CREATE INDEX scheduler_completion_events_transition_idx
    ON scheduler_completion_events (transition, event_id);
CREATE TABLE scheduler_metric_totals (
    transition TEXT NOT NULL DEFAULT 'meetings',
    name TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    value REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (transition, name, label)
);

INSERT INTO scheduler_completion_events
       (event_id, event_key, meeting_id, end_time, completed_at, path, delivery, attempts,
       next_attempt_at, claimed_until, delivered_at, last_error,
       transition, key)
SELECT event_id, event_key, meeting_id, end_time, completed_at, path, delivery, attempts,
       next_attempt_at, claimed_until, delivered_at, last_error,
       'meetings', meeting_id
  FROM temp.scheduler_0007_events ORDER BY event_id;
DELETE FROM sqlite_sequence WHERE name = 'scheduler_completion_events';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'scheduler_completion_events', seq FROM temp.scheduler_0007_sequence;
INSERT OR IGNORE INTO scheduler_webhook_attempts SELECT * FROM temp.scheduler_0007_attempts;
INSERT INTO scheduler_metric_totals (transition, name, label, value)
SELECT 'meetings', name, label, value FROM temp.scheduler_0007_totals;

DROP TABLE temp.scheduler_0007_events;
DROP TABLE temp.scheduler_0007_attempts;
DROP TABLE temp.scheduler_0007_totals;
DROP TABLE temp.scheduler_0007_sequence;
