-- Removes every object and every job of ours. Never touches the rows of meetings (nor the table
-- itself, which holds the application's data), nor the rows of the tables of registered
-- transitions. Their generated triggers are dropped first by scheduler_admin.schema.teardown()
-- (no SQL file can name them).
DROP TRIGGER IF EXISTS scheduler_meetings_before_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_before_update;
DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_after_update;
DROP TRIGGER IF EXISTS scheduler_meetings_after_delete;
DROP VIEW IF EXISTS scheduler_events;
DROP VIEW IF EXISTS scheduler_orphan_jobs;
DROP VIEW IF EXISTS scheduler_upcoming_jobs;
DROP VIEW IF EXISTS scheduler_meeting_jobs;
DROP INDEX IF EXISTS scheduler_meetings_status_end_time_idx;
DROP INDEX IF EXISTS scheduler_run_details_start_time_idx;
DROP INDEX IF EXISTS scheduler_webhook_attempts_event_idx;
DROP INDEX IF EXISTS scheduler_completion_events_pending_idx;
DROP INDEX IF EXISTS scheduler_completion_events_completed_at_idx;
DROP TABLE IF EXISTS scheduler_waker_lease;
DROP TABLE IF EXISTS scheduler_horizons;
DROP TABLE IF EXISTS scheduler_failing_rows;
DROP TABLE IF EXISTS scheduler_webhook_attempts;
DROP TABLE IF EXISTS scheduler_completion_events;
DROP TABLE IF EXISTS scheduler_metric_totals;
DROP TABLE IF EXISTS scheduler_webhooks;
DROP TABLE IF EXISTS scheduler_transitions;
DROP TABLE IF EXISTS cron_job_run_details;
DROP TABLE IF EXISTS cron_job;
DROP TABLE IF EXISTS scheduler_worker;
DROP TABLE IF EXISTS scheduler_settings;
DROP TABLE IF EXISTS scheduler_statuses;
