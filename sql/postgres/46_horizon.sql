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
