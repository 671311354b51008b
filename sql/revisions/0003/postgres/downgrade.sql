-- Downgrade of 0003 to 0002: after 0002's functions are applied again, drop the one 0003 added.
drop function if exists scheduler.command_job(pg_catalog.text);
