-- After 0004's functions are back (register_jobs and unregister_jobs no longer call them): the
-- jobs scheduled and unscheduled by name.
drop function if exists scheduler.schedule_jobs(pg_catalog.text[], pg_catalog.text[], pg_catalog.text[]);
drop function if exists scheduler.unschedule_jobs(pg_catalog.text[]);
drop function if exists scheduler.job_target();
