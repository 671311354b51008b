-- Downgrade of revision 0004 on SQLite, after 30_triggers.sql of 0003 is applied again (its
-- triggers record no completion event): drop the completion events, the webhook attempts, the
-- webhooks flag, the totals of the deleted events and the view scheduler_events. The events are
-- lost; the meetings and their jobs are not touched.
DROP VIEW IF EXISTS scheduler_events;
DROP INDEX IF EXISTS scheduler_webhook_attempts_event_idx;
DROP TABLE IF EXISTS scheduler_webhook_attempts;
DROP INDEX IF EXISTS scheduler_completion_events_pending_idx;
DROP INDEX IF EXISTS scheduler_completion_events_completed_at_idx;
DROP TABLE IF EXISTS scheduler_completion_events;
DROP TABLE IF EXISTS scheduler_metric_totals;
DROP TABLE IF EXISTS scheduler_webhooks;
