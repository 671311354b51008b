-- Downgrade of revision 0003 on SQLite, after 30_triggers.sql of 0001 is applied again (its
-- triggers do not read scheduler_statuses): drop the views and the table 0003 added (20_views.sql
-- of 0001 is re-applied after this file). The table holds the words of meetings.status; 0001
-- knows only upcoming, done and cancelled.
DROP VIEW IF EXISTS scheduler_orphan_jobs;
DROP VIEW IF EXISTS scheduler_upcoming_jobs;
DROP TABLE IF EXISTS scheduler_statuses;
