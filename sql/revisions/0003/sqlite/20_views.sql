-- unchanged since 0001: view scheduler_meeting_jobs

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
