-- Revision 0011 on SQLite: the two AFTER triggers of meetings that register jobs, as
-- sql/sqlite/30_triggers.sql wrote them at 0011: a meeting beyond the job horizon
-- (scheduler_horizons) gets no job, and one moved beyond it loses its job. The other triggers of
-- meetings are those of 0007.

DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
CREATE TRIGGER scheduler_meetings_after_insert
AFTER INSERT ON meetings
BEGIN
    -- SQLite keeps milliseconds and drops a finer fraction: an end time such as 09:26:00.0004
    -- would become 09:26:00.000 and its job would fire before it (PostgreSQL keeps
    -- microseconds). Such an end time is rounded up to the next millisecond instead (its first
    -- three fraction digits plus 1 ms), so that the schedule is the first minute at or after it.
    UPDATE meetings
       SET end_time = strftime('%Y-%m-%dT%H:%M:%f',
               substr(end_time, 1, 23)
               || substr(end_time, 21 + length(substr(end_time, 21))
                                      - length(ltrim(substr(end_time, 21), '0123456789'))),
               '+0.001 seconds')
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND typeof(end_time) = 'text' AND substr(end_time, 20, 1) = '.'
       AND length(rtrim(substr(end_time, 24, length(substr(end_time, 21))
                                              - length(ltrim(substr(end_time, 21), '0123456789'))
                                              - 3), '0')) > 0
       AND substr(strftime('%f', end_time), 4) = substr(end_time, 21, 3);
    -- Its completion event (path write) first, on the condition of the completion below: a nested
    -- trigger that completed the meeting already recorded it, and the row is then not pending.
    INSERT INTO scheduler_completion_events
           (meeting_id, end_time, completed_at, path, delivery, next_attempt_at, transition,
            key)
    SELECT m.id, strftime('%Y-%m-%dT%H:%M:%f', m.end_time) || '000+00:00', c.now, 'write',
           (SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
              FROM scheduler_webhooks w WHERE w.singleton = 1),
           c.now, 'meetings', m.id
      FROM meetings m,
           (SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00' AS now) c
     WHERE m.id = NEW.id AND m.status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND julianday(m.end_time) <= julianday('now');
    -- A pending meeting whose end time has passed is done at once; its end_time becomes UTC text.
    UPDATE meetings
       SET status = CASE WHEN julianday(end_time) <= julianday('now')
                         THEN (SELECT s.done_status FROM scheduler_statuses s) ELSE status END,
           end_time = strftime('%Y-%m-%dT%H:%M:%S', end_time)
               || CASE WHEN strftime('%f', end_time) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', end_time), 4) END || '+00:00'
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND (julianday(end_time) <= julianday('now')
            OR end_time IS NOT strftime('%Y-%m-%dT%H:%M:%S', end_time)
               || CASE WHEN strftime('%f', end_time) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', end_time), 4) END || '+00:00');
    -- Register the job of a meeting that is (still) pending.
    INSERT INTO cron_job (schedule, command, jobname)
    SELECT j.schedule, j.command, j.jobname
      FROM scheduler_meeting_jobs j
     WHERE j.meeting_id = NEW.id AND j.status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND COALESCE((SELECT s.enabled FROM scheduler_settings s WHERE s.singleton = 1), 1) = 1
       AND COALESCE((SELECT p.paused FROM scheduler_transitions p WHERE p.name = 'meetings'), 0) = 0
       -- not beyond the job horizon (revision 0011; transitions.beyond_horizon_sql)
       AND NOT COALESCE(julianday(j.end_time) > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('meetings', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0)
    ON CONFLICT (jobname) DO UPDATE
        -- like cron.schedule: a job someone deactivated stays inactive
        SET schedule = excluded.schedule, command = excluded.command;
END;

DROP TRIGGER IF EXISTS scheduler_meetings_after_update;
CREATE TRIGGER scheduler_meetings_after_update
AFTER UPDATE OF id, status, end_time ON meetings
BEGIN
    -- SQLite keeps milliseconds and drops a finer fraction: an end time such as 09:26:00.0004
    -- would become 09:26:00.000 and its job would fire before it (PostgreSQL keeps
    -- microseconds). Such an end time is rounded up to the next millisecond instead (its first
    -- three fraction digits plus 1 ms), so that the schedule is the first minute at or after it.
    UPDATE meetings
       SET end_time = strftime('%Y-%m-%dT%H:%M:%f',
               substr(end_time, 1, 23)
               || substr(end_time, 21 + length(substr(end_time, 21))
                                      - length(ltrim(substr(end_time, 21), '0123456789'))),
               '+0.001 seconds')
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND typeof(end_time) = 'text' AND substr(end_time, 20, 1) = '.'
       AND length(rtrim(substr(end_time, 24, length(substr(end_time, 21))
                                              - length(ltrim(substr(end_time, 21), '0123456789'))
                                              - 3), '0')) > 0
       AND substr(strftime('%f', end_time), 4) = substr(end_time, 21, 3);
    -- Its completion event (path write) first, on the condition of the completion below: a nested
    -- trigger that completed the meeting already recorded it, and the row is then not pending.
    INSERT INTO scheduler_completion_events
           (meeting_id, end_time, completed_at, path, delivery, next_attempt_at, transition,
            key)
    SELECT m.id, strftime('%Y-%m-%dT%H:%M:%f', m.end_time) || '000+00:00', c.now, 'write',
           (SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
              FROM scheduler_webhooks w WHERE w.singleton = 1),
           c.now, 'meetings', m.id
      FROM meetings m,
           (SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00' AS now) c
     WHERE m.id = NEW.id AND m.status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND julianday(m.end_time) <= julianday('now');
    -- A pending meeting whose end time has passed is done at once; its end_time becomes UTC text.
    UPDATE meetings
       SET status = CASE WHEN julianday(end_time) <= julianday('now')
                         THEN (SELECT s.done_status FROM scheduler_statuses s) ELSE status END,
           end_time = strftime('%Y-%m-%dT%H:%M:%S', end_time)
               || CASE WHEN strftime('%f', end_time) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', end_time), 4) END || '+00:00'
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND (julianday(end_time) <= julianday('now')
            OR end_time IS NOT strftime('%Y-%m-%dT%H:%M:%S', end_time)
               || CASE WHEN strftime('%f', end_time) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', end_time), 4) END || '+00:00');
    -- A meeting that left the pending status (or whose id changed) loses its job.
    DELETE FROM cron_job
     WHERE jobname = 'meeting-status-' || OLD.id
       AND (NEW.id IS NOT OLD.id
            OR NOT EXISTS (SELECT 1 FROM meetings m
                            WHERE m.id = NEW.id
                              AND m.status = (SELECT s.pending_status FROM scheduler_statuses s)));
    -- A meeting moved beyond the job horizon loses its job (revision 0011).
    DELETE FROM cron_job
     WHERE jobname = 'meeting-status-' || NEW.id
       AND COALESCE(julianday(NEW.end_time) > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('meetings', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0);
    -- A meeting that became pending, or whose end time moved, gets its job (re)registered.
    INSERT INTO cron_job (schedule, command, jobname)
    SELECT j.schedule, j.command, j.jobname
      FROM scheduler_meeting_jobs j
     WHERE j.meeting_id = NEW.id AND j.status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND (NEW.id IS NOT OLD.id OR OLD.status IS NOT (SELECT s.pending_status FROM scheduler_statuses s)
            OR julianday(OLD.end_time) IS NOT julianday(NEW.end_time))
       AND COALESCE((SELECT s.enabled FROM scheduler_settings s WHERE s.singleton = 1), 1) = 1
       AND COALESCE((SELECT p.paused FROM scheduler_transitions p WHERE p.name = 'meetings'), 0) = 0
       -- not beyond the job horizon (revision 0011; transitions.beyond_horizon_sql)
       AND NOT COALESCE(julianday(j.end_time) > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('meetings', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0)
    ON CONFLICT (jobname) DO UPDATE
        -- like cron.schedule: a job someone deactivated stays inactive
        SET schedule = excluded.schedule, command = excluded.command;
END;
