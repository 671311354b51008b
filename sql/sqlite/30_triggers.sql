-- Triggers on meetings: plain SQLite, so that a write from any client (the sqlite3 shell
-- included) schedules like PostgreSQL does.
--
-- The words of meetings.status are those of scheduler_statuses (10_schema.sql): pending
-- (default upcoming), done (done), cancelled (cancelled). Only pending meetings are ours: a row
-- with any other status (the application's own, or null) is left alone, neither checked nor
-- changed, and gets no job. BEFORE triggers reject a pending meeting with a missing or
-- unparsable end_time with RAISE(ABORT): the statement fails and no row is written. SQLite
-- cannot change NEW in a BEFORE trigger, so the AFTER triggers fix the stored row up (a pending
-- meeting whose end_time has passed becomes done; its end_time is rewritten as UTC text
-- YYYY-MM-DDTHH:MM:SS[.fff]+00:00) and then register or remove the meeting's job in cron_job:
-- one job per pending meeting, named meeting-status-<id>, defined by scheduler_meeting_jobs.
-- A meeting the after triggers complete gets its completion event (scheduler_completion_events,
-- path write, at SQLite's clock), in the writing statement.
-- Paused (scheduler_settings.enabled = 0), or meetings paused by name (the paused flag of its
-- row in scheduler_transitions, revision 0006): no job is registered; jobs are still removed.
-- Every trigger is idempotent, so recursive_triggers = ON terminates as well.

DROP TRIGGER IF EXISTS scheduler_meetings_before_insert;
CREATE TRIGGER scheduler_meetings_before_insert
BEFORE INSERT ON meetings
BEGIN
    SELECT RAISE(ABORT, 'meetings.end_time is required: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND NEW.end_time IS NULL;
    SELECT RAISE(ABORT, 'meetings.end_time is not a valid time: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND NEW.end_time IS NOT NULL
      AND (typeof(NEW.end_time) <> 'text'
          OR NEW.end_time NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*'
          OR julianday(NEW.end_time) IS NULL
          OR date(julianday(substr(NEW.end_time, 1, 10))) IS NOT substr(NEW.end_time, 1, 10)
          OR substr(NEW.end_time, 12, 2) > '23');
    SELECT RAISE(ABORT, 'meetings.id is required and must not be "reconcile" (reserved for the job meeting-status-reconcile)')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND (NEW.id IS NULL OR NEW.id = 'reconcile');
END;

DROP TRIGGER IF EXISTS scheduler_meetings_before_update;
CREATE TRIGGER scheduler_meetings_before_update
BEFORE UPDATE OF id, status, end_time ON meetings
BEGIN
    SELECT RAISE(ABORT, 'meetings.end_time is required: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND NEW.end_time IS NULL;
    SELECT RAISE(ABORT, 'meetings.end_time is not a valid time: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND NEW.end_time IS NOT NULL
      AND (typeof(NEW.end_time) <> 'text'
          OR NEW.end_time NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*'
          OR julianday(NEW.end_time) IS NULL
          OR date(julianday(substr(NEW.end_time, 1, 10))) IS NOT substr(NEW.end_time, 1, 10)
          OR substr(NEW.end_time, 12, 2) > '23');
    SELECT RAISE(ABORT, 'meetings.id is required and must not be "reconcile" (reserved for the job meeting-status-reconcile)')
    WHERE NEW.status = (SELECT s.pending_status FROM scheduler_statuses s)
      AND (NEW.id IS NULL OR NEW.id = 'reconcile');
END;

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
    -- A pending meeting whose end time has passed is done at once; its end_time becomes UTC text,
    -- whole seconds and milliseconds read from one instant (julianday(), revision 0013): read
    -- apart, '%S' truncated 21.999987 to 21 while '%f' rounded it to 22.000, storing 21 (early).
    UPDATE meetings
       SET status = CASE WHEN julianday(end_time) <= julianday('now')
                         THEN (SELECT s.done_status FROM scheduler_statuses s) ELSE status END,
           end_time = strftime('%Y-%m-%dT%H:%M:%S', julianday(end_time))
               || CASE WHEN strftime('%f', julianday(end_time)) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', julianday(end_time)), 4) END || '+00:00'
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND (julianday(end_time) <= julianday('now')
            OR end_time IS NOT strftime('%Y-%m-%dT%H:%M:%S', julianday(end_time))
               || CASE WHEN strftime('%f', julianday(end_time)) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', julianday(end_time)), 4) END || '+00:00');
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
    -- A pending meeting whose end time has passed is done at once; its end_time becomes UTC text,
    -- whole seconds and milliseconds read from one instant (julianday(), revision 0013): read
    -- apart, '%S' truncated 21.999987 to 21 while '%f' rounded it to 22.000, storing 21 (early).
    UPDATE meetings
       SET status = CASE WHEN julianday(end_time) <= julianday('now')
                         THEN (SELECT s.done_status FROM scheduler_statuses s) ELSE status END,
           end_time = strftime('%Y-%m-%dT%H:%M:%S', julianday(end_time))
               || CASE WHEN strftime('%f', julianday(end_time)) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', julianday(end_time)), 4) END || '+00:00'
     WHERE id = NEW.id AND status = (SELECT s.pending_status FROM scheduler_statuses s)
       AND (julianday(end_time) <= julianday('now')
            OR end_time IS NOT strftime('%Y-%m-%dT%H:%M:%S', julianday(end_time))
               || CASE WHEN strftime('%f', julianday(end_time)) GLOB '*.000' THEN ''
                       ELSE '.' || substr(strftime('%f', julianday(end_time)), 4) END || '+00:00');
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

DROP TRIGGER IF EXISTS scheduler_meetings_after_delete;
CREATE TRIGGER scheduler_meetings_after_delete
AFTER DELETE ON meetings
BEGIN
    DELETE FROM cron_job WHERE jobname = 'meeting-status-' || OLD.id;
END;
