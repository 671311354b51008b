-- The job each meeting should have: one place that defines job names, schedules and commands.
-- schedule is the five-field cron expression (minute hour day month *, UTC, no leading zeros)
-- of the first UTC minute at or after end_time: an end time at exactly :00.000 seconds stays in
-- its minute, anything later rounds up, so a job never fires before end_time. The command is
-- interpreted by the emulated cron worker; the id is quoted as an SQL literal.
DROP VIEW IF EXISTS scheduler_meeting_jobs;
CREATE VIEW scheduler_meeting_jobs AS
SELECT m.id AS meeting_id,
       m.status AS status,
       m.end_time AS end_time,
       'meeting-status-' || m.id AS jobname,
       CAST(strftime('%M', m.job_minute) AS INTEGER) || ' '
           || CAST(strftime('%H', m.job_minute) AS INTEGER) || ' '
           || CAST(strftime('%d', m.job_minute) AS INTEGER) || ' '
           || CAST(strftime('%m', m.job_minute) AS INTEGER) || ' *' AS schedule,
       'complete_meeting(' || quote(m.id) || ')' AS command,
       m.job_minute AS job_minute
FROM (
    SELECT id, status, end_time,
           CASE WHEN strftime('%f', end_time) = '00.000'
                THEN strftime('%Y-%m-%d %H:%M:00', end_time)
                ELSE datetime(strftime('%Y-%m-%d %H:%M:00', end_time), '+1 minute')
           END AS job_minute
    FROM meetings
) m;

-- Twin of scheduler.upcoming_jobs() (sql/postgres/20_functions.sql): the job every pending
-- meeting (status scheduler_statuses.pending_status, default upcoming) should have, next to the
-- job it has (the comparison scheduler.repair() makes).
-- end_utc is end_time in UTC at millisecond precision (null when it cannot be read); job_ok is
-- 1 when the meeting's job exists with the right schedule and command, 0 when it is wrong,
-- null when it is missing. Whether a meeting is overdue depends on the caller's clock, which a
-- view cannot take: the caller compares end_utc with it.
DROP VIEW IF EXISTS scheduler_upcoming_jobs;
CREATE VIEW scheduler_upcoming_jobs AS
SELECT s.meeting_id AS meeting_id,
       s.end_time AS end_time,
       strftime('%Y-%m-%dT%H:%M:%f', s.end_time) AS end_utc,
       s.jobname AS job_name,
       s.schedule AS schedule,
       s.command AS command,
       s.job_minute AS fires_at,
       j.jobid AS jobid,
       CASE WHEN j.jobid IS NULL THEN NULL
            ELSE (j.schedule IS s.schedule AND j.command IS s.command) END AS job_ok
FROM scheduler_meeting_jobs s
LEFT JOIN cron_job j ON j.jobname = s.jobname
WHERE s.status = (SELECT w.pending_status FROM scheduler_statuses w);

-- Jobs of ours whose meeting is gone or no longer pending: a job named after a meeting that is
-- no pending meeting's job (scheduler.repair()'s leftover jobs; the reconcile job excluded).
DROP VIEW IF EXISTS scheduler_orphan_jobs;
CREATE VIEW scheduler_orphan_jobs AS
SELECT j.jobid AS jobid,
       j.jobname AS jobname,
       substr(j.jobname, 16) AS meeting_id
FROM cron_job j
WHERE substr(j.jobname, 1, 15) = 'meeting-status-'
  AND j.jobname <> 'meeting-status-reconcile'
  AND NOT EXISTS (SELECT 1 FROM scheduler_meeting_jobs s
                   WHERE s.status = (SELECT w.pending_status FROM scheduler_statuses w)
                     AND s.jobname = j.jobname);

-- Twin of the rows of scheduler.events() (sql/postgres/43_events.sql) and of the generated column
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
