-- Revision 0006 on SQLite: a transition can be paused by name (pause --transition NAME). Its
-- registry row gets the flag; the meetings triggers (30_triggers.sql of 0006, applied next) and
-- the triggers generated per registered transition (re-created by the migration from
-- scheduler_admin/sqlite/transitions.py) register no job while their row is paused.
-- ALTER TABLE writes the column right after created_at; sql/sqlite/10_schema.sql writes it there
-- too, so that a migrated and a new database have the same schema.
ALTER TABLE scheduler_transitions
    ADD COLUMN paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1));
