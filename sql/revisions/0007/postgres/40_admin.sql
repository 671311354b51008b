-- unchanged since 0002: function scheduler.next_run(p_schedule pg_catalog.text, p_after pg_catalog.timestamptz)

-- 0006: every transition's jobs (p_transition null), or one transition's; two columns more. The
-- function is dropped first: the columns changed, and a list_jobs() without the argument would
-- match the same calls.
drop function if exists scheduler.list_jobs();
-- unchanged since 0006: function scheduler.list_jobs(p_transition pg_catalog.text default null)
-- unchanged since 0004: function scheduler.repair(p_dry_run boolean, p_skip_locked boolean)
-- unchanged since 0006: function scheduler.skipped_meetings_report(p_dry_run boolean)
-- unchanged since 0006: function scheduler.repair_all(p_dry_run boolean, p_skip_locked boolean)

-- 0006: every transition (p_transition null) or one; dropped first, as list_jobs.
drop function if exists scheduler.recover(boolean);
-- unchanged since 0006: function scheduler.recover(p_dry_run boolean default false, p_transition pg_catalog.text default null)
-- unchanged since 0006: function scheduler.delete_old_runs(p_transition pg_catalog.text)

-- 0006: every transition (the reconcile job: p_transition null) or one; dropped first.
drop function if exists scheduler.reconcile();
-- unchanged since 0006: function scheduler.reconcile(p_transition pg_catalog.text default null)
-- unchanged since 0003: function scheduler.schedule_meeting(p_meeting_id pg_catalog.uuid, p_end_time pg_catalog.timestamptz)
-- unchanged since 0003: function scheduler.cancel_meeting(p_meeting_id pg_catalog.uuid)
-- unchanged since 0003: function scheduler.configure_statuses(p_pending pg_catalog.text default null, p_done pg_catalog.text default null, p_cancelled pg_catalog.text default null)

-- 0006: the whole scheduler (p_transition null) or one transition by name; dropped first.
drop function if exists scheduler.pause();
-- unchanged since 0006: function scheduler.pause(p_transition pg_catalog.text default null)

drop function if exists scheduler.resume();
-- unchanged since 0006: function scheduler.resume(p_transition pg_catalog.text default null)

-- 0006: the runs of every transition's jobs (p_transition null) or of one transition's; two
-- columns more; dropped first, as list_jobs. plpgsql: an unknown name is an error, and the
-- registry is written after it on a new database.
drop function if exists scheduler.history(boolean, integer);
-- unchanged since 0006: function scheduler.history(p_failed_only boolean default false, p_limit integer default 50, p_transition pg_catalog.text default null)
-- unchanged since 0003: function scheduler.security_report()

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
-- unchanged since 0004: function scheduler.set_webhooks(p_enabled boolean)

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
-- unchanged since 0004: function scheduler.record_attempt(p_event_id bigint, p_outcome pg_catalog.text, p_status_code integer default null, p_error pg_catalog.text default null, p_retry_in_seconds double precision default null)
-- unchanged since 0004: function scheduler.lateness_buckets()

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
-- unchanged since 0004: function scheduler.failed_runs(p_since pg_catalog.timestamptz)
-- unchanged since 0004: function scheduler.health()

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
