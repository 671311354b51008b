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

-- The meetings' part of a report while meetings is paused by name: the pending meetings
-- read, nothing done.
create or replace function scheduler.skipped_meetings_report(p_dry_run boolean)
returns pg_catalog.jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select pg_catalog.jsonb_build_object(
    'total_meetings', (select pg_catalog.count(*) from public.meetings m
                       where m.status operator(pg_catalog.=) scheduler.pending_status()),
    'jobs_scheduled', 0, 'jobs_already_exist', 0, 'overdue_completed', 0, 'orphans_removed', 0,
    'errors', '[]'::pg_catalog.jsonb, 'success', true, 'dry_run', p_dry_run)
$$;

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

-- Every transition (p_transition null) or one.
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

-- The run history of our jobs older than the retention: of every transition (null) or of one.
create or replace function scheduler.delete_old_runs(p_transition pg_catalog.text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_deleted integer;
    v_all boolean := p_transition is null;
    v_meetings boolean := p_transition is null or p_transition operator(pg_catalog.=) 'meetings';
    -- how a transition's job command names it (transition_job_specs): no LIKE pattern, names
    -- have _ in them
    v_call pg_catalog.text := 'select scheduler.complete_transition('
                              operator(pg_catalog.||) pg_catalog.quote_literal(p_transition)
                              operator(pg_catalog.||) ', ';
begin
    delete from cron.job_run_details d
    where d.username operator(pg_catalog.=) current_user
      and (d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
               (select s.history_retention from scheduler.settings s))
           -- the sweep runs every second: its successful runs are kept ten minutes only
           or v_meetings and d.command operator(pg_catalog.=) scheduler.sweep_command()
              and d.status operator(pg_catalog.=) 'succeeded'
              and d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
                                                     interval '10 minutes'))
      -- commands of ours, with or without the statement timeout that precedes them since 0002
      and (v_meetings and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
                           or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
                           or d.command operator(pg_catalog.=) scheduler.sweep_command())
           or v_all and d.command operator(pg_catalog.~~) '%select scheduler.complete_transition(%'
           or not v_meetings and pg_catalog.strpos(d.command, v_call) operator(pg_catalog.>) 0);
    get diagnostics v_deleted = row_count;
    return v_deleted;
end
$$;

-- Every transition (the reconcile job: p_transition null) or one.
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
