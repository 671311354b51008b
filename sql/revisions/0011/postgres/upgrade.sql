-- Revision 0011 (written by scripts/next_delta.py): the job horizon, and unschedule_jobs() locks
-- the jobs' rows before it deletes them.
--   * scheduler.settings.job_horizon (the default) and scheduler.transitions.job_horizon (a
--     transition's own): a pending row gets its pg_cron job once its time is within the horizon;
--     the reconcile job registers the rows entering it (46_horizon.sql). Null: no horizon, the
--     behaviour before.
--   * unschedule_jobs(): on the set-based path, SELECT ... FOR UPDATE, then DELETE by id, so that
--     no statement on cron.job waits with the table open ("stack depth limit exceeded",
--     benchmarks/findings/stack-depth-superuser.md).

alter table scheduler.settings add column if not exists job_horizon pg_catalog.interval
    constraint settings_job_horizon_check check (job_horizon >= interval '15 minutes');
alter table scheduler.transitions add column if not exists job_horizon pg_catalog.interval
    constraint transitions_job_horizon_check check (job_horizon >= interval '15 minutes');
comment on table scheduler.settings is
    'One row. enabled = false pauses the scheduler (triggers register no job, jobs and the '
    'reconcile job change nothing); history_retention bounds our rows in cron.job_run_details; '
    'pending_status, done_status and cancelled_status are the words of meetings.status we act on; '
    'sweep_seconds is the interval of the seconds sweep (pg_cron 1.5+; 0 turns it off); '
    'job_horizon is the default job horizon (null: none).';

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

-- Admin functions, recovery: repair every pending row (recover at start-up, reconcile every
-- minute) and delete the old run history. Python twin: scheduler_admin/sqlite/recovery.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- The body of recover and reconcile. Set-based: a few statements whatever the number of meetings.
create or replace function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- statistics lag behind bulk changes (cron.job analyzed empty, then 20,000 jobs): a nested
-- loop chosen on such an estimate took 20 to 40 s where a hash join takes milliseconds
set enable_nestloop = off
as $$
declare
    v_total integer;
    v_overdue integer;
    v_exist integer;
    v_missing pg_catalog.uuid[];
    v_missing_end pg_catalog.timestamptz[];
    v_orphans pg_catalog.uuid[];
    v_errors pg_catalog.jsonb;
    v_scheduled integer;
    -- orphan jobs removed (null in a dry run: the orphans found are reported)
    v_removed integer;
    v_message pg_catalog.text;
    v_pending pg_catalog.text := scheduler.pending_status();
    v_cutoff pg_catalog.timestamptz := scheduler.job_cutoff('meetings');
    v_beyond integer := 0;
begin
    select pg_catalog.count(*) into v_total
    from public.meetings m where m.status operator(pg_catalog.=) v_pending;
    -- 0011: upcoming meetings beyond the job horizon have no job yet (upcoming_jobs() leaves them
    -- out, so a job of one is removed below as an orphan)
    if v_cutoff operator(pg_catalog.<>) 'infinity'::pg_catalog.timestamptz then
        select pg_catalog.count(*) into v_beyond
        from public.meetings m where m.status operator(pg_catalog.=) v_pending
                                 and m.end_time operator(pg_catalog.>) v_cutoff;
    end if;

    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'meeting_id', m.id,
               'error', case when m.end_time is null
                             then 'end_time is null: set an end time or cancel the meeting'
                             else 'end_time is out of range: set a finite end time or cancel the meeting'
                        end)), '[]')
    into v_errors
    from public.meetings m
    where m.status operator(pg_catalog.=) v_pending
      and (m.end_time is null or not pg_catalog.isfinite(m.end_time)
           or m.end_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz);

    -- Overdue upcoming meetings (missed while the server was down, loaded with triggers off):
    -- complete them. The update trigger removes their jobs.
    if p_dry_run then
        select pg_catalog.count(*) into v_overdue from public.meetings m
        where m.status operator(pg_catalog.=) v_pending
          and m.end_time operator(pg_catalog.<=) pg_catalog.now();
    else
        -- the reconcile job skips locked rows; recover (and resume, the migration) waits
        v_overdue := scheduler.complete_due(p_skip_locked, case when p_skip_locked then 'reconcile'
                                                                else 'recover' end);
    end if;

    -- Jobs that exist and are right, upcoming meetings whose job is missing or wrong, and jobs of
    -- ours whose meeting is gone or no longer upcoming (jobs that are not the job of an upcoming
    -- meeting, and whose name is a meeting's).
    with upcoming as materialized (
        select u.meeting_id, u.end_time, u.job_name, u.schedule, u.command
        from scheduler.upcoming_jobs() u
    ), have as (
        select u.meeting_id, u.end_time,
               j.schedule operator(pg_catalog.=) u.schedule
               and j.command operator(pg_catalog.=) u.command as ok
        from upcoming u
        left join cron.job j on j.jobname operator(pg_catalog.=) u.job_name
                            and j.username operator(pg_catalog.=) current_user
        where u.end_time operator(pg_catalog.>) pg_catalog.now()
          and u.end_time operator(pg_catalog.<) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz
    ), leftover as materialized (
        select j.jobname::pg_catalog.text as jobname from cron.job j
        where j.username operator(pg_catalog.=) current_user
          and j.jobname operator(pg_catalog.~~) 'meeting-status-%'
          and not exists (select 1 from upcoming u where u.job_name operator(pg_catalog.=) j.jobname)
    )
    select h.n_ok, h.ids, h.end_times, o.ids
    into v_exist, v_missing, v_missing_end, v_orphans
    from (select pg_catalog.count(*) filter (where h.ok) as n_ok,
                 pg_catalog.array_agg(h.meeting_id) filter (where h.ok is not true) as ids,
                 pg_catalog.array_agg(h.end_time) filter (where h.ok is not true) as end_times
          from have h) h,
         (select pg_catalog.array_agg(p.meeting_id) as ids
          from scheduler.job_meetings(array(select l.jobname from leftover l)) p
          where p.meeting_id is not null) o;

    v_scheduled := coalesce(pg_catalog.cardinality(v_missing), 0);
    if not p_dry_run then
        begin
            perform scheduler.register_jobs(v_missing, v_missing_end);
        exception when others then
            -- One bad row must not stop the others: retry one meeting at a time.
            v_scheduled := 0;
            for i in 1 .. pg_catalog.cardinality(v_missing) loop
                begin
                    perform scheduler.register_jobs(array[v_missing[i]], array[v_missing_end[i]]);
                    v_scheduled := v_scheduled operator(pg_catalog.+) 1;
                exception when others then
                    get stacked diagnostics v_message = message_text;
                    v_errors := v_errors operator(pg_catalog.||) pg_catalog.jsonb_build_array(
                        pg_catalog.jsonb_build_object('meeting_id', v_missing[i], 'error', v_message));
                end;
            end loop;
        end;
        -- on the per-call path (Supabase) at most 1000 per transaction: the next run removes more
        v_removed := scheduler.unregister_jobs(v_orphans);
        -- failing entries of meetings gone or no longer upcoming (0009)
        perform scheduler.clear_failing_rows('meetings');
    end if;

    return pg_catalog.jsonb_build_object(
        'total_meetings', v_total,
        'jobs_scheduled', v_scheduled,
        'jobs_already_exist', coalesce(v_exist, 0),
        'overdue_completed', v_overdue,
        'orphans_removed', coalesce(v_removed, pg_catalog.cardinality(v_orphans), 0),
        'errors', v_errors,
        'success', pg_catalog.jsonb_array_length(v_errors) operator(pg_catalog.=) 0,
        'dry_run', p_dry_run)
        -- upcoming meetings beyond the job horizon (0011; the key only with a horizon)
        operator(pg_catalog.||) case when v_cutoff operator(pg_catalog.<>) 'infinity'::pg_catalog.timestamptz
                                     then pg_catalog.jsonb_build_object('beyond_horizon', v_beyond)
                                     else '{}'::pg_catalog.jsonb end;
end
$$;
comment on function scheduler.repair(boolean, boolean) is
    'Completes overdue upcoming meetings, registers missing or wrong jobs, removes orphan jobs '
    '(through unregister_jobs, bounded per transaction where it calls cron.unschedule); reports '
    'counts. Internal: called by recover() and reconcile().';

-- Registers the jobs of the pending rows among a set (keys as text, their times).
-- 0011: those beyond the transition's job horizon (46_horizon.sql) get none, and lose the one
-- they had (moved out of the horizon, through unregister_transition_jobs(), which writes
-- cron.job only when a job matches), as register_jobs() does for meetings.
create or replace function scheduler.register_transition_jobs(p_name pg_catalog.text,
                                                              p_keys pg_catalog.text[],
                                                              p_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_prefix pg_catalog.text := (select t.job_prefix from scheduler.transitions t
                                 where t.name operator(pg_catalog.=) p_name);
    v_cutoff pg_catalog.timestamptz := scheduler.job_cutoff(p_name);
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_beyond pg_catalog.text[];
begin
    if coalesce(pg_catalog.cardinality(p_keys), 0) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    if v_cutoff operator(pg_catalog.<>) 'infinity'::pg_catalog.timestamptz then
        select pg_catalog.array_agg(r.key) filter (where r.within),
               pg_catalog.array_agg(r.time) filter (where r.within),
               pg_catalog.array_agg(r.key) filter (where not r.within)
        into v_keys, v_times, v_beyond
        from (select x.key, x.time, coalesce(x.time operator(pg_catalog.<=) v_cutoff, true) as within
              from rows from (pg_catalog.unnest(p_keys), pg_catalog.unnest(p_times)) as x(key, time)) r;
        perform scheduler.unregister_transition_jobs(p_name, v_beyond);
        if v_keys is null then
            return 0;
        end if;
        p_keys := v_keys;
        p_times := v_times;
    end if;
    -- pg_cron keeps job names of at most 63 bytes (type name): a longer one would be cut, and
    -- its job could never be found again by its name
    if exists (select 1 from pg_catalog.unnest(p_keys) as k(key)
               where pg_catalog.octet_length(v_prefix operator(pg_catalog.||) k.key)
                     operator(pg_catalog.>) 63) then
        raise exception 'a key of transition % is too long for a job name (% plus the key must fit in 63 bytes)',
                        p_name, pg_catalog.quote_literal(v_prefix)
            using errcode = 'string_data_right_truncation',
                  hint = 'Use shorter keys, or register the transition again with a shorter --prefix.';
    end if;
    return (select scheduler.schedule_jobs(pg_catalog.array_agg(s.job_name),
                                           pg_catalog.array_agg(s.schedule),
                                           pg_catalog.array_agg(s.command))
            from scheduler.transition_job_specs(p_name, v_prefix, p_keys, p_times) s);
end
$$;

-- recover and reconcile for one transition: complete due rows, register missing or wrong jobs,
-- remove orphan jobs (its prefix, no pending row). Reports the counts recover reports.
create or replace function scheduler.repair_transition(p_name pg_catalog.text, p_dry_run boolean,
                                                       p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set jit = off
set enable_nestloop = off
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_total bigint;
    v_overdue bigint;
    v_pending_keys pg_catalog.text[];
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_exist bigint;
    v_missing pg_catalog.text[];
    v_missing_schedules pg_catalog.text[];
    v_missing_commands pg_catalog.text[];
    v_orphans pg_catalog.text[];
    v_removed integer;
    v_errors pg_catalog.jsonb;
    v_beyond bigint;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    -- the pending rows within the job horizon (all without one: a job of one is never an
    -- orphan, as recover treats meetings; 0011: one beyond the horizon has no job yet, and a job
    -- of it is removed) and those not due yet (they must have a job)
    -- 0009: a key too long for a job name (written before the BEFORE trigger checked it, or
    -- with the triggers off) is reported as an error, row by row, and gets no job: registering
    -- it would cut the name (and two keys cut alike would make one statement upsert one job
    -- twice). Its job, if one was stored cut, is an orphan.
    execute pg_catalog.format(
        'select pg_catalog.count(*), pg_catalog.array_agg(r.%I::pg_catalog.text) filter (where r.within), '
        '       pg_catalog.array_agg(r.%I::pg_catalog.text) '
        '           filter (where r.%I operator(pg_catalog.>) pg_catalog.now() and not r.too_long '
        '                   and r.within), '
        '       pg_catalog.array_agg(r.%I) filter (where r.%I operator(pg_catalog.>) pg_catalog.now() '
        '                                             and not r.too_long and r.within), '
        '       coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('
        '           ''key'', pg_catalog.left(r.%I::pg_catalog.text, 80), ''error'', '
        '           pg_catalog.format(''key too long for a job name (%%s plus the key must fit '
                                      'in 63 bytes): shorten the key, or move the row out of %%s'', '
        '                             pg_catalog.quote_literal($2), pg_catalog.array_to_string($1, '', ''))))'
        '           filter (where r.too_long), ''[]''), '
        '       pg_catalog.count(*) filter (where not r.within) '
        'from (select x.*, $3 and pg_catalog.octet_length($2 operator(pg_catalog.||) x.%I::pg_catalog.text) '
        '                  operator(pg_catalog.>) 63 as too_long, '
        '             coalesce(x.%I operator(pg_catalog.<=) $4, true) as within '
        '      from %s x where x.%I operator(pg_catalog.=) any ($1)) r',
        v_t.key_column, v_t.key_column, v_t.time_column, v_t.time_column, v_t.time_column,
        v_t.key_column, v_t.key_column, v_t.time_column, v_table, v_t.state_column)
    into v_total, v_pending_keys, v_keys, v_times, v_errors, v_beyond
    -- $3: whether a key of this type can be too long at all (a uuid has 36 characters, a bigint
    -- at most 20): the length of each key is looked at only when it can
    using v_t.from_states, v_t.job_prefix,
          not (v_t.key_type operator(pg_catalog.=) any (array['uuid', 'bigint', 'integer'])
               and pg_catalog.octet_length(v_t.job_prefix) operator(pg_catalog.+) 36
                   operator(pg_catalog.<=) 63),
          -- $4: the job horizon's end (0011): a row beyond it has no job yet, and a job of one
          -- is removed as an orphan
          scheduler.job_cutoff(p_name);
    -- counted before: the total is the pending rows found, as recover reports for meetings
    if p_dry_run then
        execute pg_catalog.format(
            'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1) '
            'and r.%I operator(pg_catalog.<=) pg_catalog.now()',
            v_table, v_t.state_column, v_t.time_column)
        into v_overdue using v_t.from_states;
    else
        v_overdue := scheduler.complete_due_transition(
            p_name, p_skip_locked, case when p_skip_locked then 'reconcile' else 'recover' end);
    end if;
    with expected as materialized (
        select s.job_name, s.schedule, s.command
        from scheduler.transition_job_specs(p_name, v_t.job_prefix, v_keys, v_times) s
    ), have as (
        select e.job_name, e.schedule, e.command,
               j.schedule operator(pg_catalog.=) e.schedule
               and j.command operator(pg_catalog.=) e.command as ok
        from expected e
        left join cron.job j on j.jobname operator(pg_catalog.=) e.job_name
                            and j.username operator(pg_catalog.=) current_user
    )
    select pg_catalog.count(*) filter (where h.ok),
           pg_catalog.array_agg(h.job_name) filter (where h.ok is not true),
           pg_catalog.array_agg(h.schedule) filter (where h.ok is not true),
           pg_catalog.array_agg(h.command) filter (where h.ok is not true),
           array(select j.jobname::pg_catalog.text from cron.job j
                 where j.username operator(pg_catalog.=) current_user
                   -- the prefix is [a-z0-9-]: no LIKE wildcard in it
                   and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%')
                   -- an anti join (hashed): `<> all (array)` compared each job with every
                   -- pending key, 2 s for 20,000 rows (0008)
                   and not exists (
                       select from pg_catalog.unnest(v_pending_keys) as k(key)
                       where (v_t.job_prefix operator(pg_catalog.||) k.key)
                             operator(pg_catalog.=) j.jobname::pg_catalog.text))
    into v_exist, v_missing, v_missing_schedules, v_missing_commands, v_orphans
    from have h;
    if not p_dry_run then
        perform scheduler.schedule_jobs(v_missing, v_missing_schedules, v_missing_commands);
        v_removed := scheduler.unschedule_jobs(v_orphans);
        -- triggers dropped or lost with a rebuilt table are re-created (0006), as on SQLite
        if scheduler.transition_triggers(p_name, false) operator(pg_catalog.<) 4 then
            perform scheduler.create_transition_triggers(p_name);
        end if;
        -- failing entries of rows gone or no longer pending (0009)
        perform scheduler.clear_failing_rows(p_name);
    end if;
    return pg_catalog.jsonb_build_object(
        'total', v_total,
        'jobs_scheduled', coalesce(pg_catalog.cardinality(v_missing), 0),
        'jobs_already_exist', coalesce(v_exist, 0),
        'overdue_completed', v_overdue,
        'orphans_removed', coalesce(v_removed, pg_catalog.cardinality(v_orphans), 0))
        -- pending rows beyond the job horizon (0011; the key only with a horizon): no job yet
        operator(pg_catalog.||) case when scheduler.job_horizon(p_name) is not null
                                     then pg_catalog.jsonb_build_object('beyond_horizon', v_beyond)
                                     else '{}'::pg_catalog.jsonb end
        -- rows it could not serve, one by one (0009; the key only when there are some)
        operator(pg_catalog.||) case when pg_catalog.jsonb_array_length(v_errors) operator(pg_catalog.>) 0
                                     then pg_catalog.jsonb_build_object('errors', v_errors)
                                     else '{}'::pg_catalog.jsonb end;
end
$$;

-- What doctor checks for a transition but the builtin one: its triggers, the jobs its pending
-- rows lack and the orphan jobs of its prefix (a dry run of its repair), its rows overdue by
-- over two minutes, whether it is paused. security definer: doctor runs it as service_role over
-- REST too.
create or replace function scheduler.transition_health(p_name pg_catalog.text)
returns pg_catalog.jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_repair pg_catalog.jsonb;
    v_triggers integer;
    v_overdue bigint;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    if v_t.builtin then
        raise exception 'meetings is checked by scheduler.health()'
            using errcode = 'invalid_parameter_value';
    end if;
    v_triggers := scheduler.transition_triggers(p_name, true);
    execute pg_catalog.format(
        'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1) '
        'and r.%I operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-) interval ''2 minutes'')',
        v_table, v_t.state_column, v_t.time_column)
    into v_overdue using v_t.from_states;
    v_repair := scheduler.repair_transition(p_name, true, true);
    return pg_catalog.jsonb_build_object(
        'transition', p_name,
        'table', v_t.table_sql,
        'paused', (select t.paused from scheduler.transitions t
                   where t.name operator(pg_catalog.=) p_name),
        'triggers', v_triggers,
        'pending_rows', v_repair operator(pg_catalog.->) 'total',
        'missing_jobs', v_repair operator(pg_catalog.->) 'jobs_scheduled',
        'orphan_jobs', v_repair operator(pg_catalog.->) 'orphans_removed',
        'beyond_horizon', v_repair operator(pg_catalog.->) 'beyond_horizon',
        'overdue_rows', v_overdue);
end
$$;
comment on function scheduler.transition_health(pg_catalog.text) is
    'doctor''s facts about a registered transition but meetings: triggers present, pending rows, '
    'missing and orphan jobs, rows overdue by over two minutes, paused.';

-- The job horizon (0011): a pending row gets its pg_cron job only once its time is within the
-- horizon of its transition. pg_cron's launcher walks every job it holds at every wake-up (every
-- second on pg_cron 1.5+) and reloads them all at every change to cron.job, so a million jobs
-- saturate a core (benchmarks/RESULTS.md, "Scale"). With a horizon, a row further out has no job
-- yet; the reconcile job (every minute) registers the rows that entered the horizon, set-based,
-- long before their minute. Null (the default) means no horizon: every pending row has its job.
--
-- The horizon of a transition: its own (scheduler.transitions.job_horizon), else the default of
-- every transition (scheduler.settings.job_horizon), else none. Both columns refuse a horizon
-- under 15 minutes (10_schema.sql, 45_transitions.sql): fifteen reconcile runs between a row
-- entering the horizon and its minute, where doctor and health() fail at three skipped or failed
-- runs in a row. Python twin: scheduler_admin/sqlite/horizon.py.

create or replace function scheduler.job_horizon(p_name pg_catalog.text)
returns pg_catalog.interval
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select coalesce((select t.job_horizon from scheduler.transitions t
                 where t.name operator(pg_catalog.=) p_name),
                (select s.job_horizon from scheduler.settings s))
$$;
comment on function scheduler.job_horizon(pg_catalog.text) is
    'The job horizon of a transition: its own, else scheduler.settings.job_horizon; null when '
    'none (every pending row has its job).';

-- The latest time whose rows have their job now: now() + the horizon, infinity without one.
create or replace function scheduler.job_cutoff(p_name pg_catalog.text)
returns pg_catalog.timestamptz
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select coalesce(pg_catalog.now() operator(pg_catalog.+) scheduler.job_horizon(p_name),
                'infinity'::pg_catalog.timestamptz)
$$;
comment on function scheduler.job_cutoff(pg_catalog.text) is
    'now() plus the job horizon of a transition (infinity without one): the pending rows whose '
    'time is at or before it have their job.';

-- Sets the default horizon (p_transition null) or one transition's own (p_transition named; null
-- p_horizon then means "the default"). The reconcile job applies it within a minute: it
-- registers the rows that entered the horizon and removes the jobs of rows beyond it (at most
-- 1000 per run where it calls cron.unschedule). security definer: the caller (service_role on
-- Supabase) may not write the settings.
create or replace function scheduler.set_job_horizon(p_horizon pg_catalog.interval,
                                                     p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_horizon is not null and p_horizon operator(pg_catalog.<) interval '15 minutes' then
        raise exception 'job horizon % is too short: it must be at least 15 minutes', p_horizon
            using errcode = 'invalid_parameter_value',
                  hint = 'The reconcile job registers the rows entering the horizon once a minute; '
                         'give at least 15 minutes (e.g. ''1 day''), or none to give every '
                         'pending row its job.';
    end if;
    if p_transition is null then
        update scheduler.settings set job_horizon = p_horizon, updated_at = pg_catalog.now();
    else
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
        update scheduler.transitions set job_horizon = p_horizon
        where name operator(pg_catalog.=) p_transition;
    end if;
    return (select pg_catalog.to_jsonb(h) from scheduler.horizons() h
            where h.transition operator(pg_catalog.=) coalesce(p_transition, 'meetings'));
end
$$;
comment on function scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text) is
    'Sets the default job horizon (no transition named) or one transition''s own (null: the '
    'default); at least 15 minutes, null for none. The reconcile job applies it within a minute.';

-- Each transition's horizon and the pending rows beyond it: how many, the earliest time among
-- them, and when the first of them gets its job (when its time enters the horizon; the reconcile
-- job registers it within the minute after).
create or replace function scheduler.horizons()
returns table (transition pg_catalog.text, job_horizon pg_catalog.text,
               horizon_seconds double precision, own boolean, beyond_horizon bigint,
               next_beyond pg_catalog.timestamptz, next_registration pg_catalog.timestamptz)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_horizon pg_catalog.interval;
    v_own boolean;
    v_count bigint;
    v_next pg_catalog.timestamptz;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
begin
    for v_name, v_own in
        select t.name, t.job_horizon is not null from scheduler.transitions t
        where t.builtin
           or exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
        order by not t.builtin, t.name
    loop
        v_horizon := scheduler.job_horizon(v_name);
        v_count := 0;
        v_next := null;
        if v_horizon is not null then
            if v_name operator(pg_catalog.=) 'meetings' then
                -- one word, so that the planner matches the partial index on end_time
                select pg_catalog.count(*), pg_catalog.min(m.end_time) into v_count, v_next
                from public.meetings m
                where m.status operator(pg_catalog.=) (select scheduler.pending_status())
                  and m.end_time operator(pg_catalog.>) (pg_catalog.now() operator(pg_catalog.+) v_horizon);
            else
                select * into v_t from scheduler.transition_target(v_name);
                v_table := v_t.table_sql::pg_catalog.regclass;
                execute pg_catalog.format(
                    'select pg_catalog.count(*), pg_catalog.min(r.%I) from %s r '
                    'where r.%I::pg_catalog.text operator(pg_catalog.=) any (%L::pg_catalog.text[]) '
                    'and r.%I operator(pg_catalog.>) $1',
                    v_t.time_column, v_table, v_t.state_column, v_t.from_states, v_t.time_column)
                into v_count, v_next
                using pg_catalog.now() operator(pg_catalog.+) v_horizon;
            end if;
        end if;
        transition := v_name;
        job_horizon := v_horizon::pg_catalog.text;
        horizon_seconds := pg_catalog.date_part('epoch', v_horizon);
        own := v_own;
        beyond_horizon := v_count;
        next_beyond := v_next;
        next_registration := v_next operator(pg_catalog.-) v_horizon;
        return next;
    end loop;
end
$$;
comment on function scheduler.horizons() is
    'Each transition''s job horizon (null: none), whether it is its own, and its pending rows '
    'beyond it: how many, the earliest time, when that one gets its job.';

-- The pending rows beyond the horizon of every transition (or of the one named): the job each
-- will get, and from when (its time minus the horizon). What list-jobs shows after the jobs.
create or replace function scheduler.deferred_jobs(p_transition pg_catalog.text default null)
returns table (transition pg_catalog.text, key pg_catalog.text, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, state pg_catalog.text,
               registered_at pg_catalog.timestamptz)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_name pg_catalog.text;
    v_horizon pg_catalog.interval;
    v_cutoff pg_catalog.timestamptz;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    for v_name in
        select h.transition from scheduler.horizons() h
        where h.beyond_horizon operator(pg_catalog.>) 0
          and (p_transition is null or h.transition operator(pg_catalog.=) p_transition)
    loop
        v_horizon := scheduler.job_horizon(v_name);
        v_cutoff := pg_catalog.now() operator(pg_catalog.+) v_horizon;
        if v_name operator(pg_catalog.=) 'meetings' then
            return query
            select 'meetings'::pg_catalog.text, s.meeting_id::pg_catalog.text,
                   s.job_name::pg_catalog.text, s.schedule, s.fires_at, s.end_time,
                   (select scheduler.pending_status()), s.end_time operator(pg_catalog.-) v_horizon
            from (select pg_catalog.array_agg(m.id) as ids, pg_catalog.array_agg(m.end_time) as ends
                  from public.meetings m
                  where m.status operator(pg_catalog.=) (select scheduler.pending_status())
                    and m.end_time operator(pg_catalog.>) v_cutoff) a
            cross join lateral scheduler.job_specs(a.ids, a.ends) s;
        else
            select * into v_t from scheduler.transition_target(v_name);
            v_table := v_t.table_sql::pg_catalog.regclass;
            return query execute pg_catalog.format(
                'select $1, s.key, s.job_name, s.schedule, s.fires_at, s.time, s.state, '
                '       s.time operator(pg_catalog.-) $3 '
                'from (select pg_catalog.array_agg(r.%I::pg_catalog.text) as keys, '
                '             pg_catalog.array_agg(r.%I) as times, '
                '             pg_catalog.array_agg(r.%I::pg_catalog.text) as states '
                '      from %s r where r.%I::pg_catalog.text operator(pg_catalog.=) any ($2) '
                '      and r.%I operator(pg_catalog.>) $4) a '
                'cross join lateral ('
                '    select x.key, x.time, x.state, j.job_name, j.schedule, '
                '           scheduler.job_minute(x.time) at time zone ''UTC'' as fires_at '
                '    from rows from (pg_catalog.unnest(a.keys), pg_catalog.unnest(a.times), '
                '                    pg_catalog.unnest(a.states)) as x(key, time, state) '
                '    join scheduler.transition_job_specs($1, $5, a.keys, a.times) j '
                '      on j.job_name operator(pg_catalog.=) ($5 operator(pg_catalog.||) x.key)) s',
                v_t.key_column, v_t.time_column, v_t.state_column,
                v_table, v_t.state_column, v_t.time_column)
            using v_name, v_t.from_states, v_horizon, v_cutoff, v_t.job_prefix;
        end if;
    end loop;
end
$$;
comment on function scheduler.deferred_jobs(pg_catalog.text) is
    'The pending rows beyond the job horizon (of every transition or of the one named): the job '
    'each will get and from when (its time minus the horizon).';

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

-- Admin functions, metrics: everything the Prometheus metrics need, in one call.
-- Python twin: scheduler_admin/sqlite/metrics.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- Everything the Prometheus metrics need, in one call (scheduler-admin metrics, /metrics):
-- health()'s counts, completions by path and the lateness histogram (cumulative: the events
-- kept plus scheduler.metric_totals), failed and retried runs, webhook delivery counts. Of
-- every transition (null: the health part is the meetings', the counts every transition's) or
-- of one (its pending rows, jobs, missing and orphan jobs, overdue rows, its jobs' failed runs,
-- its events' counts).
create or replace function scheduler.metrics(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
declare
    v_builtin boolean := true;
    v_health pg_catalog.jsonb;
    v_facts pg_catalog.jsonb;
    v_failed bigint;
    v_retried bigint;
    -- how a transition's job command names it (transition_job_specs): no LIKE pattern
    v_call pg_catalog.text := 'select scheduler.complete_transition('
                              operator(pg_catalog.||) pg_catalog.quote_literal(p_transition)
                              operator(pg_catalog.||) ', ';
begin
    if p_transition is not null then
        select t.builtin into v_builtin from scheduler.transition_target(p_transition) t;
    end if;
    if v_builtin then
        v_health := scheduler.health();
        select f.failed, f.retried into v_failed, v_retried
        from scheduler.failed_runs('-infinity') f;
    else
        v_facts := scheduler.transition_health(p_transition);
        v_health := pg_catalog.jsonb_build_object(
            'enabled', scheduler.transition_active(p_transition),
            'upcoming_meetings', v_facts operator(pg_catalog.->) 'pending_rows',
            'jobs', (select pg_catalog.count(*) from scheduler.transition_jobs(p_transition)),
            'missing_jobs', v_facts operator(pg_catalog.->) 'missing_jobs',
            'orphan_jobs', v_facts operator(pg_catalog.->) 'orphan_jobs',
            'overdue_meetings', v_facts operator(pg_catalog.->) 'overdue_rows');
        -- its jobs' failed runs; retried: the job is gone (its row was completed or left the
        -- pending states) or a later run of it succeeded
        select pg_catalog.count(*),
               pg_catalog.count(*) filter (
                   where not exists (select 1 from cron.job j
                                     where j.jobid operator(pg_catalog.=) d.jobid)
                      or exists (select 1 from cron.job_run_details s
                                 where s.jobid operator(pg_catalog.=) d.jobid
                                   and s.runid operator(pg_catalog.>) d.runid
                                   and s.status operator(pg_catalog.=) 'succeeded'))
        into v_failed, v_retried
        from cron.job_run_details d
        where d.username operator(pg_catalog.=) current_user
          and d.status operator(pg_catalog.=) 'failed'
          and d.return_message is distinct from 'job canceled'
          and pg_catalog.strpos(d.command, v_call) operator(pg_catalog.>) 0;
    end if;
    return (
        with counts as (
            select c.name, c.label, pg_catalog.sum(c.value) as value
            from (select c.name, c.label, c.transition, c.value from scheduler.event_counts(null) c
                  union all
                  select t.name, t.label, t.transition, t.value from scheduler.metric_totals t) c
            where p_transition is null or c.transition operator(pg_catalog.=) p_transition
            group by c.name, c.label
        ), pending as (
            select pg_catalog.count(*) as backlog, pg_catalog.min(e.completed_at) as oldest
            from scheduler.completion_events e
            where e.delivery operator(pg_catalog.=) 'pending'
              and (p_transition is null or e.transition operator(pg_catalog.=) p_transition)
        )
        select pg_catalog.jsonb_build_object(
            'backend', 'postgres',
            'enabled', v_health operator(pg_catalog.->) 'enabled',
            'upcoming_meetings', v_health operator(pg_catalog.->) 'upcoming_meetings',
            'jobs', v_health operator(pg_catalog.->) 'jobs',
            'missing_jobs', v_health operator(pg_catalog.->) 'missing_jobs',
            'orphan_jobs', v_health operator(pg_catalog.->) 'orphan_jobs',
            'overdue_meetings', v_health operator(pg_catalog.->) 'overdue_meetings',
            'completions', (select pg_catalog.jsonb_object_agg(p.path, coalesce(c.value, 0)::bigint)
                            from pg_catalog.unnest(array['job', 'sweep', 'waker', 'reconcile',
                                                         'recover', 'write']) p(path)
                            left join counts c on c.name operator(pg_catalog.=) 'completions'
                                              and c.label operator(pg_catalog.=) p.path),
            'lateness', pg_catalog.jsonb_build_object(
                'buckets', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(
                                       b.le, coalesce(c.value, 0)::bigint) order by b.le)
                            from pg_catalog.unnest(scheduler.lateness_buckets()) b(le)
                            left join counts c on c.name operator(pg_catalog.=) 'lateness_le'
                                              and c.label operator(pg_catalog.=) b.le::pg_catalog.text),
                'count', coalesce((select c.value from counts c
                                   where c.name operator(pg_catalog.=) 'lateness_count'), 0)::bigint,
                'sum', coalesce((select c.value from counts c
                                 where c.name operator(pg_catalog.=) 'lateness_sum'), 0)),
            'failed_runs', v_failed,
            'retried_runs', v_retried,
            -- 0009: rows failing to complete (of this transition, or all), the reconcile job
            -- skipped or failing in a row
            'failing_rows', (select pg_catalog.count(*) from scheduler.failing_rows f
                             where p_transition is null
                                or f.transition operator(pg_catalog.=) p_transition),
            'reconcile_skipped_in_a_row', coalesce((select x.skipped_in_a_row
                                                    from scheduler.reconcile_state x), 0),
            'reconcile_failed_in_a_row', scheduler.reconcile_failed_in_a_row(),
            -- 0011: the job horizon (of this transition, or the meetings'; null: none) and the
            -- pending rows beyond it (of this transition, or all)
            'job_horizon_seconds', (select h.horizon_seconds from scheduler.horizons() h
                                    where h.transition operator(pg_catalog.=)
                                          coalesce(p_transition, 'meetings')),
            'beyond_horizon', coalesce((select pg_catalog.sum(h.beyond_horizon) from scheduler.horizons() h
                                        where p_transition is null
                                           or h.transition operator(pg_catalog.=) p_transition), 0)::bigint,
            'webhooks', pg_catalog.jsonb_build_object(
                'enabled', (select s.webhooks from scheduler.settings s),
                'delivered', coalesce((select c.value from counts c
                                       where c.name operator(pg_catalog.=) 'webhook_delivered'), 0)::bigint,
                'failed', coalesce((select c.value from counts c
                                    where c.name operator(pg_catalog.=) 'webhook_failed'), 0)::bigint,
                'attempt_failures', coalesce((select c.value from counts c
                                              where c.name operator(pg_catalog.=) 'webhook_attempt_failures'), 0)::bigint,
                'backlog', p.backlog,
                'oldest_pending_seconds',
                pg_catalog.date_part('epoch', pg_catalog.now() operator(pg_catalog.-) p.oldest)))
        from pending p
    ) operator(pg_catalog.||) case when p_transition is null then '{}'::pg_catalog.jsonb
                                   else pg_catalog.jsonb_build_object('transition', p_transition) end;
end
$$;
comment on function scheduler.metrics(pg_catalog.text) is
    'Counts for the Prometheus metrics in one call: health''s counts, completions by path, the '
    'lateness histogram, failed and retried runs, webhook deliveries, failures and backlog; of '
    'every transition or of the one named.';

-- Least privilege (50_grants.sql): nothing new is executable by PUBLIC; service_role (Supabase's
-- admin role over RPC) may read the horizons and the deferred rows and set the horizon.
revoke all on function scheduler.job_horizon(pg_catalog.text), scheduler.job_cutoff(pg_catalog.text),
    scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text), scheduler.horizons(),
    scheduler.deferred_jobs(pg_catalog.text) from public;
do $grants$
declare
    v_role pg_catalog.text;
begin
    foreach v_role in array array['anon', 'authenticated', 'service_role'] loop
        if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) v_role) then
            execute pg_catalog.format(
                'revoke all on function scheduler.job_horizon(pg_catalog.text), '
                'scheduler.job_cutoff(pg_catalog.text), '
                'scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text), '
                'scheduler.horizons(), scheduler.deferred_jobs(pg_catalog.text) from %I', v_role);
        end if;
    end loop;
    if exists (select 1 from pg_catalog.pg_roles r where r.rolname operator(pg_catalog.=) 'service_role') then
        grant execute on function scheduler.horizons(), scheduler.deferred_jobs(pg_catalog.text),
            scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text)
        to service_role;
    end if;
end
$grants$;
