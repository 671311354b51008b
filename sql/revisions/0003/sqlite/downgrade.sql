-- Downgrade of revision 0003 on SQLite: drop the views it added (20_views.sql of 0001 is
-- re-applied after this file).
DROP VIEW IF EXISTS scheduler_orphan_jobs;
DROP VIEW IF EXISTS scheduler_upcoming_jobs;
