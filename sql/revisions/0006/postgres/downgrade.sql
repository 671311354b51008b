-- Downgrade of 0006 to 0005, first part: the functions whose arguments or columns 0006 changed
-- (0005's own, applied next from its 20_functions.sql, 40_admin.sql and 45_transitions.sql,
-- would otherwise sit beside them as overloads).
drop function if exists scheduler.list_jobs(pg_catalog.text);
drop function if exists scheduler.recover(boolean, pg_catalog.text);
drop function if exists scheduler.reconcile(pg_catalog.text);
drop function if exists scheduler.pause(pg_catalog.text);
drop function if exists scheduler.resume(pg_catalog.text);
drop function if exists scheduler.history(boolean, integer, pg_catalog.text);
drop function if exists scheduler.wake(pg_catalog.text);
drop function if exists scheduler.transitions();
