-- Naming, schedules and the completion function that a meeting's job runs.

-- Every function of ours pins search_path = pg_catalog, pg_temp (the temporary schema explicitly
-- last: with an empty search path PostgreSQL still resolves *types* in the caller's pg_temp
-- first) and qualifies every type, cast, function and relation anyway.

-- What the pg_cron jobs of a set of meetings look like: the one definition of a job's name,
-- schedule and command. Set-based, because every function of ours pins its search path and a
-- function with a SET clause is never inlined: one call per meeting made registration twice and
-- list_jobs nine times slower than one call per set.
--   name:     meeting-status-<meeting id>
--   fires_at: the first UTC minute at or after end_time (rounded up: a job never fires before
--             end_time; timestamps have microsecond resolution, so adding 59.999999 s crosses into
--             the next minute exactly when end_time is past the start of its minute)
--   schedule: fires_at as five-field cron (minute hour day month *, UTC as pg_cron uses); it
--             repeats yearly, and the job's command re-checks end_time
--   command:  a statement timeout (pg_cron runs each command in a fresh session; a timeout set
--             inside a function would not apply to the statement that called it), then
--             scheduler.complete_meeting(<id>), built with format(%L)
create or replace function scheduler.job_specs(p_meeting_ids pg_catalog.uuid[],
                                               p_end_times pg_catalog.timestamptz[])
returns table (meeting_id pg_catalog.uuid, end_time pg_catalog.timestamptz,
               job_name pg_catalog.name, schedule pg_catalog.text, command pg_catalog.text,
               fires_at pg_catalog.timestamptz)
-- stable like to_char() and format()
language sql stable parallel safe
-- sets of thousands are the norm: the default estimate (1000 rows) led the planner to nested
-- loops over them that took minutes at 20,000 jobs
rows 10000
set search_path = pg_catalog, pg_temp
as $$
select u.id, u.end_time,
       ('meeting-status-' operator(pg_catalog.||) u.id::pg_catalog.text)::pg_catalog.name,
       pg_catalog.to_char(u.minute, 'FMMI FMHH24 FMDD FMMM') operator(pg_catalog.||) ' *',
       pg_catalog.format(
           'set statement_timeout = %L; select scheduler.complete_meeting(%L::pg_catalog.uuid)',
           '2min', u.id),
       u.minute at time zone 'UTC'
from (select r.id, r.end_time,
             pg_catalog.date_trunc('minute', (r.end_time at time zone 'UTC')
                                   operator(pg_catalog.+) interval '59.999999 seconds') as minute
      from rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times))
           as r(id, end_time)) u
where u.id is not null
$$;
comment on function scheduler.job_specs(pg_catalog.uuid[], pg_catalog.timestamptz[]) is
    'Name, five-field UTC schedule (first minute at or after end_time), command and firing time '
    'of the pg_cron jobs of a set of meetings.';

-- The inverse: the meeting id in each job name of ours, null for any other name (the reconcile
-- job included). A canonical lower-case UUID after the prefix, checked with string functions: a
-- regular expression here cost more than the rest of list_jobs.
create or replace function scheduler.job_meetings(p_job_names pg_catalog.text[])
returns table (job_name pg_catalog.text, meeting_id pg_catalog.uuid)
language sql immutable parallel safe
rows 10000
set search_path = pg_catalog, pg_temp
as $$
select n.name,
       case when pg_catalog.left(n.name, 15) operator(pg_catalog.=) 'meeting-status-'
                 and pg_catalog.translate(pg_catalog.substr(n.name, 16), '0123456789abcdef',
                                          'xxxxxxxxxxxxxxxx')
                     operator(pg_catalog.=) 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'
            then pg_catalog.substr(n.name, 16)::pg_catalog.uuid end
from pg_catalog.unnest(p_job_names) as n(name)
$$;
comment on function scheduler.job_meetings(pg_catalog.text[]) is
    'Meeting id in each job name of ours, null for any other name (the reconcile job included).';

-- The words of public.meetings.status the scheduler acts on (scheduler.settings, set at
-- migration: 10_schema.sql and configure_statuses() in 42_statuses.sql). Pending meetings get a job
-- and become done at end_time; cancel_meeting sets cancelled; any other status is left alone.
create or replace function scheduler.pending_status()
returns pg_catalog.text
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.pending_status from scheduler.settings s
$$;
comment on function scheduler.pending_status() is
    'The status of meetings that get a job and become done at end_time (default upcoming).';

create or replace function scheduler.done_status()
returns pg_catalog.text
language sql stable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.done_status from scheduler.settings s
$$;
comment on function scheduler.done_status() is
    'The status a pending meeting gets at its end_time (default done).';

-- The jobs the upcoming meetings should have: what recovery, reconciliation, list_jobs and
-- health compare cron.job with. PL/pgSQL with the pending status in a variable: each call plans
-- with its value, so a partial index on (end_time) where status = <pending> serves it.
-- 0011: with a job horizon (46_horizon.sql), only the meetings whose end time is within it (and
-- those with no usable end time, which repair reports): the others have no job yet, and a job of
-- one of them is removed by the reconcile job. Without one, every upcoming meeting.
create or replace function scheduler.upcoming_jobs()
returns table (meeting_id pg_catalog.uuid, end_time pg_catalog.timestamptz,
               job_name pg_catalog.name, schedule pg_catalog.text, command pg_catalog.text,
               fires_at pg_catalog.timestamptz)
language plpgsql stable parallel safe
rows 10000
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
    v_cutoff pg_catalog.timestamptz := scheduler.job_cutoff('meetings');
begin
    if v_cutoff operator(pg_catalog.=) 'infinity'::pg_catalog.timestamptz then
        return query
        select s.meeting_id, s.end_time, s.job_name, s.schedule, s.command, s.fires_at
        from (select pg_catalog.array_agg(m.id) as ids, pg_catalog.array_agg(m.end_time) as ends
              from public.meetings m where m.status operator(pg_catalog.=) v_pending) a
        cross join lateral scheduler.job_specs(a.ids, a.ends) s;
    else
        -- the rows within the horizon through the partial index; the few without a finite end
        -- time (written with the triggers off) apart
        return query
        select s.meeting_id, s.end_time, s.job_name, s.schedule, s.command, s.fires_at
        from (select pg_catalog.array_agg(m.id) as ids, pg_catalog.array_agg(m.end_time) as ends
              from (select x.id, x.end_time from public.meetings x
                    where x.status operator(pg_catalog.=) v_pending
                      and x.end_time operator(pg_catalog.<=) v_cutoff
                    union all
                    select x.id, x.end_time from public.meetings x
                    where x.status operator(pg_catalog.=) v_pending
                      and (x.end_time is null
                           or x.end_time operator(pg_catalog.=) 'infinity'::pg_catalog.timestamptz)) m) a
        cross join lateral scheduler.job_specs(a.ids, a.ends) s;
    end if;
end
$$;
comment on function scheduler.upcoming_jobs() is
    'The job (name, schedule, command, firing time) of every pending (upcoming) meeting within '
    'the job horizon (every one without a horizon).';

-- One-meeting forms of the two functions above, for callers that handle one meeting.
create or replace function scheduler.job_name(p_meeting_id pg_catalog.uuid)
returns pg_catalog.text
language sql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.job_name::pg_catalog.text from scheduler.job_specs(array[p_meeting_id], null) s
$$;
comment on function scheduler.job_name(pg_catalog.uuid) is
    'Name of the pg_cron job of a meeting: meeting-status-<meeting id>.';

create or replace function scheduler.meeting_id(p_job_name pg_catalog.text)
returns pg_catalog.uuid
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select j.meeting_id from scheduler.job_meetings(array[p_job_name]) j
$$;
comment on function scheduler.meeting_id(pg_catalog.text) is
    'Meeting id in a job name of ours, null for any other name (the reconcile job included).';

create or replace function scheduler.job_minute(p_end_time pg_catalog.timestamptz)
returns timestamp
language sql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.fires_at at time zone 'UTC'
from scheduler.job_specs(array['00000000-0000-0000-0000-000000000000'::pg_catalog.uuid],
                         array[p_end_time]) s
$$;
comment on function scheduler.job_minute(pg_catalog.timestamptz) is
    'First UTC minute at or after end_time (rounded up: a job never fires before end_time), as a '
    'UTC timestamp.';

create or replace function scheduler.cron_schedule(p_end_time pg_catalog.timestamptz)
returns pg_catalog.text
language sql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.schedule
from scheduler.job_specs(array['00000000-0000-0000-0000-000000000000'::pg_catalog.uuid],
                         array[p_end_time]) s
$$;
comment on function scheduler.cron_schedule(pg_catalog.timestamptz) is
    'Five-field cron expression (minute hour day month *, in UTC as pg_cron uses) of the first '
    'minute at or after end_time. It repeats yearly; the job''s command re-checks end_time.';

create or replace function scheduler.job_command(p_meeting_id pg_catalog.uuid)
returns pg_catalog.text
language sql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
select s.command from scheduler.job_specs(array[p_meeting_id], null) s
$$;
comment on function scheduler.job_command(pg_catalog.uuid) is
    'SQL command of a meeting''s job, built with format(%L): a statement timeout, then '
    'scheduler.complete_meeting.';

create or replace function scheduler.reconcile_command()
returns pg_catalog.text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select 'set statement_timeout = ''2min''; select scheduler.reconcile()'::pg_catalog.text
$$;
comment on function scheduler.reconcile_command() is
    'SQL command of the job meeting-status-reconcile.';

-- The inverse of the two above: the job a command of ours belongs to, for the runs in
-- cron.job_run_details, whose job is usually gone (a completed meeting's job is removed). The
-- meeting id is read at its fixed place after "select scheduler.complete_meeting('" and checked
-- by job_meetings, the one parser of job names. Accepts the commands of every release (with or
-- without the statement timeout in front).
create or replace function scheduler.command_job(p_command pg_catalog.text)
returns pg_catalog.text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select case
    when p_command operator(pg_catalog.~~) '%select scheduler.reconcile()'
        then 'meeting-status-reconcile'
    when p_command operator(pg_catalog.~~) '%select scheduler.sweep()'
        then 'meeting-status-sweep'
    when pg_catalog.strpos(p_command, 'select scheduler.complete_meeting(''')
         operator(pg_catalog.>) 0
        then (select j.job_name
              from scheduler.job_meetings(array['meeting-status-' operator(pg_catalog.||)
                       pg_catalog.substr(p_command,
                           pg_catalog.strpos(p_command, 'select scheduler.complete_meeting(''')
                           operator(pg_catalog.+) 35, 36)]) j
              where j.meeting_id is not null)
end
$$;
comment on function scheduler.command_job(pg_catalog.text) is
    'Name of the job of ours that runs a command (a meeting''s job, the reconcile or the sweep '
    'job), null for any other command.';

-- The seconds sweep (pg_cron 1.5+, which accepts interval schedules of 1 to 59 seconds): one job,
-- meeting-status-sweep, completes what is due every scheduler.settings.sweep_seconds (default
-- 1; 0 turns it off), so a meeting is done within about a second of its end_time instead of at
-- the next minute. The per-meeting jobs stay as they are: they are the contract and the
-- backstop (and all there is on pg_cron 1.4).
create or replace function scheduler.sweep_command()
returns pg_catalog.text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select 'set statement_timeout = ''10s''; select scheduler.sweep()'::pg_catalog.text
$$;
comment on function scheduler.sweep_command() is
    'SQL command of the job meeting-status-sweep.';

create or replace function scheduler.sweep_supported()
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
-- extversion is 1.4-1, 1.6, ...: compare major and minor
select coalesce((select pg_catalog.regexp_match(e.extversion, '^([0-9]+)\.([0-9]+)')::integer[]
                        operator(pg_catalog.>=) array[1, 5]
                 from pg_catalog.pg_extension e
                 where e.extname operator(pg_catalog.=) 'pg_cron'), false)
$$;
comment on function scheduler.sweep_supported() is
    'Whether the installed pg_cron takes schedules in seconds (1.5 and later).';

-- What the sweep job runs, every second: cheap when nothing is due (one probe of the meetings
-- due, which the partial index on end_time where status is pending serves; no write, no
-- transaction id), else what a meeting's job does. lock_timeout 1s: a held lock fails this run,
-- the next second's run (or the meeting's own job) completes the meeting.
create or replace function scheduler.sweep_due(p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
    v_other integer := 0;
begin
    if not coalesce((select s.enabled from scheduler.settings s), true) then
        return 0;
    end if;
    -- the other registered transitions not paused (45_transitions.sql): rare, so one probe of
    -- the registry
    if exists (select 1 from scheduler.transitions t where not t.builtin) then
        v_other := scheduler.sweep_transitions(p_path);
    end if;
    -- meetings paused by name (0006)
    if not scheduler.is_enabled() then
        return v_other;
    end if;
    if not exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) v_pending
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return v_other;
    end if;
    -- each transition in isolation (0009): the others' completions stand whatever happens here
    -- (a held lock: the next run, the meetings' own jobs or the reconcile job complete them)
    begin
        return scheduler.complete_due(true, p_path) operator(pg_catalog.+) v_other;
    exception when others then
        raise warning 'scheduler: completing meetings failed: %', sqlerrm;
        return v_other;
    end;
end
$$;
comment on function scheduler.sweep_due(pg_catalog.text) is
    'The body of sweep() and wake(): marks done the pending meetings whose end_time has passed '
    '(events with the given path); a probe and no write when none is due.';

-- Of every transition (the job: null) or of one by name. plpgsql: the registry is written after
-- it on a new database.
create or replace function scheduler.sweep(p_transition pg_catalog.text default null)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
begin
    if p_transition is null then
        return scheduler.sweep_due('sweep');
    end if;
    if not (select t.builtin from scheduler.transition_target(p_transition) t) then
        if not scheduler.transition_active(p_transition) then
            return 0;
        end if;
        return scheduler.complete_due_transition(p_transition, true, 'sweep');
    end if;
    if scheduler.is_enabled()
       and exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) scheduler.pending_status()
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return scheduler.complete_due(true, 'sweep');
    end if;
    return 0;
end
$$;
comment on function scheduler.sweep(pg_catalog.text) is
    'Run by the job meeting-status-sweep (pg_cron 1.5+): gives the to-state to the pending rows '
    'of every transition (or of the one named) whose time has passed; a probe and no write when '
    'none is due.';

-- The application's waker (scheduler_admin/waker.py) sleeps until the earliest end_time of a
-- pending meeting and then completes what is due, so a meeting is done within a second of its
-- end while the application runs, whatever pg_cron the server has. next_end_time() is that
-- earliest end_time (null when no meeting is pending): one probe of the partial index on
-- end_time where status is pending (the statement carries the pending word as a literal, so the
-- planner matches the index's predicate). security definer, like the admin functions:
-- service_role calls these over REST and may not read meetings or scheduler.settings.
create or replace function scheduler.next_end_time()
returns pg_catalog.timestamptz
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_next pg_catalog.timestamptz;
begin
    execute pg_catalog.format(
        'select pg_catalog.min(m.end_time) from public.meetings m '
        'where m.status operator(pg_catalog.=) %L', scheduler.pending_status())
    into v_next;
    return v_next;
end
$$;
comment on function scheduler.next_end_time() is
    'The earliest end_time of a pending (upcoming) meeting, null when there is none: what the '
    'application''s waker sleeps until.';

-- What the waker calls when it wakes: the sweep (complete what is due, skipping locked rows),
-- then the next end_time and the database's clock in one round trip. The waker sleeps for
-- next_end_time - now, both read here, so the application's clock never decides when a meeting
-- is due. Paused: completes nothing and reports no next end_time (the waker then sleeps its
-- longest wait). p_transition: every transition that acts (null), or the one named; the next
-- time is the earliest among them.
create or replace function scheduler.wake(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_builtin boolean := p_transition is null or p_transition operator(pg_catalog.=) 'meetings';
    v_enabled boolean;
    v_completed integer := 0;
    v_next pg_catalog.timestamptz;
    v_names pg_catalog.text[];
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    -- the other transitions that act: all of them, or the one named (none for meetings)
    v_names := array(select o.name from scheduler.other_transitions() o(name)
                     where p_transition is null or o.name operator(pg_catalog.=) p_transition);
    v_enabled := coalesce((select s.enabled from scheduler.settings s), true)
                 and (v_builtin and scheduler.is_enabled()
                      or pg_catalog.cardinality(v_names) operator(pg_catalog.>) 0);
    if v_enabled then
        if p_transition is null then
            v_completed := scheduler.sweep_due('waker');
        elsif v_builtin then
            if exists (select 1 from public.meetings m
                       where m.status operator(pg_catalog.=) scheduler.pending_status()
                         and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
                v_completed := scheduler.complete_due(true, 'waker');
            end if;
        else
            v_completed := scheduler.complete_due_transition(p_transition, true, 'waker');
        end if;
        v_next := (select pg_catalog.min(t.next)
                   from (select scheduler.next_end_time() as next
                         where v_builtin and scheduler.is_enabled()
                         union all
                         select scheduler.transition_next_time(n.name)
                         from pg_catalog.unnest(v_names) as n(name)) t);
    end if;
    return pg_catalog.jsonb_build_object(
        'completed', v_completed,
        'next_end_time', v_next,
        'now', pg_catalog.now(),
        'paused', not v_enabled);
end
$$;
comment on function scheduler.wake(pg_catalog.text) is
    'Called by the application''s waker: marks done (gives the to-state) the pending rows whose '
    'time has passed, of every transition or the one named (skipping locked rows), then returns '
    '{completed, next_end_time, now, paused}.';

-- Makes the sweep job match the settings: registered with the configured interval where pg_cron
-- takes seconds and sweep_seconds > 0, removed otherwise. Called by the migration (60_jobs.sql)
-- and by the reconcile job, so a change of sweep_seconds takes effect within a minute.
create or replace function scheduler.sync_sweep()
returns pg_catalog.text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_seconds integer := (select s.sweep_seconds from scheduler.settings s);
    v_schedule pg_catalog.text;
    v_jobid bigint;
begin
    select j.jobid into v_jobid from cron.job j
    where j.jobname operator(pg_catalog.=) 'meeting-status-sweep'
      and j.username operator(pg_catalog.=) current_user;
    if not scheduler.sweep_supported() or v_seconds operator(pg_catalog.=) 0 then
        if v_jobid is not null then
            perform cron.unschedule(v_jobid);
        end if;
        return case when scheduler.sweep_supported() then 'off' else 'unsupported' end;
    end if;
    v_schedule := pg_catalog.format('%s seconds', v_seconds);
    if v_jobid is null or not exists (
            select 1 from cron.job j
            where j.jobid operator(pg_catalog.=) v_jobid
              and j.schedule operator(pg_catalog.=) v_schedule
              and j.command operator(pg_catalog.=) scheduler.sweep_command()) then
        perform cron.schedule('meeting-status-sweep', v_schedule, scheduler.sweep_command());
    end if;
    return v_schedule;
end
$$;
comment on function scheduler.sync_sweep() is
    'Registers or removes the job meeting-status-sweep to match scheduler.settings.sweep_seconds '
    'and the installed pg_cron; returns its schedule, off or unsupported.';

-- Whether the meetings' triggers, jobs and repair act: the scheduler is enabled (pause/resume)
-- and the builtin transition meetings is not paused by name (pause --transition meetings;
-- scheduler.transition_active in 45_transitions.sql is the same for any transition). plpgsql:
-- written before the registry exists on a new database.
create or replace function scheduler.is_enabled()
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return coalesce((select s.enabled from scheduler.settings s), true)
           and not coalesce((select t.paused from scheduler.transitions t where t.builtin), false);
end
$$;

-- How this role registers jobs: where it may write cron.job (a superuser on a self-hosted server)
-- one INSERT ... ON CONFLICT that stores exactly what cron.schedule stores (same columns, same
-- upsert on job name and owner; pg_cron's statement trigger reloads its job cache): about 8 times
-- faster than one cron.schedule call per job, which matters for bulk inserts and recovery.
-- Elsewhere (Supabase: the migrating role may not write cron.job) cron.schedule per job. direct
-- says which; host, port, database and username are what cron.schedule would store. Jobs belong
-- to current_user: the owner of the functions that call this.
create or replace function scheduler.job_target(out direct boolean, out host pg_catalog.text,
                                                out port integer, out database pg_catalog.text,
                                                out username pg_catalog.text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    direct := pg_catalog.has_table_privilege('cron.job', 'INSERT')
              and pg_catalog.has_table_privilege('cron.job', 'UPDATE');
    if direct then
        -- cron.schedule stores cron.host, which only superusers and pg_read_all_settings may
        -- read; a role that may write cron.job without that copies it from the reconcile job,
        -- which cron.schedule registered. (A privilege check, not an exception block: this runs
        -- on every write to meetings, and an exception block costs a subtransaction.)
        if pg_catalog.pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') then
            host := coalesce(pg_catalog.current_setting('cron.host', true), 'localhost');
        else
            select j.nodename into host from cron.job j
            where j.jobname operator(pg_catalog.=) 'meeting-status-reconcile'
              and j.username operator(pg_catalog.=) current_user;
            direct := host is not null;
        end if;
    end if;
    port := pg_catalog.current_setting('port')::integer;
    database := pg_catalog.current_database();
    username := current_user;
end
$$;
comment on function scheduler.job_target() is
    'Whether this role writes cron.job directly (else cron.schedule per job), and what '
    'cron.schedule would store for its jobs (host, port, database, username).';

-- Register (or re-register) the jobs of a set of meetings, as one set. Returns how many jobs were
-- created or changed (job_target() says how). Reads scheduler.job_specs() in the statement that
-- writes cron.job: building arrays of the specs first, to share one function with the
-- transitions' schedule_jobs() below, made a 20,000-meeting insert about 20 % slower.
create or replace function scheduler.register_jobs(p_meeting_ids pg_catalog.uuid[],
                                                   p_end_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
as $$
declare
    v_count integer := 0;
    v pg_catalog.record;
    v_cutoff pg_catalog.timestamptz;
    v_ids pg_catalog.uuid[];
    v_ends pg_catalog.timestamptz[];
    v_beyond pg_catalog.uuid[];
begin
    if pg_catalog.cardinality(p_meeting_ids) is null then
        return 0;
    end if;
    -- 0011: the meetings beyond the job horizon (46_horizon.sql) get no job; one that had a job
    -- (moved out of the horizon) loses it. cron.job is written only when there is something to
    -- write (unschedule_jobs() writes nothing when no job matches): pg_cron reloads every job at
    -- each statement on cron.job, even one changing nothing.
    v_cutoff := scheduler.job_cutoff('meetings');
    if v_cutoff operator(pg_catalog.<>) 'infinity'::pg_catalog.timestamptz then
        select pg_catalog.array_agg(r.id) filter (where r.within),
               pg_catalog.array_agg(r.end_time) filter (where r.within),
               pg_catalog.array_agg(r.id) filter (where not r.within)
        into v_ids, v_ends, v_beyond
        from (select x.id, x.end_time,
                     coalesce(x.end_time operator(pg_catalog.<=) v_cutoff, true) as within
              from rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times))
                   as x(id, end_time)) r;
        perform scheduler.unregister_jobs(v_beyond);
        if v_ids is null then
            return 0;
        end if;
        p_meeting_ids := v_ids;
        p_end_times := v_ends;
    end if;
    select * into v from scheduler.job_target();
    if v.direct then
        insert into cron.job as j (schedule, command, nodename, nodeport, database, username, jobname)
        select s.schedule, s.command, v.host, v.port, v.database, v.username, s.job_name
        from scheduler.job_specs(p_meeting_ids, p_end_times) s
        on conflict (jobname, username) do update
            set schedule = excluded.schedule, command = excluded.command
            where j.schedule operator(pg_catalog.<>) excluded.schedule
               or j.command operator(pg_catalog.<>) excluded.command;
        get diagnostics v_count = row_count;
    else
        select pg_catalog.count(cron.schedule(s.job_name::pg_catalog.text, s.schedule, s.command))
        into v_count
        from scheduler.job_specs(p_meeting_ids, p_end_times) s;
    end if;
    return v_count;
end
$$;
comment on function scheduler.register_jobs(pg_catalog.uuid[], pg_catalog.timestamptz[]) is
    'Schedules (upserts) the pg_cron jobs of a set of meetings within the job horizon, and '
    'unschedules those of the meetings beyond it: one INSERT ... ON CONFLICT into cron.job when '
    'the owner may write it, else cron.schedule per meeting (job_target()).';

-- The same for jobs given by name, schedule and command (a registered transition's,
-- 45_transitions.sql).
create or replace function scheduler.schedule_jobs(p_job_names pg_catalog.text[],
                                                   p_schedules pg_catalog.text[],
                                                   p_commands pg_catalog.text[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_count integer := 0;
    v pg_catalog.record;
begin
    if coalesce(pg_catalog.cardinality(p_job_names), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    select * into v from scheduler.job_target();
    if v.direct then
        insert into cron.job as j (schedule, command, nodename, nodeport, database, username, jobname)
        select s.schedule, s.command, v.host, v.port, v.database, v.username, s.job_name
        from rows from (pg_catalog.unnest(p_job_names), pg_catalog.unnest(p_schedules),
                        pg_catalog.unnest(p_commands)) as s(job_name, schedule, command)
        on conflict (jobname, username) do update
            set schedule = excluded.schedule, command = excluded.command
            where j.schedule operator(pg_catalog.<>) excluded.schedule
               or j.command operator(pg_catalog.<>) excluded.command;
        get diagnostics v_count = row_count;
    else
        select pg_catalog.count(cron.schedule(s.job_name, s.schedule, s.command))
        into v_count
        from rows from (pg_catalog.unnest(p_job_names), pg_catalog.unnest(p_schedules),
                        pg_catalog.unnest(p_commands)) as s(job_name, schedule, command);
    end if;
    return v_count;
end
$$;
comment on function scheduler.schedule_jobs(pg_catalog.text[], pg_catalog.text[], pg_catalog.text[]) is
    'Schedules (upserts) a set of pg_cron jobs of ours given by name, schedule and command, as '
    'register_jobs does for meetings.';

-- Unschedule a set of jobs of ours, given their names, those that exist (the meetings' jobs through
-- unregister_jobs() below, a registered transition's through 45_transitions.sql). Returns the
-- number removed.
-- Where the owner holds the DELETE privilege on cron.job this is one statement: pg_cron's
-- statement trigger then invalidates its job cache once, where one cron.unschedule call per job
-- sends one invalidation each; tens of thousands of those in one transaction (a busy minute
-- completing together) overflowed the invalidation queue, left pg_cron running removed jobs for
-- minutes and ended in "stack depth limit exceeded". Elsewhere (Supabase) it calls
-- cron.unschedule per job, and three things keep those invalidations from failing other job
-- runs (measured on the Supabase shape with python -m benchmarks.burst_threshold and the burst
-- benchmark; benchmarks/RESULTS.md). Before, bursts of 5,000 and 20,000 meetings failed runs
-- with "stack depth limit exceeded" (3 and 7 such errors in the server log), every one inside
-- this function while it read cron.job, as other runs committed their removals:
--   * cron.job is only read by statements that call nothing while it is open (see below);
--   * one such transaction at a time (a lock held until it ends): with a bound per
--     transaction alone, runs removing their shares at once still failed 6 runs of a 20,000
--     burst, and one of 100,000 crashed the server;
--   * at most 1000 calls per transaction, counted across calls in the transaction-local setting
--     scheduler.unscheduled_in_transaction: what one commit sends the sessions reading cron.job
--     (1,000 runs reading it while one transaction removed 1,000, 2,000 or 5,000 jobs never
--     failed), and how long the runs queued behind it wait.
-- The jobs left over belong to meetings that are no longer upcoming: the run of such a job
-- removes itself, and the reconcile job removes them as orphans, again at most 1000 per run.
-- complete_due_meetings completes at most 1000 meetings per call on this path, so that a burst
-- is shared by several runs, each removing the jobs of the meetings it completed.
-- 0011: on the set-based path the rows are locked first, then deleted by id (see below).
create or replace function scheduler.unschedule_jobs(p_job_names pg_catalog.text[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- the runs of a busy minute queue here one behind the other (per-call path): the wait is their
-- own work (at most 31 transactions of at most 1000 cron.unschedule calls ahead), longer than
-- the 5 s lock_timeout of complete_meeting under load; still well within the runs' 2 min
-- statement timeout
set lock_timeout = '1min'
as $$
declare
    v_count integer;
    -- cron.unschedule calls of this transaction so far, and how many more it may make
    v_used integer;
    v_left integer;
    v_jobs bigint[];
    v_job bigint;
begin
    if coalesce(pg_catalog.cardinality(p_job_names), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
        -- The rows are locked first by a statement that fires no trigger, and then deleted by
        -- a statement that finds them locked by this transaction and so never waits. A DELETE
        -- that waits on a row another transaction holds (a job it deletes or re-registers)
        -- keeps cron.job open meanwhile; pg_cron's statement trigger then fires with it still
        -- open, takes a catalog lock its transaction has not taken yet, and with it every
        -- invalidation of cron.job committed during the wait: PostgreSQL rebuilds the open
        -- relation once per invalidation, recursively, and about 1,500 of them exceed a 2 MB
        -- stack ("stack depth limit exceeded" in the DELETE; benchmarks/findings/). A waiting
        -- SELECT ... FOR UPDATE takes no lock after its wait, and the DELETE's own lock on
        -- cron.job (a new mode) takes the invalidations before it opens the table.
        -- FOR UPDATE needs the UPDATE privilege, which a role that may write cron.job has.
        if pg_catalog.has_table_privilege('cron.job', 'UPDATE') then
            -- (every set of names is matched through unnest() as a semi join, hashed: PostgreSQL
            -- 17 scanned cron.job comparing each job with each of 100,000 names of
            -- `= any (array)`, 51 s where 1.9 s was spent on 15; benchmarks/RESULTS.md)
            v_jobs := array(select j.jobid from cron.job j
                            where j.jobname operator(pg_catalog.=) any (select n.name
                                                from pg_catalog.unnest(p_job_names::pg_catalog.name[]) as n(name))
                              and j.username operator(pg_catalog.=) current_user
                            for update of j);
            if coalesce(pg_catalog.cardinality(v_jobs), 0) operator(pg_catalog.=) 0 then
                return 0;
            end if;
            delete from cron.job j
            where j.jobid operator(pg_catalog.=) any (select i.id from pg_catalog.unnest(v_jobs) as i(id));
        else
            -- (no statement on cron.job when no job matches: each one makes pg_cron reload)
            if not exists (select 1 from cron.job j
                           where j.jobname operator(pg_catalog.=) any (select n.name
                                   from pg_catalog.unnest(p_job_names::pg_catalog.name[]) as n(name))
                             and j.username operator(pg_catalog.=) current_user) then
                return 0;
            end if;
            delete from cron.job j
            where j.jobname operator(pg_catalog.=) any (select n.name
                                from pg_catalog.unnest(p_job_names::pg_catalog.name[]) as n(name))
              and j.username operator(pg_catalog.=) current_user;
        end if;
        get diagnostics v_count = row_count;
    else
        -- a count this function keeps; anything else found there counts as none
        v_used := coalesce(pg_catalog.substring(
            pg_catalog.current_setting('scheduler.unscheduled_in_transaction', true),
            '^[0-9]{1,9}$')::integer, 0);
        v_left := 1000 operator(pg_catalog.-) v_used;
        if v_left operator(pg_catalog.<=) 0 then
            return 0;
        end if;
        -- cron.job is read by statements that call nothing while it is open: a function called
        -- during a scan of cron.job (job_specs, cron.unschedule) takes the invalidations other
        -- sessions committed with cron.job open, and PostgreSQL rebuilds the open relation once
        -- per invalidation, recursively: "stack depth limit exceeded" after a few thousand.
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobname operator(pg_catalog.=) any (select n.name
                                            from pg_catalog.unnest(p_job_names::pg_catalog.name[]) as n(name))
                          and j.username operator(pg_catalog.=) current_user
                        limit v_left);
        if pg_catalog.cardinality(v_jobs) operator(pg_catalog.=) 0 then
            return 0;
        end if;
        -- One such transaction at a time (until it ends): the runs of a busy minute queue here
        -- with cron.job closed, and take the invalidations of the one before at once. Those of
        -- the jobs still there are removed (a new snapshot: one removed meanwhile is skipped).
        -- A row of scheduler.locks (0009): no role but the owner can take it.
        perform scheduler.take_lock('unschedule', true);
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobid operator(pg_catalog.=) any (select i.id from pg_catalog.unnest(v_jobs) as i(id))
                          and j.username operator(pg_catalog.=) current_user);
        v_count := 0;
        foreach v_job in array v_jobs loop
            perform cron.unschedule(v_job);
            v_count := v_count operator(pg_catalog.+) 1;
        end loop;
        perform pg_catalog.set_config('scheduler.unscheduled_in_transaction',
                                      (v_used operator(pg_catalog.+) v_count)::pg_catalog.text,
                                      true);
    end if;
    return v_count;
end
$$;
comment on function scheduler.unschedule_jobs(pg_catalog.text[]) is
    'Unschedules a set of pg_cron jobs of ours: one DELETE from cron.job when the owner may, else '
    'cron.unschedule per job, at most 1000 per transaction and one such transaction at a time '
    '(concurrent ones made job runs fail); the jobs left over are removed by their own runs and '
    'the reconcile job.';

-- The names are computed before unschedule_jobs opens cron.job (see above).
create or replace function scheduler.unregister_jobs(p_meeting_ids pg_catalog.uuid[])
returns integer
language sql
set search_path = pg_catalog, pg_temp
set jit = off
as $$
select scheduler.unschedule_jobs(
    array(select s.job_name::pg_catalog.text from scheduler.job_specs(p_meeting_ids, null) s))
$$;
comment on function scheduler.unregister_jobs(pg_catalog.uuid[]) is
    'Unschedules the pg_cron jobs of a set of meetings (unschedule_jobs).';


-- Marks done every pending meeting whose end time has passed, and sets its updated_at when the
-- table has that column (applications sync on it), and records one completion event per meeting
-- in the same statement (scheduler.completion_events; p_path says which path completed it).
-- p_skip_locked: skip rows that another transaction holds (it completes or moves them itself;
-- the reconcile job catches any left), else wait for them (up to the caller's lock_timeout).
-- Completing a meeting unschedules its job through the update trigger. Where the owner lacks
-- DELETE on cron.job (Supabase: unregister_jobs calls cron.unschedule per job, at most 1000 per
-- transaction) the skip-locked form marks at most 1000 meetings per call, so that the update
-- trigger can unschedule the job of every meeting it completed: the concurrent runs of a busy
-- minute share the burst, and the next runs, or the reconcile job, complete the rest. The
-- statement is complete_rows()'s (25_safety.sql): a meeting that cannot be completed is left
-- out and recorded, and never holds up another; meetings in a partition another role owns or
-- has a trigger on are left alone.
create or replace function scheduler.complete_due(p_skip_locked boolean, p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return scheduler.complete_rows(
        'meetings', p_skip_locked, p_path,
        case when p_skip_locked and not pg_catalog.has_table_privilege('cron.job', 'DELETE')
             then 1000 end);
end
$$;
comment on function scheduler.complete_due(boolean, pg_catalog.text) is
    'Marks done the pending meetings whose end_time has passed (and sets updated_at where the '
    'table has it), recording a completion event per meeting with the given path; skipping or '
    'waiting for locked rows; skipping, at most 1000 per call where the owner lacks DELETE on '
    'cron.job (unregister_jobs'' bound). A meeting that fails is recorded in failing_rows and '
    'never holds up another.';

create or replace function scheduler.complete_due_meetings()
returns integer
language sql
set search_path = pg_catalog, pg_temp
as $$
select scheduler.complete_due(true, 'job')
$$;
comment on function scheduler.complete_due_meetings() is
    'Marks done the pending meetings whose end_time has passed, skipping locked rows (at most '
    '1000 per call where the owner lacks DELETE on cron.job); their events say path job.';

-- What a meeting's job runs. Completes every upcoming meeting whose end time has passed (the
-- given one included), skipping rows another transaction holds, so that the jobs of one busy
-- minute finish together: completing a meeting unschedules its job through the update trigger,
-- and pg_cron drops the pending runs of unscheduled jobs. A meeting that is not due yet is left
-- alone (a five-field schedule repeats yearly, and a run can come early). A job whose meeting is
-- gone or no longer upcoming removes itself. A lock held on meetings makes the run fail after
-- lock_timeout instead of holding one of pg_cron's connections: the next run or the reconcile
-- job completes the meeting.
create or replace function scheduler.complete_meeting(p_meeting_id pg_catalog.uuid)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
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
                     and m.status operator(pg_catalog.=) scheduler.pending_status()) then
        perform scheduler.unregister_jobs(array[p_meeting_id]);
    end if;
    return v_completed;
end
$$;
comment on function scheduler.complete_meeting(pg_catalog.uuid) is
    'Run by the job meeting-status-<id>: marks done the upcoming meetings whose end_time has '
    'passed (never one that has not ended), and removes the job if its meeting is not upcoming. '
    'lock_timeout 5s: a held lock fails the run, a later run completes the meeting.';
