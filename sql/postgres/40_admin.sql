-- Admin functions: list jobs, recover, reconcile, schedule/cancel one meeting, pause, resume,
-- health, history. Callable with psycopg and through Supabase RPC. They are security definer
-- because the role that calls them (service_role on Supabase) has no rights on the cron schema;
-- every one pins search_path = pg_catalog, pg_temp and qualifies every name. They are owned by
-- the owner of public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- Next time a five-field "M H D MON *" (or "* * * * *") schedule fires at or after p_after, UTC.
create or replace function scheduler.next_run(p_schedule pg_catalog.text,
                                              p_after pg_catalog.timestamptz)
returns pg_catalog.timestamptz
language plpgsql stable strict parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- plpgsql, not SQL: list_jobs calls it once per job, and plpgsql keeps its plans between calls.
declare
    v_field integer[];
    v_year integer;
    v_at pg_catalog.timestamptz;
begin
    if p_schedule operator(pg_catalog.=) '* * * * *' then
        return scheduler.job_minute(p_after) at time zone 'UTC';
    end if;
    if p_schedule operator(pg_catalog.!~) '^\d{1,2} \d{1,2} \d{1,2} \d{1,2} \*$' then
        return null;
    end if;
    v_field := (pg_catalog.string_to_array(p_schedule, ' '))[1:4]::integer[];
    v_year := extract(year from p_after at time zone 'UTC')::integer;
    -- 8 years reach the next 29 February even across a century that is not a leap year.
    for v_offset in 0 .. 8 loop
        v_at := pg_catalog.make_timestamptz(v_year operator(pg_catalog.+) v_offset, v_field[4], 1,
                                            v_field[2], v_field[1], 0, 'UTC')
                operator(pg_catalog.+) pg_catalog.make_interval(days => v_field[3] operator(pg_catalog.-) 1);
        if pg_catalog.date_part('month', v_at at time zone 'UTC') operator(pg_catalog.=) v_field[4]
           and v_at operator(pg_catalog.>=) p_after then
            return v_at;
        end if;
    end loop;
    return null;
end
$$;
comment on function scheduler.next_run(pg_catalog.text, pg_catalog.timestamptz) is
    'Next firing (UTC) of a schedule of ours at or after a time; null for other schedules.';

-- 0006: every transition's jobs (p_transition null), or one transition's; two columns more. The
-- function is dropped first: the columns changed, and a list_jobs() without the argument would
-- match the same calls.
drop function if exists scheduler.list_jobs();
create or replace function scheduler.list_jobs(p_transition pg_catalog.text default null)
returns table (meeting_id pg_catalog.uuid, job_id bigint, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, meeting_status pg_catalog.text, active boolean,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
-- statistics lag behind bulk changes (cron.job analyzed empty, then 20,000 jobs): a nested
-- loop chosen on such an estimate took 20 to 40 s where a hash join takes milliseconds
set enable_nestloop = off
as $$
declare
    -- pg_cron 1.5+ has cron.job.active; 1.4 has no such column (every job is active). The query
    -- text is one of two constants: nothing from a row is ever put into it.
    v_active pg_catalog.text := case when exists (
            select 1 from pg_catalog.pg_attribute a
            where a.attrelid operator(pg_catalog.=) 'cron.job'::pg_catalog.regclass
              and a.attname operator(pg_catalog.=) 'active' and not a.attisdropped)
        then 'j.active' else 'true' end;
    -- the meetings' jobs (and the reconcile and sweep jobs) are listed: true or false, a constant
    v_meetings pg_catalog.text := case when p_transition is null
                                            or p_transition operator(pg_catalog.=) 'meetings'
                                       then 'true' else 'false' end;
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    -- Jobs are matched to upcoming meetings by the job name computed from each meeting; only the
    -- jobs left over (orphans, the reconcile job) have their names parsed: parsing every name
    -- cost more than the rest of this function at 20,000 jobs. The other transitions' jobs come
    -- from scheduler.transition_jobs() (45_transitions.sql).
    return query execute pg_catalog.format($query$
with ours as materialized (
    select j.jobid, j.jobname::pg_catalog.text as jobname, j.schedule, %s as active
    from cron.job j
    where %s
      and j.username operator(pg_catalog.=) current_user
      and j.jobname operator(pg_catalog.~~) 'meeting-status-%%'
), upcoming as materialized (
    select u.meeting_id, u.job_name::pg_catalog.text as job_name, u.schedule, u.fires_at, u.end_time
    from scheduler.upcoming_jobs() u
), leftover as materialized (
    select o.* from ours o
    where not exists (select 1 from upcoming u where u.job_name operator(pg_catalog.=) o.jobname)
), parsed as materialized (
    select p.job_name, p.meeting_id
    from scheduler.job_meetings(array(select l.jobname from leftover l)) p
)
select u.meeting_id, o.jobid, o.jobname, o.schedule,
       case when o.schedule operator(pg_catalog.=) u.schedule
                 and u.fires_at operator(pg_catalog.>=) pg_catalog.now()
                 and u.fires_at operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.+) interval '1 year')
            then u.fires_at
            else scheduler.next_run(o.schedule, pg_catalog.now()) end,
       u.end_time, (select scheduler.pending_status()), o.active,
       'meetings'::pg_catalog.text, u.meeting_id::pg_catalog.text
from ours o join upcoming u on u.job_name operator(pg_catalog.=) o.jobname
union all
select p.meeting_id, l.jobid, l.jobname, l.schedule, scheduler.next_run(l.schedule, pg_catalog.now()),
       m.end_time, m.status::pg_catalog.text, l.active,
       'meetings'::pg_catalog.text, p.meeting_id::pg_catalog.text
from leftover l
join parsed p on p.job_name operator(pg_catalog.=) l.jobname
left join public.meetings m on m.id operator(pg_catalog.=) p.meeting_id
where p.meeting_id is not null
   or l.jobname operator(pg_catalog.=) any (array['meeting-status-reconcile', 'meeting-status-sweep'])
union all
select * from scheduler.transition_jobs($1)
order by 5, 3
$query$, v_active, v_meetings) using p_transition;
end
$$;
comment on function scheduler.list_jobs(pg_catalog.text) is
    'Every pg_cron job of ours (meeting jobs, the reconcile and sweep jobs, the other '
    'transitions'' jobs), or one transition''s, with its row and next run in UTC. An orphan job '
    'has a null meeting_status.';

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

-- The meetings' part of a report while meetings is paused by name (0006): the pending meetings
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

-- 0006: every transition (p_transition null) or one; dropped first, as list_jobs.
drop function if exists scheduler.recover(boolean);
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

-- 0006: every transition (the reconcile job: p_transition null) or one; dropped first.
drop function if exists scheduler.reconcile();
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

-- 0006: the whole scheduler (p_transition null) or one transition by name; dropped first.
drop function if exists scheduler.pause();
create or replace function scheduler.pause(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_transition is null then
        update scheduler.settings set enabled = false, updated_at = pg_catalog.now();
        return pg_catalog.jsonb_build_object('enabled', false);
    end if;
    perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    update scheduler.transitions t set paused = true
    where t.name operator(pg_catalog.=) p_transition;
    return pg_catalog.jsonb_build_object('transition', p_transition, 'paused', true);
end
$$;
comment on function scheduler.pause(pg_catalog.text) is
    'Pauses the scheduler, or one transition by name: triggers register no job, jobs and '
    'reconcile change nothing.';

drop function if exists scheduler.resume();
create or replace function scheduler.resume(p_transition pg_catalog.text default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_transition is null then
        update scheduler.settings set enabled = true, updated_at = pg_catalog.now();
        update scheduler.transitions t set paused = false where t.paused;
        return scheduler.recover(false);
    end if;
    perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    if not coalesce((select s.enabled from scheduler.settings s), true) then
        raise exception 'the scheduler is paused as a whole: resuming transition % alone would do nothing',
                        p_transition
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'Run scheduler-admin resume (select scheduler.resume()): it resumes every transition.';
    end if;
    update scheduler.transitions t set paused = false
    where t.name operator(pg_catalog.=) p_transition;
    return scheduler.recover(false, p_transition);
end
$$;
comment on function scheduler.resume(pg_catalog.text) is
    'Resumes the scheduler (and every transition paused by name), or one transition, and runs '
    'its recovery.';

-- 0006: the runs of every transition's jobs (p_transition null) or of one transition's; two
-- columns more; dropped first, as list_jobs. plpgsql: an unknown name is an error, and the
-- registry is written after it on a new database.
drop function if exists scheduler.history(boolean, integer);
create or replace function scheduler.history(p_failed_only boolean default false,
                                             p_limit integer default 50,
                                             p_transition pg_catalog.text default null)
returns table (run_id bigint, job_id bigint, job_name pg_catalog.text, meeting_id pg_catalog.uuid,
               status pg_catalog.text, return_message pg_catalog.text,
               start_time pg_catalog.timestamptz, end_time pg_catalog.timestamptz,
               transition pg_catalog.text, key pg_catalog.text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
as $$
declare
    v_meetings boolean := p_transition is null or p_transition operator(pg_catalog.=) 'meetings';
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    return query
    select r.runid, r.jobid, r.job_name, r.meeting_id, r.status,
           -- pg_cron records the row count of a job's last statement ("1 row", or "SELECT 1" with
           -- background workers), which says nothing: say what a successful run left behind
           case when r.status operator(pg_catalog.=) 'succeeded'
                     and (r.return_message operator(pg_catalog.~~) '% row'
                          or r.return_message operator(pg_catalog.~~) '% rows'
                          or r.return_message operator(pg_catalog.~~) 'SELECT %')
                then case when r.transition operator(pg_catalog.<>) 'meetings'
                          then 'checked the row: the due rows of ' operator(pg_catalog.||)
                               r.transition operator(pg_catalog.||) ' are ' operator(pg_catalog.||)
                               coalesce((select t.to_state from scheduler.transitions t
                                         where t.name operator(pg_catalog.=) r.transition),
                                        'done')
                          when r.meeting_id is null
                          then 'reconciled: overdue meetings completed, missing jobs registered, '
                               'orphan jobs removed'
                          else 'checked the meeting: it is now ' operator(pg_catalog.||)
                               coalesce((select m.status::pg_catalog.text from public.meetings m
                                         where m.id operator(pg_catalog.=) r.meeting_id),
                                        'deleted')
                     end
                else r.return_message end,
           r.start_time, r.end_time, r.transition, r.key
    from (
        select d.runid, d.jobid, j.job_name, j.meeting_id,
               -- a pending run dropped because its job was unscheduled is not a failure
               case when d.status operator(pg_catalog.=) 'failed'
                         and d.return_message operator(pg_catalog.=) 'job canceled'
                    then 'canceled' else d.status end as status,
               d.return_message, d.start_time, d.end_time,
               'meetings'::pg_catalog.text as transition, j.meeting_id::pg_catalog.text as key
        from cron.job_run_details d
        cross join lateral scheduler.job_meetings(array[scheduler.command_job(d.command)]) j
        where v_meetings
          and d.username operator(pg_catalog.=) current_user
          -- commands of ours (a cheap filter before command_job), with or without the statement
          -- timeout that precedes them since 0002
          and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
               or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
               -- the sweep's runs that did not succeed (it succeeds every second)
               or d.command operator(pg_catalog.=) scheduler.sweep_command()
                  and d.status operator(pg_catalog.<>) 'succeeded')
          and j.job_name is not null
        union all
        -- the other transitions' jobs: the command names the transition and the key
        -- (transition_job_specs, 45_transitions.sql)
        select d.runid, d.jobid, t.job_prefix operator(pg_catalog.||) c.key, null::pg_catalog.uuid,
               case when d.status operator(pg_catalog.=) 'failed'
                         and d.return_message operator(pg_catalog.=) 'job canceled'
                    then 'canceled' else d.status end,
               d.return_message, d.start_time, d.end_time, c.name, c.key
        from cron.job_run_details d
        cross join lateral (
            -- the key as format('%L') wrote it: quotes doubled, and a key with a backslash as an
            -- escape string E'...' with backslashes doubled too (0008)
            select x[1] as name,
                   case when x[2] operator(pg_catalog.=) 'E'
                        then pg_catalog.replace(pg_catalog.replace(x[3], '''''', ''''), '\\', '\')
                        else pg_catalog.replace(x[3], '''''', '''') end as key
            from pg_catalog.regexp_match(
                d.command,
                'select scheduler\.complete_transition\(''([a-z][a-z0-9_]*)'', (E?)''((?:[^'']|'''')*)''\)$') x
        ) c
        left join scheduler.transitions t on t.name operator(pg_catalog.=) c.name
        where d.username operator(pg_catalog.=) current_user
          and d.command operator(pg_catalog.~~) '%select scheduler.complete_transition(%'
          and c.name is not null
          and (p_transition is null or c.name operator(pg_catalog.=) p_transition)
    ) r
    where not p_failed_only or r.status operator(pg_catalog.=) 'failed'
    -- run ids grow with every run pg_cron starts or cancels: newest first, strictly (a canceled
    -- run has no start time)
    order by r.runid desc
    limit p_limit;
end
$$;
comment on function scheduler.history(boolean, integer, pg_catalog.text) is
    'Runs of our jobs (of every transition, or of one), newest first (by run id). Runs canceled '
    'because their job was removed are reported as canceled, not failed; a successful run says '
    'what it left behind.';

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

-- Completion events (0004) ------------------------------------------------------------------

-- The event rows as the admin side reads them: events(), claim_events(). 0007: the transition
-- and the key (a meeting's id, another transition's row_key); dropped first, with the functions
-- that return its columns (the types changed).
drop function if exists scheduler.events(integer, pg_catalog.text);
drop function if exists scheduler.claim_events(integer, double precision);
drop function if exists scheduler.event_rows(bigint[]);
create or replace function scheduler.event_rows(p_event_ids bigint[])
returns table (event_id bigint, event_key pg_catalog.uuid, meeting_id pg_catalog.uuid,
               end_time pg_catalog.timestamptz, completed_at pg_catalog.timestamptz,
               lateness_seconds double precision, path pg_catalog.text, delivery pg_catalog.text,
               attempts integer, last_error pg_catalog.text, transition pg_catalog.text,
               key pg_catalog.text)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select e.event_id, e.event_key, e.meeting_id, e.end_time, e.completed_at,
       pg_catalog.date_part('epoch', e.lateness), e.path, e.delivery, e.attempts, e.last_error,
       e.transition, coalesce(e.row_key, e.meeting_id::pg_catalog.text)
from scheduler.completion_events e
where e.event_id operator(pg_catalog.=) any (p_event_ids)
$$;

-- Recent completions, newest first, optionally of one path and of one transition (0007).
-- plpgsql: an unknown transition is an error.
create or replace function scheduler.events(p_limit integer default 50,
                                            p_path pg_catalog.text default null,
                                            p_transition pg_catalog.text default null)
returns table (event_id bigint, event_key pg_catalog.uuid, meeting_id pg_catalog.uuid,
               end_time pg_catalog.timestamptz, completed_at pg_catalog.timestamptz,
               lateness_seconds double precision, path pg_catalog.text, delivery pg_catalog.text,
               attempts integer, last_error pg_catalog.text, transition pg_catalog.text,
               key pg_catalog.text)
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_transition is not null then
        perform scheduler.transition_target(p_transition);  -- an unknown name is an error
    end if;
    return query
    select r.* from scheduler.event_rows(array(
        select e.event_id from scheduler.completion_events e
        where (p_path is null or e.path operator(pg_catalog.=) p_path)
          and (p_transition is null or e.transition operator(pg_catalog.=) p_transition)
        order by e.event_id desc limit p_limit)) r
    order by r.event_id desc;
end
$$;
comment on function scheduler.events(integer, pg_catalog.text, pg_catalog.text) is
    'The latest completion events (newest first), optionally of one path and of one transition: '
    'row, time, completed_at, lateness, path and webhook delivery state.';

-- Turns webhook delivery on or off: while on, new events wait for a dispatcher
-- (scheduler-admin webhooks, or the application's process with SCHEDULER_WEBHOOK_URL set).
create or replace function scheduler.set_webhooks(p_enabled boolean)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_enabled is null then
        raise exception 'set_webhooks needs true or false'
            using errcode = 'null_value_not_allowed';
    end if;
    update scheduler.settings s set webhooks = p_enabled, updated_at = pg_catalog.now()
    where s.webhooks is distinct from p_enabled;
    return pg_catalog.jsonb_build_object('webhooks', p_enabled);
end
$$;
comment on function scheduler.set_webhooks(boolean) is
    'Turns webhook delivery on (new completion events wait for a dispatcher) or off.';

-- A dispatcher's claim: up to p_limit events due for delivery, oldest first, that no other
-- dispatcher holds (skip locked) or leases (claimed_until in the future). The lease outlives a
-- killed dispatcher: when it ends another one claims the event again (at least once).
create or replace function scheduler.claim_events(p_limit integer,
                                                  p_lease_seconds double precision)
returns table (event_id bigint, event_key pg_catalog.uuid, meeting_id pg_catalog.uuid,
               end_time pg_catalog.timestamptz, completed_at pg_catalog.timestamptz,
               lateness_seconds double precision, path pg_catalog.text, delivery pg_catalog.text,
               attempts integer, last_error pg_catalog.text, transition pg_catalog.text,
               key pg_catalog.text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_ids bigint[];
begin
    if p_limit is null or p_limit operator(pg_catalog.<) 1
       or p_lease_seconds is null or p_lease_seconds operator(pg_catalog.<=) 0 then
        raise exception 'claim_events needs a positive limit and lease'
            using errcode = 'invalid_parameter_value';
    end if;
    with claimable as (
        select e.event_id from scheduler.completion_events e
        where e.delivery operator(pg_catalog.=) 'pending'
          and e.next_attempt_at operator(pg_catalog.<=) pg_catalog.clock_timestamp()
          and (e.claimed_until is null
               or e.claimed_until operator(pg_catalog.<=) pg_catalog.clock_timestamp())
        order by e.next_attempt_at, e.event_id
        limit p_limit
        for update skip locked
    ), claimed as (
        update scheduler.completion_events e
        set claimed_until = pg_catalog.clock_timestamp() operator(pg_catalog.+)
                            pg_catalog.make_interval(secs => p_lease_seconds),
            attempts = e.attempts operator(pg_catalog.+) 1
        from claimable c where e.event_id operator(pg_catalog.=) c.event_id
        returning e.event_id
    )
    select pg_catalog.array_agg(c.event_id) into v_ids from claimed c;
    return query select r.* from scheduler.event_rows(v_ids) r order by r.event_id;
end
$$;
comment on function scheduler.claim_events(integer, double precision) is
    'Claims up to p_limit completion events due for webhook delivery (skip locked, leased for '
    'p_lease_seconds), counting an attempt each; oldest first.';

-- What a dispatcher reports after an attempt. delivered: done; retry: again after
-- p_retry_in_seconds; failed: given up. An event already delivered or failed stays so (a
-- dispatcher whose lease ran out may report late); the attempt is recorded anyway.
create or replace function scheduler.record_attempt(p_event_id bigint, p_outcome pg_catalog.text,
                                                    p_status_code integer default null,
                                                    p_error pg_catalog.text default null,
                                                    p_retry_in_seconds double precision default null)
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
    v_attempts integer;
    v_recorded integer;
begin
    if p_outcome is null or not p_outcome operator(pg_catalog.=) any (array['delivered', 'retry', 'failed']) then
        raise exception 'unknown delivery outcome %', coalesce(p_outcome, 'null')
            using errcode = 'invalid_parameter_value',
                  hint = 'Give delivered, retry or failed.';
    end if;
    select e.attempts into v_attempts from scheduler.completion_events e
    where e.event_id operator(pg_catalog.=) p_event_id;
    if not found then
        raise exception 'no completion event %', p_event_id
            using errcode = 'no_data_found',
                  hint = 'It may have been deleted by the retention (settings.history_retention).';
    end if;
    insert into scheduler.webhook_attempts (event_id, attempt, outcome, status_code, error)
    values (p_event_id, v_attempts, p_outcome, p_status_code, pg_catalog.left(p_error, 2000));
    update scheduler.completion_events e
    set delivery = case p_outcome when 'retry' then 'pending' else p_outcome end,
        delivered_at = case when p_outcome operator(pg_catalog.=) 'delivered'
                            then pg_catalog.clock_timestamp() end,
        next_attempt_at = case when p_outcome operator(pg_catalog.=) 'retry'
                               then pg_catalog.clock_timestamp() operator(pg_catalog.+)
                                    pg_catalog.make_interval(secs => greatest(coalesce(p_retry_in_seconds, 0), 0))
                               else e.next_attempt_at end,
        claimed_until = null,
        last_error = case when p_outcome operator(pg_catalog.=) 'delivered' then e.last_error
                          else pg_catalog.left(p_error, 2000) end
    where e.event_id operator(pg_catalog.=) p_event_id
      and e.delivery operator(pg_catalog.=) 'pending';
    get diagnostics v_recorded = row_count;
    return pg_catalog.jsonb_build_object('recorded', v_recorded operator(pg_catalog.>) 0);
end
$$;
comment on function scheduler.record_attempt(bigint, pg_catalog.text, integer, pg_catalog.text, double precision) is
    'Records a webhook delivery attempt of a completion event (delivered, retry after '
    'p_retry_in_seconds, failed) and the event''s delivery state.';

-- The lateness histogram's bucket bounds, in seconds (metrics()).
create or replace function scheduler.lateness_buckets()
returns double precision[]
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
select array[0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600]::double precision[]
$$;

-- Counts of a set of completion events in scheduler.metric_totals' shape (name, label,
-- transition, value): what metrics() adds to the totals, and what purge_events() adds to them
-- before deleting. 0007: per transition (dropped first: a column more).
drop function if exists scheduler.event_counts(bigint[]);
create or replace function scheduler.event_counts(p_event_ids bigint[])
returns table (name pg_catalog.text, label pg_catalog.text, transition pg_catalog.text,
               value double precision)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
with e as (
    select e.transition, e.path, pg_catalog.date_part('epoch', e.lateness) as lateness, e.delivery
    from scheduler.completion_events e
    where p_event_ids is null or e.event_id operator(pg_catalog.=) any (p_event_ids)
), t as (
    select distinct e.transition from e
)
select 'completions', e.path, e.transition, pg_catalog.count(*)::double precision
from e group by e.transition, e.path
union all
select 'lateness_le', b.le::pg_catalog.text, t.transition,
       (select pg_catalog.count(*) from e
        where e.transition operator(pg_catalog.=) t.transition
          and e.lateness operator(pg_catalog.<=) b.le)::double precision
from t cross join pg_catalog.unnest(scheduler.lateness_buckets()) b(le)
union all
select 'lateness_count', '', e.transition, pg_catalog.count(*)::double precision
from e group by e.transition
union all
select 'lateness_sum', '', e.transition, coalesce(pg_catalog.sum(e.lateness), 0)
from e group by e.transition
union all
select 'webhook_delivered', '', e.transition, pg_catalog.count(*)::double precision
from e where e.delivery operator(pg_catalog.=) 'delivered' group by e.transition
union all
select 'webhook_failed', '', e.transition, pg_catalog.count(*)::double precision
from e where e.delivery operator(pg_catalog.=) 'failed' group by e.transition
union all
select 'webhook_attempt_failures', '', c.transition, pg_catalog.count(*)::double precision
from scheduler.webhook_attempts a
join scheduler.completion_events c on c.event_id operator(pg_catalog.=) a.event_id
where a.outcome operator(pg_catalog.<>) 'delivered'
  and (p_event_ids is null or a.event_id operator(pg_catalog.=) any (p_event_ids))
group by c.transition
$$;

-- The retention of completion events (the reconcile job): deletes those completed before
-- now - settings.history_retention, adding their counts to scheduler.metric_totals first, so
-- that the metrics' counters never go down. Returns how many were deleted.
create or replace function scheduler.purge_events()
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids bigint[];
begin
    v_ids := array(select e.event_id from scheduler.completion_events e
                   where e.completed_at operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
                             (select s.history_retention from scheduler.settings s))
                   for update skip locked);
    if pg_catalog.cardinality(v_ids) operator(pg_catalog.=) 0 then
        return 0;
    end if;
    insert into scheduler.metric_totals as t (name, label, transition, value)
    select c.name, c.label, c.transition, c.value from scheduler.event_counts(v_ids) c
    where c.value operator(pg_catalog.<>) 0
    on conflict (name, label, transition)
    do update set value = t.value operator(pg_catalog.+) excluded.value;
    delete from scheduler.completion_events e where e.event_id operator(pg_catalog.=) any (v_ids);
    return pg_catalog.cardinality(v_ids);
end
$$;
comment on function scheduler.purge_events() is
    'Deletes completion events older than settings.history_retention, adding their counts to '
    'scheduler.metric_totals. Called by the reconcile job.';

-- Failed runs of our jobs kept in cron.job_run_details since a time, and how many of them were
-- retried: a meeting job's run whose meeting is no longer pending (a later run, the sweep, the
-- waker or the reconcile job completed it), or a later run of the same job that succeeded.
create or replace function scheduler.failed_runs(p_since pg_catalog.timestamptz)
returns table (failed bigint, retried bigint)
language sql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
select pg_catalog.count(*),
       pg_catalog.count(*) filter (where
           case when h.meeting_id is not null
                then not exists (select 1 from public.meetings m
                                 where m.id operator(pg_catalog.=) h.meeting_id
                                   and m.status operator(pg_catalog.=) (select scheduler.pending_status()))
                else exists (select 1 from cron.job_run_details d
                             where d.jobid operator(pg_catalog.=) h.job_id
                               and d.runid operator(pg_catalog.>) h.run_id
                               and d.status operator(pg_catalog.=) 'succeeded')
           end)
from scheduler.history(true, 2147483647) h
where h.start_time operator(pg_catalog.>) p_since or h.start_time is null
$$;
comment on function scheduler.failed_runs(pg_catalog.timestamptz) is
    'Failed runs of our jobs since a time, and those retried (meeting completed later, or a '
    'later run of the same job succeeded).';


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

-- Everything the Prometheus metrics need, in one call (scheduler-admin metrics, /metrics):
-- health()'s counts, completions by path and the lateness histogram (cumulative: the events
-- kept plus scheduler.metric_totals), failed and retried runs, webhook delivery counts. 0007:
-- of every transition (null: the health part is the meetings', the counts every transition's)
-- or of one (its pending rows, jobs, missing and orphan jobs, overdue rows, its jobs' failed
-- runs, its events' counts); dropped first (0004's took no argument).
drop function if exists scheduler.metrics();
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
