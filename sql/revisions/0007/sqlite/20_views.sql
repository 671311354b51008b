-- unchanged since 0001: view scheduler_meeting_jobs
-- unchanged since 0003: view scheduler_upcoming_jobs
-- unchanged since 0003: view scheduler_orphan_jobs

-- Twin of the rows of scheduler.events() (sql/postgres/40_admin.sql) and of the generated column
-- lateness of scheduler.completion_events: every completion event with its lateness
-- (completed_at - end_time) in whole microseconds (exact: both times are stored with six
-- fraction digits, 10_schema.sql) and in seconds; with its transition and key (revision 0007).
DROP VIEW IF EXISTS scheduler_events;
CREATE VIEW scheduler_events AS
SELECT e.event_id AS event_id,
       e.event_key AS event_key,
       e.meeting_id AS meeting_id,
       e.end_time AS end_time,
       e.completed_at AS completed_at,
       e.lateness_us AS lateness_us,
       e.lateness_us / 1000000.0 AS lateness_seconds,
       e.path AS path,
       e.delivery AS delivery,
       e.attempts AS attempts,
       e.next_attempt_at AS next_attempt_at,
       e.claimed_until AS claimed_until,
       e.delivered_at AS delivered_at,
       e.last_error AS last_error,
       e.transition AS transition,
       e.key AS key
FROM (
    SELECT c.*,
           (CAST(strftime('%s', c.completed_at) AS INTEGER)
               - CAST(strftime('%s', c.end_time) AS INTEGER)) * 1000000
           + CAST(substr(c.completed_at, 21, 6) AS INTEGER)
           - CAST(substr(c.end_time, 21, 6) AS INTEGER) AS lateness_us
    FROM scheduler_completion_events c
) e;
