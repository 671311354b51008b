-- Triggers on public.meetings. A row-level BEFORE trigger validates the row and completes a
-- meeting whose end time has already passed; statement-level AFTER triggers (with transition
-- tables, so that one INSERT ... SELECT or UPDATE of many rows is handled as a set) register and
-- unschedule jobs.

create or replace function scheduler.meetings_before_write()
returns pg_catalog.trigger
language plpgsql
-- security invoker: it reads only NEW and calls pg_catalog functions.
set search_path = pg_catalog, pg_temp
as $$
begin
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
    if new.status is null
       or new.status::pg_catalog.text operator(pg_catalog.<>) all (array['upcoming', 'done', 'cancelled']) then
        raise exception 'meeting %: unknown status %', coalesce(new.id::pg_catalog.text, '(new)'),
                        coalesce(pg_catalog.quote_literal(new.status), 'null')
            using errcode = 'check_violation',
                  hint = 'status must be one of upcoming, done, cancelled.';
    end if;
    if new.status operator(pg_catalog.=) 'upcoming'
       and new.end_time operator(pg_catalog.<=) pg_catalog.now() then
        new.status := 'done';
    end if;
    return new;
end
$$;
comment on function scheduler.meetings_before_write() is
    'Rejects a null end_time or an unknown status with a clear error, and marks done an '
    'upcoming meeting whose end_time has already passed (so it never gets a job).';

create or replace function scheduler.meetings_after_insert()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if scheduler.is_enabled() then
        perform scheduler.register_jobs(pg_catalog.array_agg(n.id), pg_catalog.array_agg(n.end_time))
        from new_meetings n
        where n.status operator(pg_catalog.=) 'upcoming';
    end if;
    return null;
end
$$;
comment on function scheduler.meetings_after_insert() is
    'Registers a job per inserted upcoming meeting. security definer: the writing role has no '
    'rights on the cron schema; jobs belong to the owner of this function.';

create or replace function scheduler.meetings_after_update()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- A meeting that left upcoming (or whose id changed) loses its job.
    perform scheduler.unregister_jobs(pg_catalog.array_agg(o.id))
    from old_meetings o
    left join new_meetings n on n.id operator(pg_catalog.=) o.id
    where o.status operator(pg_catalog.=) 'upcoming'
      and (n.id is null or n.status operator(pg_catalog.<>) 'upcoming');
    -- A meeting that became upcoming, or whose end time moved, gets its job (re)registered.
    if scheduler.is_enabled() then
        perform scheduler.register_jobs(pg_catalog.array_agg(n.id), pg_catalog.array_agg(n.end_time))
        from new_meetings n
        left join old_meetings o on o.id operator(pg_catalog.=) n.id
        where n.status operator(pg_catalog.=) 'upcoming'
          and (o.id is null or o.status operator(pg_catalog.<>) 'upcoming'
               or o.end_time operator(pg_catalog.<>) n.end_time);
    end if;
    return null;
end
$$;
comment on function scheduler.meetings_after_update() is
    'Unschedules the job of a meeting that is no longer upcoming and (re)registers it when the '
    'meeting becomes upcoming or its end_time moves. security definer: see meetings_after_insert.';

create or replace function scheduler.meetings_after_delete()
returns pg_catalog.trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform scheduler.unregister_jobs(pg_catalog.array_agg(o.id))
    from old_meetings o
    where o.status operator(pg_catalog.=) 'upcoming';
    return null;
end
$$;
comment on function scheduler.meetings_after_delete() is
    'Unschedules the jobs of deleted upcoming meetings. security definer: see meetings_after_insert.';
-- unchanged since 0001: trigger scheduler_meetings_before_write
-- unchanged since 0001: trigger scheduler_meetings_after_insert
-- unchanged since 0001: trigger scheduler_meetings_after_update
-- unchanged since 0001: trigger scheduler_meetings_after_delete
