-- The five triggers generated for each registered transition, as revision 0011: as 0007, and a
-- row beyond the transition's job horizon (scheduler_horizons) gets no job, and loses the one it
-- had when moved beyond it.
-- Placeholders (scheduler_admin.sqlite.transitions.PLACEHOLDER_SPEC): table t@ble, columns k@y,
-- t@me and st@te, name n@me, job prefix pref@x-, from-state fr@m, to-state t@state.

CREATE TRIGGER "scheduler_n@me_before_insert"
BEFORE INSERT ON "t@ble"
WHEN NEW."st@te" IN ('fr@m')
BEGIN
    SELECT RAISE(ABORT, 't@ble.t@me (transition n@me, a row in state fr@m) is required: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
     WHERE NEW."t@me" IS NULL;
    SELECT RAISE(ABORT, 't@ble.t@me (transition n@me, a row in state fr@m) is not a valid time: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
     WHERE NEW."t@me" IS NOT NULL
       AND (typeof(NEW."t@me") <> 'text'
    OR NEW."t@me" NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*'
    OR julianday(NEW."t@me") IS NULL
    OR date(julianday(substr(NEW."t@me", 1, 10))) IS NOT substr(NEW."t@me", 1, 10)
    OR substr(NEW."t@me", 12, 2) > '23');
END;

CREATE TRIGGER "scheduler_n@me_before_update"
BEFORE UPDATE OF "k@y", "t@me", "st@te" ON "t@ble"
WHEN NEW."st@te" IN ('fr@m')
BEGIN
    SELECT RAISE(ABORT, 't@ble.t@me (transition n@me, a row in state fr@m) is required: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
     WHERE NEW."t@me" IS NULL;
    SELECT RAISE(ABORT, 't@ble.t@me (transition n@me, a row in state fr@m) is not a valid time: expected ISO-8601 YYYY-MM-DDTHH:MM[:SS[.fff]] with Z or +HH:MM (UTC when omitted), e.g. 2026-12-01T15:30:00Z')
     WHERE NEW."t@me" IS NOT NULL
       AND (typeof(NEW."t@me") <> 'text'
    OR NEW."t@me" NOT GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-5][0-9]*'
    OR julianday(NEW."t@me") IS NULL
    OR date(julianday(substr(NEW."t@me", 1, 10))) IS NOT substr(NEW."t@me", 1, 10)
    OR substr(NEW."t@me", 12, 2) > '23');
END;

CREATE TRIGGER "scheduler_n@me_after_insert"
AFTER INSERT ON "t@ble"
WHEN NEW."st@te" IN ('fr@m')
BEGIN
    SELECT RAISE(ABORT, 't@ble.k@y is required for a row in state fr@m (transition n@me: its job is named pref@x-<k@y>)') WHERE NEW."k@y" IS NULL;
    -- a pending row whose time has passed gets the to-state at once (no job)
    -- its completion event (path write) first, on the condition below
    INSERT INTO scheduler_completion_events
           (meeting_id, end_time, completed_at, path, delivery, next_attempt_at, transition,
            key)
    SELECT NULL, strftime('%Y-%m-%dT%H:%M:%f', t."t@me") || '000+00:00', c.now, 'write',
           (SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
              FROM scheduler_webhooks w WHERE w.singleton = 1),
           c.now, 'n@me', CAST(t."k@y" AS TEXT)
      FROM "t@ble" t,
           (SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00' AS now) c
     WHERE t."k@y" = NEW."k@y"
       AND t."st@te" IN ('fr@m')
       AND julianday(t."t@me") <= julianday('now');
    UPDATE "t@ble" SET "st@te" = 't@state'
     WHERE "k@y" = NEW."k@y" AND "st@te" IN ('fr@m')
       AND julianday("t@me") <= julianday('now');
    -- a row still pending gets its job
    INSERT INTO cron_job (schedule, command, jobname)
    SELECT j.schedule, j.command, j.jobname
      FROM (SELECT m.key AS key, m.time AS time,
       'pref@x-' || CAST(m.key AS TEXT) AS jobname,
       CAST(strftime('%M', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%H', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%d', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%m', m.job_minute) AS INTEGER) || ' *' AS schedule,
       'complete_transition(''n@me'', ' || quote(CAST(m.key AS TEXT)) || ')' AS command,
       m.job_minute AS job_minute
  FROM (SELECT t."k@y" AS key, t."t@me" AS time,
               CASE WHEN strftime('%f', t."t@me") = '00.000'
      AND NOT (typeof(t."t@me") = 'text' AND substr(t."t@me", 20, 1) = '.'
       AND length(rtrim(substr(t."t@me", 24, length(substr(t."t@me", 21))
                  - length(ltrim(substr(t."t@me", 21), '0123456789'))
                  - 3), '0')) > 0
       AND substr(strftime('%f', t."t@me"), 4) = substr(t."t@me", 21, 3))
     THEN strftime('%Y-%m-%d %H:%M:00', t."t@me")
     ELSE datetime(strftime('%Y-%m-%d %H:%M:00', t."t@me"), '+1 minute')
END AS job_minute
          FROM "t@ble" t
         WHERE t."k@y" = NEW."k@y" AND t."st@te" IN ('fr@m')) m) j
     WHERE COALESCE((SELECT s.enabled FROM scheduler_settings s WHERE s.singleton = 1), 1) = 1
       AND COALESCE((SELECT p.paused FROM scheduler_transitions p WHERE p.name = 'n@me'), 0) = 0
       AND NOT COALESCE(julianday(j.time) > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('n@me', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0)
    ON CONFLICT (jobname) DO UPDATE
        -- like cron.schedule: a job someone deactivated stays inactive
        SET schedule = excluded.schedule, command = excluded.command
        WHERE cron_job.schedule IS NOT excluded.schedule
           OR cron_job.command IS NOT excluded.command;
END;

CREATE TRIGGER "scheduler_n@me_after_update"
AFTER UPDATE OF "k@y", "t@me", "st@te" ON "t@ble"
BEGIN
    SELECT RAISE(ABORT, 't@ble.k@y is required for a row in state fr@m (transition n@me: its job is named pref@x-<k@y>)')
     WHERE NEW."k@y" IS NULL AND NEW."st@te" IN ('fr@m');
    -- its completion event (path write) first, on the condition below
    INSERT INTO scheduler_completion_events
           (meeting_id, end_time, completed_at, path, delivery, next_attempt_at, transition,
            key)
    SELECT NULL, strftime('%Y-%m-%dT%H:%M:%f', t."t@me") || '000+00:00', c.now, 'write',
           (SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
              FROM scheduler_webhooks w WHERE w.singleton = 1),
           c.now, 'n@me', CAST(t."k@y" AS TEXT)
      FROM "t@ble" t,
           (SELECT strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00' AS now) c
     WHERE t."k@y" = NEW."k@y"
       AND t."st@te" IN ('fr@m')
       AND julianday(t."t@me") <= julianday('now');
    UPDATE "t@ble" SET "st@te" = 't@state'
     WHERE "k@y" = NEW."k@y" AND "st@te" IN ('fr@m')
       AND julianday("t@me") <= julianday('now');
    -- a row that left the pending states (or whose key changed) loses its job
    DELETE FROM cron_job
     WHERE jobname = 'pref@x-' || CAST(OLD."k@y" AS TEXT)
       AND (NEW."k@y" IS NOT OLD."k@y"
            OR NOT EXISTS (SELECT 1 FROM "t@ble" t WHERE t."k@y" = NEW."k@y" AND t."st@te" IN ('fr@m')));
    -- a row moved beyond the job horizon loses its job (revision 0011)
    DELETE FROM cron_job
     WHERE jobname = 'pref@x-' || CAST(NEW."k@y" AS TEXT)
       AND COALESCE(julianday(NEW."t@me") > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('n@me', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0);
    -- a row that became pending, or whose time moved, gets its job (re)registered
    INSERT INTO cron_job (schedule, command, jobname)
    SELECT j.schedule, j.command, j.jobname
      FROM (SELECT m.key AS key, m.time AS time,
       'pref@x-' || CAST(m.key AS TEXT) AS jobname,
       CAST(strftime('%M', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%H', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%d', m.job_minute) AS INTEGER) || ' '
    || CAST(strftime('%m', m.job_minute) AS INTEGER) || ' *' AS schedule,
       'complete_transition(''n@me'', ' || quote(CAST(m.key AS TEXT)) || ')' AS command,
       m.job_minute AS job_minute
  FROM (SELECT t."k@y" AS key, t."t@me" AS time,
               CASE WHEN strftime('%f', t."t@me") = '00.000'
      AND NOT (typeof(t."t@me") = 'text' AND substr(t."t@me", 20, 1) = '.'
       AND length(rtrim(substr(t."t@me", 24, length(substr(t."t@me", 21))
                  - length(ltrim(substr(t."t@me", 21), '0123456789'))
                  - 3), '0')) > 0
       AND substr(strftime('%f', t."t@me"), 4) = substr(t."t@me", 21, 3))
     THEN strftime('%Y-%m-%d %H:%M:00', t."t@me")
     ELSE datetime(strftime('%Y-%m-%d %H:%M:00', t."t@me"), '+1 minute')
END AS job_minute
          FROM "t@ble" t
         WHERE t."k@y" = NEW."k@y" AND t."st@te" IN ('fr@m')) m) j
     WHERE (NEW."k@y" IS NOT OLD."k@y" OR NOT COALESCE(OLD."st@te" IN ('fr@m'), 0)
            OR julianday(OLD."t@me") IS NOT julianday(NEW."t@me")) AND COALESCE((SELECT s.enabled FROM scheduler_settings s WHERE s.singleton = 1), 1) = 1
       AND COALESCE((SELECT p.paused FROM scheduler_transitions p WHERE p.name = 'n@me'), 0) = 0
       AND NOT COALESCE(julianday(j.time) > (SELECT julianday('now') + h.horizon_seconds / 86400.0
                 FROM scheduler_horizons h
                WHERE h.transition IN ('n@me', '*')
                ORDER BY h.transition = '*' LIMIT 1), 0)
    ON CONFLICT (jobname) DO UPDATE
        -- like cron.schedule: a job someone deactivated stays inactive
        SET schedule = excluded.schedule, command = excluded.command
        WHERE cron_job.schedule IS NOT excluded.schedule
           OR cron_job.command IS NOT excluded.command;
END;

CREATE TRIGGER "scheduler_n@me_after_delete"
AFTER DELETE ON "t@ble"
BEGIN
    DELETE FROM cron_job WHERE jobname = 'pref@x-' || CAST(OLD."k@y" AS TEXT);
END;
