-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)

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
-- unchanged since 0004: function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)

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
begin
    return case when scheduler.is_enabled() or p_dry_run
                then scheduler.repair(p_dry_run, p_skip_locked)
                else scheduler.skipped_meetings_report(p_dry_run) end
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
    -- One recovery or reconciliation at a time.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair'));
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
    if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scheduler.repair')) then
        return pg_catalog.jsonb_build_object('skipped', 'another recovery is running');
    end if;
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
-- unchanged since 0003: function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid, p_end_time pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
-- unchanged since 0003: function scheduler.configure_statuses(p_pending pg_catalog.text default null, p_done pg_catalog.text default null, p_cancelled pg_catalog.text default null)

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
            select x[1] as name, pg_catalog.replace(x[2], '''''', '''') as key
            from pg_catalog.regexp_match(
                d.command,
                'select scheduler\.complete_transition\(''([a-z][a-z0-9_]*)'', ''((?:[^'']|'''')*)''\)$') x
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
-- unchanged since 0003: function scheduler.security_report()
-- unchanged since 0004: function scheduler.event_rows(p_event_ids bigint[])
-- unchanged since 0004: function scheduler.events(p_limit integer default 50, p_path pg_catalog.text default null)
-- unchanged since 0004: function scheduler.set_webhooks(p_enabled boolean)
-- unchanged since 0004: function scheduler.claim_events(p_limit integer, p_lease_seconds double precision)
-- unchanged since 0004: function scheduler.record_attempt(p_event_id bigint, p_outcome pg_catalog.text, p_status_code integer default null, p_error pg_catalog.text default null, p_retry_in_seconds double precision default null)
-- unchanged since 0004: function scheduler.lateness_buckets()
-- unchanged since 0004: function scheduler.event_counts(p_event_ids bigint[])
-- unchanged since 0004: function scheduler.purge_events()
-- unchanged since 0004: function scheduler.failed_runs(p_since pg_catalog.timestamptz)
-- unchanged since 0004: function scheduler.health()
-- unchanged since 0004: function scheduler.metrics()
