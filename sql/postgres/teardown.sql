-- Removes every object and every pg_cron job of ours. Never touches the rows of public.meetings
-- (nor the table itself, which holds the application's data), nor the pg_cron extension. Schema
-- scheduler stays while alembic's version table (scheduler.alembic_version) is in it.
do $teardown$
declare
    v_object pg_catalog.text;
    v_jobs bigint[];
    v_owner pg_catalog.name;
begin
    if pg_catalog.to_regclass('public.meetings') is not null then
        drop trigger if exists scheduler_meetings_before_write on public.meetings;
        drop trigger if exists scheduler_meetings_after_insert on public.meetings;
        drop trigger if exists scheduler_meetings_after_update on public.meetings;
        drop trigger if exists scheduler_meetings_after_delete on public.meetings;
    end if;
    if pg_catalog.to_regclass('cron.job') is not null then
        -- ours: run by the migrating role or by the owner of meetings (05_owner.sql); one
        -- statement where we may (one cron.unschedule per job overflows the invalidation queue
        -- at tens of thousands)
        select r.rolname into v_owner from pg_catalog.pg_class c
        join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) c.relowner
        where c.oid operator(pg_catalog.=) pg_catalog.to_regclass('public.meetings');
        if pg_catalog.to_regprocedure('scheduler.job_meetings(pg_catalog.text[])') is not null then
            -- job names are parsed by scheduler.job_meetings only
            select pg_catalog.array_agg(j.jobid) into v_jobs
            from cron.job j
            join scheduler.job_meetings(array(select c.jobname::pg_catalog.text from cron.job c)) n
              on n.job_name operator(pg_catalog.=) j.jobname
            where (n.meeting_id is not null
                   or j.jobname operator(pg_catalog.=) any (array['meeting-status-reconcile',
                                                                 'meeting-status-sweep']))
              and (j.username operator(pg_catalog.=) current_user
                   or j.username operator(pg_catalog.=) v_owner);
        else
            -- a schema torn down halfway: every meeting-status-* job of those roles
            select pg_catalog.array_agg(j.jobid) into v_jobs from cron.job j
            where j.jobname operator(pg_catalog.~~) 'meeting-status-%'
              and (j.username operator(pg_catalog.=) current_user
                   or j.username operator(pg_catalog.=) v_owner);
        end if;
        if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
            delete from cron.job j where j.jobid operator(pg_catalog.=) any (v_jobs);
        else
            perform cron.unschedule(u.jobid) from pg_catalog.unnest(v_jobs) as u(jobid);
        end if;
    end if;
    if pg_catalog.to_regnamespace('scheduler') is null then
        return;
    end if;
    for v_object in
        select p.oid::pg_catalog.regprocedure::pg_catalog.text from pg_catalog.pg_proc p
        where p.pronamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
    loop
        execute pg_catalog.format('drop function if exists %s cascade', v_object);
    end loop;
    for v_object in
        select c.oid::pg_catalog.regclass::pg_catalog.text from pg_catalog.pg_class c
        where c.relnamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
          and c.relkind operator(pg_catalog.=) any (array['r', 'p']::pg_catalog."char"[])
          and c.relname operator(pg_catalog.<>) 'alembic_version'
    loop
        execute pg_catalog.format('drop table if exists %s cascade', v_object);
    end loop;
    if pg_catalog.to_regclass('scheduler.alembic_version') is null then
        drop schema scheduler cascade;
    end if;
end
$teardown$;
