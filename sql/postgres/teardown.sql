-- Removes every object and every pg_cron job of ours. Never touches the rows of public.meetings
-- (nor the table itself, which holds the application's data), nor the pg_cron extension.
do $teardown$
begin
    if pg_catalog.to_regclass('public.meetings') is not null then
        drop trigger if exists scheduler_meetings_before_write on public.meetings;
        drop trigger if exists scheduler_meetings_after_insert on public.meetings;
        drop trigger if exists scheduler_meetings_after_update on public.meetings;
        drop trigger if exists scheduler_meetings_after_delete on public.meetings;
    end if;
    if pg_catalog.to_regclass('cron.job') is not null then
        perform cron.unschedule(j.jobid)
        from cron.job j
        where (j.jobname operator(pg_catalog.~) '^meeting-status-[0-9a-f-]{36}$'
               or j.jobname operator(pg_catalog.=) 'meeting-status-reconcile')
          and j.username operator(pg_catalog.=) current_user;
    end if;
end
$teardown$;
drop schema if exists scheduler cascade;
