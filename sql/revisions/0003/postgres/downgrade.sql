-- Downgrade of 0003 to 0002, after 0002's functions and triggers are applied again: drop what
-- 0003 added (functions, the status words and sweep interval of scheduler.settings, the sweep
-- job). 0002's trigger functions, applied again, send no notification.
select cron.unschedule(j.jobid) from cron.job j
where j.jobname operator(pg_catalog.=) 'meeting-status-sweep'
  and j.username operator(pg_catalog.=) current_user;
drop function if exists scheduler.wake();
drop function if exists scheduler.next_end_time();
drop function if exists scheduler.sweep();
drop function if exists scheduler.sync_sweep();
drop function if exists scheduler.sweep_command();
drop function if exists scheduler.sweep_supported();
drop function if exists scheduler.command_job(pg_catalog.text);
drop function if exists scheduler.configure_statuses(pg_catalog.text, pg_catalog.text, pg_catalog.text);
drop function if exists scheduler.complete_due(boolean);
drop function if exists scheduler.pending_status();
drop function if exists scheduler.done_status();
drop function if exists scheduler.create_before_write_trigger();
alter table scheduler.settings drop constraint if exists settings_statuses_check;
alter table scheduler.settings
    drop column if exists pending_status,
    drop column if exists done_status,
    drop column if exists cancelled_status,
    drop column if exists sweep_seconds;
