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
