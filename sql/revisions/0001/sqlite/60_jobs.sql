-- The recurring reconcile job (pg_cron never replays runs missed while nothing ran): completes
-- overdue upcoming meetings, registers missing jobs, removes orphan jobs and deletes our run
-- history older than scheduler_settings.history_retention_days. The worker interprets the command.
INSERT INTO cron_job (schedule, command, jobname)
VALUES ('* * * * *', 'reconcile()', 'meeting-status-reconcile')
ON CONFLICT (jobname) DO UPDATE
    SET schedule = excluded.schedule, command = excluded.command, active = 1;
