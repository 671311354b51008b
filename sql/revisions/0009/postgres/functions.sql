-- Revision 0009: the functions that changed since 0008 (written by scripts/changed_functions.py).

-- from sql/postgres/20_functions.sql

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
        -- A row of scheduler.locks (0009): no role but the owner can take it.
        perform scheduler.take_lock('unschedule', true);
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

-- Marks done every pending meeting whose end time has passed, and sets its updated_at when the
-- table has that column (applications sync on it), and records one completion event per meeting
-- in the same statement (scheduler.completion_events; p_path says which path completed it).
-- p_skip_locked: skip rows that another transaction holds (it completes or moves them itself;
-- the reconcile job catches any left), else wait for them (up to the caller's lock_timeout).
-- Completing a meeting unschedules its job through the update trigger. Where the owner lacks
-- DELETE on cron.job (Supabase: unregister_jobs calls cron.unschedule per job, at most 1000 per
-- transaction) the skip-locked form marks at most 1000 meetings per call, so that the update
-- trigger can unschedule the job of every meeting it completed: the concurrent runs of a busy
-- minute share the burst, and the next runs, or the reconcile job, complete the rest. 0009: the
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

-- from sql/postgres/30_triggers.sql

create or replace function scheduler.meetings_before_write()
returns pg_catalog.trigger
language plpgsql
-- security definer (0009): it notes the meetings it completes in scheduler.write_completions,
-- which only the owner may write, so that a writer cannot make the AFTER trigger record events
-- of completions the scheduler never made. Otherwise it reads and sets only NEW and its
-- arguments (the pending and done words, given when the trigger is created) and calls
-- pg_catalog functions. No role but the owner may execute it (a trigger function can only be
-- attached to a table by a role that may execute it).
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Only pending meetings are ours; any other status is the application's and left alone.
    if new.status is null or new.status::pg_catalog.text operator(pg_catalog.<>) tg_argv[0] then
        return new;
    end if;
    if new.end_time is null then
        raise exception 'meeting %: end_time is required', coalesce(new.id::pg_catalog.text, '(new)')
            using errcode = 'not_null_violation',
                  hint = 'Give end_time as a timestamp with time zone, e.g. 2026-12-01 15:30:00+00.';
    end if;
    -- A job's schedule is a calendar minute, and the admin tools read times as years 1 to 9999.
    if not pg_catalog.isfinite(new.end_time)
       or new.end_time operator(pg_catalog.<) '0001-01-01 00:00:00+00'::pg_catalog.timestamptz
       or new.end_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz then
        raise exception 'meeting %: end_time % is out of range', coalesce(new.id::pg_catalog.text, '(new)'),
                        new.end_time
            using errcode = 'datetime_field_overflow',
                  hint = 'Give a finite end_time between the years 1 and 9999, e.g. 2026-12-01 15:30:00+00.';
    end if;
    if new.end_time operator(pg_catalog.<=) pg_catalog.now() then
        new.status := tg_argv[1];
        -- the AFTER trigger of this statement records the completion events (path write) of
        -- the meetings noted here (the setting only tells it to look: any session may set it)
        insert into scheduler.write_completions (txid, transition, row_key)
        values (pg_catalog.pg_current_xact_id(), 'meetings', new.id::pg_catalog.text);
        -- (PERFORM is a query: only the first completion of the statement pays for it)
        if pg_catalog.current_setting('scheduler.completed_on_write', true) is distinct from 'on' then
            perform pg_catalog.set_config('scheduler.completed_on_write', 'on', true);
        end if;
        -- completing a meeting sets updated_at where the table has it, as complete_due() does
        -- (0009: the third argument says whether it has it; before, each completed row was
        -- turned into jsonb and back to find out)
        if tg_argv[2] operator(pg_catalog.=) 'updated_at' then
            new.updated_at := pg_catalog.now();
        elsif tg_nargs operator(pg_catalog.<) 3
              and pg_catalog.to_jsonb(new) operator(pg_catalog.?) 'updated_at' then
            new := pg_catalog.jsonb_populate_record(
                new, pg_catalog.jsonb_build_object('updated_at', pg_catalog.now()));
        end if;
    end if;
    return new;
end
$$;
comment on function scheduler.meetings_before_write() is
    'For a pending (upcoming) meeting: rejects a null or out-of-range end_time with a clear '
    'error, and marks it done when its end_time has already passed (so it never gets a job). '
    'Rows with any other status are left alone.';

-- Completion events of the meetings the BEFORE trigger completed (path write): the AFTER
-- triggers below call this when the transaction-local flag scheduler.completed_on_write is on,
-- then lower it. The flag is a hint (any session may set it): only the meetings of the
-- statement that are done and that the BEFORE trigger noted in scheduler.write_completions in
-- this transaction get an event (0009); the notes are deleted.
create or replace function scheduler.record_write_completions(p_meeting_ids pg_catalog.uuid[],
                                                              p_end_times pg_catalog.timestamptz[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
-- hash joins only: see meetings_after_update
set enable_nestloop = off
as $$
declare
    v_count integer;
begin
    perform pg_catalog.set_config('scheduler.completed_on_write', '', true);
    with noted as (
        delete from scheduler.write_completions w
        where w.txid operator(pg_catalog.=) pg_catalog.pg_current_xact_id()
          and w.transition operator(pg_catalog.=) 'meetings'
        returning w.row_key
    )
    insert into scheduler.completion_events
        (meeting_id, end_time, completed_at, path, delivery, next_attempt_at)
    select r.id, r.end_time, t.at, 'write', case when t.webhooks then 'pending' end, t.at
    from (select pg_catalog.clock_timestamp() as at,
                 (select s.webhooks from scheduler.settings s) as webhooks) t
    cross join rows from (pg_catalog.unnest(p_meeting_ids), pg_catalog.unnest(p_end_times))
         as r(id, end_time)
    where r.id is not null
      -- a hashed semi join (= any (array(...)) compared every row with every note)
      and r.id::pg_catalog.text in (select n.row_key from noted n);
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function scheduler.record_write_completions(pg_catalog.uuid[], pg_catalog.timestamptz[]) is
    'Records completion events (path write) for the meetings a write completed because their '
    'end_time had passed (those the BEFORE trigger noted in this transaction). Internal: called '
    'by the AFTER triggers on meetings.';

-- (Re)creates the BEFORE trigger with the pending and done words of scheduler.settings as its
-- arguments, and (0009) whether meetings has a column updated_at ('updated_at' or ''; the
-- migration and configure_statuses() call it again); configure_statuses() calls it again when
-- the words change. format(%L) quotes them.
create or replace function scheduler.create_before_write_trigger()
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pending pg_catalog.text;
    v_done pg_catalog.text;
    v_updated_at pg_catalog.text := case when exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'updated_at'
              and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
        then 'updated_at' else '' end;
begin
    select s.pending_status, s.done_status into v_pending, v_done from scheduler.settings s;
    drop trigger if exists scheduler_meetings_before_write on public.meetings;
    execute pg_catalog.format(
        'create trigger scheduler_meetings_before_write before insert or update on public.meetings '
        'for each row execute function scheduler.meetings_before_write(%L, %L, %L)',
        v_pending, v_done, v_updated_at);
end
$$;
comment on function scheduler.create_before_write_trigger() is
    'Creates the BEFORE trigger on meetings with the pending and done words and whether the '
    'table has updated_at as its arguments.';

-- from sql/postgres/40_admin.sql

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
begin
    select pg_catalog.count(*) into v_total
    from public.meetings m where m.status operator(pg_catalog.=) v_pending;

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
        'dry_run', p_dry_run);
end
$$;
comment on function scheduler.repair(boolean, boolean) is
    'Completes overdue upcoming meetings, registers missing or wrong jobs, removes orphan jobs '
    '(through unregister_jobs, bounded per transaction where it calls cron.unschedule); reports '
    'counts. Internal: called by recover() and reconcile().';

-- recover and reconcile of every transition: the meetings' report (repair, or the skipped one
-- while meetings is paused by name), plus "transitions" {name: counts} for the other
-- transitions that act and "paused_transitions" [names], each only when there are some.
-- plpgsql: the functions it calls are written after it (45_transitions.sql) on a new database.
create or replace function scheduler.repair_all(p_dry_run boolean, p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_meetings pg_catalog.jsonb;
begin
    -- each transition in isolation (0009): a failure of the meetings' repair is reported, and
    -- the other transitions are repaired all the same
    begin
        v_meetings := case when scheduler.is_enabled() or p_dry_run
                           then scheduler.repair(p_dry_run, p_skip_locked)
                           else scheduler.skipped_meetings_report(p_dry_run) end;
    exception when others then
        -- (meetings is not read again: a lock on it would fail this report too)
        v_meetings := pg_catalog.jsonb_build_object(
            'total_meetings', 0, 'jobs_scheduled', 0, 'jobs_already_exist', 0,
            'overdue_completed', 0, 'orphans_removed', 0,
            'errors', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'error', pg_catalog.format('meetings: %s', sqlerrm))),
            'success', false, 'dry_run', p_dry_run);
    end;
    return v_meetings
           operator(pg_catalog.||) pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'transitions', scheduler.repair_transitions(p_dry_run, p_skip_locked),
               'paused_transitions', scheduler.paused_transitions()));
end
$$;

create or replace function scheduler.recover(p_dry_run boolean default false,
                                             p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- a held lock on meetings or cron.job fails the call instead of hanging
set lock_timeout = '5s'
as $$
declare
    v_builtin boolean;
begin
    if p_transition is not null then
        select t.builtin into v_builtin from scheduler.transition_target(p_transition) t;
    end if;
    if not p_dry_run and not coalesce((select s.enabled from scheduler.settings s), true) then
        raise exception 'the scheduler is paused: recovery would register jobs'
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'Run scheduler-admin resume (select scheduler.resume()), which also recovers.';
    end if;
    if not p_dry_run and p_transition is not null
       and not scheduler.transition_active(p_transition) then
        raise exception 'transition % is paused: recovery would register jobs', p_transition
            using errcode = 'object_not_in_prerequisite_state',
                  hint = pg_catalog.format('Run scheduler-admin resume --transition %s, which also '
                                           'recovers.', p_transition);
    end if;
    -- One recovery or reconciliation at a time (a row of scheduler.locks, 0009: no role but the
    -- owner can take it).
    perform scheduler.take_lock('repair', true);
    if p_transition is null then
        return scheduler.repair_all(p_dry_run, false);
    elsif v_builtin then
        return scheduler.repair(p_dry_run, false);
    end if;
    return scheduler.transition_report(p_transition, p_dry_run, false);
end
$$;
comment on function scheduler.recover(boolean, pg_catalog.text) is
    'Start-up recovery: re-runs the registration for every pending row of every transition that '
    'acts, or of the one named (idempotent). With p_dry_run it changes nothing and reports what '
    'it would do.';

create or replace function scheduler.reconcile(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- a held lock fails this run (the next one, a minute later, retries) instead of holding one of
-- pg_cron's connections
set lock_timeout = '5s'
as $$
declare
    v_builtin boolean;
    v_report pg_catalog.jsonb;
begin
    if p_transition is not null then
        select t.builtin into v_builtin from scheduler.transition_target(p_transition) t;
    end if;
    if not coalesce((select s.enabled from scheduler.settings s), true)
       or p_transition is not null and not scheduler.transition_active(p_transition) then
        return pg_catalog.jsonb_build_object('paused', true);
    end if;
    -- one at a time (a row of scheduler.locks, 0009); a run that finds another recovery running
    -- is counted, and doctor and the metrics show several in a row
    if not scheduler.take_lock('repair', false) then
        update scheduler.reconcile_state
        set skipped_in_a_row = skipped_in_a_row operator(pg_catalog.+) 1,
            last_skipped_at = pg_catalog.now();
        return pg_catalog.jsonb_build_object('skipped', 'another recovery is running');
    end if;
    update scheduler.reconcile_state
    set skipped_in_a_row = 0, last_done_at = pg_catalog.now();
    -- TRIGGER, TRUNCATE and REFERENCES on a partition attached since (Supabase's default
    -- privileges give them to the API roles) are taken back within a minute (0009)
    perform scheduler.secure_table(t.relation) from scheduler.transitions t
    where exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation);
    -- notes of write completions left by a statement whose AFTER trigger did not run (0009)
    delete from scheduler.write_completions w
    where pg_catalog.pg_xact_status(w.txid) is distinct from 'in progress';
    if p_transition is not null and not v_builtin then
        return scheduler.transition_report(p_transition, false, true)
               operator(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'history_deleted', scheduler.delete_old_runs(p_transition));
    end if;
    v_report := case when p_transition is null then scheduler.repair_all(false, true)
                     else scheduler.repair(false, true) end;
    if p_transition is null then
        perform scheduler.remove_stray_transition_jobs();
    end if;
    return v_report operator(pg_catalog.||) pg_catalog.jsonb_build_object(
        'history_deleted', scheduler.delete_old_runs(p_transition),
        'sweep', scheduler.sync_sweep(),
        -- completion events past the retention, counted into metric_totals (0004)
        'events_deleted', scheduler.purge_events());
end
$$;
comment on function scheduler.reconcile(pg_catalog.text) is
    'Run every minute by the job meeting-status-reconcile: repairs like recover (skipping rows '
    'other transactions hold), makes the sweep job match its setting, and deletes our '
    'cron.job_run_details rows and completion events older than the retention (successful sweep '
    'runs after 10 minutes). With a transition''s name: that transition only.';

create or replace function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid,
                                                      p_end_time pg_catalog.timestamptz)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status pg_catalog.text;
    v_pending pg_catalog.text := scheduler.pending_status();
    v_relid pg_catalog.oid;
begin
    if p_end_time is null then
        raise exception 'end_time is required' using errcode = 'invalid_parameter_value';
    end if;
    select m.status, m.tableoid into v_status, v_relid from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
    -- the update below runs the triggers of the meeting's partition as the owner (0009)
    perform scheduler.require_safe_row('public.meetings', v_relid,
                                       pg_catalog.format('meeting %s', p_meeting_id));
    if v_status is distinct from v_pending then
        raise exception 'meeting % is %, not %: nothing to schedule', p_meeting_id, v_status,
                        v_pending
            using errcode = 'invalid_parameter_value',
                  hint = pg_catalog.format('Set its status back to %s first.', v_pending);
    end if;
    update public.meetings m set end_time = p_end_time
    where m.id operator(pg_catalog.=) p_meeting_id
    returning m.status into v_status;
    if v_status operator(pg_catalog.=) v_pending and scheduler.is_enabled() then
        -- the trigger registered it if end_time moved; make sure it exists if it did not.
        perform scheduler.register_jobs(array[p_meeting_id], array[p_end_time]);
    end if;
    return pg_catalog.jsonb_build_object(
        'meeting_id', p_meeting_id, 'status', v_status,
        'job', (select pg_catalog.to_jsonb(l) from scheduler.list_jobs() l
                where l.meeting_id operator(pg_catalog.=) p_meeting_id));
end
$$;
comment on function scheduler.schedule_meeting(pg_catalog.uuid, pg_catalog.timestamptz) is
    'Sets the end time of an upcoming meeting and makes sure its job exists (the original '
    'service''s schedule_meeting_status_update). An end time already past completes it.';

create or replace function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status pg_catalog.text;
    v_removed integer;
    v_relid pg_catalog.oid;
begin
    select m.status, m.tableoid into v_status, v_relid from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
    -- the update below runs the triggers of the meeting's partition as the owner (0009)
    perform scheduler.require_safe_row('public.meetings', v_relid,
                                       pg_catalog.format('meeting %s', p_meeting_id));
    select pg_catalog.count(*) into v_removed from cron.job j
    where j.jobname operator(pg_catalog.=) scheduler.job_name(p_meeting_id)::pg_catalog.name
      and j.username operator(pg_catalog.=) current_user;
    if v_status operator(pg_catalog.=) scheduler.pending_status() then
        update public.meetings m
        set status = (select s.cancelled_status from scheduler.settings s)
        where m.id operator(pg_catalog.=) p_meeting_id returning m.status into v_status;
    else
        perform scheduler.unregister_jobs(array[p_meeting_id]);
    end if;
    return pg_catalog.jsonb_build_object(
        'meeting_id', p_meeting_id, 'status', v_status, 'jobs_removed', v_removed);
end
$$;
comment on function scheduler.cancel_meeting(pg_catalog.uuid) is
    'Cancels an upcoming meeting (the cancelled status of scheduler.settings, default '
    'cancelled) and so removes its job (the original service''s cancel_meeting_status_update).';

-- The words of public.meetings.status the scheduler acts on, for an application whose table uses
-- its own (scheduled/completed, ...). A null argument keeps that word. Each word must satisfy
-- every CHECK constraint of meetings that reads only its status column (evaluated here on the
-- word, as the owner: the constraints are the owner's); the rows whose status is none of the
-- three are reported (left alone: no job, never completed). Then, unless paused, it repairs as
-- recover does, so meetings with the new pending word get their jobs at once.
create or replace function scheduler.configure_statuses(p_pending pg_catalog.text default null,
                                                        p_done pg_catalog.text default null,
                                                        p_cancelled pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_pending pg_catalog.text;
    v_done pg_catalog.text;
    v_cancelled pg_catalog.text;
    v_type pg_catalog.text;
    v_conname pg_catalog.text;
    v_expr pg_catalog.text;
    v_def pg_catalog.text;
    v_word pg_catalog.text;
    v_allowed boolean;
    v_left_alone pg_catalog.jsonb;
    v_repair pg_catalog.jsonb;
begin
    select coalesce(p_pending, s.pending_status), coalesce(p_done, s.done_status),
           coalesce(p_cancelled, s.cancelled_status)
    into v_pending, v_done, v_cancelled
    from scheduler.settings s;
    if v_pending operator(pg_catalog.=) '' or v_done operator(pg_catalog.=) ''
       or v_cancelled operator(pg_catalog.=) ''
       or v_pending operator(pg_catalog.=) v_done or v_pending operator(pg_catalog.=) v_cancelled
       or v_done operator(pg_catalog.=) v_cancelled then
        raise exception 'the pending, done and cancelled statuses must be three different words, got %, %, %',
                        pg_catalog.quote_literal(v_pending), pg_catalog.quote_literal(v_done),
                        pg_catalog.quote_literal(v_cancelled)
            using errcode = 'invalid_parameter_value';
    end if;
    select pg_catalog.format_type(a.atttypid, a.atttypmod) into v_type
    from pg_catalog.pg_attribute a
    where a.attrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
      and a.attname operator(pg_catalog.=) 'status';
    for v_conname, v_expr, v_def in
        select c.conname::pg_catalog.text, pg_catalog.pg_get_expr(c.conbin, c.conrelid),
               pg_catalog.pg_get_constraintdef(c.oid)
        from pg_catalog.pg_constraint c
        join pg_catalog.pg_attribute a on a.attrelid operator(pg_catalog.=) c.conrelid
                                      and a.attname operator(pg_catalog.=) 'status'
        where c.conrelid operator(pg_catalog.=) 'public.meetings'::pg_catalog.regclass
          and c.contype operator(pg_catalog.=) 'c'
          and c.conkey operator(pg_catalog.=) array[a.attnum]
    loop
        foreach v_word in array array[v_pending, v_done, v_cancelled] loop
            -- the constraint's own expression, on a one-row relation whose column status holds
            -- the word (passed as a parameter, never spliced in); a check passes unless false.
            -- plpgsql_check: v_expr is pg_get_expr() of a CHECK constraint of public.meetings
            -- (our owner's table) and v_type format_type() of its column, both from the catalog
            perform 'PRAGMA:disable:security_warnings';
            execute pg_catalog.format(
                'select (%s) is not false from (select $1::%s as status) as meetings',
                v_expr, v_type)
            into v_allowed using v_word;
            perform 'PRAGMA:enable:security_warnings';
            if not v_allowed then
                raise exception 'status % is not allowed by the constraint % of public.meetings (%)',
                                pg_catalog.quote_literal(v_word), v_conname, v_def
                    using errcode = 'check_violation',
                          hint = 'Give the words the table uses (alembic -x pending_status=... '
                                 '-x done_status=... -x cancelled_status=..., or the variables '
                                 'SCHEDULER_PENDING_STATUS, SCHEDULER_DONE_STATUS, '
                                 'SCHEDULER_CANCELLED_STATUS), or change the constraint.';
            end if;
        end loop;
    end loop;
    select coalesce(pg_catalog.jsonb_object_agg(t.status, t.n), '{}') into v_left_alone
    from (select coalesce(m.status::pg_catalog.text, 'null') as status, pg_catalog.count(*) as n
          from public.meetings m
          where m.status is null
             or m.status::pg_catalog.text operator(pg_catalog.<>) all (array[v_pending, v_done, v_cancelled])
          group by 1) t;
    update scheduler.settings s
    set pending_status = v_pending, done_status = v_done, cancelled_status = v_cancelled,
        updated_at = pg_catalog.now()
    where s.pending_status operator(pg_catalog.<>) v_pending
       or s.done_status operator(pg_catalog.<>) v_done
       or s.cancelled_status operator(pg_catalog.<>) v_cancelled;
    if found then
        perform scheduler.create_before_write_trigger();
        if scheduler.is_enabled() then
            perform scheduler.take_lock('repair', true);
            v_repair := scheduler.repair(false, false);
        end if;
    end if;
    raise notice 'meeting statuses: pending %, done %, cancelled %; left alone: %',
                 pg_catalog.quote_literal(v_pending), pg_catalog.quote_literal(v_done),
                 pg_catalog.quote_literal(v_cancelled),
                 case when v_left_alone operator(pg_catalog.=) '{}'::pg_catalog.jsonb then 'none'
                      else v_left_alone::pg_catalog.text end;
    return pg_catalog.jsonb_build_object(
        'pending_status', v_pending, 'done_status', v_done, 'cancelled_status', v_cancelled,
        'left_alone', v_left_alone, 'repair', v_repair);
end
$$;
comment on function scheduler.configure_statuses(pg_catalog.text, pg_catalog.text, pg_catalog.text) is
    'Sets the words of meetings.status the scheduler acts on (pending, done, cancelled), checked '
    'against the status CHECK constraints; reports the statuses left alone; repairs unless paused.';

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
        (select pg_catalog.count(*) from upcoming) as upcoming_meetings,
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

-- from sql/postgres/45_transitions.sql

-- The BEFORE trigger of a registered table (row level). Arguments (0009): the transition's name,
-- the key column, the job prefix, the time column, the state column, the state to set, then the
-- pending states. A pending row needs a finite time and a key short enough for a job name (the
-- rule holds while paused too, so that resume never meets a row it cannot register); one whose
-- time has passed gets the state to set at once (and so no job), and is noted in
-- scheduler.write_completions for the AFTER trigger's completion event. security definer for
-- that note only (see meetings_before_write); otherwise it reads and sets only NEW and its
-- arguments.
create or replace function scheduler.transition_before_write()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row pg_catalog.jsonb := pg_catalog.to_jsonb(new);
    v_state pg_catalog.text := v_row operator(pg_catalog.->>) tg_argv[4];
    v_key pg_catalog.text;
    v_time pg_catalog.timestamptz;
begin
    if v_state is null
       or not v_state operator(pg_catalog.=) any (tg_argv[6:pg_catalog.array_upper(tg_argv, 1)]) then
        return new;
    end if;
    v_time := (v_row operator(pg_catalog.->>) tg_argv[3])::pg_catalog.timestamptz;
    if v_time is null then
        raise exception '%: % is required for a row in state %', tg_table_name, tg_argv[3], v_state
            using errcode = 'not_null_violation',
                  hint = pg_catalog.format('Give %s as a timestamp with time zone, e.g. '
                                           '2026-12-01 15:30:00+00.', tg_argv[3]);
    end if;
    if not pg_catalog.isfinite(v_time)
       or v_time operator(pg_catalog.<) '0001-01-01 00:00:00+00'::pg_catalog.timestamptz
       or v_time operator(pg_catalog.>=) '10000-01-01 00:00:00+00'::pg_catalog.timestamptz then
        raise exception '%: % % is out of range', tg_table_name, tg_argv[3], v_time
            using errcode = 'datetime_field_overflow',
                  hint = 'Give a finite time between the years 1 and 9999.';
    end if;
    v_key := v_row operator(pg_catalog.->>) tg_argv[1];
    -- pg_cron keeps job names of at most 63 bytes (type name): a longer one would be cut, and
    -- two keys cut alike would share one job
    if pg_catalog.octet_length(tg_argv[2] operator(pg_catalog.||) v_key) operator(pg_catalog.>) 63 then
        raise exception '%: key % is too long for a job name (% plus the key must fit in 63 bytes)',
                        tg_table_name, pg_catalog.left(v_key, 80), pg_catalog.quote_literal(tg_argv[2])
            using errcode = 'string_data_right_truncation',
                  hint = 'Use shorter keys, or register the transition again with a shorter --prefix.';
    end if;
    if v_time operator(pg_catalog.<=) pg_catalog.now() then
        new := pg_catalog.jsonb_populate_record(
            new, pg_catalog.jsonb_build_object(tg_argv[4], tg_argv[5]));
        -- the AFTER statement trigger records the completion event (path write) of the rows
        -- noted here (the setting only tells it to look: any session may set it)
        insert into scheduler.write_completions (txid, transition, row_key)
        values (pg_catalog.pg_current_xact_id(), tg_argv[0], v_key);
        -- (PERFORM is a query: only the first completion of the statement pays for it)
        if pg_catalog.current_setting('scheduler.transition_completed_on_write', true)
           is distinct from 'on' then
            perform pg_catalog.set_config('scheduler.transition_completed_on_write', 'on', true);
        end if;
    end if;
    return new;
end
$$;
comment on function scheduler.transition_before_write() is
    'BEFORE trigger of a registered transition''s table: a pending row needs a finite time and a '
    'key that fits a job name; one whose time has passed gets the state to set at once (its '
    'completion noted for the AFTER trigger''s event).';

-- The AFTER statement triggers of a registered table (insert, update, delete; argument: the
-- transition's name), with transition tables new_rows / old_rows, read with dynamic SQL whose
-- identifiers come from the registry through format('%I'). security definer: jobs belong to the
-- owner of our functions (the owner of the table, checked at registration). A hash join only:
-- see meetings_after_update (30_triggers.sql) for what a cached nested loop cost.
create or replace function scheduler.transition_after_write()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set enable_nestloop = off
as $$
declare
    v_t pg_catalog.record;
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
    v_next pg_catalog.timestamptz;
begin
    select * into v_t from scheduler.transition_target(tg_argv[0]);
    -- rows the BEFORE trigger gave the to-state because their time had passed (0007): one
    -- completion event each, path write (rows of the statement that reached the to-state from a
    -- pending state, or were inserted so, with a time already passed)
    -- (0009: only the rows the BEFORE trigger noted in scheduler.write_completions in this
    -- transaction; the setting is a hint any session may set, and the notes are deleted)
    if tg_op operator(pg_catalog.<>) 'DELETE'
       and pg_catalog.current_setting('scheduler.transition_completed_on_write', true)
           operator(pg_catalog.=) 'on' then
        perform pg_catalog.set_config('scheduler.transition_completed_on_write', '', true);
        execute pg_catalog.format(
            'with noted as ('
            '    delete from scheduler.write_completions w'
            '    where w.txid operator(pg_catalog.=) pg_catalog.pg_current_xact_id()'
            '      and w.transition operator(pg_catalog.=) $1'
            '    returning w.row_key'
            ') '
            'insert into scheduler.completion_events '
            '    (transition, row_key, end_time, completed_at, path, delivery, next_attempt_at) '
            'select $1, n.%I::pg_catalog.text, n.%I, t.at, ''write'', '
            '       case when t.webhooks then ''pending'' end, t.at '
            'from (select pg_catalog.clock_timestamp() as at, '
            '             (select s.webhooks from scheduler.settings s) as webhooks) t '
            'cross join new_rows n %s '
            'where n.%I operator(pg_catalog.=) $2 '
            '  and n.%I operator(pg_catalog.<=) pg_catalog.now() %s '
            '  and n.%I::pg_catalog.text in (select x.row_key from noted x)',
            v_t.key_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I operator(pg_catalog.=) any ($3))',
                                        v_t.key_column, v_t.state_column) else '' end,
            v_t.key_column)
        using v_t.name, v_t.to_state, v_t.from_states;
    end if;
    if tg_op operator(pg_catalog.<>) 'INSERT' then
        -- a row that left its pending states, or was deleted, or whose key changed, loses its job
        execute pg_catalog.format(
            'select pg_catalog.array_agg(o.%I::pg_catalog.text) from old_rows o %s '
            'where o.%I operator(pg_catalog.=) any ($1) %s',
            v_t.key_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join new_rows n on n.%1$I operator(pg_catalog.=) o.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (n.%1$I is null or not coalesce(n.%2$I operator(pg_catalog.=) any ($1), false))',
                                        v_t.key_column, v_t.state_column) else '' end)
        into v_keys using v_t.from_states;
        perform scheduler.unregister_transition_jobs(v_t.name, v_keys);
    end if;
    if tg_op operator(pg_catalog.<>) 'DELETE' and scheduler.transition_active(v_t.name) then
        -- a row that became pending, or whose time moved, gets its job (re)registered
        execute pg_catalog.format(
            'select pg_catalog.array_agg(n.%I::pg_catalog.text), pg_catalog.array_agg(n.%I) '
            'from new_rows n %s where n.%I operator(pg_catalog.=) any ($1) %s',
            v_t.key_column, v_t.time_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('left join old_rows o on o.%1$I operator(pg_catalog.=) n.%1$I',
                                        v_t.key_column) else '' end,
            v_t.state_column,
            case when tg_op operator(pg_catalog.=) 'UPDATE'
                 then pg_catalog.format('and (o.%1$I is null or o.%2$I is distinct from n.%2$I '
                                        'or o.%3$I is distinct from n.%3$I)',
                                        v_t.key_column, v_t.state_column, v_t.time_column)
                 else '' end)
        into v_keys, v_times using v_t.from_states;
        perform scheduler.register_transition_jobs(v_t.name, v_keys, v_times);
        -- Tell the application's waker (scheduler_admin/waker.py), which may sleep until a later
        -- time: one notification per statement, delivered at commit, naming the transition and
        -- the earliest time the statement registered (0008; meetings announce theirs on
        -- scheduler_meetings, 30_triggers.sql).
        select pg_catalog.min(t.time) into v_next from pg_catalog.unnest(v_times) as t(time);
        if v_next is not null then
            perform pg_catalog.pg_notify('scheduler_transitions', pg_catalog.jsonb_build_object(
                'transition', v_t.name,
                'time', pg_catalog.to_char(v_next at time zone 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))::pg_catalog.text);
        end if;
    end if;
    return null;
end
$$;
comment on function scheduler.transition_after_write() is
    'AFTER statement trigger of a registered transition''s table: keeps one job per pending row '
    'and announces the earliest time it registered on channel scheduler_transitions (NOTIFY, '
    'JSON {"transition", "time"}, for the application''s waker). security definer: jobs belong '
    'to the owner of the scheduler''s functions.';

-- (Re)creates the triggers of a transition on its table.
create or replace function scheduler.create_transition_triggers(p_name pg_catalog.text)
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    perform scheduler.drop_transition_triggers(p_name);
    -- arguments (0009): name, key column, job prefix, time column, state column, to-state, the
    -- pending states
    execute pg_catalog.format(
        'create trigger %I before insert or update on %s for each row '
        'execute function scheduler.transition_before_write(%L, %L, %L, %L, %L, %L, %s)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_before_write',
        v_table, p_name, v_t.key_column, v_t.job_prefix, v_t.time_column, v_t.state_column,
        v_t.to_state,
        (select pg_catalog.string_agg(pg_catalog.quote_literal(f.state), ', ')
         from pg_catalog.unnest(v_t.from_states) as f(state)));
    execute pg_catalog.format(
        'create trigger %I after insert on %s referencing new table as new_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_insert',
        v_table, p_name);
    execute pg_catalog.format(
        'create trigger %I after update on %s referencing old table as old_rows new table as new_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_update',
        v_table, p_name);
    execute pg_catalog.format(
        'create trigger %I after delete on %s referencing old table as old_rows '
        'for each statement execute function scheduler.transition_after_write(%L)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_after_delete',
        v_table, p_name);
end
$$;

create or replace function scheduler.drop_transition_triggers(p_name pg_catalog.text)
returns pg_catalog.void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_suffix pg_catalog.text;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    foreach v_suffix in array array['before_write', 'after_insert', 'after_update', 'after_delete'] loop
        execute pg_catalog.format('drop trigger if exists %I on %s',
                                  'scheduler_' operator(pg_catalog.||) p_name
                                  operator(pg_catalog.||) '_' operator(pg_catalog.||) v_suffix,
                                  v_table);
    end loop;
end
$$;

create or replace function scheduler.complete_due_transition(p_name pg_catalog.text,
                                                             p_skip_locked boolean,
                                                             p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return scheduler.complete_rows(p_name, p_skip_locked, p_path, null);
end
$$;
comment on function scheduler.complete_due_transition(pg_catalog.text, boolean, pg_catalog.text) is
    'Gives the to-state to the pending rows of a transition whose time has passed, recording a '
    'completion event per row with the given path; skipping or waiting for locked rows. A row '
    'that fails is recorded in failing_rows and never holds up another.';

-- What a transition's job runs: completes every due row of the transition, then removes the job
-- if its row is no longer pending (or gone). lock_timeout 5s: a held lock fails the run; later
-- runs and the reconcile job complete the row.
create or replace function scheduler.complete_transition(p_name pg_catalog.text,
                                                         p_key pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_completed integer;
    v_pending boolean;
begin
    -- a job of a transition removed meanwhile (remove_transition unschedules at most 1000 jobs
    -- per transaction where it calls cron.unschedule): the job removes itself (0006)
    if not exists (select 1 from scheduler.transitions t where t.name operator(pg_catalog.=) p_name) then
        perform scheduler.unschedule_jobs(array(
            select j.jobname::pg_catalog.text from cron.job j
            where j.username operator(pg_catalog.=) current_user
              and j.command operator(pg_catalog.=) pg_catalog.format(
                  'set statement_timeout = %L; select scheduler.complete_transition(%L, %L)',
                  '2min', p_name, p_key)));
        return 0;
    end if;
    if not scheduler.transition_active(p_name) then
        return 0;
    end if;
    select * into v_t from scheduler.transition_target(p_name);
    v_completed := scheduler.complete_due_transition(p_name, true, 'job');
    v_table := v_t.table_sql::pg_catalog.regclass;
    -- plpgsql_check: v_t.key_type is format_type() of the key column (transition_target)
    perform 'PRAGMA:disable:security_warnings';
    execute pg_catalog.format(
        'select exists (select 1 from %s r where r.%I operator(pg_catalog.=) $1::%s '
        'and r.%I operator(pg_catalog.=) any ($2))',
        v_table, v_t.key_column, v_t.key_type, v_t.state_column)
    into v_pending using p_key, v_t.from_states;
    perform 'PRAGMA:enable:security_warnings';
    if not v_pending then
        perform scheduler.unregister_transition_jobs(p_name, array[p_key]);
    end if;
    return v_completed;
end
$$;
comment on function scheduler.complete_transition(pg_catalog.text, pg_catalog.text) is
    'Run by a transition''s job <job_prefix><key>: sets to_state on the pending rows whose time '
    'has passed and removes the job if its row is no longer pending.';

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
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    -- the pending rows (all: a job of one is never an orphan, as recover treats meetings) and
    -- those not due yet (they must have a job)
    -- 0009: a key too long for a job name (written before the BEFORE trigger checked it, or
    -- with the triggers off) is reported as an error, row by row, and gets no job: registering
    -- it would cut the name (and two keys cut alike would make one statement upsert one job
    -- twice). Its job, if one was stored cut, is an orphan.
    execute pg_catalog.format(
        'select pg_catalog.count(*), pg_catalog.array_agg(r.%I::pg_catalog.text), '
        '       pg_catalog.array_agg(r.%I::pg_catalog.text) '
        '           filter (where r.%I operator(pg_catalog.>) pg_catalog.now() and not r.too_long), '
        '       pg_catalog.array_agg(r.%I) filter (where r.%I operator(pg_catalog.>) pg_catalog.now() '
        '                                             and not r.too_long), '
        '       coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('
        '           ''key'', pg_catalog.left(r.%I::pg_catalog.text, 80), ''error'', '
        '           pg_catalog.format(''key too long for a job name (%%s plus the key must fit '
                                      'in 63 bytes): shorten the key, or move the row out of %%s'', '
        '                             pg_catalog.quote_literal($2), pg_catalog.array_to_string($1, '', ''))))'
        '           filter (where r.too_long), ''[]'') '
        'from (select x.*, $3 and pg_catalog.octet_length($2 operator(pg_catalog.||) x.%I::pg_catalog.text) '
        '                  operator(pg_catalog.>) 63 as too_long '
        '      from %s x where x.%I operator(pg_catalog.=) any ($1)) r',
        v_t.key_column, v_t.key_column, v_t.time_column, v_t.time_column, v_t.time_column,
        v_t.key_column, v_t.key_column, v_table, v_t.state_column)
    into v_total, v_pending_keys, v_keys, v_times, v_errors
    -- $3: whether a key of this type can be too long at all (a uuid has 36 characters, a bigint
    -- at most 20): the length of each key is looked at only when it can
    using v_t.from_states, v_t.job_prefix,
          not (v_t.key_type operator(pg_catalog.=) any (array['uuid', 'bigint', 'integer'])
               and pg_catalog.octet_length(v_t.job_prefix) operator(pg_catalog.+) 36
                   operator(pg_catalog.<=) 63);
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
        -- rows it could not serve, one by one (0009; the key only when there are some)
        operator(pg_catalog.||) case when pg_catalog.jsonb_array_length(v_errors) operator(pg_catalog.>) 0
                                     then pg_catalog.jsonb_build_object('errors', v_errors)
                                     else '{}'::pg_catalog.jsonb end;
end
$$;

-- recover/reconcile of every other transition: {name: report}, null when there is none. Each
-- transition in isolation (0009): one that fails is reported with its error, in a
-- subtransaction, and the others are repaired all the same.
create or replace function scheduler.repair_transitions(p_dry_run boolean, p_skip_locked boolean)
returns pg_catalog.jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_result pg_catalog.jsonb;
    v_report pg_catalog.jsonb;
begin
    for v_name in select o.name from scheduler.other_transitions() o(name) loop
        begin
            v_report := scheduler.repair_transition(v_name, p_dry_run, p_skip_locked);
        exception when others then
            v_report := pg_catalog.jsonb_build_object(
                'errors', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('error', sqlerrm)));
        end;
        v_result := coalesce(v_result, '{}'::pg_catalog.jsonb)
                    operator(pg_catalog.||) pg_catalog.jsonb_build_object(v_name, v_report);
    end loop;
    return v_result;
end
$$;

create or replace function scheduler.sweep_transitions(p_path pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_count integer := 0;
begin
    for v_name in select o.name from scheduler.other_transitions() o(name) loop
        begin
            v_count := v_count operator(pg_catalog.+)
                       scheduler.complete_due_transition(v_name, true, p_path);
        exception when others then
            raise warning 'scheduler: completing transition % failed: %', v_name, sqlerrm;
        end;
    end loop;
    return v_count;
end
$$;

-- Registers a transition: checks the table and columns, installs the triggers and an index for
-- the due rows, completes the rows already due and registers a job per pending row. security
-- definer (executed by the owner of our functions only: no grant): the triggers and jobs belong
-- to that role, which must own the table.
create or replace function scheduler.add_transition(p_name pg_catalog.text,
                                                    p_table pg_catalog.regclass,
                                                    p_key_column pg_catalog.text,
                                                    p_time_column pg_catalog.text,
                                                    p_state_column pg_catalog.text,
                                                    p_from_states pg_catalog.text[],
                                                    p_to_state pg_catalog.text,
                                                    p_job_prefix pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_prefix pg_catalog.text := coalesce(p_job_prefix,
        pg_catalog.replace(p_name, '_', '-') operator(pg_catalog.||) '-status-');
    v_owner pg_catalog.name;
    -- security definer: current_user is the owner of our functions, the role jobs run as
    v_us pg_catalog.name := current_user;
    v_table pg_catalog.text;
    v_column pg_catalog.text;
    v_type pg_catalog.text;
    v_expected pg_catalog.text[];
    v_grantees pg_catalog.text;
    v_completed integer;
    v_registered integer;
    v_keys pg_catalog.text[];
    v_times pg_catalog.timestamptz[];
begin
    if p_name is null or p_name !~ '^[a-z][a-z0-9_]{0,39}$' then
        raise exception 'invalid transition name %', coalesce(pg_catalog.quote_literal(p_name), 'null')
            using errcode = 'invalid_parameter_value',
                  hint = 'Use 1 to 40 lower-case letters, digits or _, starting with a letter.';
    end if;
    if exists (select 1 from scheduler.transitions t where t.name operator(pg_catalog.=) p_name) then
        raise exception 'a transition named % exists already', p_name
            using errcode = 'duplicate_object',
                  hint = 'Remove it first (scheduler-admin transitions remove), or choose another name.';
    end if;
    if p_table is null then
        raise exception 'add_transition needs a table' using errcode = 'null_value_not_allowed';
    end if;
    select pg_catalog.format('%I.%I', n.nspname, c.relname), r.rolname
    into v_table, v_owner
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid operator(pg_catalog.=) c.relnamespace
    join pg_catalog.pg_roles r on r.oid operator(pg_catalog.=) c.relowner
    where c.oid operator(pg_catalog.=) p_table and c.relkind operator(pg_catalog.=) any (array['r', 'p']::pg_catalog."char"[]);
    if v_table is null then
        raise exception '% is not a table', p_table
            using errcode = 'wrong_object_type', hint = 'Give a table, e.g. public.memberships.';
    end if;
    -- Jobs and triggers run as the owner of our functions: it must own the table, or writes to
    -- the table would run our triggers as a role that may not even read it (and a table owned by
    -- someone else could make our jobs run that owner's triggers as us).
    if v_owner operator(pg_catalog.<>) v_us then
        raise exception '% belongs to %, not to %, the role the scheduler''s jobs run as', v_table, v_owner, v_us
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('Run: alter table %s owner to %I; then register it again.', v_table, v_us);
    end if;
    -- Only the owner may add triggers, truncate or reference the table, or any partition or
    -- child of it (0009): another role's trigger would run as us when a job writes. Those
    -- privileges are taken back from every other role; a table below it that another role owns,
    -- or that carries a trigger another role wrote, is refused (our jobs would write it as us).
    if exists (select 1 from pg_catalog.unnest(scheduler.unsafe_relations(p_table))) then
        select pg_catalog.string_agg(u.relid::pg_catalog.regclass::pg_catalog.text, ', ')
        into v_grantees from pg_catalog.unnest(scheduler.unsafe_relations(p_table)) as u(relid);
        raise exception '% (or a partition of it) is owned by another role or has a trigger another role wrote: %',
                        v_table, v_grantees
            using errcode = 'insufficient_privilege',
                  hint = pg_catalog.format('Give every partition to %I (alter table ... owner to %I) '
                                           'and drop the triggers whose function another role owns '
                                           '(scheduler-admin doctor lists them), then register it again.',
                                           v_us, v_us);
    end if;
    perform scheduler.secure_table(p_table);
    foreach v_column in array array[p_key_column, p_time_column, p_state_column] loop
        select pg_catalog.format_type(a.atttypid, null) into v_type
        from pg_catalog.pg_attribute a
        where a.attrelid operator(pg_catalog.=) p_table
          and a.attname operator(pg_catalog.=) v_column and a.attnum > 0 and not a.attisdropped;
        v_expected := case v_column
            when p_key_column then array['uuid', 'bigint', 'integer', 'text', 'character varying']
            when p_time_column then array['timestamp with time zone']
            else array['text', 'character varying'] end;
        if v_type is null then
            raise exception '% has no column %', v_table, coalesce(pg_catalog.quote_ident(v_column), 'null')
                using errcode = 'undefined_column',
                      hint = 'Give the names of its key, time and state columns.';
        end if;
        if not v_type operator(pg_catalog.=) any (v_expected) then
            raise exception '%.% has type %, expected %', v_table, pg_catalog.quote_ident(v_column), v_type,
                            pg_catalog.array_to_string(v_expected, ' or ')
                using errcode = 'datatype_mismatch',
                      hint = pg_catalog.format('Change it, e.g. alter table %s alter column %I type %s.',
                                               v_table, v_column, v_expected[1]);
        end if;
    end loop;
    if not exists (
        select 1 from pg_catalog.pg_index i
        where i.indrelid operator(pg_catalog.=) p_table
          and i.indisunique and i.indpred is null and i.indexprs is null
          and i.indnkeyatts operator(pg_catalog.=) 1
          and i.indkey[0] operator(pg_catalog.=) (
              select a.attnum from pg_catalog.pg_attribute a
              where a.attrelid operator(pg_catalog.=) p_table
                and a.attname operator(pg_catalog.=) p_key_column)) then
        raise exception '%.% is not unique: it needs a primary key or a unique constraint', v_table, p_key_column
            using errcode = 'invalid_table_definition',
                  hint = pg_catalog.format('Each row''s job is named after its key. Run: alter table %s add unique (%I);',
                                           v_table, p_key_column);
    end if;
    if coalesce(pg_catalog.cardinality(p_from_states), 0) operator(pg_catalog.=) 0
       or pg_catalog.array_position(p_from_states, null) is not null
       or p_to_state is null or p_to_state operator(pg_catalog.=) any (p_from_states) then
        raise exception 'a transition needs one or more states to leave and a different state to set'
            using errcode = 'invalid_parameter_value',
                  hint = 'e.g. from active to expired.';
    end if;
    if v_prefix !~ '^[a-z][a-z0-9-]*-$' or pg_catalog.starts_with(v_prefix, 'meeting-status-')
       or exists (select 1 from scheduler.transitions t
                  where pg_catalog.starts_with(t.job_prefix, v_prefix)
                     or pg_catalog.starts_with(v_prefix, t.job_prefix)) then
        raise exception 'job prefix % is invalid or overlaps another transition''s', pg_catalog.quote_literal(v_prefix)
            using errcode = 'invalid_parameter_value',
                  hint = 'Give lower-case letters, digits and -, ending with -, that no other '
                         'transition''s prefix starts with (scheduler-admin transitions list).';
    end if;
    if exists (select 1 from scheduler.transitions t
               where t.relation operator(pg_catalog.=) p_table
                 and t.time_column operator(pg_catalog.=) p_time_column) then
        raise exception '%.% is registered already', v_table, p_time_column
            using errcode = 'duplicate_object';
    end if;

    insert into scheduler.transitions
        (name, relation, key_column, time_column, state_column, from_states, to_state, job_prefix)
    values (p_name, p_table, p_key_column, p_time_column, p_state_column, p_from_states,
            p_to_state, v_prefix);
    -- the due rows are found by the jobs, the sweep and the reconcile job: index them
    execute pg_catalog.format(
        'create index if not exists %I on %s (%I) where %I in (%s)',
        'scheduler_' operator(pg_catalog.||) p_name operator(pg_catalog.||) '_due_idx',
        p_table, p_time_column, p_state_column,
        (select pg_catalog.string_agg(pg_catalog.quote_literal(f.state), ', ')
         from pg_catalog.unnest(p_from_states) as f(state)));
    perform scheduler.create_transition_triggers(p_name);
    v_completed := scheduler.complete_due_transition(p_name, false, 'recover');
    execute pg_catalog.format(
        'select pg_catalog.array_agg(r.%I::pg_catalog.text), pg_catalog.array_agg(r.%I) '
        'from %s r where r.%I operator(pg_catalog.=) any ($1)',
        p_key_column, p_time_column, p_table, p_state_column)
    into v_keys, v_times using p_from_states;
    v_registered := case when scheduler.transition_active(p_name)
                         then scheduler.register_transition_jobs(p_name, v_keys, v_times) else 0 end;
    return pg_catalog.jsonb_build_object(
        'name', p_name, 'table', v_table, 'job_prefix', v_prefix,
        'jobs_registered', v_registered, 'completed', v_completed);
end
$$;
comment on function scheduler.add_transition(pg_catalog.text, pg_catalog.regclass, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text) is
    'Registers a timed transition: rows of the table in one of the from states get the to state '
    'at their time column, through one pg_cron job each (<job_prefix><key>).';

create or replace function scheduler.transitions()
returns table (name pg_catalog.text, table_name pg_catalog.text, key_column pg_catalog.text,
               time_column pg_catalog.text, state_column pg_catalog.text,
               from_states pg_catalog.text[], to_state pg_catalog.text,
               job_prefix pg_catalog.text, builtin boolean, pending_rows bigint, jobs bigint,
               paused boolean)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name pg_catalog.text;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_pending bigint;
begin
    for v_name in
        select t.name from scheduler.transitions t
        where exists (select 1 from pg_catalog.pg_class c where c.oid operator(pg_catalog.=) t.relation)
        order by not t.builtin, t.name
    loop
        select * into v_t from scheduler.transition_target(v_name);
        v_table := v_t.table_sql::pg_catalog.regclass;
        from_states := v_t.from_states;
        to_state := v_t.to_state;
        if v_t.builtin then
            -- the meetings' words live in scheduler.settings (configure_statuses)
            from_states := array[scheduler.pending_status()];
            to_state := scheduler.done_status();
        end if;
        execute pg_catalog.format(
            'select pg_catalog.count(*) from %s r where r.%I operator(pg_catalog.=) any ($1)',
            v_table, v_t.state_column)
        into v_pending using from_states;
        name := v_t.name;
        table_name := v_t.table_sql;
        key_column := v_t.key_column;
        time_column := v_t.time_column;
        state_column := v_t.state_column;
        job_prefix := v_t.job_prefix;
        builtin := v_t.builtin;
        paused := (select t.paused from scheduler.transitions t
                   where t.name operator(pg_catalog.=) v_name);
        pending_rows := v_pending;
        jobs := (select pg_catalog.count(*) from cron.job j
                 where j.username operator(pg_catalog.=) current_user
                   and j.jobname operator(pg_catalog.~~) (v_t.job_prefix operator(pg_catalog.||) '%')
                   and j.jobname operator(pg_catalog.<>) all (array['meeting-status-reconcile',
                                                                   'meeting-status-sweep']));
        return next;
    end loop;
end
$$;
comment on function scheduler.transitions() is
    'The registered timed transitions (meetings first) with their pending rows and jobs.';

-- The jobs of the transitions but the builtin one (all of them, or the one named), as
-- scheduler.list_jobs() shows them: the key is the job name after the prefix; the row's time and
-- state, null when no row has that key (an orphan job). A hash join on the key as text: the
-- key's type varies, the job name is text.
create or replace function scheduler.transition_jobs(p_name pg_catalog.text)
returns table (meeting_id pg_catalog.uuid, job_id bigint, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, meeting_status pg_catalog.text, active boolean,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
set enable_nestloop = off
as $$
declare
    -- pg_cron 1.5+ has cron.job.active (see list_jobs): one of two constants
    v_has_active boolean := exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'cron.job'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'active' and not a.attisdropped);
    v_name pg_catalog.text;
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_key_from integer;
begin
    for v_name in select n.name from scheduler.named_transitions(p_name) n(name) loop
        select * into v_t from scheduler.transition_target(v_name);
        v_table := v_t.table_sql::pg_catalog.regclass;
        v_key_from := pg_catalog.length(v_t.job_prefix) operator(pg_catalog.+) 1;
        return query execute pg_catalog.format($query$
select null::pg_catalog.uuid, j.jobid, j.jobname::pg_catalog.text, j.schedule,
       scheduler.next_run(j.schedule, pg_catalog.now()), r.%I, r.%I::pg_catalog.text, j.active,
       %L::pg_catalog.text, j.key
from (select c.jobid, c.jobname, c.schedule, %s as active,
             pg_catalog.substr(c.jobname::pg_catalog.text, %s) as key
      from cron.job c
      where c.username operator(pg_catalog.=) current_user
        -- the prefix is [a-z0-9-]: no LIKE wildcard in it
        and c.jobname operator(pg_catalog.~~) %L) j
left join %s r on r.%I::pg_catalog.text operator(pg_catalog.=) j.key
$query$,
            v_t.time_column, v_t.state_column, v_name,
            case when v_has_active then 'c.active' else 'true' end, v_key_from,
            v_t.job_prefix operator(pg_catalog.||) '%', v_table, v_t.key_column);
    end loop;
end
$$;
comment on function scheduler.transition_jobs(pg_catalog.text) is
    'The jobs of the registered transitions but meetings (or of the one named), as list_jobs '
    'shows them.';

-- The earliest time of a pending row of a transition, null when none is pending: what the waker
-- sleeps until. The pending states as a literal array, so that the planner matches the partial
-- index scheduler_<name>_due_idx.
create or replace function scheduler.transition_next_time(p_name pg_catalog.text)
returns pg_catalog.timestamptz
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t pg_catalog.record;
    v_table pg_catalog.regclass;
    v_next pg_catalog.timestamptz;
begin
    select * into v_t from scheduler.transition_target(p_name);
    v_table := v_t.table_sql::pg_catalog.regclass;
    execute pg_catalog.format(
        'select pg_catalog.min(r.%I) from %s r '
        'where r.%I::pg_catalog.text operator(pg_catalog.=) any (%L::pg_catalog.text[])',
        v_t.time_column, v_table, v_t.state_column, v_t.from_states)
    into v_next;
    return v_next;
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
        'overdue_rows', v_overdue);
end
$$;
comment on function scheduler.transition_health(pg_catalog.text) is
    'doctor''s facts about a registered transition but meetings: triggers present, pending rows, '
    'missing and orphan jobs, rows overdue by over two minutes, paused.';

-- The report of recover, resume and reconcile for one transition but the builtin one.
create or replace function scheduler.transition_report(p_name pg_catalog.text, p_dry_run boolean,
                                                       p_skip_locked boolean)
returns pg_catalog.jsonb
language sql
set search_path = pg_catalog, pg_temp
as $$
select pg_catalog.jsonb_build_object('transition', p_name)
       operator(pg_catalog.||) r.report
       operator(pg_catalog.||) pg_catalog.jsonb_build_object(
           'errors', coalesce(r.report operator(pg_catalog.->) 'errors', '[]'::pg_catalog.jsonb),
           'success', coalesce(pg_catalog.jsonb_array_length(r.report operator(pg_catalog.->) 'errors'), 0)
                      operator(pg_catalog.=) 0,
           'dry_run', p_dry_run)
from (select scheduler.repair_transition(p_name, p_dry_run, p_skip_locked) as report) r
$$;

