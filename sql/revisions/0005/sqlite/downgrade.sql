-- Downgrade of revision 0005 on SQLite, after the migration dropped the triggers generated for
-- each registered transition (scheduler_admin.schema.drop_transition_triggers: no SQL file can
-- name them): remove the jobs of those transitions, then the registry. The rows of their tables
-- are not touched; the meetings and their jobs are not touched.
DELETE FROM cron_job
 WHERE EXISTS (SELECT 1 FROM scheduler_transitions t
                WHERE t.builtin = 0
                  AND substr(cron_job.jobname, 1, length(t.job_prefix)) = t.job_prefix);
DROP TABLE IF EXISTS scheduler_transitions;
