-- unchanged since 0002: function scheduler.job_specs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0002: function scheduler.job_meetings(p_job_names pg_catalog.text[])

-- The words of public.meetings.status the scheduler acts on (scheduler.settings, set at
-- migration: 10_schema.sql and configure_statuses() in 40_admin.sql). Pending meetings get a job
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

-- The jobs every upcoming meeting should have: what recovery, reconciliation, list_jobs and
-- health compare cron.job with. PL/pgSQL with the pending status in a variable: each call plans
-- with its value, so a partial index on (end_time) where status = <pending> serves it.
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
begin
    return query
    select s.meeting_id, s.end_time, s.job_name, s.schedule, s.command, s.fires_at
    from (select pg_catalog.array_agg(m.id) as ids, pg_catalog.array_agg(m.end_time) as ends
          from public.meetings m where m.status operator(pg_catalog.=) v_pending) a
    cross join lateral scheduler.job_specs(a.ids, a.ends) s;
end
$$;
comment on function scheduler.upcoming_jobs() is
    'The job (name, schedule, command, firing time) of every pending (upcoming) meeting.';
-- unchanged since 0002: function scheduler.job_name(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.meeting_id(p_job_name pg_catalog.text)
-- unchanged since 0002: function scheduler.job_minute(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.cron_schedule(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.job_command(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.reconcile_command()

-- The inverse of the two above: the job a command of ours belongs to, for the runs in
-- cron.job_run_details, whose job is usually gone (a completed meeting's job is removed). The
-- meeting id is read at its fixed place after "select scheduler.complete_meeting('" and checked
-- by job_meetings, the one parser of job names. Accepts the commands of every release (0001 had
-- no statement timeout in front).
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
create or replace function scheduler.sweep()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_pending pg_catalog.text := scheduler.pending_status();
begin
    if not scheduler.is_enabled() then
        return 0;
    end if;
    if not exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) v_pending
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return 0;
    end if;
    return scheduler.complete_due(true);
end
$$;
comment on function scheduler.sweep() is
    'Run by the job meeting-status-sweep (pg_cron 1.5+): marks done the pending meetings whose '
    'end_time has passed; a probe and no write when none is due.';

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
-- longest wait).
create or replace function scheduler.wake()
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '1s'
as $$
declare
    v_enabled boolean := scheduler.is_enabled();
    v_completed integer := 0;
begin
    if v_enabled then
        v_completed := scheduler.sweep();
    end if;
    return pg_catalog.jsonb_build_object(
        'completed', v_completed,
        'next_end_time', case when v_enabled then scheduler.next_end_time() end,
        'now', pg_catalog.now(),
        'paused', not v_enabled);
end
$$;
comment on function scheduler.wake() is
    'Called by the application''s waker: marks done the pending meetings whose end_time has '
    'passed (skipping locked rows), then returns {completed, next_end_time, now, paused}.';

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
-- unchanged since 0002: function scheduler.is_enabled()
-- unchanged since 0002: function scheduler.register_jobs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])

-- Unschedule the jobs of a set of meetings, those that exist. Returns the number removed.
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
--   * one such transaction at a time (an advisory lock held until it ends): with a bound per
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
create or replace function scheduler.unregister_jobs(p_meeting_ids pg_catalog.uuid[])
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
    v_names pg_catalog.name[];
    v_jobs bigint[];
    v_job bigint;
begin
    if pg_catalog.cardinality(p_meeting_ids) is null then
        return 0;
    end if;
    if pg_catalog.has_table_privilege('cron.job', 'DELETE') then
        delete from cron.job j
        where j.jobname operator(pg_catalog.=) any (
                array(select s.job_name from scheduler.job_specs(p_meeting_ids, null) s))
          and j.username operator(pg_catalog.=) current_user;
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
        v_names := array(select s.job_name from scheduler.job_specs(p_meeting_ids, null) s);
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobname operator(pg_catalog.=) any (v_names)
                          and j.username operator(pg_catalog.=) current_user
                        limit v_left);
        if pg_catalog.cardinality(v_jobs) operator(pg_catalog.=) 0 then
            return 0;
        end if;
        -- One such transaction at a time (until it ends): the runs of a busy minute queue here
        -- with cron.job closed, and take the invalidations of the one before at once. Those of
        -- the jobs still there are removed (a new snapshot: one removed meanwhile is skipped).
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('scheduler.unschedule'));
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobid operator(pg_catalog.=) any (v_jobs)
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
comment on function scheduler.unregister_jobs(pg_catalog.uuid[]) is
    'Unschedules the pg_cron jobs of a set of meetings: one DELETE from cron.job when the owner '
    'may, else cron.unschedule per job, at most 1000 per transaction and one such transaction at '
    'a time (concurrent ones made job runs fail); the jobs left over are removed by their own '
    'runs and the reconcile job.';


-- Marks done every pending meeting whose end time has passed, and sets its updated_at when the
-- table has that column (applications sync on it). p_skip_locked: skip rows that another
-- transaction holds (it completes or moves them itself; the reconcile job catches any left),
-- else wait for them (up to the caller's lock_timeout). Completing a meeting unschedules its job
-- through the update trigger. Where the owner lacks DELETE on cron.job (Supabase:
-- unregister_jobs calls cron.unschedule per job, at most 1000 per transaction) the skip-locked
-- form marks at most 1000 meetings per call, so that the update trigger can unschedule the job
-- of every meeting it completed: the concurrent runs of a busy minute share the burst, and the
-- next runs, or the reconcile job, complete the rest. Dynamic SQL only for the optional column
-- and the limit (both constants of ours); the statuses are parameters.
create or replace function scheduler.complete_due(p_skip_locked boolean)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_completed integer;
begin
    execute pg_catalog.format(
        'with due as ('
        '    select m.id from public.meetings m'
        '    where m.status operator(pg_catalog.=) $1'
        '      and m.end_time operator(pg_catalog.<=) pg_catalog.now()'
        '    %s for update %s'
        ') '
        'update public.meetings m set status = $2%s '
        'from due where m.id operator(pg_catalog.=) due.id',
        case when p_skip_locked and not pg_catalog.has_table_privilege('cron.job', 'DELETE')
             then 'limit 1000' else '' end,
        case when p_skip_locked then 'skip locked' else '' end,
        case when exists (
                 select 1 from pg_catalog.pg_attribute a
                 where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
                   and a.attname operator(pg_catalog.=) 'updated_at'
                   and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
             then ', updated_at = pg_catalog.now()' else '' end)
    using scheduler.pending_status(), scheduler.done_status();
    get diagnostics v_completed = row_count;
    return v_completed;
end
$$;
comment on function scheduler.complete_due(boolean) is
    'Marks done the pending meetings whose end_time has passed (and sets updated_at where the '
    'table has it), skipping or waiting for locked rows; skipping, at most 1000 per call where '
    'the owner lacks DELETE on cron.job (unregister_jobs'' bound).';

create or replace function scheduler.complete_due_meetings()
returns integer
language sql
set search_path = pg_catalog, pg_temp
as $$
select scheduler.complete_due(true)
$$;
comment on function scheduler.complete_due_meetings() is
    'Marks done the pending meetings whose end_time has passed, skipping locked rows (at most '
    '1000 per call where the owner lacks DELETE on cron.job).';

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
