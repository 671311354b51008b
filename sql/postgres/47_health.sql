-- Admin functions, health: what doctor reads (counts, runs, who runs what).
-- Python twin: scheduler_admin/sqlite/health.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- Who runs what, for doctor: the jobs and the functions of ours must belong to the owner of
-- public.meetings, no other role may add triggers to it, and no trigger function written by
-- another role may run as the owner when a job completes a meeting.
create or replace function scheduler.security_report()
returns pg_catalog.jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_owner pg_catalog.oid;
    v_timezone pg_catalog.text;
    v_timezone_known boolean := true;
begin
    select c.relowner into v_owner from pg_catalog.pg_class c
    where c.oid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass;
    -- pg_cron 1.5+ has cron.timezone; only superusers and pg_read_all_settings may read it.
    begin
        v_timezone := pg_catalog.current_setting('cron.timezone', true);
    exception when insufficient_privilege then
        v_timezone_known := false;
    end;
    return pg_catalog.jsonb_build_object(
        'owner', (select r.rolname from pg_catalog.pg_roles r where r.oid operator(pg_catalog.=) v_owner),
        'functions_not_owned', (
            select coalesce(pg_catalog.jsonb_agg(p.oid::pg_catalog.regprocedure::pg_catalog.text
                                                 order by 1), '[]')
            from pg_catalog.pg_proc p
            where p.pronamespace operator(pg_catalog.=) 'scheduler'::pg_catalog.regnamespace
              and p.proowner operator(pg_catalog.<>) v_owner),
        'jobs_not_owned', (
            select pg_catalog.count(*) from cron.job j
            where (j.jobname operator(pg_catalog.=) any (array['meeting-status-reconcile',
                                                              'meeting-status-sweep'])
                   or j.jobname operator(pg_catalog.~~) 'meeting-status-%-%-%-%-%')
              and j.username operator(pg_catalog.<>)
                  (select r.rolname from pg_catalog.pg_roles r where r.oid operator(pg_catalog.=) v_owner)),
        'trigger_grantees', (
            select coalesce(pg_catalog.jsonb_agg(distinct
                       case when a.grantee operator(pg_catalog.=) 0 then 'PUBLIC'
                            else a.grantee::pg_catalog.regrole::pg_catalog.text end), '[]')
            from pg_catalog.pg_class c cross join lateral pg_catalog.aclexplode(c.relacl) a
            where c.oid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
              and a.privilege_type operator(pg_catalog.=) 'TRIGGER'
              and a.grantee operator(pg_catalog.<>) v_owner),
        'other_triggers', (
            select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'trigger', t.tgname::pg_catalog.text,
                       'function', t.tgfoid::pg_catalog.regproc::pg_catalog.text,
                       'function_owner', p.proowner::pg_catalog.regrole::pg_catalog.text,
                       'security_definer', p.prosecdef,
                       -- code written by a role that is neither the owner nor a superuser, run
                       -- with the owner's rights whenever a job completes a meeting
                       'foreign', not p.prosecdef
                                  and p.proowner operator(pg_catalog.<>) v_owner
                                  and not (select r.rolsuper from pg_catalog.pg_roles r
                                           where r.oid operator(pg_catalog.=) p.proowner))
                       order by t.tgname), '[]')
            from pg_catalog.pg_trigger t
            join pg_catalog.pg_proc p on p.oid operator(pg_catalog.=) t.tgfoid
            where t.tgrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
              and not t.tgisinternal
              and t.tgname operator(pg_catalog.!~~) 'scheduler\_meetings\_%'),
        'row_security', (select c.relrowsecurity from pg_catalog.pg_class c
                         where c.oid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass),
        -- roles of an API (Supabase's anon, authenticated) or PUBLIC that may write meetings
        'api_writers', (
            select coalesce(pg_catalog.jsonb_agg(r.name order by r.name), '[]')
            from (select 'PUBLIC'::pg_catalog.text as name, 0::pg_catalog.oid as oid
                  union all
                  select x.rolname::pg_catalog.text, x.oid from pg_catalog.pg_roles x
                  where x.rolname operator(pg_catalog.=) any (array['anon', 'authenticated'])) r
            where exists (
                select 1 from pg_catalog.pg_class c cross join lateral pg_catalog.aclexplode(c.relacl) a
                where c.oid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
                  and a.grantee operator(pg_catalog.=) r.oid
                  and a.privilege_type operator(pg_catalog.=) any (array['INSERT', 'UPDATE', 'DELETE']))),
        'cron_timezone', v_timezone,
        'cron_timezone_readable', v_timezone_known,
        -- meetings and every registered table with their partitions and children (0009)
        'tables', scheduler.table_safety());
end
$$;
comment on function scheduler.security_report() is
    'Who owns and runs what: owner of meetings, functions and jobs of ours not owned by it, roles '
    'holding TRIGGER on meetings, other triggers on meetings, row-level security, cron.timezone.';

create or replace function scheduler.health()
returns pg_catalog.jsonb
language sql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- statistics lag behind bulk changes (cron.job analyzed empty, then 20,000 jobs): a nested
-- loop chosen on such an estimate took 20 to 40 s where a hash join takes milliseconds
set enable_nestloop = off
as $$
with upcoming as (
    select u.meeting_id as id, u.end_time, u.job_name from scheduler.upcoming_jobs() u
), ours as (
    -- every job of ours: matched to an upcoming meeting by name, or a leftover whose name is
    -- parsed (an orphan when it names a meeting)
    select j.jobname::pg_catalog.text as jobname, u.job_name is not null as matched
    from cron.job j
    left join upcoming u on u.job_name operator(pg_catalog.=) j.jobname
    where j.username operator(pg_catalog.=) current_user
      and j.jobname operator(pg_catalog.~~) 'meeting-status-%'
), orphans as (
    select p.meeting_id
    from scheduler.job_meetings(array(select o.jobname from ours o where not o.matched)) p
    where p.meeting_id is not null
), facts as (
    select
        (select s.enabled from scheduler.settings s) as enabled,
        -- every upcoming meeting (upcoming_jobs() leaves out those beyond the job horizon, 0011)
        (select pg_catalog.count(*) from public.meetings m
         where m.status operator(pg_catalog.=) (select scheduler.pending_status())) as upcoming_meetings,
        (select h.job_horizon from scheduler.horizons() h
         where h.transition operator(pg_catalog.=) 'meetings') as job_horizon,
        (select pg_catalog.sum(h.beyond_horizon) from scheduler.horizons() h) as beyond_horizon,
        -- every job pg_cron holds in this cluster (its launcher's cost grows with them)
        (select pg_catalog.count(*) from cron.job) as cron_jobs,
        (select pg_catalog.count(*) from ours o where o.matched)
            operator(pg_catalog.+) (select pg_catalog.count(*) from orphans) as jobs,
        (select pg_catalog.count(*) from upcoming u
         where u.end_time operator(pg_catalog.>) pg_catalog.now()
           and not exists (select 1 from ours o where o.jobname operator(pg_catalog.=) u.job_name)) as missing_jobs,
        (select pg_catalog.count(*) from orphans) as orphan_jobs,
        (select pg_catalog.count(*) from upcoming u
         where u.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-) interval '2 minutes')) as overdue_meetings,
        r.failed as failed_runs_24h,
        r.retried as retried_runs_24h,
        exists (select 1 from ours o where o.jobname operator(pg_catalog.=) 'meeting-status-reconcile') as reconcile_job,
        pg_catalog.jsonb_build_object(
            'supported', scheduler.sweep_supported(),
            'seconds', (select s.sweep_seconds from scheduler.settings s),
            'job', exists (select 1 from ours o
                           where o.jobname operator(pg_catalog.=) 'meeting-status-sweep')) as sweep,
        (select e.extversion from pg_catalog.pg_extension e where e.extname operator(pg_catalog.=) 'pg_cron') as pg_cron_version,
        scheduler.security_report() as security,
        -- 0009: rows that could not be completed, and the reconcile job skipped or failing
        (select pg_catalog.count(*) from scheduler.failing_rows) as failing_rows,
        scheduler.failing_rows_report(null, 20) as failing_rows_detail,
        (select x.skipped_in_a_row from scheduler.reconcile_state x) as reconcile_skipped,
        scheduler.reconcile_failed_in_a_row() as reconcile_failed
    from scheduler.failed_runs(pg_catalog.now() operator(pg_catalog.-) interval '24 hours') r
)
select pg_catalog.jsonb_build_object(
    'backend', 'postgres',
    'enabled', f.enabled,
    'upcoming_meetings', f.upcoming_meetings,
    'jobs', f.jobs,
    'missing_jobs', f.missing_jobs,
    'orphan_jobs', f.orphan_jobs,
    'overdue_meetings', f.overdue_meetings,
    'failed_runs_24h', f.failed_runs_24h,
    'retried_runs_24h', f.retried_runs_24h,
    'reconcile_job', f.reconcile_job,
    'pg_cron_version', f.pg_cron_version,
    'security', f.security,
    'sweep', f.sweep,
    'failing_rows', f.failing_rows,
    'failing_rows_detail', f.failing_rows_detail,
    'reconcile_skipped_in_a_row', coalesce(f.reconcile_skipped, 0),
    'reconcile_failed_in_a_row', f.reconcile_failed,
    'job_horizon', f.job_horizon,
    'beyond_horizon', f.beyond_horizon,
    'cron_jobs', f.cron_jobs,
    'ok', f.enabled
          and f.failing_rows operator(pg_catalog.=) 0
          and coalesce(f.reconcile_skipped, 0) operator(pg_catalog.<) 3
          and f.reconcile_failed operator(pg_catalog.<) 3 and (f.missing_jobs operator(pg_catalog.=) 0)
          and (f.orphan_jobs operator(pg_catalog.=) 0) and (f.overdue_meetings operator(pg_catalog.=) 0)
          -- a failed run is a problem until a later run has done its work
          and (f.failed_runs_24h operator(pg_catalog.=) f.retried_runs_24h) and f.reconcile_job
          and (f.sweep operator(pg_catalog.->>) 'job')::boolean
              operator(pg_catalog.=) ((f.sweep operator(pg_catalog.->>) 'supported')::boolean
                                      and (f.sweep operator(pg_catalog.->>) 'seconds')::integer
                                          operator(pg_catalog.>) 0))
from facts f
$$;
comment on function scheduler.health() is
    'Counts that tell whether the scheduler is healthy: missing and orphan jobs, overdue '
    'meetings, failed runs in the last 24 hours and how many were retried, the reconcile job, '
    'the seconds sweep.';
