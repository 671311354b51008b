-- Completion events and webhook delivery state: read the events, claim them for a
-- dispatcher, record its attempts, count them, purge them past the retention. Python twin:
-- scheduler_admin/sqlite/events.py.
-- Callable with psycopg and through Supabase RPC; the security definer ones because the role
-- that calls them (service_role on Supabase) has no rights on the cron schema. Every one pins
-- search_path = pg_catalog, pg_temp and qualifies every name; all are owned by the owner of
-- public.meetings (05_owner.sql). Execute is granted in 50_grants.sql.

-- The event rows as the admin side reads them: events(), claim_events(), with the transition and
-- the key (a meeting's id, another transition's row_key).
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

-- Recent completions, newest first, optionally of one path and of one transition.
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
-- before deleting, per transition.
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
