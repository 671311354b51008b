-- Downgrade of revision 0006 on SQLite, after the migration dropped the triggers generated for
-- the registered transitions and 0004's meetings triggers (those of 0005) replaced 0006's: no
-- trigger reads the flag any more, so the column can go (ALTER TABLE ... DROP COLUMN, SQLite
-- 3.35 and later, gives back 0005's CREATE TABLE text). The migration then re-creates the
-- generated triggers as 0005 wrote them. A transition paused by name is active again.
ALTER TABLE scheduler_transitions DROP COLUMN paused;
