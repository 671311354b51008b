-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)

create or replace function scheduler.list_jobs()
returns table (meeting_id pg_catalog.uuid, job_id bigint, job_name pg_catalog.text,
               schedule pg_catalog.text, next_run pg_catalog.timestamptz,
               end_time pg_catalog.timestamptz, meeting_status pg_catalog.text, active boolean)
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
begin
    -- Jobs are matched to upcoming meetings by the job name computed from each meeting; only the
    -- jobs left over (orphans, the reconcile job) have their names parsed: parsing every name
    -- cost more than the rest of this function at 20,000 jobs.
    return query execute pg_catalog.format($query$
with ours as materialized (
    select j.jobid, j.jobname::pg_catalog.text as jobname, j.schedule, %s as active
    from cron.job j
    where j.username operator(pg_catalog.=) current_user
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
       u.end_time, (select scheduler.pending_status()), o.active
from ours o join upcoming u on u.job_name operator(pg_catalog.=) o.jobname
union all
select p.meeting_id, l.jobid, l.jobname, l.schedule, scheduler.next_run(l.schedule, pg_catalog.now()),
       m.end_time, m.status::pg_catalog.text, l.active
from leftover l
join parsed p on p.job_name operator(pg_catalog.=) l.jobname
left join public.meetings m on m.id operator(pg_catalog.=) p.meeting_id
where p.meeting_id is not null
   or l.jobname operator(pg_catalog.=) any (array['meeting-status-reconcile', 'meeting-status-sweep'])
order by 5, 3
$query$, v_active);
end
$$;
comment on function scheduler.list_jobs() is
    'Every pg_cron job of ours (meeting jobs and the reconcile job) with its meeting and next '
    'run in UTC. An orphan job has a null meeting_status.';

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
        v_overdue := scheduler.complete_due(p_skip_locked);
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
-- unchanged since 0002: function scheduler.recover(p_dry_run boolean default false)

create or replace function scheduler.reconcile()
returns pg_catalog.jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
-- a held lock fails this run (the next one, a minute later, retries) instead of holding one of
-- pg_cron's connections
set lock_timeout = '5s'
as $$
declare
    v_report pg_catalog.jsonb;
    v_history integer;
    v_sweep pg_catalog.text;
begin
    if not scheduler.is_enabled() then
        return pg_catalog.jsonb_build_object('paused', true);
    end if;
    if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair')) then
        return pg_catalog.jsonb_build_object('skipped', 'another recovery is running');
    end if;
    v_report := scheduler.repair(false, true);
    v_sweep := scheduler.sync_sweep();
    delete from cron.job_run_details d
    where d.username operator(pg_catalog.=) current_user
      and (d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
               (select s.history_retention from scheduler.settings s))
           -- the sweep runs every second: its successful runs are kept ten minutes only
           or d.command operator(pg_catalog.=) scheduler.sweep_command()
              and d.status operator(pg_catalog.=) 'succeeded'
              and d.end_time operator(pg_catalog.<) (pg_catalog.now() operator(pg_catalog.-)
                                                     interval '10 minutes'))
      -- commands of ours, with or without the statement timeout that precedes them since 0002
      and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
           or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
           or d.command operator(pg_catalog.=) scheduler.sweep_command());
    get diagnostics v_history = row_count;
    return v_report operator(pg_catalog.||) pg_catalog.jsonb_build_object(
        'history_deleted', v_history, 'sweep', v_sweep);
end
$$;
comment on function scheduler.reconcile() is
    'Run every minute by the job meeting-status-reconcile: repairs like recover (skipping rows '
    'other transactions hold), makes the sweep job match its setting, and deletes our '
    'cron.job_run_details rows older than the retention (successful sweep runs after 10 minutes).';

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
begin
    if p_end_time is null then
        raise exception 'end_time is required' using errcode = 'invalid_parameter_value';
    end if;
    select m.status into v_status from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
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
begin
    select m.status into v_status from public.meetings m
    where m.id operator(pg_catalog.=) p_meeting_id for update;
    if not found then
        raise exception 'no meeting with id %', p_meeting_id using errcode = 'no_data_found';
    end if;
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
            -- the word (passed as a parameter, never spliced in); a check passes unless false
            execute pg_catalog.format(
                'select (%s) is not false from (select $1::%s as status) as meetings',
                v_expr, v_type)
            into v_allowed using v_word;
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
            perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair'));
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
-- unchanged since 0002: function scheduler.pause()
-- unchanged since 0002: function scheduler.resume()

create or replace function scheduler.history(p_failed_only boolean default false,
                                             p_limit integer default 50)
returns table (run_id bigint, job_id bigint, job_name pg_catalog.text, meeting_id pg_catalog.uuid,
               status pg_catalog.text, return_message pg_catalog.text,
               start_time pg_catalog.timestamptz, end_time pg_catalog.timestamptz)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
-- row estimates of set-returning functions are guesses; compiling the plan (JIT) cost more
-- than running it
set jit = off
as $$
select r.runid, r.jobid, r.job_name, r.meeting_id, r.status,
       -- pg_cron records the row count of a job's last statement ("1 row", or "SELECT 1" with
       -- background workers), which says nothing: say what a successful run left behind
       case when r.status operator(pg_catalog.=) 'succeeded'
                 and (r.return_message operator(pg_catalog.~~) '% row'
                      or r.return_message operator(pg_catalog.~~) '% rows'
                      or r.return_message operator(pg_catalog.~~) 'SELECT %')
            then case when r.meeting_id is null
                      then 'reconciled: overdue meetings completed, missing jobs registered, '
                           'orphan jobs removed'
                      else 'checked the meeting: it is now ' operator(pg_catalog.||)
                           coalesce((select m.status::pg_catalog.text from public.meetings m
                                     where m.id operator(pg_catalog.=) r.meeting_id),
                                    'deleted')
                 end
            else r.return_message end,
       r.start_time, r.end_time
from (
    select d.runid, d.jobid, j.job_name, j.meeting_id,
           -- a pending run dropped because its job was unscheduled is not a failure
           case when d.status operator(pg_catalog.=) 'failed'
                     and d.return_message operator(pg_catalog.=) 'job canceled'
                then 'canceled' else d.status end as status,
           d.return_message, d.start_time, d.end_time
    from cron.job_run_details d
    cross join lateral scheduler.job_meetings(array[scheduler.command_job(d.command)]) j
    where d.username operator(pg_catalog.=) current_user
      -- commands of ours (a cheap filter before command_job), with or without the statement
      -- timeout that precedes them since 0002
      and (d.command operator(pg_catalog.~~) '%select scheduler.complete_meeting(%'
           or d.command operator(pg_catalog.~~) '%select scheduler.reconcile()'
           -- the sweep's runs that did not succeed (it succeeds every second)
           or d.command operator(pg_catalog.=) scheduler.sweep_command()
              and d.status operator(pg_catalog.<>) 'succeeded')
      and j.job_name is not null
) r
where not p_failed_only or r.status operator(pg_catalog.=) 'failed'
-- run ids grow with every run pg_cron starts or cancels: newest first, strictly (a canceled
-- run has no start time)
order by r.runid desc
limit p_limit
$$;
comment on function scheduler.history(boolean, integer) is
    'Runs of our jobs, newest first (by run id). Runs canceled because their job was removed '
    'are reported as canceled, not failed; a successful run says what it left behind.';

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
        'cron_timezone_readable', v_timezone_known);
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
        (select pg_catalog.count(*) from scheduler.history(true, 2147483647) h
         where h.start_time operator(pg_catalog.>) (pg_catalog.now() operator(pg_catalog.-) interval '24 hours')) as failed_runs_24h,
        exists (select 1 from ours o where o.jobname operator(pg_catalog.=) 'meeting-status-reconcile') as reconcile_job,
        pg_catalog.jsonb_build_object(
            'supported', scheduler.sweep_supported(),
            'seconds', (select s.sweep_seconds from scheduler.settings s),
            'job', exists (select 1 from ours o
                           where o.jobname operator(pg_catalog.=) 'meeting-status-sweep')) as sweep,
        (select e.extversion from pg_catalog.pg_extension e where e.extname operator(pg_catalog.=) 'pg_cron') as pg_cron_version,
        scheduler.security_report() as security
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
    'reconcile_job', f.reconcile_job,
    'pg_cron_version', f.pg_cron_version,
    'security', f.security,
    'sweep', f.sweep,
    'ok', f.enabled and (f.missing_jobs operator(pg_catalog.=) 0)
          and (f.orphan_jobs operator(pg_catalog.=) 0) and (f.overdue_meetings operator(pg_catalog.=) 0)
          and (f.failed_runs_24h operator(pg_catalog.=) 0) and f.reconcile_job
          and (f.sweep operator(pg_catalog.->>) 'job')::boolean
              operator(pg_catalog.=) ((f.sweep operator(pg_catalog.->>) 'supported')::boolean
                                      and (f.sweep operator(pg_catalog.->>) 'seconds')::integer
                                          operator(pg_catalog.>) 0))
from facts f
$$;
comment on function scheduler.health() is
    'Counts that tell whether the scheduler is healthy: missing and orphan jobs, overdue '
    'meetings, failed runs in the last 24 hours, the reconcile job, the seconds sweep.';
