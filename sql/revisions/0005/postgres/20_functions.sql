-- unchanged since 0002: function scheduler.job_specs(p_meeting_ids pg_catalog.uuid[], p_end_times pg_catalog.timestamptz[])
-- unchanged since 0002: function scheduler.job_meetings(p_job_names pg_catalog.text[])
-- unchanged since 0003: function scheduler.pending_status()
-- unchanged since 0003: function scheduler.done_status()
-- unchanged since 0003: function scheduler.upcoming_jobs()
-- unchanged since 0002: function scheduler.job_name(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.meeting_id(p_job_name pg_catalog.text)
-- unchanged since 0002: function scheduler.job_minute(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.cron_schedule(p_end_time pg_catalog.timestamptz)
-- unchanged since 0002: function scheduler.job_command(p_meeting_id pg_catalog.uuid)
-- unchanged since 0002: function scheduler.reconcile_command()
-- unchanged since 0003: function scheduler.command_job(p_command pg_catalog.text)
-- unchanged since 0003: function scheduler.sweep_command()
-- unchanged since 0003: function scheduler.sweep_supported()

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
    if not scheduler.is_enabled() then
        return 0;
    end if;
    -- the other registered transitions (45_transitions.sql): rare, so one probe of the registry
    if exists (select 1 from scheduler.transitions t where not t.builtin) then
        v_other := scheduler.sweep_transitions();
    end if;
    if not exists (select 1 from public.meetings m
                   where m.status operator(pg_catalog.=) v_pending
                     and m.end_time operator(pg_catalog.<=) pg_catalog.now()) then
        return v_other;
    end if;
    return scheduler.complete_due(true, p_path) operator(pg_catalog.+) v_other;
end
$$;
comment on function scheduler.sweep_due(pg_catalog.text) is
    'The body of sweep() and wake(): marks done the pending meetings whose end_time has passed '
    '(events with the given path); a probe and no write when none is due.';
-- unchanged since 0004: function scheduler.sweep()
-- unchanged since 0003: function scheduler.next_end_time()
-- unchanged since 0004: function scheduler.wake()
-- unchanged since 0003: function scheduler.sync_sweep()
-- unchanged since 0002: function scheduler.is_enabled()

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
begin
    if pg_catalog.cardinality(p_meeting_ids) is null then
        return 0;
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
    'Schedules (upserts) the pg_cron jobs of a set of meetings: one INSERT ... ON CONFLICT into '
    'cron.job when the owner may write it, else cron.schedule per meeting (job_target()).';

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
        delete from cron.job j
        where j.jobname operator(pg_catalog.=) any (p_job_names::pg_catalog.name[])
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
        v_jobs := array(select j.jobid from cron.job j
                        where j.jobname operator(pg_catalog.=) any (p_job_names::pg_catalog.name[])
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
-- unchanged since 0004: function scheduler.complete_due(p_skip_locked boolean, p_path pg_catalog.text)
-- 0003's form, without the path
drop function if exists scheduler.complete_due(boolean);
-- unchanged since 0004: function scheduler.complete_due_meetings()
-- unchanged since 0003: function scheduler.complete_meeting(p_meeting_id pg_catalog.uuid)
