-- Back to revision 0001: remove what 0002 added. Revision 0001 ran everything as the migrating
-- role, so objects and jobs of ours that 0002 gave to the owner of public.meetings come back to
-- it; the revision then re-applies 0001's functions, triggers, grants and jobs.
drop function if exists scheduler.reconcile_command();
drop function if exists scheduler.security_report();
drop function if exists scheduler.job_specs(pg_catalog.uuid[], pg_catalog.timestamptz[]) cascade;
drop function if exists scheduler.job_meetings(pg_catalog.text[]) cascade;
drop function if exists scheduler.upcoming_jobs();
alter table scheduler.settings disable row level security;
do $downgrade$
declare
    v_object pg_catalog.text;
begin
    execute pg_catalog.format('alter schema scheduler owner to %I', current_user);
    execute pg_catalog.format('alter table scheduler.settings owner to %I', current_user);
    for v_object in
        select p.oid::pg_catalog.regprocedure::pg_catalog.text from pg_catalog.pg_proc p
        where p.pronamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
    loop
        execute pg_catalog.format('alter function %s owner to %I', v_object, current_user);
    end loop;
    perform cron.unschedule(j.jobid) from cron.job j
    where (j.jobname operator(pg_catalog.=) 'meeting-status-reconcile'
           or j.jobname operator(pg_catalog.~) '^meeting-status-[0-9a-f-]{36}$')
      and j.username operator(pg_catalog.<>) current_user;
end
$downgrade$;
