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
