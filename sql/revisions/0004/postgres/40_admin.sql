-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.list_jobs()

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
        'history_deleted', v_history, 'sweep', v_sweep,
        -- completion events past the retention, counted into metric_totals (0004)
        'events_deleted', scheduler.purge_events());
end
$$;
comment on function scheduler.reconcile() is
    'Run every minute by the job meeting-status-reconcile: repairs like recover (skipping rows '
    'other transactions hold), makes the sweep job match its setting, and deletes our '
    'cron.job_run_details rows and completion events older than the retention (successful sweep '
    'runs after 10 minutes).';
-- unchanged since 0003: function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid, p_end_time pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
-- unchanged since 0003: function scheduler.configure_statuses(p_pending pg_catalog.text default null, p_done pg_catalog.text default null, p_cancelled pg_catalog.text default null)
-- unchanged since 0002: function scheduler.pause()
-- unchanged since 0002: function scheduler.resume()
-- unchanged since 0003: function scheduler.history(p_failed_only boolean default false, p_limit integer default 50)
-- unchanged since 0003: function scheduler.security_report()

-- Completion events (0004) ------------------------------------------------------------------

-- The event rows as the admin side reads them: events(), claim_events().
create or replace function scheduler.event_rows(p_event_ids bigint[])
returns table (event_id bigint, event_key pg_catalog.uuid, meeting_id pg_catalog.uuid,
               end_time pg_catalog.timestamptz, completed_at pg_catalog.timestamptz,
               lateness_seconds double precision, path pg_catalog.text, delivery pg_catalog.text,
               attempts integer, last_error pg_catalog.text)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
select e.event_id, e.event_key, e.meeting_id, e.end_time, e.completed_at,
       pg_catalog.date_part('epoch', e.lateness), e.path, e.delivery, e.attempts, e.last_error
from scheduler.completion_events e
where e.event_id operator(pg_catalog.=) any (p_event_ids)
$$;

-- Recent completions, newest first, optionally of one path.
create or replace function scheduler.events(p_limit integer default 50,
                                            p_path pg_catalog.text default null)
returns table (event_id bigint, event_key pg_catalog.uuid, meeting_id pg_catalog.uuid,
               end_time pg_catalog.timestamptz, completed_at pg_catalog.timestamptz,
               lateness_seconds double precision, path pg_catalog.text, delivery pg_catalog.text,
               attempts integer, last_error pg_catalog.text)
language sql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
select r.* from scheduler.event_rows(array(
    select e.event_id from scheduler.completion_events e
    where p_path is null or e.path operator(pg_catalog.=) p_path
    order by e.event_id desc limit p_limit)) r
order by r.event_id desc
$$;
comment on function scheduler.events(integer, pg_catalog.text) is
    'The latest completion events (newest first), optionally of one path: meeting, end_time, '
    'completed_at, lateness, path and webhook delivery state.';

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
               attempts integer, last_error pg_catalog.text)
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

-- Counts of a set of completion events in scheduler.metric_totals' shape (name, label, value):
-- what metrics() adds to the totals, and what purge_events() adds to them before deleting.
create or replace function scheduler.event_counts(p_event_ids bigint[])
returns table (name pg_catalog.text, label pg_catalog.text, value double precision)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
with e as (
    select e.path, pg_catalog.date_part('epoch', e.lateness) as lateness, e.delivery
    from scheduler.completion_events e
    where p_event_ids is null or e.event_id operator(pg_catalog.=) any (p_event_ids)
)
select 'completions', e.path, pg_catalog.count(*)::double precision from e group by e.path
union all
select 'lateness_le', b.le::pg_catalog.text,
       (select pg_catalog.count(*) from e where e.lateness operator(pg_catalog.<=) b.le)::double precision
from pg_catalog.unnest(scheduler.lateness_buckets()) b(le)
union all
select 'lateness_count', '', pg_catalog.count(*)::double precision from e
union all
select 'lateness_sum', '', coalesce(pg_catalog.sum(e.lateness), 0) from e
union all
select 'webhook_delivered', '', pg_catalog.count(*)::double precision from e
where e.delivery operator(pg_catalog.=) 'delivered'
union all
select 'webhook_failed', '', pg_catalog.count(*)::double precision from e
where e.delivery operator(pg_catalog.=) 'failed'
union all
select 'webhook_attempt_failures', '', pg_catalog.count(*)::double precision
from scheduler.webhook_attempts a
where a.outcome operator(pg_catalog.<>) 'delivered'
  and (p_event_ids is null or a.event_id operator(pg_catalog.=) any (p_event_ids))
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
    insert into scheduler.metric_totals as t (name, label, value)
    select c.name, c.label, c.value from scheduler.event_counts(v_ids) c
    where c.value operator(pg_catalog.<>) 0
    on conflict (name, label) do update set value = t.value operator(pg_catalog.+) excluded.value;
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
        scheduler.security_report() as security
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
    'ok', f.enabled and (f.missing_jobs operator(pg_catalog.=) 0)
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
-- kept plus scheduler.metric_totals), failed and retried runs, webhook delivery counts.
create or replace function scheduler.metrics()
returns pg_catalog.jsonb
language sql stable
security definer
set search_path = pg_catalog, pg_temp
set jit = off
as $$
-- materialized: health() once (inlined, each h.j -> '...' below called it again: six times)
with h as materialized (
    select scheduler.health() as j
), counts as (
    select c.name, c.label, pg_catalog.sum(c.value) as value
    from (select c.name, c.label, c.value from scheduler.event_counts(null) c
          union all
          select t.name, t.label, t.value from scheduler.metric_totals t) c
    group by c.name, c.label
), runs as (
    select f.failed, f.retried from scheduler.failed_runs('-infinity') f
), pending as (
    select pg_catalog.count(*) as backlog, pg_catalog.min(e.completed_at) as oldest
    from scheduler.completion_events e
    where e.delivery operator(pg_catalog.=) 'pending'
)
select pg_catalog.jsonb_build_object(
    'backend', 'postgres',
    'enabled', h.j operator(pg_catalog.->) 'enabled',
    'upcoming_meetings', h.j operator(pg_catalog.->) 'upcoming_meetings',
    'jobs', h.j operator(pg_catalog.->) 'jobs',
    'missing_jobs', h.j operator(pg_catalog.->) 'missing_jobs',
    'orphan_jobs', h.j operator(pg_catalog.->) 'orphan_jobs',
    'overdue_meetings', h.j operator(pg_catalog.->) 'overdue_meetings',
    'completions', (select pg_catalog.jsonb_object_agg(p.path, coalesce(c.value, 0)::bigint)
                    from pg_catalog.unnest(array['job', 'sweep', 'waker', 'reconcile', 'recover',
                                                 'write']) p(path)
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
    'failed_runs', r.failed,
    'retried_runs', r.retried,
    'webhooks', pg_catalog.jsonb_build_object(
        'enabled', (select s.webhooks from scheduler.settings s),
        'delivered', coalesce((select c.value from counts c
                               where c.name operator(pg_catalog.=) 'webhook_delivered'), 0)::bigint,
        'failed', coalesce((select c.value from counts c
                            where c.name operator(pg_catalog.=) 'webhook_failed'), 0)::bigint,
        'attempt_failures', coalesce((select c.value from counts c
                                      where c.name operator(pg_catalog.=) 'webhook_attempt_failures'), 0)::bigint,
        'backlog', p.backlog,
        'oldest_pending_seconds', pg_catalog.date_part('epoch', pg_catalog.now() operator(pg_catalog.-) p.oldest)))
from h, runs r, pending p
$$;
comment on function scheduler.metrics() is
    'Counts for the Prometheus metrics in one call: health''s counts, completions by path, the '
    'lateness histogram, failed and retried runs, webhook deliveries, failures and backlog.';
