-- Revision 0011 on SQLite, downgrade: the meetings triggers of 0007 (its 30_triggers.sql,
-- applied next) and the table of horizons dropped; the migration re-creates the generated
-- triggers in the shape of 0007.
DROP TRIGGER IF EXISTS scheduler_meetings_after_insert;
DROP TRIGGER IF EXISTS scheduler_meetings_after_update;
DROP TABLE IF EXISTS scheduler_horizons;
