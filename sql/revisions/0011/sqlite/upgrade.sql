-- Revision 0011 on SQLite: the job horizon. The table scheduler_horizons (the text of
-- sql/sqlite/10_schema.sql, so that a migrated and a new database have the same schema); the
-- meetings triggers that register jobs are dropped here and created again by 30_triggers.sql of
-- 0011 (applied next), the triggers generated per transition by the migration itself.
DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_after_update;

-- The job horizon (revision 0011), the twin of scheduler.settings.job_horizon and
-- scheduler.transitions.job_horizon: a pending row gets its job once its time is within the
-- horizon of its transition; the reconcile job registers the rows entering it. One row per
-- transition with a horizon of its own, and the row '*' for the default of every transition; no
-- row: no horizon (every pending row has its job). At least 15 minutes (900 s). A table of its
-- own, as scheduler_statuses is. Set with set_job_horizon() (scheduler_admin/sqlite/horizon.py).
CREATE TABLE IF NOT EXISTS scheduler_horizons (
    transition TEXT PRIMARY KEY NOT NULL,
    horizon_seconds INTEGER NOT NULL CHECK (horizon_seconds >= 900)
);
