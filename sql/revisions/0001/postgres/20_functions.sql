-- Naming, schedules and the completion function that a meeting's job runs.

create or replace function scheduler.job_name(p_meeting_id uuid)
returns text
language sql immutable strict parallel safe
as $$
select 'meeting-status-' operator(pg_catalog.||) p_meeting_id::text
$$;
comment on function scheduler.job_name(uuid) is
    'Name of the pg_cron job of a meeting: meeting-status-<meeting id>.';

create or replace function scheduler.meeting_id(p_job_name text)
returns uuid
-- not strict: a strict function whose body (a CASE) is not strict cannot be inlined, and it is
-- used in joins over every job. A null name gives null either way.
language sql immutable parallel safe
as $$
-- A canonical lower-case UUID after the prefix, checked with string functions: a regular
-- expression here cost more than the rest of list_jobs.
select case when pg_catalog.left(p_job_name, 15) operator(pg_catalog.=) 'meeting-status-'
                 and pg_catalog.translate(pg_catalog.substr(p_job_name, 16), '0123456789abcdef',
                                          'xxxxxxxxxxxxxxxx')
                     operator(pg_catalog.=) 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'
            then pg_catalog.substr(p_job_name, 16)::uuid end
$$;
comment on function scheduler.meeting_id(text) is
    'Meeting id in a job name of ours, null for any other name (the reconcile job included).';

-- job_minute and cron_schedule are single expressions with no FROM clause, so that
-- PostgreSQL inlines them into the calling query: they run once per meeting in the triggers,
-- recovery and list_jobs, and a non-inlined SQL function costs about 40 times more per call.
create or replace function scheduler.job_minute(p_end_time timestamptz)
returns timestamp
language sql immutable strict parallel safe
as $$
-- timestamps have microsecond resolution: adding 59.999999 s crosses into the next minute
-- exactly when end_time is past the start of its minute.
select pg_catalog.date_trunc('minute', (p_end_time at time zone 'UTC')
                             operator(pg_catalog.+) interval '59.999999 seconds')
$$;
comment on function scheduler.job_minute(timestamptz) is
    'First UTC minute at or after end_time (rounded up: a job never fires before end_time).';

create or replace function scheduler.cron_schedule(p_end_time timestamptz)
returns text
-- stable like to_char() (whose FM numeric fields do not depend on the locale), so it is inlined
language sql stable strict parallel safe
as $$
select pg_catalog.to_char(scheduler.job_minute(p_end_time), 'FMMI FMHH24 FMDD FMMM')
       operator(pg_catalog.||) ' *'
$$;
comment on function scheduler.cron_schedule(timestamptz) is
    'Five-field cron expression (minute hour day month *, in UTC as pg_cron uses) of the first '
    'minute at or after end_time. It repeats yearly; the job''s command re-checks end_time.';

create or replace function scheduler.job_command(p_meeting_id uuid)
returns text
-- stable like format() itself, so that it is inlined into the queries that call it
language sql stable strict parallel safe
as $$
select pg_catalog.format('select scheduler.complete_meeting(%L::uuid)', p_meeting_id)
$$;
comment on function scheduler.job_command(uuid) is
    'SQL command of a meeting''s job, built with format(%L).';

create or replace function scheduler.is_enabled()
returns boolean
language sql stable
set search_path = ''
as $$
select coalesce((select s.enabled from scheduler.settings s), true)
$$;

-- Register (or re-register) the jobs of a set of meetings, as one set. Returns how many jobs were
-- created or changed. Where the owner may write cron.job (a superuser on a self-hosted server)
-- this is one INSERT ... ON CONFLICT that stores exactly what cron.schedule stores (same columns,
-- same upsert on job name and owner; pg_cron's statement trigger reloads its job cache): about
-- 20 times faster than one cron.schedule call per meeting, which matters for bulk inserts and
-- recovery. Elsewhere (Supabase: the migrating role may not write cron.job) it calls
-- cron.schedule per meeting.
create or replace function scheduler.register_jobs(p_meeting_ids uuid[], p_end_times timestamptz[])
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer := 0;
    -- what cron.schedule stores for every job (computed once, not once per row)
    v_host text;
    v_port integer;
    v_database text;
    v_user text;
begin
    if pg_catalog.cardinality(p_meeting_ids) is null then
        return 0;
    end if;
    if pg_catalog.has_table_privilege('cron.job', 'INSERT')
       and pg_catalog.has_table_privilege('cron.job', 'UPDATE') then
        -- Only here: reading cron.host needs superuser (or pg_read_all_settings), which the
        -- cron.schedule path (Supabase) does not have.
        v_host := coalesce(pg_catalog.current_setting('cron.host', true), 'localhost');
        v_port := pg_catalog.current_setting('port')::integer;
        v_database := pg_catalog.current_database();
        v_user := current_user;
        insert into cron.job as j (schedule, command, nodename, nodeport, database, username, jobname)
        select scheduler.cron_schedule(u.end_time), scheduler.job_command(u.id),
               v_host, v_port, v_database, v_user, scheduler.job_name(u.id)
        from rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times)) as u(id, end_time)
        on conflict (jobname, username) do update
            set schedule = excluded.schedule, command = excluded.command
            where j.schedule operator(pg_catalog.<>) excluded.schedule
               or j.command operator(pg_catalog.<>) excluded.command;
        get diagnostics v_count = row_count;
    else
        select pg_catalog.count(cron.schedule(scheduler.job_name(u.id),
                                              scheduler.cron_schedule(u.end_time),
                                              scheduler.job_command(u.id)))
        into v_count
        from rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times)) as u(id, end_time);
    end if;
    return v_count;
end
$$;
comment on function scheduler.register_jobs(uuid[], timestamptz[]) is
    'Schedules (upserts) the pg_cron jobs of a set of meetings: one INSERT ... ON CONFLICT into '
    'cron.job when the owner may write it, else cron.schedule per meeting.';

-- Unschedule the jobs of a set of meetings, those that exist. Returns the number removed.
-- Where the owner holds the DELETE privilege on cron.job this is one statement: pg_cron's statement trigger then
-- invalidates its job cache once, where one cron.unschedule call per job sends one invalidation
-- each; tens of thousands of those in one transaction (a busy minute completing together)
-- overflowed the invalidation queue, left pg_cron running removed jobs for minutes and ended
-- in "stack depth limit exceeded". Elsewhere (Supabase) it calls cron.unschedule per job.
create or replace function scheduler.unregister_jobs(p_meeting_ids uuid[])
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_count integer;
begin
    if pg_catalog.cardinality(p_meeting_ids) is null then
        return 0;
    end if;
    if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
        delete from cron.job j
        where j.jobname operator(pg_catalog.=) any (
                array(select scheduler.job_name(u.id)::name
                      from pg_catalog.unnest(p_meeting_ids) as u(id)))
          and j.username operator(pg_catalog.=) current_user;
        get diagnostics v_count = row_count;
    else
        select pg_catalog.count(cron.unschedule(j.jobid))::integer into v_count
        from cron.job j
        where j.jobname operator(pg_catalog.=) any (
                array(select scheduler.job_name(u.id)::name
                      from pg_catalog.unnest(p_meeting_ids) as u(id)))
          and j.username operator(pg_catalog.=) current_user;
    end if;
    return v_count;
end
$$;
comment on function scheduler.unregister_jobs(uuid[]) is
    'Unschedules the pg_cron jobs of a set of meetings: one DELETE from cron.job when the owner '
    'may, else cron.unschedule per job.';


-- Marks done every upcoming meeting whose end time has passed, skipping rows that another
-- transaction holds (it completes or moves them itself; the reconcile job catches any left).
-- Completing a meeting unschedules its job through the update trigger.
create or replace function scheduler.complete_due_meetings()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_completed integer;
begin
    with due as (
        select m.id from public.meetings m
        where m.status operator(pg_catalog.=) 'upcoming'
          and m.end_time operator(pg_catalog.<=) pg_catalog.now()
        for update skip locked
    )
    update public.meetings m set status = 'done'
    from due where m.id operator(pg_catalog.=) due.id;
    get diagnostics v_completed = row_count;
    return v_completed;
end
$$;
comment on function scheduler.complete_due_meetings() is
    'Marks done the upcoming meetings whose end_time has passed, skipping locked rows.';

-- What a meeting's job runs. Completes every upcoming meeting whose end time has passed (the
-- given one included), skipping rows another transaction holds, so that the jobs of one busy
-- minute finish together: completing a meeting unschedules its job through the update trigger,
-- and pg_cron drops the pending runs of unscheduled jobs. A meeting that is not due yet is left
-- alone (a five-field schedule repeats yearly, and a run can come early). A job whose meeting is
-- gone or no longer upcoming removes itself.
create or replace function scheduler.complete_meeting(p_meeting_id uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_completed integer;
begin
    if not scheduler.is_enabled() then
        return 0;
    end if;
    v_completed := scheduler.complete_due_meetings();

    if not exists (select 1 from public.meetings m
                   where m.id operator(pg_catalog.=) p_meeting_id
                     and m.status operator(pg_catalog.=) 'upcoming') then
        perform scheduler.unregister_jobs(array[p_meeting_id]);
    end if;
    return v_completed;
end
$$;
comment on function scheduler.complete_meeting(uuid) is
    'Run by the job meeting-status-<id>: marks done the upcoming meetings whose end_time has '
    'passed (never one that has not ended), and removes the job if its meeting is not upcoming.';
